// What the producers of the network backends (redis, amqp) share between send() and their sender
// thread: the topics' partition counts, checking a message (size, partition), a bounded buffer of copies that
// send() blocks on (ProducerOptions::max_buffered_bytes, failing with ResourceLimit after send_timeout),
// tickets 1, 2, 3, ..., and the count of delivery reports that flush() and outstanding() wait on.
//
// Ownership: a SendQueue owns the Items waiting in it; take() hands them to the sender thread.
// Thread-safety: every member is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "base/status.h"
#include "queue/partitioner.h"
#include "queue/queue.h"

namespace sluice::queue {

// Key + value + header bytes of msg; too_large naming the topic when over max (`where` names the
// server, for the message).
[[nodiscard]] inline Result<size_t> checked_message_size(const OutMessage& msg, uint64_t max,
                                                         std::string_view where) {
  size_t bytes = msg.value.size() + (msg.key ? msg.key->size() : 0);
  for (const Header& h : msg.headers) bytes += h.key.size() + h.value.size();
  if (bytes > max) {
    return Status::too_large("message of " + std::to_string(bytes) + " bytes for topic '" +
                             std::string(msg.topic) + "' is larger than max_message_bytes (" +
                             std::to_string(max) + ") of " + std::string(where));
  }
  return bytes;
}

// BadInput unless p is one of topic's `parts` partitions.
[[nodiscard]] inline Status check_partition_range(std::string_view topic, PartitionId p, int32_t parts) {
  if (p.value() >= 0 && p.value() < parts) return {};
  return Status::invalid_argument("partition " + std::to_string(p.value()) + " is out of range for topic '" +
                                  std::string(topic) + "' (" + std::to_string(parts) + " partitions)");
}

// The partition msg goes to on a topic of `parts` partitions: the one it names (checked), its
// key's (murmur2, as every backend places keys), or the next of round_robin.
[[nodiscard]] inline Result<PartitionId> choose_partition(const OutMessage& msg, int32_t parts,
                                                          std::atomic<uint32_t>& round_robin) {
  if (msg.partition) {
    SLUICE_RETURN_IF_ERROR(check_partition_range(msg.topic, *msg.partition, parts));
    return *msg.partition;
  }
  if (msg.key) return partition_for_key(*msg.key, parts);
  return PartitionId(static_cast<int32_t>(round_robin.fetch_add(1) % static_cast<uint32_t>(parts)));
}

// Partition counts of topics, each looked up once (a topic's count never changes on these
// backends), on a connection of the cache's own made at the first lookup. Conn: the backend's.
template <class Conn>
class TopicCounts {
 public:
  using Connect = std::function<Result<std::unique_ptr<Conn>>()>;
  using Lookup = std::function<Result<int32_t>(Conn&, std::string_view topic)>;
  TopicCounts(Connect connect, Lookup lookup) : connect_(std::move(connect)), lookup_(std::move(lookup)) {}

  [[nodiscard]] Result<int32_t> get(std::string_view topic) {
    std::lock_guard lock(mu_);
    if (auto it = counts_.find(topic); it != counts_.end()) return it->second;
    if (conn_ == nullptr) {
      SLUICE_ASSIGN_OR_RETURN(conn_, connect_());
    }
    SLUICE_ASSIGN_OR_RETURN(int32_t n, lookup_(*conn_, topic));
    counts_.emplace(std::string(topic), n);
    return n;
  }

 private:
  const Connect connect_;
  const Lookup lookup_;
  std::mutex mu_;
  std::unique_ptr<Conn> conn_;
  std::map<std::string, int32_t, std::less<>> counts_;
};

// Item: the backend's copy of a message, with members `uint64_t ticket`, `size_t bytes` (what it
// counts against the buffer) and `std::chrono::steady_clock::time_point queued_at`.
template <class Item>
class SendQueue {
 public:
  // who: "redis producer", ...; where: the server, for messages.
  SendQueue(const ProducerOptions& opts, std::string who, std::string where)
      : opts_(opts), who_(std::move(who)), where_(std::move(where)) {}

  // Admits it (waiting for room), numbers it and queues it for the sender; returns its ticket.
  [[nodiscard]] Result<uint64_t> push(Item it) {
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + opts_.send_timeout;
    while (buffered_ + it.bytes > opts_.max_buffered_bytes && buffered_ > 0) {
      if (space_cv_.wait_until(lock, deadline) == std::cv_status::timeout &&
          buffered_ + it.bytes > opts_.max_buffered_bytes && buffered_ > 0) {
        return Status::resource_limit(who_ + ": " + std::to_string(buffered_) + " bytes still wait for " +
                                      where_ + " after " + std::to_string(opts_.send_timeout.count()) +
                                      " ms");
      }
    }
    it.ticket = next_ticket_++;
    it.queued_at = std::chrono::steady_clock::now();
    buffered_ += it.bytes;
    const uint64_t ticket = it.ticket;
    queue_.push_back(std::move(it));
    lock.unlock();
    work_cv_.notify_one();
    return ticket;
  }

  // The sender's side: moves up to max queued items to the back of out, first waiting up to `wait`
  // for one when there is none (no wait when nullopt). False once stop() was called and nothing is
  // left to take.
  template <class Container>
  bool take(Container& out, size_t max, std::optional<std::chrono::milliseconds> wait) {
    std::unique_lock lock(mu_);
    if (wait && queue_.empty()) work_cv_.wait_for(lock, *wait, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return !stop_;
    for (size_t n = 0; n < max && !queue_.empty(); ++n) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return true;
  }

  // The sender issued `count` delivery reports for items of `bytes` in all; error: the first
  // failed one's status (OK when none failed).
  void reported(size_t count, size_t bytes, const Status& error) {
    {
      std::lock_guard lock(mu_);
      if (!error.is_ok() && first_error_.is_ok()) first_error_ = error;
      reported_ += count;
      buffered_ -= bytes;
    }
    done_cv_.notify_all();
    space_cv_.notify_all();
  }

  // As Producer::flush: waits until everything pushed so far is reported; returns the first delivery
  // error since the previous flush.
  [[nodiscard]] Status flush(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    const uint64_t target = next_ticket_ - 1;
    if (!done_cv_.wait_for(lock, timeout, [&] { return reported_ >= target; })) {
      return Status::timeout(who_ + ": " + std::to_string(target - reported_) +
                             " messages still unconfirmed by " + where_ + " after " +
                             std::to_string(timeout.count()) + " ms");
    }
    Status st = std::move(first_error_);
    first_error_ = Status::ok();
    return st;
  }

  uint64_t outstanding() const {
    std::lock_guard lock(mu_);
    return next_ticket_ - 1 - reported_;
  }

  // After this, take() returns false once the queue is empty.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
  }

 private:
  const ProducerOptions& opts_;
  const std::string who_, where_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_, space_cv_, done_cv_;
  std::deque<Item> queue_;
  size_t buffered_ = 0;
  uint64_t next_ticket_ = 1;
  uint64_t reported_ = 0;
  Status first_error_;
  bool stop_ = false;
};

}  // namespace sluice::queue
