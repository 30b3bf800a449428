#include "queue/log/group.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "base/crc32c.h"
#include "base/log.h"
#include "queue/log/log_format.h"
#include "queue/log/partition.h"

namespace sluice::queue::log {
namespace {
constexpr int64_t kStandbyRetryNs = 50'000'000;  // a standby tries the group lock every 50 ms
std::atomic<uint64_t> g_next_coordinator_id{1};
}  // namespace

std::string encode_offsets(const OffsetMap& offsets) {
  std::string out(12, '\0');
  put_u32(out.data(), kOffsetsMagic);
  put_u32(out.data() + 4, kFormatVersion);
  put_u32(out.data() + 8, static_cast<uint32_t>(offsets.size()));
  for (const auto& [tp, off] : offsets) {
    char b[14];
    put_u16(b, static_cast<uint16_t>(tp.first.size()));
    out.append(b, 2);
    out += tp.first;
    put_u32(b, static_cast<uint32_t>(tp.second));
    put_u64(b + 4, static_cast<uint64_t>(off));
    out.append(b, 12);
  }
  char c[4];
  put_u32(c, crc32c::value(out.data(), out.size()));
  out.append(c, 4);
  return out;
}

Status decode_offsets(std::string_view d, const std::string& path, OffsetMap* out) {
  auto bad = [&](std::string_view why) {
    return Status::corruption("group offsets file '" + path + "' is damaged: " + std::string(why));
  };
  if (d.size() < 16) return bad("too short");
  if (get_u32(d.data()) != kOffsetsMagic) return bad("bad magic");
  if (get_u32(d.data() + 4) != kFormatVersion) return bad("unknown version");
  if (get_u32(d.data() + d.size() - 4) != crc32c::value(d.data(), d.size() - 4)) return bad("CRC mismatch");
  uint32_t n = get_u32(d.data() + 8);
  size_t p = 12;
  for (uint32_t i = 0; i < n; ++i) {
    if (p + 2 > d.size() - 4) return bad("truncated entry");
    uint16_t tl = get_u16(d.data() + p);
    p += 2;
    if (p + tl + 12 > d.size() - 4) return bad("truncated entry");
    std::string topic(d.substr(p, tl));
    p += tl;
    auto part = static_cast<int32_t>(get_u32(d.data() + p));
    auto off = static_cast<int64_t>(get_u64(d.data() + p + 4));
    p += 12;
    (*out)[{topic, part}] = off;
  }
  return {};
}

Status read_offsets_file(Env* env, const std::string& group_dir, OffsetMap* out) {
  const std::string path = group_dir + "/offsets";
  if (!env->exists(path)) return {};
  SLUICE_ASSIGN_OR_RETURN(std::string data, env->read_file(path));
  return decode_offsets(data, path, out);
}

MembersFile read_members_file(Env* env, const std::string& group_dir) {
  MembersFile out;
  auto text = env->read_file(group_dir + "/members.json");
  if (!text.is_ok()) return out;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("members") || !j["members"].is_array()) return out;
  for (const auto& m : j["members"]) {
    if (!m.is_object()) continue;
    auto name = m.value("name", nlohmann::json());
    const std::string member = name.is_string() ? name.get<std::string>() : "";
    out.names.push_back(member);
    for (const auto& t : m.value("topics", nlohmann::json::array()))
      if (t.is_string()) out.topics.insert(t.get<std::string>());
    for (const auto& p : m.value("partitions", nlohmann::json::array())) {
      if (!p.is_string()) continue;
      const std::string s = p.get<std::string>();
      auto slash = s.rfind('/');
      if (slash == std::string::npos) continue;
      int32_t part = 0;
      auto [ptr, ec] = std::from_chars(s.data() + slash + 1, s.data() + s.size(), part);
      if (ec == std::errc() && ptr == s.data() + s.size()) out.owners[{s.substr(0, slash), part}] = member;
    }
  }
  return out;
}

GroupCoordinator::GroupCoordinator(Env* env, GroupHost* host, std::string dir, std::string group,
                                   bool ephemeral)
    : env_(env),
      host_(host),
      dir_(std::move(dir)),
      group_(std::move(group)),
      id_(g_next_coordinator_id++),
      ephemeral_(ephemeral) {}

GroupCoordinator::~GroupCoordinator() {
  std::lock_guard<std::mutex> l(mu_);
  if (serving_ && !ephemeral_) {
    (void)write_offsets_locked();
    (void)lock_file_->unlock();
  }
}

Status GroupCoordinator::join(const void* member, std::string name, const std::vector<std::string>& topics,
                              StartFrom start_from) {
  std::lock_guard<std::mutex> l(mu_);
  if (ephemeral_) {
    members_.push_back({member, std::move(name), topics, start_from});
    serving_ = true;
    rebalance_locked();
    return {};
  }
  if (!lock_file_) {
    SLUICE_RETURN_IF_ERROR(env_->create_dirs(dir_));
    SLUICE_ASSIGN_OR_RETURN(lock_file_, env_->open(dir_ + "/lock", {.create = true}));
  }
  members_.push_back({member, std::move(name), topics, start_from});
  if (!serving_) {
    last_try_ns_ = 0;
  } else {
    rebalance_locked();
  }
  return {};
}

Status GroupCoordinator::try_serve() {
  if (serving_.load(std::memory_order_acquire)) return {};
  std::lock_guard<std::mutex> l(mu_);
  if (serving_) return {};
  int64_t now = env_->monotonic_ns();
  if (last_try_ns_ != 0 && now - last_try_ns_ < kStandbyRetryNs) return {};
  last_try_ns_ = now;
  Status st = lock_file_->lock(false);
  if (st.code() == Code::kBusy) return {};  // another process serves the group: stay standby
  SLUICE_RETURN_IF_ERROR(st);
  st = load_offsets_locked();
  if (!st.is_ok()) {
    (void)lock_file_->unlock();
    return st;
  }
  serving_.store(true, std::memory_order_release);
  rebalance_locked();
  return {};
}

Status GroupCoordinator::load_offsets_locked() {
  loaded_.clear();
  return read_offsets_file(env_, dir_, &loaded_);
}

void GroupCoordinator::leave(const void* member) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = std::find_if(members_.begin(), members_.end(), [&](const Member& m) { return m.id == member; });
  if (it == members_.end()) return;
  members_.erase(it);
  if (ephemeral_) {
    rebalance_locked();
    return;
  }
  if (!serving_) return;
  Status st = write_offsets_locked();
  if (!st.is_ok()) sluice::log::error("group commit failed", {{"group", group_}, {"error", st.to_string()}});
  rebalance_locked();
  if (members_.empty()) {
    (void)env_->remove_file(dir_ + "/members.json");
    (void)lock_file_->unlock();
    serving_ = false;
  }
}

void GroupCoordinator::rebalance_locked() {
  // Round-robin over the members subscribed to each topic, in join order.
  std::map<std::pair<std::string, int32_t>, const void*> owners;
  std::map<std::string, std::vector<const Member*>> subs;
  for (const auto& m : members_)
    for (const auto& t : m.topics) subs[t].push_back(&m);
  for (const auto& [topic, ms] : subs) {
    auto n = host_->partition_count(topic);
    if (!n.is_ok()) continue;
    for (int32_t p = 0; p < *n; ++p) owners[{topic, p}] = ms[static_cast<size_t>(p) % ms.size()]->id;
  }
  for (const auto& [tp, owner] : owners) {
    auto it = by_tp_.find(tp);
    if (it == by_tp_.end()) {
      auto log = host_->partition_log(tp.first, PartitionId(tp.second));
      if (!log.is_ok()) {
        sluice::log::error("group cannot open partition", {{"group", group_},
                                                           {"topic", tp.first},
                                                           {"partition", tp.second},
                                                           {"error", log.status().to_string()}});
        continue;
      }
      auto pp = std::make_unique<PartitionProgress>();
      pp->topic = tp.first;
      pp->partition = PartitionId(tp.second);
      pp->log = *log;
      auto li = loaded_.find(tp);
      pp->committed = li == loaded_.end() ? -1 : li->second;
      it = by_tp_.emplace(tp, progress_.size()).first;
      progress_.push_back(std::move(pp));
    }
    PartitionProgress& pp = *progress_[it->second];
    if (pp.owner == owner) continue;
    std::lock_guard<std::mutex> pl(pp.mu);
    if (!pp.initialized) {
      int64_t start;
      if (pp.committed >= 0) {
        start = pp.committed;
      } else {
        const Member* m = nullptr;
        for (const auto& mm : members_)
          if (mm.id == owner) m = &mm;
        start = (m && m->start_from == StartFrom::kLatest) ? pp.log->end_offset() : pp.log->start_offset();
      }
      pp.tracker.reset(start);
      pp.initialized = true;
    } else {
      // Messages the old owner did not ack are delivered again, from the acked prefix on.
      pp.tracker.reset(pp.tracker.base());
    }
    pp.delivered_end.store(pp.tracker.base());
    pp.owner = owner;
    ++pp.epoch;
  }
  for (auto& pp : progress_) {
    if (!owners.count({pp->topic, pp->partition.value()}) && pp->owner) {
      std::lock_guard<std::mutex> pl(pp->mu);
      pp->owner = nullptr;
      pp->tracker.reset(pp->tracker.base());
      ++pp->epoch;
    }
  }
  version_.fetch_add(1, std::memory_order_acq_rel);
  Status st = write_members_locked();
  if (!st.is_ok()) sluice::log::warn("cannot write group members file", {{"error", st.to_string()}});
}

Status GroupCoordinator::write_members_locked() {
  if (members_.empty() || ephemeral_) return {};
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  nlohmann::json j = {{"pid", ::getpid()}, {"host", host}, {"members", nlohmann::json::array()}};
  for (const auto& m : members_) {
    nlohmann::json parts = nlohmann::json::array();
    for (const auto& pp : progress_)
      if (pp->owner == m.id) parts.push_back(pp->topic + "/" + std::to_string(pp->partition.value()));
    j["members"].push_back({{"name", m.name}, {"topics", m.topics}, {"partitions", parts}});
  }
  return env_->write_file_atomic(dir_ + "/members.json", j.dump());
}

std::vector<size_t> GroupCoordinator::assigned(const void* member) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<size_t> out;
  if (!serving_) return out;
  for (size_t i = 0; i < progress_.size(); ++i)
    if (progress_[i]->owner == member) out.push_back(i);
  return out;
}

PartitionProgress* GroupCoordinator::progress(size_t index) {
  std::lock_guard<std::mutex> l(mu_);
  return index < progress_.size() ? progress_[index].get() : nullptr;
}

Status GroupCoordinator::commit() {
  std::lock_guard<std::mutex> l(mu_);
  if (!serving_) return {};
  return write_offsets_locked();
}

Status GroupCoordinator::write_offsets_locked() {
  if (ephemeral_) return {};
  bool changed = false;
  for (auto& pp : progress_) {
    int64_t point;
    {
      std::lock_guard<std::mutex> pl(pp->mu);
      if (!pp->initialized) continue;
      point = pp->tracker.base();
    }
    if (point != pp->committed) {
      loaded_[{pp->topic, pp->partition.value()}] = point;
      changed = true;
    }
  }
  if (!changed) return {};
  SLUICE_RETURN_IF_ERROR(env_->write_file_atomic(dir_ + "/offsets", encode_offsets(loaded_)));
  for (auto& pp : progress_) {
    auto it = loaded_.find({pp->topic, pp->partition.value()});
    if (it != loaded_.end()) pp->committed = it->second;
  }
  return {};
}

}  // namespace sluice::queue::log
