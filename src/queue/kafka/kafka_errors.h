// The one place where librdkafka's error codes become sluice Statuses. Everything in the kafka
// backend that gets an rd_kafka_resp_err_t or rd_kafka_error_t passes it through here, so the
// class (retriable, bad input, resource limit, fatal) of each Kafka error is decided once.
// The context is the caller's: what was being done, to which topic, on which cluster; the
// function adds librdkafka's description and the error's name (for searching its docs).
// Thread-safety: pure functions.
#pragma once

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <string_view>
#include <thread>

#include "base/status.h"

namespace sluice::queue::kafka {

[[nodiscard]] Status kafka_status(rd_kafka_resp_err_t err, std::string_view context);
// For the rd_kafka_error_t objects of newer APIs; takes the object's own message and its
// fatal/retriable flags into account. A null error is OK. Does not destroy err.
[[nodiscard]] Status kafka_status(const rd_kafka_error_t* err, std::string_view context);

// True for the codes kafka_status classes retriable: the cluster is in transition (a broker away,
// a leader moving, a group rebalancing) and the same request can succeed later.
[[nodiscard]] bool is_retriable(rd_kafka_resp_err_t err);

// Calls `call` (returning an rd_kafka_resp_err_t) again while it fails with a retriable code, with
// backoff from 50 ms up to 1 s, until budget_ms has passed; returns the last code. For one-shot
// queries (watermarks, committed offsets, metadata) that librdkafka sends once to the broker it
// believes leads: after a leader move or a broker outage the first answer is often
// NOT_LEADER_FOR_PARTITION or a transport error, and the next metadata refresh fixes it.
template <class Call>
[[nodiscard]] rd_kafka_resp_err_t retry_transient(Call&& call, int budget_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms);
  auto backoff = std::chrono::milliseconds(50);
  for (;;) {
    rd_kafka_resp_err_t err = call();
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || !is_retriable(err) ||
        std::chrono::steady_clock::now() + backoff >= deadline) {
      return err;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

}  // namespace sluice::queue::kafka
