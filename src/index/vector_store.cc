// hnswlib behind a Status boundary (see vector_store.h). Every call into hnswlib is wrapped in
// try/catch: it throws std::runtime_error for full graphs, unknown labels and corrupt files,
// and std::bad_alloc when memory runs out. Thread-safety: as in vector_store.h.
#include "index/vector_store.h"

#include <fcntl.h>
// hnswlib's SSE paths prefetch one link past the end of a full neighbour list, a heap read out of
// bounds that AddressSanitizer reports (hnswlib 0.7); without them nothing is lost, since the
// distance kernel is our own (DispatchedIpSpace below).
#define NO_MANUAL_VECTORIZATION
#include <hnswlib/hnswlib.h>
#include <immintrin.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <thread>

#include "base/env.h"
#include "base/path.h"

namespace sluice::index {
namespace {

// Graph parameters: M=16 is hnswlib's recommended default; ef_construction=100 keeps the build of
// 100k vectors in seconds per core at a recall that the search-time ef (>= 64) tops up.
constexpr size_t kM = 16;
constexpr size_t kEfConstruction = 100;
constexpr size_t kRandomSeed = 100;
// Below this, a batch is inserted on the calling thread: starting threads costs more.
constexpr size_t kParallelAddMin = 512;

Status exception_status(std::string_view what, const std::exception& e) {
  return Status::internal("hnswlib: " + std::string(what) + ": " + e.what());
}

// Inner-product distance (1 - dot) with the widest SIMD the CPU has, chosen at run time. hnswlib's
// own space picks its kernel at compile time, which for a build that must run on any x86-64 means
// SSE; most of the time of building the graph is spent here, and AVX2/AVX-512 halve it.
float ip_scalar(const void* a, const void* b, const void* dim_ptr) {
  const auto* x = static_cast<const float*>(a);
  const auto* y = static_cast<const float*>(b);
  const size_t n = *static_cast<const size_t*>(dim_ptr);
  float s = 0;
  for (size_t i = 0; i < n; ++i) s += x[i] * y[i];
  return 1.0f - s;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float ip_avx2(const void* a, const void* b, const void* dim_ptr) {
  const auto* x = static_cast<const float*>(a);
  const auto* y = static_cast<const float*>(b);
  const size_t n = *static_cast<const size_t*>(dim_ptr);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
  }
  acc0 = _mm256_add_ps(acc0, acc1);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc0);
  float s = lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
  for (; i < n; ++i) s += x[i] * y[i];
  return 1.0f - s;
}
#endif

class DispatchedIpSpace : public hnswlib::SpaceInterface<float> {
 public:
  explicit DispatchedIpSpace(size_t dim) : dim_(dim) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) fn_ = ip_avx2;
#endif
  }
  size_t get_data_size() override {
    return dim_ * sizeof(float);
  }
  hnswlib::DISTFUNC<float> get_dist_func() override {
    return fn_;
  }
  void* get_dist_func_param() override {
    return &dim_;
  }

 private:
  size_t dim_;
  hnswlib::DISTFUNC<float> fn_ = ip_scalar;
};

}  // namespace

struct VectorStore::Impl {
  explicit Impl(size_t dim) : space(dim) {}
  DispatchedIpSpace space;  // must outlive the graph, which keeps a pointer into it
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
};

VectorStore::VectorStore(size_t dimension, std::unique_ptr<Impl> impl)
    : dimension_(dimension), impl_(std::move(impl)) {}

VectorStore::~VectorStore() = default;

Result<std::unique_ptr<VectorStore>> VectorStore::create(size_t dimension, size_t capacity) {
  try {
    auto impl = std::make_unique<Impl>(dimension);
    impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        &impl->space, std::max<size_t>(capacity, 16), kM, kEfConstruction, kRandomSeed);
    impl->graph->setEf(kMinEf);
    return std::unique_ptr<VectorStore>(new VectorStore(dimension, std::move(impl)));
  } catch (const std::bad_alloc&) {
    return Status::resource_limit("hnswlib: out of memory creating a graph for " + std::to_string(capacity) +
                                  " vectors");
  } catch (const std::exception& e) {
    return exception_status("create", e);
  }
}

Result<std::unique_ptr<VectorStore>> VectorStore::load(const std::string& path, size_t dimension) {
  if (!std::filesystem::exists(path)) return Status::not_found("vector file " + path + " does not exist");
  try {
    auto impl = std::make_unique<Impl>(dimension);
    impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(&impl->space, path);
    // hnswlib does not record the dimension; check that the element size agrees with ours.
    if (impl->graph->data_size_ != impl->space.get_data_size()) {
      return Status::corruption("vector file " + path + " holds vectors of another dimension");
    }
    // hnswlib 0.7's loading constructor never initialises num_deleted_ (it only adds to it), so
    // the count of deleted elements is recounted here (AddressSanitizer's poisoned heap showed it).
    auto& g = *impl->graph;
    size_t deleted = 0;
    for (hnswlib::tableint i = 0; i < g.cur_element_count; ++i) deleted += g.isMarkedDeleted(i) ? 1 : 0;
    g.num_deleted_ = deleted;
    impl->graph->setEf(kMinEf);
    return std::unique_ptr<VectorStore>(new VectorStore(dimension, std::move(impl)));
  } catch (const std::bad_alloc&) {
    return Status::resource_limit("hnswlib: out of memory loading " + path);
  } catch (const std::exception& e) {
    return Status::corruption("hnswlib: cannot load " + path + ": " + e.what());
  }
}

Status VectorStore::add(std::span<const int64_t> labels, std::span<const float> vectors) {
  if (vectors.size() != labels.size() * dimension_) {
    return Status::invalid_argument("vector store: " + std::to_string(vectors.size()) + " floats for " +
                                    std::to_string(labels.size()) + " vectors of dimension " +
                                    std::to_string(dimension_));
  }
  auto& g = *impl_->graph;
  try {
    size_t need = g.cur_element_count + labels.size();
    if (need > g.max_elements_) g.resizeIndex(std::max(need, g.max_elements_ * 2));
  } catch (const std::bad_alloc&) {
    return Status::resource_limit("hnswlib: out of memory growing the graph");
  } catch (const std::exception& e) {
    return exception_status("resize", e);
  }

  // Inserts labels [begin, end) with a stride; returns the first error.
  auto insert = [&](size_t begin, size_t stride) -> Status {
    try {
      for (size_t i = begin; i < labels.size(); i += stride) {
        g.addPoint(vectors.data() + i * dimension_, static_cast<hnswlib::labeltype>(labels[i]));
      }
      return Status::ok();
    } catch (const std::bad_alloc&) {
      return Status::resource_limit("hnswlib: out of memory adding vectors");
    } catch (const std::exception& e) {
      return exception_status("add", e);
    }
  };

  size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 16);
  if (labels.size() < kParallelAddMin || threads == 1) return insert(0, 1);
  std::vector<Status> results(threads);
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  try {
    for (size_t t = 1; t < threads; ++t) workers.emplace_back([&, t] { results[t] = insert(t, threads); });
  } catch (const std::exception& e) {
    // Could not start a thread: let the started ones finish, then report (the caller rebuilds).
    for (auto& w : workers) w.join();
    return Status::internal(std::string("vector store: cannot start insert threads: ") + e.what());
  }
  results[0] = insert(0, threads);
  for (auto& w : workers) w.join();
  for (const Status& st : results) {
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

Status VectorStore::remove(std::span<const int64_t> labels) {
  auto& g = *impl_->graph;
  for (int64_t label : labels) {
    auto it = g.label_lookup_.find(static_cast<hnswlib::labeltype>(label));
    if (it == g.label_lookup_.end() || g.isMarkedDeleted(it->second)) continue;
    try {
      g.markDelete(static_cast<hnswlib::labeltype>(label));
    } catch (const std::exception& e) {
      return exception_status("delete", e);
    }
  }
  return Status::ok();
}

std::vector<int64_t> VectorStore::live_labels() const {
  const auto& g = *impl_->graph;
  std::vector<int64_t> out;
  out.reserve(g.label_lookup_.size());
  for (const auto& [label, internal] : g.label_lookup_) {
    if (!g.isMarkedDeleted(internal)) out.push_back(static_cast<int64_t>(label));
  }
  return out;
}

Result<std::vector<VectorStore::Hit>> VectorStore::search(std::span<const float> query, size_t n) const {
  if (query.size() != dimension_) {
    return Status::invalid_argument("vector store: query of dimension " + std::to_string(query.size()) +
                                    ", index of dimension " + std::to_string(dimension_));
  }
  std::vector<Hit> hits;
  if (n == 0) return hits;
  try {
    // searchKnn explores max(ef, n) candidates; ef stays fixed at kMinEf because setEf() would
    // race with concurrent searches, so a larger search list is asked for by a larger n.
    const auto& g = *impl_->graph;
    auto pq = g.searchKnn(query.data(), n);
    hits.resize(pq.size());
    // The queue pops the farthest first.
    for (size_t i = hits.size(); i-- > 0;) {
      hits[i] = Hit{static_cast<int64_t>(pq.top().second), 1.0f - pq.top().first};
      pq.pop();
    }
    // Fewer hits than asked for while more vectors are live: the graph has live elements the
    // search cannot reach. hnswlib 0.6's neighbour heuristic does that to a chunk replaced over
    // and over (its copies, deleted but still linked, crowd out the live one), and a search
    // would then miss part of a document. An exact scan is the right answer then; it only runs
    // in that state, which compaction (kCompactMinDeleted) eventually clears.
    const size_t live = g.cur_element_count - g.num_deleted_;
    if (hits.size() < n && hits.size() < live) {
      hits.clear();
      hits.reserve(live);
      for (const auto& [label, internal] : g.label_lookup_) {
        if (g.isMarkedDeleted(internal)) continue;
        const float* v = reinterpret_cast<const float*>(g.getDataByInternalId(internal));
        float dot = 0;
        for (size_t i = 0; i < dimension_; ++i) dot += v[i] * query[i];
        hits.push_back(Hit{static_cast<int64_t>(label), dot});
      }
      const size_t keep = std::min(n, hits.size());
      std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end(),
                        [](const Hit& a, const Hit& b) { return a.similarity > b.similarity; });
      hits.resize(keep);
    }
  } catch (const std::bad_alloc&) {
    return Status::resource_limit("hnswlib: out of memory searching");
  } catch (const std::exception& e) {
    return exception_status("search", e);
  }
  return hits;
}

Status VectorStore::save(const std::string& path) const {
  std::string tmp = unique_temp_path(path);  // two processes on one index may save at once
  try {
    impl_->graph->saveIndex(tmp);
  } catch (const std::exception& e) {
    return Status::io_error("hnswlib: cannot write " + tmp + ": " + e.what());
  }
  // saveIndex reports no write errors (an ofstream): fsync, and load() verifies the size later.
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", tmp, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return errno_status("fsync", tmp, err);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return errno_status("rename", tmp, e);
  }
  return Status::ok();
}

size_t VectorStore::size() const {
  return impl_->graph->cur_element_count;
}

size_t VectorStore::deleted() const {
  return impl_->graph->num_deleted_;
}

}  // namespace sluice::index
