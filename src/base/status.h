// Status and Result<T>: how errors travel between modules.
//
// A Status is either OK or carries an ErrorClass (what the caller can do about it), a Code (what
// went wrong, for programs) and a message written for a person. No exception crosses a module
// boundary; functions that can fail return Status or Result<T> and both are [[nodiscard]].
// Thread-safety: values; copying is cheap (OK holds no allocation).
#pragma once

#include <cassert>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

// What the caller can do about an error.
enum class ErrorClass : unsigned char {
  kNone = 0,       // not an error
  kRetriable,      // try again later: a timeout, a busy resource, a server away
  kBadInput,       // the input is wrong; retrying cannot fix it
  kResourceLimit,  // a size, memory, time or queue limit was reached
  kFatal,          // the system cannot go on: corruption, I/O failure, a broken invariant
};

// What went wrong, for code that branches on it.
enum class Code : unsigned char {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kCorruption,
  kIoError,
  kTimeout,
  kTooLarge,
  kBusy,
  kUnsupported,
  kClosed,
  kInternal,
};

std::string_view error_class_name(ErrorClass c);
std::string_view code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status ok() { return {}; }
  static Status invalid_argument(std::string msg) {
    return {ErrorClass::kBadInput, Code::kInvalidArgument, std::move(msg)};
  }
  static Status not_found(std::string msg) {
    return {ErrorClass::kBadInput, Code::kNotFound, std::move(msg)};
  }
  static Status already_exists(std::string msg) {
    return {ErrorClass::kBadInput, Code::kAlreadyExists, std::move(msg)};
  }
  static Status corruption(std::string msg) {
    return {ErrorClass::kFatal, Code::kCorruption, std::move(msg)};
  }
  static Status io_error(std::string msg) { return {ErrorClass::kFatal, Code::kIoError, std::move(msg)}; }
  static Status timeout(std::string msg) { return {ErrorClass::kRetriable, Code::kTimeout, std::move(msg)}; }
  static Status too_large(std::string msg) {
    return {ErrorClass::kBadInput, Code::kTooLarge, std::move(msg)};
  }
  static Status busy(std::string msg) { return {ErrorClass::kRetriable, Code::kBusy, std::move(msg)}; }
  // A server that cannot be reached or does not answer now (connection refused or lost).
  static Status unavailable(std::string msg) {
    return {ErrorClass::kRetriable, Code::kIoError, std::move(msg)};
  }
  static Status resource_limit(std::string msg) {
    return {ErrorClass::kResourceLimit, Code::kBusy, std::move(msg)};
  }
  static Status unsupported(std::string msg) {
    return {ErrorClass::kBadInput, Code::kUnsupported, std::move(msg)};
  }
  static Status closed(std::string msg) { return {ErrorClass::kFatal, Code::kClosed, std::move(msg)}; }
  static Status internal(std::string msg) { return {ErrorClass::kFatal, Code::kInternal, std::move(msg)}; }

  Status(ErrorClass cls, Code code, std::string msg)
      : rep_(std::make_shared<const Rep>(Rep{cls, code, std::move(msg)})) {}

  bool is_ok() const { return rep_ == nullptr; }
  explicit operator bool() const { return is_ok(); }
  ErrorClass error_class() const { return rep_ ? rep_->cls : ErrorClass::kNone; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const;
  // "bad_input: topic 'x' does not exist ..." — what a person reads.
  std::string to_string() const;
  // The same status with "context: " in front of the message.
  Status with_context(std::string_view context) const;

 private:
  struct Rep {
    ErrorClass cls;
    Code code;
    std::string msg;
  };
  std::shared_ptr<const Rep> rep_;  // null when OK: the OK path allocates nothing
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).is_ok() && "Result built from an OK status");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sluice

// Early-return helpers; the only macros in the code base.
#define SLUICE_CONCAT_INNER(a, b) a##b
#define SLUICE_CONCAT(a, b) SLUICE_CONCAT_INNER(a, b)
#define SLUICE_RETURN_IF_ERROR(expr) \
  do {                               \
    ::sluice::Status _st = (expr);   \
    if (!_st.is_ok()) return _st;    \
  } while (0)
#define SLUICE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.is_ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
#define SLUICE_ASSIGN_OR_RETURN(lhs, expr) \
  SLUICE_ASSIGN_OR_RETURN_IMPL(SLUICE_CONCAT(_res_, __LINE__), lhs, expr)
