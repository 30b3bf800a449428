// Pipeline: the built-in stages (parse, embed, index) and any custom stages of a pipeline file
// (exec_stage.h, plugin_stage.h) running in this process on one queue, with the parts they share:
// the blob store, the index, the embedder, the parser processes and the source fetcher. `sluice
// ingest` runs the three built-ins next to its scanner; `sluice worker` runs the ones it is told to.
//
// Ownership: the Pipeline borrows the queue and owns everything else; stop() then wait() before
// destroying it. Thread-safety: start/stop/wait from one thread; index() and stats() from any.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "embed/embedder.h"
#include "index/index.h"
#include "pipeline/parse_worker.h"
#include "pipeline/pipeline_file.h"
#include "pipeline/settings.h"
#include "pipeline/sources.h"
#include "pipeline/stage_runner.h"
#include "pipeline/stages.h"
#include "queue/queue.h"
#include "store/blob_store.h"

namespace sluice::pipeline {

struct PipelineOptions {
  PipelineSettings settings;
  std::vector<std::string> stages = {"parse", "embed", "index"};
  // Custom stages from a pipeline file (exec, plugin; pipeline_file.h), run next to `stages`.
  // Their topics are created and their groups declared by open(); a plugin's library is loaded
  // there, so a bad one fails the start.
  std::vector<StageSpec> custom_stages;
  // The program the parser processes run (`PROGRAM __parse-worker`); empty: this executable.
  std::string parse_worker_program;
  // The nice value of the stages' threads and parser processes (base/priority.h): `sluice serve`
  // raises it so that its HTTP threads come first on shared cores. 0: the process's own.
  int nice = 0;
};

class Pipeline {
 public:
  // Opens the store, embedder, index and (for the parse stage) the parser processes. Errors name
  // the part and its URI.
  [[nodiscard]] static Result<std::unique_ptr<Pipeline>> open(queue::Queue& q, PipelineOptions opts);
  ~Pipeline();

  // Starts one StageRunner per stage on its own thread.
  void start();
  // Asks the stages to stop: each finishes and acks what it holds.
  void stop();
  // Waits for the stages to end; returns the first error one of them ended with.
  [[nodiscard]] Status wait();
  // The first error a stage ended with so far (OK while all run).
  Status failure() const;

  index::Index& index() { return *index_; }
  embed::Embedder& embedder() { return *embedder_; }
  const PipelineSettings& settings() const { return opts_.settings; }
  // Stats of each running stage, by name.
  std::vector<std::pair<std::string, const StageStats*>> stats() const;

 private:
  Pipeline(queue::Queue& q, PipelineOptions opts) : q_(q), opts_(std::move(opts)) {}

  queue::Queue& q_;
  PipelineOptions opts_;
  std::unique_ptr<store::BlobStore> store_;
  std::unique_ptr<embed::Embedder> embedder_;
  std::unique_ptr<index::Index> index_;
  std::unique_ptr<IsolatedParser> parser_;
  std::unique_ptr<SourceFetcher> sources_;
  std::vector<std::unique_ptr<StageRunner>> runners_;
  std::vector<std::string> names_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  Status failure_;
};

}  // namespace sluice::pipeline
