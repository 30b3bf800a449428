#include "base/status.h"

namespace sluice {

std::string_view error_class_name(ErrorClass c) {
  switch (c) {
    case ErrorClass::kNone: return "ok";
    case ErrorClass::kRetriable: return "retriable";
    case ErrorClass::kBadInput: return "bad_input";
    case ErrorClass::kResourceLimit: return "resource_limit";
    case ErrorClass::kFatal: return "fatal";
  }
  return "unknown";
}

std::string_view code_name(Code c) {
  switch (c) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kAlreadyExists: return "already_exists";
    case Code::kCorruption: return "corruption";
    case Code::kIoError: return "io_error";
    case Code::kTimeout: return "timeout";
    case Code::kTooLarge: return "too_large";
    case Code::kBusy: return "busy";
    case Code::kUnsupported: return "unsupported";
    case Code::kClosed: return "closed";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->msg : kEmpty;
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string s(error_class_name(rep_->cls));
  s += ": ";
  s += rep_->msg;
  return s;
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += rep_->msg;
  return {rep_->cls, rep_->code, std::move(msg)};
}

}  // namespace sluice
