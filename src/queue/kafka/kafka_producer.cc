// The kafka backend's Producer: one librdkafka producer (idempotent, acks=all, lz4), a thread that
// serves its delivery reports, and sluice's tickets, byte budget and up-front checks around it.
#include <condition_variable>
#include <cstring>
#include <optional>
#include <thread>

#include "base/base64.h"
#include "queue/kafka/kafka_client.h"
#include "queue/kafka/kafka_errors.h"
#include "queue/partitioner.h"

namespace sluice::queue::kafka {
namespace {

// What travels with each message through librdkafka to its delivery report, in the message's
// opaque pointer. Without a caller opaque the ticket itself is stored there, tagged by its low bit
// (an allocation is aligned, so its low bit is 0): no allocation per message, and none freed on the
// report thread, which would contend for the sender's malloc arena.
struct InFlight {
  uint64_t ticket;
  void* opaque;
};
void* tag_ticket(uint64_t ticket) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>((ticket << 1) | 1));
}

// The bytes a message holds in the budget: value, key and headers as they travel (header names
// encoded). The same sum is taken from the delivered message, so nothing needs to be remembered.
size_t wire_bytes(const rd_kafka_message_t* m) {
  size_t bytes = m->len + m->key_len;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i)
      bytes += std::strlen(name) + size;
  }
  return bytes;
}

class KafkaProducer : public Producer {
 public:
  KafkaProducer(std::shared_ptr<Cluster> cluster, ProducerOptions opts)
      : cluster_(std::move(cluster)), opts_(std::move(opts)) {}

  Status init() {
    // Overridable through the URI or environment (linger, batching, compression).
    const Cluster::Props defaults = {
        {"enable.idempotence", "true"},    {"acks", "all"}, {"compression.type", "lz4"}, {"linger.ms", "5"},
        {"partitioner", "murmur2_random"},
    };
    SLUICE_ASSIGN_OR_RETURN(ConfPtr conf, cluster_->make_conf(Scope::kProducer, defaults, {}));
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaProducer::on_delivery);
    rd_kafka_conf_set_opaque(conf.get(), this);
    SLUICE_ASSIGN_OR_RETURN(rk_, cluster_->make_client(RD_KAFKA_PRODUCER, std::move(conf)));
    poller_ = std::thread([this] { serve_reports(); });
    return {};
  }

  ~KafkaProducer() override {
    if (!rk_) return;
    // Every send gets its report: what is still queued after send_timeout is purged, and the
    // purge's reports (Code::kClosed) are served before the thread stops.
    (void)flush(opts_.send_timeout);
    if (outstanding() > 0) {
      rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      (void)wait_idle(std::chrono::seconds(5));
    }
    {
      std::lock_guard lock(reports_mu_);
      stop_.store(true);
    }
    reports_cv_.notify_all();
    poller_.join();
    topics_.clear();  // handles before their client
    rk_.reset();
  }

  Result<uint64_t> send(const OutMessage& msg, void* opaque) override {
    // Header names as they travel: one that Kafka cannot carry is encoded (rare; nothing is
    // allocated for the usual names).
    std::vector<std::string> encoded;
    size_t bytes = msg.value.size() + (msg.key ? msg.key->size() : 0);
    for (const auto& h : msg.headers) {
      if (header_name_needs_encoding(h.key)) {
        encoded.resize(msg.headers.size());
        std::string& name = encoded[static_cast<size_t>(&h - msg.headers.data())];
        name = std::string(kEncodedNamePrefix) + base64_encode(h.key);
        bytes += name.size();
      } else {
        bytes += h.key.size();
      }
      bytes += h.value.size();
    }
    if (bytes > cluster_->max_message_bytes()) {
      return Status::too_large(
          "a message of " + std::to_string(bytes) + " bytes (key, value and headers) for topic '" +
          std::string(msg.topic) + "' is over the limit of " + std::to_string(cluster_->max_message_bytes()) +
          " bytes (raise message.max.bytes here and on the brokers, or use the claim-check)");
    }
    SLUICE_RETURN_IF_ERROR(reserve(bytes, msg.topic));

    // One lock orders tickets with enqueueing, so tickets grow with the offsets of a partition and
    // a refused message leaves no gap in the tickets.
    std::unique_lock send_lock(send_mu_);
    Result<int32_t> partition = partition_of(msg);
    if (!partition.is_ok()) {
      send_lock.unlock();
      release(bytes);
      return partition.status();
    }
    const uint64_t ticket = next_ticket_ + 1;
    rd_kafka_resp_err_t err;
    std::optional<std::chrono::steady_clock::time_point> deadline;
    for (;;) {
      rd_kafka_headers_t* headers = nullptr;
      if (!msg.headers.empty()) {
        headers = rd_kafka_headers_new(msg.headers.size());
        for (size_t i = 0; i < msg.headers.size(); ++i) {
          const auto& h = msg.headers[i];
          std::string_view name = !encoded.empty() && !encoded[i].empty() ? encoded[i] : h.key;
          rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), h.value.data(),
                              static_cast<ssize_t>(h.value.size()));
        }
      }
      void* flight = opaque == nullptr ? tag_ticket(ticket) : new InFlight{ticket, opaque};
      // An empty key must stay a key (not null): a non-null pointer is given even for size 0.
      static const char kEmpty = 0;
      const void* key = msg.key ? (msg.key->empty() ? &kEmpty : msg.key->data()) : nullptr;
      const size_t key_len = msg.key ? msg.key->size() : 0;
      err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_RKT(current_->handle.get()),
                              RD_KAFKA_V_PARTITION(*partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(const_cast<char*>(msg.value.data()), msg.value.size()),
                              RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(msg.timestamp_ms),
                              RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(flight), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        next_ticket_ = ticket;
        send_lock.unlock();
        serve_inline();
        return ticket;
      }
      if (headers != nullptr) rd_kafka_headers_destroy(headers);
      if (opaque != nullptr) delete static_cast<InFlight*>(flight);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
      // librdkafka's own queue (queue.buffering.max.*) is full: wait for reports to drain it.
      const auto now = std::chrono::steady_clock::now();
      if (!deadline) deadline = now + opts_.send_timeout;
      if (now >= *deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    send_lock.unlock();
    release(bytes);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char reason[512];
      rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk_.get(), reason, sizeof reason);
      return Status::internal("the producer for " + cluster_->where() +
                              " stopped on a fatal error: " + reason + " (" + rd_kafka_err2name(fatal) + ")");
    }
    return kafka_status(err, "send to topic '" + std::string(msg.topic) + "' on " + cluster_->where());
  }

  Status flush(Millis timeout) override {
    {  // the sender has stopped: the report thread serves librdkafka's queue itself again
      std::lock_guard lock(reports_mu_);
      take_back_ = true;
    }
    reports_cv_.notify_all();
    if (!wait_idle(timeout)) {
      return Status::timeout(std::to_string(outstanding_.load()) +
                             " messages still wait for acknowledgement from " + cluster_->where() +
                             " after " + std::to_string(timeout.count()) + " ms");
    }
    std::lock_guard lock(mu_);
    Status first = first_error_;
    first_error_ = Status::ok();
    return first;
  }

  uint64_t outstanding() const override { return outstanding_.load(); }

 private:
  // Waits until every message sent has its report; false on timeout.
  [[nodiscard]] bool wait_idle(Millis timeout) {
    std::unique_lock lock(mu_);
    ++waiters_;
    const bool done = cv_.wait_for(lock, timeout, [&] { return outstanding_.load() == 0; });
    --waiters_;
    return done;
  }

  // Takes bytes from the byte budget, waiting up to send_timeout for room. A message larger than
  // the whole budget is let through when nothing else is buffered.
  Status reserve(size_t bytes, std::string_view topic) {
    size_t now = buffered_.load();
    while (now == 0 || now + bytes <= opts_.max_buffered_bytes) {
      if (buffered_.compare_exchange_weak(now, now + bytes)) {
        ++outstanding_;
        return {};
      }
    }
    std::unique_lock lock(mu_);
    ++waiters_;
    const bool room = cv_.wait_for(lock, opts_.send_timeout, [&] {
      size_t cur = buffered_.load();
      while (cur == 0 || cur + bytes <= opts_.max_buffered_bytes) {
        if (buffered_.compare_exchange_weak(cur, cur + bytes)) return true;
      }
      return false;
    });
    --waiters_;
    if (!room) {
      return Status::resource_limit("send to topic '" + std::string(topic) +
                                    "': " + std::to_string(buffered_.load()) +
                                    " bytes have waited for acknowledgement from " + cluster_->where() +
                                    " for longer than the send timeout");
    }
    ++outstanding_;
    return {};
  }

  // Gives bytes back (a delivered or refused message) and wakes whoever waits for room or a flush.
  // The counters are atomics so that the report thread and the sender do not take turns on a lock
  // for every message; the lock is taken only when someone waits (waiters_ is read after the
  // counters change, and a waiter checks the counters after registering, so no wakeup is lost).
  void release(size_t bytes) {
    buffered_.fetch_sub(bytes);
    outstanding_.fetch_sub(1);
    if (waiters_.load() > 0) {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    }
  }

  // The partition msg goes to, from the topic's partition count (cached for a while: the topic
  // may grow). Sets current_ to the topic's entry. Called under send_mu_.
  Result<int32_t> partition_of(const OutMessage& msg) {
    SLUICE_RETURN_IF_ERROR(select_topic(msg.topic));
    int32_t count = current_->partitions;
    if (msg.partition) {
      int32_t p = msg.partition->value();
      if (p >= count && p >= 0) {  // the topic may have grown since the count was cached
        SLUICE_ASSIGN_OR_RETURN(count, cluster_->partition_count(msg.topic, true));
        current_->partitions = count;
      }
      if (p < 0 || p >= count) {
        return Status::invalid_argument("partition " + std::to_string(p) + " is out of range: topic '" +
                                        std::string(msg.topic) + "' has " + std::to_string(count) +
                                        " partitions");
      }
      return p;
    }
    if (msg.key) {
      // sluice's own murmur2 (what librdkafka's murmur2_random does too), so the placement does
      // not depend on how the client treats an empty key.
      return partition_for_key(*msg.key, count).value();
    }
    return RD_KAFKA_PARTITION_UA;
  }

  // A topic's handle and partition count, looked up once per topic and its count re-read from the
  // cluster's cache every kRecheckSends sends (the clock is not read per message).
  struct TopicEntry {
    TopicPtr handle;
    int32_t partitions = 0;
    uint32_t sends_since_check = 0;
  };
  static constexpr uint32_t kRecheckSends = 4096;
  Status select_topic(std::string_view name) {
    if (current_ == nullptr || current_name_ != name) {
      auto it = topics_.find(name);
      if (it == topics_.end()) {
        SLUICE_ASSIGN_OR_RETURN(int32_t count, cluster_->partition_count(name));
        std::string n(name);
        TopicEntry e{TopicPtr(rd_kafka_topic_new(rk_.get(), n.c_str(), nullptr)), count, 0};
        it = topics_.emplace(std::move(n), std::move(e)).first;
      }
      current_ = &it->second;
      current_name_ = it->first;
    }
    if (++current_->sends_since_check >= kRecheckSends) {
      SLUICE_ASSIGN_OR_RETURN(current_->partitions, cluster_->partition_count(name));
      current_->sends_since_check = 0;
    }
    return {};
  }

  // Delivery reports. librdkafka frees each message on the thread that serves its report, and
  // the sending thread allocated it: served on another thread, every free contends for the
  // sender's malloc arena (a third of the produce path's cost, measured). So while a thread is
  // sending, it serves the reports itself after each send, as a plain librdkafka loop does, and
  // hands them to the report thread, which runs the callbacks; while nobody sends, the report
  // thread serves librdkafka's queue directly. poll_mu_ lets one thread at a time take reports
  // from librdkafka, so they reach the callbacks in the order librdkafka gave them.
  struct Report {
    DeliveryReport r;
    size_t bytes = 0;
  };

  static void on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaProducer*>(opaque);
    Report rep;
    rep.bytes = wire_bytes(m);
    DeliveryReport& r = rep.r;
    const auto tag = reinterpret_cast<uintptr_t>(m->_private);
    if (tag & 1) {
      r.ticket = tag >> 1;
    } else {
      std::unique_ptr<InFlight> flight(static_cast<InFlight*>(m->_private));
      r.ticket = flight->ticket;
      r.opaque = flight->opaque;
    }
    // The name lives in the producer's topic handle, which outlives every report.
    r.topic = m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "";
    r.partition = PartitionId(m->partition);
    r.offset = Offset(m->offset);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      r.status = kafka_status(
          m->err, "delivery to topic '" + std::string(r.topic) + "' on " + self->cluster_->where());
      r.offset = Offset(-1);
    }
    if (std::this_thread::get_id() == self->poller_.get_id()) {
      self->dispatch(rep);
    } else {
      self->handed_over_.push_back(std::move(rep));  // under poll_mu_, held by the sender
    }
  }

  // The callback, then the budget: flush() returns only after every callback has run.
  void dispatch(const Report& rep) {
    if (!rep.r.status.is_ok()) {
      std::lock_guard lock(mu_);
      if (first_error_.is_ok()) first_error_ = rep.r.status;
    }
    if (opts_.on_delivery) opts_.on_delivery(rep.r);
    release(rep.bytes);
  }

  // After a send: take what librdkafka has reported, unless the report thread is taking it (or
  // this is the report thread, sending from a delivery callback while it holds poll_mu_).
  void serve_inline() {
    if (!sending_.load(std::memory_order_relaxed)) sending_.store(true);
    if (std::this_thread::get_id() == poller_.get_id() || !poll_mu_.try_lock()) return;
    rd_kafka_poll(rk_.get(), 0);
    const bool handed = !handed_over_.empty();
    if (handed) {  // before poll_mu_ is released, so that they come before the next poll's
      std::lock_guard lock(reports_mu_);
      for (auto& rep : handed_over_) pending_.push_back(std::move(rep));
    }
    handed_over_.clear();
    poll_mu_.unlock();
    if (handed) reports_cv_.notify_one();
  }

  void serve_reports() {
    std::vector<Report> batch;
    auto take_pending = [&] {
      std::lock_guard lock(reports_mu_);
      batch.swap(pending_);
    };
    auto run_batch = [&] {
      for (const auto& rep : batch) dispatch(rep);
      batch.clear();
    };
    while (!stop_.load()) {
      bool sender_serves = false;
      {
        std::unique_lock lock(reports_mu_);
        sender_serves = sending_.exchange(false) && !take_back_;
        take_back_ = false;
        if (sender_serves) {
          // Run the callbacks of what the sender hands over; when it has not sent for a while,
          // or flushes, take librdkafka's queue back.
          reports_cv_.wait_for(lock, std::chrono::milliseconds(20),
                               [&] { return stop_.load() || take_back_ || !pending_.empty(); });
          batch.swap(pending_);
        }
      }
      if (sender_serves) {
        run_batch();
        continue;
      }
      std::lock_guard poll_lock(poll_mu_);
      take_pending();  // what a sender handed over comes before what librdkafka has now
      run_batch();
      rd_kafka_poll(rk_.get(), 20);
    }
    std::lock_guard poll_lock(poll_mu_);  // the last ones, in order
    take_pending();
    run_batch();
    rd_kafka_poll(rk_.get(), 0);
  }

  std::shared_ptr<Cluster> cluster_;
  ProducerOptions opts_;
  RkPtr rk_;
  std::thread poller_;
  std::atomic<bool> stop_{false};

  std::mutex send_mu_;
  uint64_t next_ticket_ = 0;                               // guarded by send_mu_
  std::map<std::string, TopicEntry, std::less<>> topics_;  // guarded by send_mu_
  TopicEntry* current_ = nullptr;                          // the last topic sent to; guarded by send_mu_
  std::string_view current_name_;                          // its name (a key of topics_)

  std::mutex poll_mu_;               // held by the one thread taking reports from librdkafka
  std::vector<Report> handed_over_;  // the sender's reports from its poll; guarded by poll_mu_
  std::mutex reports_mu_;
  std::condition_variable reports_cv_;
  std::vector<Report> pending_;       // handed to the report thread, in order; guarded by reports_mu_
  std::atomic<bool> sending_{false};  // a thread has sent since the report thread last looked
  bool take_back_ = false;            // flush(): serve librdkafka's queue now; guarded by reports_mu_

  std::atomic<uint64_t> outstanding_{0};
  std::atomic<size_t> buffered_{0};
  std::atomic<int> waiters_{0};  // threads in flush() or reserve() waiting on cv_
  mutable std::mutex mu_;        // for cv_, and guards first_error_
  std::condition_variable cv_;
  Status first_error_;
};

}  // namespace

Result<std::unique_ptr<Producer>> make_kafka_producer(std::shared_ptr<Cluster> cluster,
                                                      ProducerOptions opts) {
  auto p = std::make_unique<KafkaProducer>(std::move(cluster), std::move(opts));
  SLUICE_RETURN_IF_ERROR(p->init());
  return std::unique_ptr<Producer>(std::move(p));
}

}  // namespace sluice::queue::kafka
