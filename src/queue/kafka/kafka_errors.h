// The one place where librdkafka's error codes become sluice Statuses. Everything in the kafka
// backend that gets an rd_kafka_resp_err_t or rd_kafka_error_t passes it through here, so the
// class (retriable, bad input, resource limit, fatal) of each Kafka error is decided once.
// The context is the caller's: what was being done, to which topic, on which cluster; the
// function adds librdkafka's description and the error's name (for searching its docs).
// Thread-safety: pure functions.
#pragma once

#include <librdkafka/rdkafka.h>

#include <string_view>

#include "base/status.h"

namespace sluice::queue::kafka {

[[nodiscard]] Status kafka_status(rd_kafka_resp_err_t err, std::string_view context);
// For the rd_kafka_error_t objects of newer APIs; takes the object's own message and its
// fatal/retriable flags into account. A null error is OK. Does not destroy err.
[[nodiscard]] Status kafka_status(const rd_kafka_error_t* err, std::string_view context);

}  // namespace sluice::queue::kafka
