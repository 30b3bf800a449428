#include "queue/kafka/kafka_errors.h"

#include <string>

namespace sluice::queue::kafka {
namespace {

// The class and code of err. Codes a broker sends when it is busy or in transition are
// retriable; codes about the request itself are bad input; a few end the client.
std::pair<ErrorClass, Code> classify(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR__NOENT: return {ErrorClass::kBadInput, Code::kNotFound};
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: return {ErrorClass::kBadInput, Code::kAlreadyExists};
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE: return {ErrorClass::kBadInput, Code::kTooLarge};
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    // Credentials and permissions: retrying with the same ones cannot succeed.
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL: return {ErrorClass::kBadInput, Code::kInvalidArgument};
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED: return {ErrorClass::kBadInput, Code::kUnsupported};
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return {ErrorClass::kResourceLimit, Code::kBusy};
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: return {ErrorClass::kRetriable, Code::kTimeout};
    // A group in transition: its members changed, or its coordinator moved.
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__STATE: return {ErrorClass::kRetriable, Code::kBusy};
    // Brokers away or partitions moving: the cluster heals, try again.
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED: return {ErrorClass::kRetriable, Code::kIoError};
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT: return {ErrorClass::kFatal, Code::kClosed};
    default:
      // __FATAL, fencing, sequence errors and anything unknown: do not pretend a retry helps.
      return {ErrorClass::kFatal, Code::kInternal};
  }
}

std::string describe(std::string_view context, std::string_view what, rd_kafka_resp_err_t err) {
  std::string msg(context);
  msg += ": ";
  msg += what;
  msg += " (";
  msg += rd_kafka_err2name(err);
  msg += ")";
  return msg;
}

}  // namespace

bool is_retriable(rd_kafka_resp_err_t err) {
  return classify(err).first == ErrorClass::kRetriable;
}

Status kafka_status(rd_kafka_resp_err_t err, std::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  auto [cls, code] = classify(err);
  return Status(cls, code, describe(context, rd_kafka_err2str(err), err));
}

Status kafka_status(const rd_kafka_error_t* err, std::string_view context) {
  if (err == nullptr) return {};
  rd_kafka_resp_err_t code = rd_kafka_error_code(err);
  if (code == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  auto [cls, c] = classify(code);
  if (rd_kafka_error_is_fatal(err)) cls = ErrorClass::kFatal;
  return Status(cls, c, describe(context, rd_kafka_error_string(err), code));
}

}  // namespace sluice::queue::kafka
