// The `log` backend: LogQueue (topics, partitions, the flusher thread), LogProducer, LogConsumer
// and LogAdmin. The format is in docs/log_format.md; partition files in partition.cc; groups in
// group.cc.
#include "queue/log/log_queue.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "base/path.h"
#include "config/property.h"
#include "queue/log/group.h"
#include "queue/log/log_format.h"
#include "queue/log/partition.h"
#include "queue/partitioner.h"

namespace sluice::queue::log {
namespace {

class LogProducer;

// One message waiting for its batch to be written.
struct Delivery {
  LogProducer* producer;
  uint64_t ticket;
  void* opaque;
  uint32_t bytes;
};

struct PendingBatch {
  BatchBuilder builder;
  std::vector<Delivery> deliveries;
};

// Messages sent to one partition and not yet handed to the flusher.
struct PartitionBuffer {
  std::mutex mu;
  std::vector<std::unique_ptr<PendingBatch>> batches;  // last one is open for appends
  std::atomic<bool> queued{false};                     // on the flusher's dirty list
  PartitionLog* log = nullptr;                         // set once opened
  std::string topic;
  PartitionId partition{0};
};

struct Topic {
  std::string name;
  TopicConfig config;
  std::mutex mu;  // guards opening of partitions
  std::vector<std::unique_ptr<PartitionLog>> logs;
  std::vector<std::unique_ptr<PartitionBuffer>> buffers;
  std::atomic<uint32_t> round_robin{0};
};

std::string topic_json(const TopicConfig& c, int64_t created_ms) {
  nlohmann::json j = {{"partitions", c.partitions},
                      {"retention_ms", c.retention_ms},
                      {"retention_bytes", c.retention_bytes},
                      {"created_ms", created_ms}};
  return j.dump() + "\n";
}

}  // namespace

class LogQueue final : public Queue, public Admin, public GroupHost {
 public:
  explicit LogQueue(const LogOptions& opts) : opts_(opts), env_(opts.env ? opts.env : Env::posix()) {}
  ~LogQueue() override;

  Status open();

  std::string_view backend() const override { return "log"; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.persistent = c.per_key_order = c.partitions = c.replay = c.timestamp_reset = c.lag = true;
    c.multi_process_producers = true;
    c.offsets = c.exclusive_partitions = c.late_groups = true;
    c.max_message_bytes = opts_.max_message_bytes;
    return c;
  }
  Result<std::unique_ptr<Producer>> make_producer(ProducerOptions opts) override;
  Result<std::unique_ptr<Consumer>> make_consumer(ConsumerOptions opts) override;
  Admin& admin() override { return *this; }

  // Admin
  Status create_topic(std::string_view name, const TopicConfig& cfg) override;
  Result<std::vector<TopicInfo>> list_topics() override;
  Result<TopicInfo> describe_topic(std::string_view name) override;
  Result<std::vector<std::string>> list_groups() override;
  Result<GroupInfo> describe_group(std::string_view group) override;
  Result<std::vector<PartitionOffset>> reset_offsets(std::string_view group, std::string_view topic,
                                                     const ResetSpec& spec,
                                                     std::optional<PartitionId> partition) override;

  // GroupHost
  Result<int32_t> partition_count(std::string_view topic) override {
    SLUICE_ASSIGN_OR_RETURN(Topic * t, find_topic(topic, false));
    return t->config.partitions;
  }
  Result<PartitionLog*> partition_log(std::string_view topic, PartitionId p) override {
    SLUICE_ASSIGN_OR_RETURN(Topic * t, find_topic(topic, false));
    return open_partition(t, p);
  }

  // Used by producers and consumers.
  const LogOptions& options() const { return opts_; }
  Env* env() const { return env_; }
  Result<Topic*> find_topic(std::string_view name, bool may_create);
  Result<PartitionLog*> open_partition(Topic* t, PartitionId p);
  Result<PartitionBuffer*> buffer(Topic* t, PartitionId p);
  void mark_dirty(PartitionBuffer* b);
  Result<std::shared_ptr<GroupCoordinator>> coordinator(const std::string& group, bool ephemeral);
  void release_coordinator(const std::string& group);
  // Consumers wait here for new data; the flusher wakes them.
  void wait_for_data(int64_t deadline_ns);
  void retention_pass();

 private:
  void flusher_loop();
  Status load_topic_locked(const std::string& name, Topic** out);
  std::string topics_dir() const { return opts_.dir + "/topics"; }
  std::string groups_dir() const { return opts_.dir + "/groups"; }

  LogOptions opts_;
  Env* env_;

  std::mutex topics_mu_;
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics_;

  std::mutex dirty_mu_;
  std::condition_variable dirty_cv_;
  std::vector<PartitionBuffer*> dirty_;
  bool stopping_ = false;
  std::thread flusher_;

  std::mutex data_mu_;
  std::condition_variable data_cv_;
  std::atomic<uint64_t> data_seq_{0};

  std::mutex groups_mu_;
  std::map<std::string, std::weak_ptr<GroupCoordinator>> groups_;
};

// ---------------------------------------------------------------------------------------------
// Producer

namespace {

class LogProducer final : public Producer {
 public:
  LogProducer(LogQueue* q, ProducerOptions opts) : q_(q), opts_(std::move(opts)) {}
  ~LogProducer() override { (void)flush(Millis(600000)); }

  Result<uint64_t> send(const OutMessage& m, void* opaque) override;
  Status flush(Millis timeout) override;
  uint64_t outstanding() const override { return outstanding_.load(std::memory_order_acquire); }

  // Flusher thread: one message is durable (or failed).
  void delivered(const Delivery& d, const Status& st, std::string_view topic, PartitionId p, Offset o) {
    if (opts_.on_delivery) {
      DeliveryReport r;
      r.ticket = d.ticket;
      r.opaque = d.opaque;
      r.status = st;
      r.topic = topic;
      r.partition = p;
      r.offset = o;
      opts_.on_delivery(r);
    }
    if (!st.is_ok()) {
      std::lock_guard<std::mutex> l(mu_);
      if (first_error_.is_ok()) first_error_ = st;
    }
    buffered_.fetch_sub(d.bytes, std::memory_order_acq_rel);
    if (outstanding_.fetch_sub(1, std::memory_order_acq_rel) == 1 ||
        waiting_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> l(mu_);
      cv_.notify_all();
    }
  }

 private:
  LogQueue* q_;
  ProducerOptions opts_;
  std::atomic<uint64_t> next_ticket_{1};
  std::atomic<uint64_t> outstanding_{0};
  std::atomic<uint64_t> buffered_{0};
  std::atomic<bool> waiting_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  Status first_error_;
  // A one-entry cache: most producers send to one topic.
  std::mutex cache_mu_;
  std::string cached_name_;
  Topic* cached_topic_ = nullptr;
};

Result<uint64_t> LogProducer::send(const OutMessage& m, void* opaque) {
  Topic* t = nullptr;
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    if (cached_topic_ && cached_name_ == m.topic) t = cached_topic_;
  }
  if (!t) {
    SLUICE_ASSIGN_OR_RETURN(t, q_->find_topic(m.topic, q_->options().auto_create_topics));
    std::lock_guard<std::mutex> l(cache_mu_);
    cached_name_ = std::string(m.topic);
    cached_topic_ = t;
  }
  const int32_t n = t->config.partitions;
  PartitionId pid;
  if (m.partition) {
    if (m.partition->value() < 0 || m.partition->value() >= n) {
      return Status::invalid_argument("partition " + std::to_string(m.partition->value()) +
                                      " is out of range for topic '" + t->name + "' (it has " +
                                      std::to_string(n) + " partitions)");
    }
    pid = *m.partition;
  } else if (m.key) {
    pid = partition_for_key(*m.key, n);
  } else {
    pid = PartitionId(static_cast<int32_t>(t->round_robin.fetch_add(1, std::memory_order_relaxed) %
                                           static_cast<uint32_t>(n)));
  }
  if (m.timestamp_ms < 0) {
    return Status::invalid_argument("timestamp " + std::to_string(m.timestamp_ms) +
                                    " is negative; give milliseconds since the epoch, or 0 for now");
  }
  size_t payload = m.value.size() + (m.key ? m.key->size() : 0);
  for (const auto& h : m.headers) payload += h.key.size() + h.value.size();
  if (payload > q_->options().max_message_bytes) {
    return Status::too_large(
        "message of " + std::to_string(payload) + " bytes (key + value + headers) exceeds the " +
        std::to_string(q_->options().max_message_bytes) +
        "-byte limit of the log queue (max_message_bytes); store large payloads in the blob "
        "store and send a reference");
  }
  const auto bytes = static_cast<uint32_t>(payload + 32);
  // Backpressure: bound the memory held for unacknowledged messages.
  if (buffered_.load(std::memory_order_acquire) + bytes > opts_.max_buffered_bytes) {
    std::unique_lock<std::mutex> l(mu_);
    waiting_.store(true, std::memory_order_release);
    bool ok = cv_.wait_for(l, opts_.send_timeout, [&] {
      return buffered_.load(std::memory_order_acquire) == 0 ||
             buffered_.load(std::memory_order_acquire) + bytes <= opts_.max_buffered_bytes;
    });
    waiting_.store(false, std::memory_order_release);
    if (!ok) {
      return Status::resource_limit("producer buffer full: " + std::to_string(buffered_.load()) +
                                    " bytes wait for the disk for longer than the send timeout");
    }
  }
  SLUICE_ASSIGN_OR_RETURN(PartitionBuffer * pb, q_->buffer(t, pid));
  const int64_t ts = m.timestamp_ms ? m.timestamp_ms : q_->env()->now_ms();
  const uint64_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  buffered_.fetch_add(bytes, std::memory_order_acq_rel);
  outstanding_.fetch_add(1, std::memory_order_acq_rel);
  {
    std::lock_guard<std::mutex> l(pb->mu);
    if (pb->batches.empty() ||
        (!pb->batches.back()->builder.empty() &&
         pb->batches.back()->builder.size() + payload + 64 > q_->options().max_batch_bytes)) {
      pb->batches.push_back(std::make_unique<PendingBatch>());
    }
    PendingBatch& b = *pb->batches.back();
    b.builder.append(m, ts);
    b.deliveries.push_back({this, ticket, opaque, bytes});
  }
  if (!pb->queued.exchange(true, std::memory_order_acq_rel)) q_->mark_dirty(pb);
  return ticket;
}

Status LogProducer::flush(Millis timeout) {
  std::unique_lock<std::mutex> l(mu_);
  waiting_.store(true, std::memory_order_release);
  bool ok = cv_.wait_for(l, timeout, [&] { return outstanding_.load(std::memory_order_acquire) == 0; });
  waiting_.store(false, std::memory_order_release);
  if (!ok) {
    return Status::timeout(std::to_string(outstanding_.load()) + " messages still unacknowledged after " +
                           std::to_string(timeout.count()) + " ms");
  }
  Status st = first_error_;
  first_error_ = Status();
  return st;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Consumer

namespace {

class LogConsumer final : public Consumer {
 public:
  LogConsumer(LogQueue* q, ConsumerOptions opts, std::shared_ptr<GroupCoordinator> coord)
      : q_(q), opts_(std::move(opts)), coord_(std::move(coord)) {}
  ~LogConsumer() override { (void)close(); }

  Status poll(std::vector<Message>& out, size_t max, Millis timeout) override;
  Status ack(const Message& m) override;
  Status commit() override {
    if (closed_) return Status::closed("consumer is closed");
    return coord_->commit();
  }
  Status close() override;
  std::vector<TopicPartition> assignment() const override {
    std::lock_guard<std::mutex> l(assign_mu_);
    std::vector<TopicPartition> out;
    for (const auto& a : assigned_) out.push_back({a.progress->topic, a.progress->partition});
    return out;
  }

 private:
  struct Assigned {
    size_t index;
    PartitionProgress* progress;
    uint64_t epoch;
    std::unique_ptr<PartitionReader> reader;
  };
  void refresh_assignment();

  LogQueue* q_;
  ConsumerOptions opts_;
  std::shared_ptr<GroupCoordinator> coord_;
  bool closed_ = false;
  uint64_t seen_version_ = 0;
  mutable std::mutex assign_mu_;
  std::vector<Assigned> assigned_;
  size_t rr_ = 0;
  int64_t last_commit_ns_ = 0;
};

void LogConsumer::refresh_assignment() {
  uint64_t v = coord_->version();
  if (v == seen_version_) return;
  seen_version_ = v;
  std::vector<size_t> idx = coord_->assigned(this);
  std::vector<Assigned> next;
  for (size_t i : idx) {
    PartitionProgress* pp = coord_->progress(i);
    uint64_t epoch;
    int64_t start;
    {
      std::lock_guard<std::mutex> l(pp->mu);
      epoch = pp->epoch;
      start = pp->tracker.base();
    }
    auto it =
        std::find_if(assigned_.begin(), assigned_.end(), [&](const Assigned& a) { return a.index == i; });
    if (it != assigned_.end() && it->epoch == epoch) {
      next.push_back(std::move(*it));
    } else {
      next.push_back({i, pp, epoch, std::make_unique<PartitionReader>(pp->log, start)});
    }
  }
  std::lock_guard<std::mutex> l(assign_mu_);
  assigned_ = std::move(next);
}

Status LogConsumer::poll(std::vector<Message>& out, size_t max, Millis timeout) {
  if (closed_) return Status::closed("consumer is closed");
  Env* env = q_->env();
  const int64_t deadline =
      env->monotonic_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  const size_t start_size = out.size();
  for (;;) {
    SLUICE_RETURN_IF_ERROR(coord_->try_serve());
    refresh_assignment();
    const size_t n = assigned_.size();
    for (size_t k = 0; k < n && out.size() - start_size < max; ++k) {
      Assigned& a = assigned_[(rr_ + k) % n];
      size_t before = out.size();
      Status st = a.reader->read(max - (out.size() - start_size), &out);
      // The cookie lets ack() find the progress without a lock: the pointer stays valid while
      // this consumer holds the coordinator, and the coordinator id guards against foreign messages.
      const uint64_t tag = (coord_->id() << 32) | (a.epoch & 0xffffffffu);
      for (size_t i = before; i < out.size(); ++i) {
        out[i].cookie[0] = reinterpret_cast<uintptr_t>(a.progress);
        out[i].cookie[1] = tag;
      }
      if (out.size() > before)
        a.progress->delivered_end.store(out.back().offset.value() + 1, std::memory_order_release);
      if (!st.is_ok()) {
        if (out.size() > start_size) break;  // hand over what was read; the error repeats next time
        return st.with_context("group '" + opts_.group + "' reading " + a.progress->topic + "/" +
                               std::to_string(a.progress->partition.value()));
      }
    }
    if (n) rr_ = (rr_ + 1) % n;
    int64_t now = env->monotonic_ns();
    if (now - last_commit_ns_ >=
        std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.commit_interval).count()) {
      last_commit_ns_ = now;
      Status st = coord_->commit();
      if (!st.is_ok())
        sluice::log::error("group commit failed", {{"group", opts_.group}, {"error", st.to_string()}});
    }
    if (out.size() > start_size || now >= deadline) return {};
    q_->wait_for_data(std::min(deadline, now + 5'000'000));  // 5 ms: also see other processes' appends
  }
}

Status LogConsumer::ack(const Message& m) {
  if (closed_) return {};  // the next owner gets the message again
  if ((m.cookie[1] >> 32) != coord_->id() || m.cookie[0] == 0) {
    return Status::invalid_argument("ack of a message that this consumer's group did not deliver");
  }
  auto* pp = reinterpret_cast<PartitionProgress*>(static_cast<uintptr_t>(m.cookie[0]));
  std::lock_guard<std::mutex> l(pp->mu);
  if ((pp->epoch & 0xffffffffu) != (m.cookie[1] & 0xffffffffu)) return {};  // moved: the new owner redelivers
  if (m.offset.value() >= pp->delivered_end.load(std::memory_order_acquire)) {
    return Status::invalid_argument("ack of offset " + std::to_string(m.offset.value()) +
                                    " that was not delivered");
  }
  pp->tracker.ack(m.offset.value());
  return {};
}

Status LogConsumer::close() {
  if (closed_) return {};
  closed_ = true;
  coord_->leave(this);
  {
    std::lock_guard<std::mutex> l(assign_mu_);
    assigned_.clear();
  }
  std::string g = opts_.group;
  coord_.reset();
  q_->release_coordinator(g);
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LogQueue

LogQueue::~LogQueue() {
  {
    std::lock_guard<std::mutex> l(dirty_mu_);
    stopping_ = true;
    dirty_cv_.notify_all();
  }
  if (flusher_.joinable()) flusher_.join();
  // Whatever the mode, a clean close leaves everything on disk.
  std::lock_guard<std::mutex> l(topics_mu_);
  for (auto& [name, t] : topics_) {
    for (auto& lg : t->logs) {
      if (lg && opts_.fsync != FsyncMode::kBatch) {
        Status st = lg->sync();
        if (!st.is_ok()) sluice::log::error("sync on close failed", {{"error", st.to_string()}});
      }
    }
  }
}

Status LogQueue::open() {
  const std::string& dir = opts_.dir;
  if (dir.empty()) return Status::invalid_argument("log queue needs a directory (log:DIR)");
  if (env_->exists(dir) && !env_->is_dir(dir)) {
    return Status::invalid_argument("log directory '" + dir + "' exists and is not a directory");
  }
  if (!opts_.create_if_missing && !env_->exists(dir + "/" + kMarkerFile)) {
    return Status::not_found("no sluice log at '" + dir + "' (nothing has been produced there yet?)");
  }
  SLUICE_RETURN_IF_ERROR(env_->create_dirs(dir));
  auto names = env_->list_dir(dir);
  if (!names.is_ok()) return names.status().with_context("cannot read the log directory");
  const std::string marker = dir + "/" + kMarkerFile;
  if (env_->exists(marker)) {
    auto text = env_->read_file(marker);
    if (!text.is_ok()) return text.status().with_context("cannot read the log directory's marker");
    std::string want = std::string(kMarkerPrefix) + std::to_string(kFormatVersion) + "\n";
    if (*text != want) {
      return Status::invalid_argument("'" + marker + "' says '" + text->substr(0, text->find('\n')) +
                                      "' but this sluice reads '" + want.substr(0, want.size() - 1) +
                                      "'; use a sluice of that version or another directory");
    }
  } else if (std::any_of(names->begin(), names->end(), [](const std::string& n) {
               // Another process's marker being written (write_file_atomic's temp file) is not
               // foreign content: this directory is being made a log right now.
               return !n.starts_with(std::string(kMarkerFile) + std::string(kTempInfix));
             })) {
    std::string listing;
    for (size_t i = 0; i < names->size() && i < 5; ++i) listing += (i ? ", " : "") + (*names)[i];
    return Status::invalid_argument("'" + dir + "' is not a sluice log directory (it has no " + kMarkerFile +
                                    " and holds: " + listing +
                                    "); point the queue at an empty or sluice directory");
  } else {
    SLUICE_RETURN_IF_ERROR(
        env_->write_file_atomic(marker, std::string(kMarkerPrefix) + std::to_string(kFormatVersion) + "\n"));
  }
  SLUICE_RETURN_IF_ERROR(env_->create_dirs(topics_dir()));
  SLUICE_RETURN_IF_ERROR(env_->create_dirs(groups_dir()));
  flusher_ = std::thread([this] { flusher_loop(); });
  return {};
}

Status LogQueue::load_topic_locked(const std::string& name, Topic** out) {
  std::string meta = topics_dir() + "/" + name + "/topic.json";
  if (!env_->exists(meta)) {
    return Status::not_found("topic '" + name + "' does not exist (create it with `sluice topics create " +
                             name + " --partitions N`)");
  }
  SLUICE_ASSIGN_OR_RETURN(std::string text, env_->read_file(meta));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("partitions") ||
      !j["partitions"].is_number_integer()) {
    return Status::corruption("topic metadata '" + meta + "' is damaged");
  }
  auto t = std::make_unique<Topic>();
  t->name = name;
  t->config.partitions = j["partitions"].get<int32_t>();
  t->config.retention_ms = j.value("retention_ms", int64_t{-1});
  t->config.retention_bytes = j.value("retention_bytes", int64_t{-1});
  if (t->config.partitions < 1 || t->config.partitions > kMaxPartitions) {
    return Status::corruption("topic metadata '" + meta + "' has an invalid partition count");
  }
  t->logs.resize(static_cast<size_t>(t->config.partitions));
  for (int32_t p = 0; p < t->config.partitions; ++p) {
    auto b = std::make_unique<PartitionBuffer>();
    b->topic = name;
    b->partition = PartitionId(p);
    t->buffers.push_back(std::move(b));
  }
  *out = t.get();
  topics_[name] = std::move(t);
  return {};
}

Result<Topic*> LogQueue::find_topic(std::string_view name, bool may_create) {
  {
    std::lock_guard<std::mutex> l(topics_mu_);
    auto it = topics_.find(name);
    if (it != topics_.end()) return it->second.get();
  }
  SLUICE_RETURN_IF_ERROR(validate_topic_name(name));
  std::string n(name);
  if (may_create && !env_->exists(topics_dir() + "/" + n + "/topic.json")) {
    TopicConfig cfg;
    cfg.partitions = opts_.default_partitions;
    Status st = create_topic(n, cfg);
    if (!st.is_ok() && st.code() != Code::kAlreadyExists) return st;
  }
  std::lock_guard<std::mutex> l(topics_mu_);
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second.get();
  Topic* t = nullptr;
  SLUICE_RETURN_IF_ERROR(load_topic_locked(n, &t));
  return t;
}

Result<PartitionLog*> LogQueue::open_partition(Topic* t, PartitionId p) {
  if (p.value() < 0 || p.value() >= t->config.partitions) {
    return Status::invalid_argument("partition " + std::to_string(p.value()) +
                                    " is out of range for topic '" + t->name + "'");
  }
  std::lock_guard<std::mutex> l(t->mu);
  auto& slot = t->logs[static_cast<size_t>(p.value())];
  if (!slot) {
    SLUICE_ASSIGN_OR_RETURN(
        slot, PartitionLog::open(env_, opts_, topics_dir() + "/" + t->name + "/" + std::to_string(p.value()),
                                 t->name, p));
  }
  return slot.get();
}

Result<PartitionBuffer*> LogQueue::buffer(Topic* t, PartitionId p) {
  PartitionBuffer* b = t->buffers[static_cast<size_t>(p.value())].get();
  if (!b->log) {
    SLUICE_ASSIGN_OR_RETURN(PartitionLog * lg, open_partition(t, p));
    std::lock_guard<std::mutex> l(b->mu);
    b->log = lg;
  }
  return b;
}

void LogQueue::mark_dirty(PartitionBuffer* b) {
  std::lock_guard<std::mutex> l(dirty_mu_);
  dirty_.push_back(b);
  dirty_cv_.notify_one();
}

void LogQueue::wait_for_data(int64_t deadline_ns) {
  uint64_t seq = data_seq_.load(std::memory_order_acquire);
  std::unique_lock<std::mutex> l(data_mu_);
  int64_t now = env_->monotonic_ns();
  if (deadline_ns <= now) return;
  data_cv_.wait_for(l, std::chrono::nanoseconds(deadline_ns - now),
                    [&] { return data_seq_.load(std::memory_order_acquire) != seq; });
}

void LogQueue::flusher_loop() {
  std::vector<PartitionBuffer*> work;
  std::vector<std::unique_ptr<PendingBatch>> batches;
  std::vector<BatchBuilder*> builders;
  std::vector<int64_t> bases;
  int64_t last_retention = env_->monotonic_ns();
  int64_t last_sync = last_retention;
  for (;;) {
    {
      std::unique_lock<std::mutex> l(dirty_mu_);
      dirty_cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stopping_ || !dirty_.empty(); });
      if (dirty_.empty() && stopping_) break;
      work.swap(dirty_);
    }
    for (PartitionBuffer* pb : work) {
      {
        std::lock_guard<std::mutex> l(pb->mu);
        batches.swap(pb->batches);
        pb->queued.store(false, std::memory_order_release);
      }
      if (batches.empty()) continue;
      builders.clear();
      for (auto& b : batches) builders.push_back(&b->builder);
      Status st = pb->log->append(builders, &bases);
      for (size_t i = 0; i < batches.size(); ++i) {
        const int64_t base = st.is_ok() ? bases[i] : -1;
        const auto& ds = batches[i]->deliveries;
        for (size_t k = 0; k < ds.size(); ++k) {
          ds[k].producer->delivered(ds[k], st, pb->topic, pb->partition,
                                    Offset(base >= 0 ? base + static_cast<int64_t>(k) : -1));
        }
      }
      if (!st.is_ok())
        sluice::log::error("log append failed", {{"partition", pb->log->dir()}, {"error", st.to_string()}});
      batches.clear();
    }
    if (!work.empty()) {
      data_seq_.fetch_add(1, std::memory_order_acq_rel);
      std::lock_guard<std::mutex> l(data_mu_);
      data_cv_.notify_all();
    }
    work.clear();
    int64_t now = env_->monotonic_ns();
    if (opts_.fsync == FsyncMode::kInterval && now - last_sync >= opts_.fsync_interval_ms * 1'000'000) {
      last_sync = now;
      std::lock_guard<std::mutex> l(topics_mu_);
      for (auto& [name, t] : topics_)
        for (auto& lg : t->logs)
          if (lg) (void)lg->sync();
    }
    if (now - last_retention >= opts_.retention_check_ms * 1'000'000) {
      last_retention = now;
      retention_pass();
    }
  }
}

void LogQueue::retention_pass() {
  // Every known group: its committed offsets, and the topics it reads (committed or subscribed).
  struct Known {
    OffsetMap committed;
    std::set<std::string> topics;
  };
  std::vector<Known> known;
  auto groups = list_groups();
  if (groups.is_ok()) {
    for (const auto& g : *groups) {
      Known k;
      const std::string dir = groups_dir() + "/" + g;
      if (!read_offsets_file(env_, dir, &k.committed).is_ok()) continue;
      k.topics = read_members_file(env_, dir).topics;
      for (const auto& [tp, off] : k.committed) k.topics.insert(tp.first);
      known.push_back(std::move(k));
    }
  }
  std::vector<Topic*> ts;
  {
    std::lock_guard<std::mutex> l(topics_mu_);
    for (auto& [n, t] : topics_) ts.push_back(t.get());
  }
  for (Topic* t : ts) {
    if (t->config.retention_ms < 0 && t->config.retention_bytes < 0) continue;
    for (int32_t p = 0; p < t->config.partitions; ++p) {
      auto lg = open_partition(t, PartitionId(p));
      if (!lg.is_ok()) continue;
      // Segments go only once every group that reads this topic is past them.
      int64_t min_committed = INT64_MAX;
      for (const auto& k : known) {
        if (!k.topics.count(t->name)) continue;
        auto it = k.committed.find({t->name, p});
        min_committed = std::min(min_committed, it == k.committed.end() ? int64_t{0} : it->second);
      }
      auto r = (*lg)->enforce_retention(t->config.retention_ms, t->config.retention_bytes, min_committed);
      if (!r.is_ok()) sluice::log::error("retention failed", {{"error", r.status().to_string()}});
    }
  }
}

Result<std::shared_ptr<GroupCoordinator>> LogQueue::coordinator(const std::string& group, bool ephemeral) {
  std::lock_guard<std::mutex> l(groups_mu_);
  auto& w = groups_[group];
  if (auto sp = w.lock()) {
    if (sp->ephemeral() != ephemeral) {
      return Status::invalid_argument("group '" + group + "' is already in use " +
                                      (ephemeral ? "as a stored group" : "as an ephemeral group"));
    }
    return sp;
  }
  auto sp = std::make_shared<GroupCoordinator>(env_, this, groups_dir() + "/" + group, group, ephemeral);
  w = sp;
  return sp;
}

void LogQueue::release_coordinator(const std::string& group) {
  std::lock_guard<std::mutex> l(groups_mu_);
  auto it = groups_.find(group);
  if (it != groups_.end() && it->second.expired()) groups_.erase(it);
}

Result<std::unique_ptr<Producer>> LogQueue::make_producer(ProducerOptions opts) {
  return std::unique_ptr<Producer>(new LogProducer(this, std::move(opts)));
}

Result<std::unique_ptr<Consumer>> LogQueue::make_consumer(ConsumerOptions opts) {
  if (opts.group.empty()) return Status::invalid_argument("a consumer needs a group name");
  SLUICE_RETURN_IF_ERROR(validate_group_name(opts.group));
  if (opts.topics.empty()) return Status::invalid_argument("a consumer needs at least one topic");
  for (const auto& t : opts.topics) SLUICE_RETURN_IF_ERROR(find_topic(t, opts_.auto_create_topics).status());
  SLUICE_ASSIGN_OR_RETURN(auto coord, coordinator(opts.group, opts.ephemeral));
  if (opts.member_name.empty()) opts.member_name = default_member_name();
  auto c = std::make_unique<LogConsumer>(this, opts, coord);
  SLUICE_RETURN_IF_ERROR(coord->join(c.get(), opts.member_name, opts.topics, opts.start_from));
  return std::unique_ptr<Consumer>(std::move(c));
}

// ---------------------------------------------------------------------------------------------
// Admin

Status LogQueue::create_topic(std::string_view name, const TopicConfig& cfg) {
  SLUICE_RETURN_IF_ERROR(validate_topic_name(name));
  if (cfg.partitions < 1 || cfg.partitions > kMaxPartitions) {
    return Status::invalid_argument("topic '" + std::string(name) + "': partition count " +
                                    std::to_string(cfg.partitions) + " is outside 1.." +
                                    std::to_string(kMaxPartitions));
  }
  const std::string dir = topics_dir() + "/" + std::string(name);
  const std::string meta = dir + "/topic.json";
  auto existing = [&]() -> Status {
    auto t = find_topic(name, false);
    if (!t.is_ok()) return t.status();
    if ((*t)->config.partitions != cfg.partitions) {
      return Status::already_exists("topic '" + std::string(name) + "' already exists with " +
                                    std::to_string((*t)->config.partitions) + " partitions (asked for " +
                                    std::to_string(cfg.partitions) + ")");
    }
    return {};
  };
  if (env_->exists(meta)) return existing();
  // Build the topic in a temporary directory and rename it into place: no half topics.
  // A short temporary name: a 249-character topic name plus a suffix would pass NAME_MAX.
  static std::atomic<uint64_t> tmp_counter{0};
  std::string tmp =
      topics_dir() + "/.tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++tmp_counter);
  SLUICE_RETURN_IF_ERROR(env_->create_dirs(tmp));
  SLUICE_RETURN_IF_ERROR(env_->write_file_atomic(tmp + "/topic.json", topic_json(cfg, env_->now_ms())));
  Status st = env_->rename(tmp, dir);
  if (!st.is_ok()) {
    (void)env_->remove_file(tmp + "/topic.json");
    ::rmdir(tmp.c_str());
    if (env_->exists(meta)) return existing();  // another process created it first
    return st;
  }
  return env_->sync_dir(topics_dir());
}

Result<std::vector<TopicInfo>> LogQueue::list_topics() {
  SLUICE_ASSIGN_OR_RETURN(auto names, env_->list_dir(topics_dir()));
  std::sort(names.begin(), names.end());
  std::vector<TopicInfo> out;
  for (const auto& n : names) {
    if (n.starts_with(".")) continue;
    auto info = describe_topic(n);
    if (info.is_ok()) out.push_back(std::move(info).value());
  }
  return out;
}

Result<TopicInfo> LogQueue::describe_topic(std::string_view name) {
  SLUICE_ASSIGN_OR_RETURN(Topic * t, find_topic(name, false));
  TopicInfo info;
  info.name = t->name;
  info.partitions = t->config.partitions;
  for (int32_t p = 0; p < t->config.partitions; ++p) {
    SLUICE_ASSIGN_OR_RETURN(PartitionLog * lg, open_partition(t, PartitionId(p)));
    info.partition_info.push_back({PartitionId(p), Offset(lg->start_offset()), Offset(lg->end_offset())});
  }
  return info;
}

Result<std::vector<std::string>> LogQueue::list_groups() {
  SLUICE_ASSIGN_OR_RETURN(auto names, env_->list_dir(groups_dir()));
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (auto& n : names)
    if (env_->exists(groups_dir() + "/" + n + "/offsets") ||
        env_->exists(groups_dir() + "/" + n + "/members.json"))
      out.push_back(n);
  return out;
}

Result<GroupInfo> LogQueue::describe_group(std::string_view group) {
  SLUICE_RETURN_IF_ERROR(validate_group_name(group));
  const std::string dir = groups_dir() + "/" + std::string(group);
  if (!env_->exists(dir)) return Status::not_found("group '" + std::string(group) + "' does not exist");
  GroupInfo info;
  info.group = std::string(group);
  OffsetMap committed;
  SLUICE_RETURN_IF_ERROR(read_offsets_file(env_, dir, &committed));
  // Active when someone holds the group lock (this instance or another process).
  bool active = false;
  {
    std::lock_guard<std::mutex> l(groups_mu_);
    auto it = groups_.find(std::string(group));
    if (it != groups_.end())
      if (auto c = it->second.lock()) active = c->serving();
  }
  if (!active && env_->exists(dir + "/lock")) {
    auto f = env_->open(dir + "/lock", {});
    if (f.is_ok()) {
      Status st = (*f)->lock(false);
      if (st.code() == Code::kBusy)
        active = true;
      else if (st.is_ok())
        (void)(*f)->unlock();
    }
  }
  info.state = active ? "active" : "empty";
  MembersFile members;
  if (active) members = read_members_file(env_, dir);
  info.members = members.names;
  std::set<std::string> topics = members.topics;
  for (const auto& [tp, off] : committed) topics.insert(tp.first);
  for (const auto& t : topics) {
    auto topic = find_topic(t, false);
    if (!topic.is_ok()) continue;
    for (int32_t p = 0; p < (*topic)->config.partitions; ++p) {
      SLUICE_ASSIGN_OR_RETURN(PartitionLog * lg, open_partition(*topic, PartitionId(p)));
      GroupPartition gp;
      gp.topic = t;
      gp.partition = PartitionId(p);
      gp.end = Offset(lg->end_offset());
      auto it = committed.find({t, p});
      if (it != committed.end()) gp.committed = Offset(it->second);
      int64_t from = gp.committed ? gp.committed->value() : lg->start_offset();
      gp.lag = std::max<int64_t>(0, gp.end.value() - from);
      auto o = members.owners.find({t, p});
      if (o != members.owners.end()) gp.member = o->second;
      info.partitions.push_back(std::move(gp));
    }
  }
  return info;
}

Result<std::vector<PartitionOffset>> LogQueue::reset_offsets(std::string_view group, std::string_view topic,
                                                             const ResetSpec& spec,
                                                             std::optional<PartitionId> partition) {
  SLUICE_RETURN_IF_ERROR(validate_group_name(group));
  SLUICE_ASSIGN_OR_RETURN(Topic * t, find_topic(topic, false));
  if (partition && (partition->value() < 0 || partition->value() >= t->config.partitions)) {
    return Status::invalid_argument("partition " + std::to_string(partition->value()) +
                                    " is out of range for topic '" + t->name + "'");
  }
  const std::string dir = groups_dir() + "/" + std::string(group);
  SLUICE_RETURN_IF_ERROR(env_->create_dirs(dir));
  SLUICE_ASSIGN_OR_RETURN(auto lock, env_->open(dir + "/lock", {.create = true}));
  Status st = lock->lock(false);
  {
    std::lock_guard<std::mutex> l(groups_mu_);
    auto it = groups_.find(std::string(group));
    if (it != groups_.end() && !it->second.expired()) st = Status::busy("in this process");
  }
  if (st.code() == Code::kBusy) {
    return Status::busy("group '" + std::string(group) +
                        "' has active consumers; stop them before moving its offsets");
  }
  SLUICE_RETURN_IF_ERROR(st);
  struct Unlock {
    File* f;
    ~Unlock() { (void)f->unlock(); }
  } unlock{lock.get()};
  OffsetMap committed;
  SLUICE_RETURN_IF_ERROR(read_offsets_file(env_, dir, &committed));
  std::vector<PartitionOffset> out;
  for (int32_t p = 0; p < t->config.partitions; ++p) {
    if (partition && partition->value() != p) continue;
    SLUICE_ASSIGN_OR_RETURN(PartitionLog * lg, open_partition(t, PartitionId(p)));
    int64_t off = 0;
    switch (spec.kind) {
      case ResetSpec::Kind::kEarliest: off = lg->start_offset(); break;
      case ResetSpec::Kind::kLatest: off = lg->end_offset(); break;
      case ResetSpec::Kind::kTimestamp: {
        SLUICE_ASSIGN_OR_RETURN(off, lg->offset_for_timestamp(spec.value));
        break;
      }
      case ResetSpec::Kind::kOffset:
        off = std::clamp<int64_t>(spec.value, lg->start_offset(), lg->end_offset());
        break;
    }
    committed[{t->name, p}] = off;
    out.push_back({PartitionId(p), Offset(off)});
  }
  SLUICE_RETURN_IF_ERROR(env_->write_file_atomic(dir + "/offsets", encode_offsets(committed)));
  return out;
}

// ---------------------------------------------------------------------------------------------

namespace {

// The log backend's settings: the one list, used for parsing, errors and docs/CONFIGURATION.md.
constexpr config::Property kLogProperties[] = {
    {"fsync", config::Kind::kEnum, "batch",
     "When a send is acknowledged: `batch` fsyncs every written batch first (group commit; survives "
     "power loss), `interval` acknowledges after the write and fsyncs every `fsync_interval_ms`, "
     "`never` leaves flushing to the OS (survives a crash of sluice, not of the machine)",
     "batch|interval|never"},
    {"fsync_interval_ms", config::Kind::kMillis, "1000", "fsync period in `interval` mode", {}, 1, 3'600'000},
    {"compression", config::Kind::kEnum, "none", "Compression of each written batch", "none|lz4|zstd"},
    {"segment_bytes",
     config::Kind::kSize,
     "64MiB",
     "Roll to a new segment file past this size",
     {},
     1024,
     static_cast<int64_t>(kMaxSegmentBytes)},
    {"max_message_bytes",
     config::Kind::kSize,
     "8MiB",
     "Largest message (key + value + headers); larger sends fail with `too_large`",
     {},
     1,
     1ll << 30},
    {"max_batch_bytes",
     config::Kind::kSize,
     "1MiB",
     "Largest batch the writer builds from queued sends",
     {},
     1024,
     1ll << 30},
    {"index_interval_bytes",
     config::Kind::kSize,
     "4096",
     "Bytes of log between two sparse index entries",
     {},
     1,
     1ll << 30},
    {"auto_create", config::Kind::kBool, "false",
     "Create unknown topics on first use instead of refusing them"},
    {"partitions",
     config::Kind::kInt,
     "1",
     "Partitions of topics made by `auto_create`",
     {},
     1,
     kMaxPartitions},
    {"retention_check_ms",
     config::Kind::kMillis,
     "30000",
     "How often retention looks for segments to delete",
     {},
     1,
     86'400'000},
};

}  // namespace

std::span<const config::Property> log_properties() {
  return kLogProperties;
}

Result<LogOptions> parse_log_uri(std::string_view uri) {
  LogOptions o;
  std::string_view rest = uri;
  if (rest.starts_with("log://")) {
    rest.remove_prefix(6);
  } else if (rest.starts_with("log:")) {
    rest.remove_prefix(4);
  }
  auto q = rest.find('?');
  o.dir = std::string(rest.substr(0, q));
  while (o.dir.size() > 1 && o.dir.back() == '/') o.dir.pop_back();
  if (o.dir.empty())
    return Status::invalid_argument("log queue URI '" + std::string(uri) + "' names no directory");
  std::string_view query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  const auto table = log_properties();
  SLUICE_ASSIGN_OR_RETURN(config::Values v, config::parse_query(query, table, "log queue"));
  SLUICE_ASSIGN_OR_RETURN(std::string fsync, config::get_string(v, table, "fsync"));
  o.fsync = fsync == "batch"      ? FsyncMode::kBatch
            : fsync == "interval" ? FsyncMode::kInterval
                                  : FsyncMode::kNever;
  SLUICE_ASSIGN_OR_RETURN(std::string comp, config::get_string(v, table, "compression"));
  o.compression = comp == "lz4" ? kLz4 : comp == "zstd" ? kZstd : kNone;
  SLUICE_ASSIGN_OR_RETURN(o.fsync_interval_ms, config::get_int(v, table, "fsync_interval_ms"));
  SLUICE_ASSIGN_OR_RETURN(int64_t seg, config::get_int(v, table, "segment_bytes"));
  SLUICE_ASSIGN_OR_RETURN(int64_t max_msg, config::get_int(v, table, "max_message_bytes"));
  SLUICE_ASSIGN_OR_RETURN(int64_t max_batch, config::get_int(v, table, "max_batch_bytes"));
  SLUICE_ASSIGN_OR_RETURN(int64_t index_interval, config::get_int(v, table, "index_interval_bytes"));
  SLUICE_ASSIGN_OR_RETURN(int64_t parts, config::get_int(v, table, "partitions"));
  SLUICE_ASSIGN_OR_RETURN(o.auto_create_topics, config::get_bool(v, table, "auto_create"));
  SLUICE_ASSIGN_OR_RETURN(o.retention_check_ms, config::get_int(v, table, "retention_check_ms"));
  o.segment_bytes = static_cast<uint64_t>(seg);
  o.max_message_bytes = static_cast<uint64_t>(max_msg);
  o.max_batch_bytes = static_cast<uint64_t>(max_batch);
  o.index_interval_bytes = static_cast<uint32_t>(index_interval);
  o.default_partitions = static_cast<int32_t>(parts);
  return o;
}

Result<std::unique_ptr<Queue>> open_log_queue(const LogOptions& opts) {
  auto q = std::make_unique<LogQueue>(opts);
  SLUICE_RETURN_IF_ERROR(q->open());
  return std::unique_ptr<Queue>(std::move(q));
}

}  // namespace sluice::queue::log
