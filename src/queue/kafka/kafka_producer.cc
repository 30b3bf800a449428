// The kafka backend's Producer: one librdkafka producer (idempotent, acks=all, lz4), a thread that
// serves its delivery reports, and sluice's tickets, byte budget and up-front checks around it.
#include <condition_variable>
#include <thread>

#include "base/base64.h"
#include "queue/kafka/kafka_client.h"
#include "queue/kafka/kafka_errors.h"
#include "queue/partitioner.h"

namespace sluice::queue::kafka {
namespace {

// What travels with each message through librdkafka to its delivery report.
struct InFlight {
  uint64_t ticket;
  void* opaque;
  size_t bytes;
};

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
    poller_ = std::thread([this] {
      while (!stop_.load()) rd_kafka_poll(rk_.get(), 50);
    });
    return {};
  }

  ~KafkaProducer() override {
    if (!rk_) return;
    // Every send gets its report: what is still queued after send_timeout is purged, and the
    // purge's reports (Code::kClosed) are served before the thread stops.
    (void)flush(opts_.send_timeout);
    if (outstanding() > 0) {
      rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(5), [&] { return outstanding_ == 0; });
    }
    stop_.store(true);
    poller_.join();
    topics_.clear();  // handles before their client
    rk_.reset();
  }

  Result<uint64_t> send(const OutMessage& msg, void* opaque) override {
    SLUICE_ASSIGN_OR_RETURN(int32_t count, cluster_->partition_count(msg.topic));
    int32_t partition = RD_KAFKA_PARTITION_UA;
    if (msg.partition) {
      int32_t p = msg.partition->value();
      if (p >= count && p >= 0) {  // the topic may have grown since the count was cached
        SLUICE_ASSIGN_OR_RETURN(count, cluster_->partition_count(msg.topic, true));
      }
      if (p < 0 || p >= count) {
        return Status::invalid_argument("partition " + std::to_string(p) + " is out of range: topic '" +
                                        std::string(msg.topic) + "' has " + std::to_string(count) +
                                        " partitions");
      }
      partition = p;
    } else if (msg.key) {
      // sluice's own murmur2 (what librdkafka's murmur2_random does too), so the placement does
      // not depend on how the client treats an empty key.
      partition = partition_for_key(*msg.key, count).value();
    }

    size_t bytes = msg.value.size() + (msg.key ? msg.key->size() : 0);
    for (const auto& h : msg.headers) bytes += h.key.size() + h.value.size();
    if (bytes > cluster_->max_message_bytes()) {
      return Status::too_large(
          "a message of " + std::to_string(bytes) + " bytes (key, value and headers) for topic '" +
          std::string(msg.topic) + "' is over the limit of " + std::to_string(cluster_->max_message_bytes()) +
          " bytes (raise message.max.bytes here and on the brokers, or use the claim-check)");
    }

    // Room in the byte budget, reserved at once (released again if the message is refused).
    const auto deadline = std::chrono::steady_clock::now() + opts_.send_timeout;
    {
      std::unique_lock lock(mu_);
      bool room = cv_.wait_until(
          lock, deadline, [&] { return buffered_ == 0 || buffered_ + bytes <= opts_.max_buffered_bytes; });
      if (!room) {
        return Status::resource_limit("send to topic '" + std::string(msg.topic) +
                                      "': " + std::to_string(buffered_) +
                                      " bytes have waited for acknowledgement from " + cluster_->where() +
                                      " for longer than the send timeout");
      }
      ++outstanding_;
      buffered_ += bytes;
    }

    // One lock orders tickets with enqueueing, so tickets grow with the offsets of a partition and
    // a refused message leaves no gap in the tickets.
    std::lock_guard send_lock(send_mu_);
    rd_kafka_topic_t* rkt = topic_handle(msg.topic);
    const uint64_t ticket = next_ticket_ + 1;
    rd_kafka_resp_err_t err;
    for (;;) {
      rd_kafka_headers_t* headers = nullptr;
      if (!msg.headers.empty()) {
        headers = rd_kafka_headers_new(msg.headers.size());
        for (const auto& h : msg.headers) {
          std::string encoded;
          std::string_view name = h.key;
          if (header_name_needs_encoding(name)) {
            encoded = std::string(kEncodedNamePrefix) + base64_encode(name);
            name = encoded;
          }
          rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), h.value.data(),
                              static_cast<ssize_t>(h.value.size()));
        }
      }
      auto* flight = new InFlight{ticket, opaque, bytes};
      // An empty key must stay a key (not null): a non-null pointer is given even for size 0.
      static const char kEmpty = 0;
      const void* key = msg.key ? (msg.key->empty() ? &kEmpty : msg.key->data()) : nullptr;
      const size_t key_len = msg.key ? msg.key->size() : 0;
      err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(const_cast<char*>(msg.value.data()), msg.value.size()),
                              RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(msg.timestamp_ms),
                              RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(flight), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        next_ticket_ = ticket;
        return ticket;
      }
      if (headers != nullptr) rd_kafka_headers_destroy(headers);
      delete flight;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || std::chrono::steady_clock::now() >= deadline) break;
      // librdkafka's own queue (queue.buffering.max.*) is full: wait for reports to drain it.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    {
      std::lock_guard lock(mu_);
      --outstanding_;
      buffered_ -= bytes;
      cv_.notify_all();
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char reason[512];
      rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk_.get(), reason, sizeof reason);
      return Status::internal("the producer for " + cluster_->where() +
                              " stopped on a fatal error: " + reason + " (" + rd_kafka_err2name(fatal) + ")");
    }
    return kafka_status(err, "send to topic '" + std::string(msg.topic) + "' on " + cluster_->where());
  }

  Status flush(Millis timeout) override {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return outstanding_ == 0; })) {
      return Status::timeout(std::to_string(outstanding_) + " messages still wait for acknowledgement from " +
                             cluster_->where() + " after " + std::to_string(timeout.count()) + " ms");
    }
    Status first = first_error_;
    first_error_ = Status::ok();
    return first;
  }

  uint64_t outstanding() const override {
    std::lock_guard lock(mu_);
    return outstanding_;
  }

 private:
  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<KafkaProducer*>(opaque);
    std::unique_ptr<InFlight> flight(static_cast<InFlight*>(m->_private));
    std::string_view topic = m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "";
    DeliveryReport r;
    r.ticket = flight->ticket;
    r.opaque = flight->opaque;
    r.topic = topic;
    r.partition = PartitionId(m->partition);
    r.offset = Offset(m->offset);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      r.status = kafka_status(m->err,
                              "delivery to topic '" + std::string(topic) + "' on " + self->cluster_->where());
      r.offset = Offset(-1);
    }
    if (self->opts_.on_delivery) self->opts_.on_delivery(r);
    std::lock_guard lock(self->mu_);
    --self->outstanding_;
    self->buffered_ -= flight->bytes;
    if (!r.status.is_ok() && self->first_error_.is_ok()) self->first_error_ = r.status;
    self->cv_.notify_all();
  }

  std::shared_ptr<Cluster> cluster_;
  ProducerOptions opts_;
  RkPtr rk_;
  std::thread poller_;
  std::atomic<bool> stop_{false};

  // The topic handle of a name (created once; librdkafka keeps one per name and client anyway,
  // so this only saves the lookup by a NUL-terminated copy of the name). Guarded by send_mu_.
  rd_kafka_topic_t* topic_handle(std::string_view name) {
    auto it = topics_.find(name);
    if (it == topics_.end()) {
      std::string n(name);
      it = topics_.emplace(n, TopicPtr(rd_kafka_topic_new(rk_.get(), n.c_str(), nullptr))).first;
    }
    return it->second.get();
  }
  std::mutex send_mu_;
  uint64_t next_ticket_ = 0;                             // guarded by send_mu_
  std::map<std::string, TopicPtr, std::less<>> topics_;  // guarded by send_mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t outstanding_ = 0;
  size_t buffered_ = 0;
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
