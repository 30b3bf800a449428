#include "pipeline/pipeline.h"

#include <unistd.h>

#include <climits>
#include <filesystem>

#include "base/log.h"
#include "base/priority.h"
#include "parse/ocr.h"
#include "pipeline/exec_stage.h"
#include "pipeline/plugin_stage.h"

namespace sluice::pipeline {
namespace {

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

Result<std::unique_ptr<Pipeline>> Pipeline::open(queue::Queue& q, PipelineOptions opts) {
  std::unique_ptr<Pipeline> p(new Pipeline(q, std::move(opts)));
  const PipelineSettings& s = p->opts_.settings;
  for (const auto& name : p->opts_.stages) {
    if (name != "parse" && name != "embed" && name != "index") {
      return Status::invalid_argument("unknown stage '" + name + "' (stages: parse, embed, index)");
    }
  }
  const S3Config s3{s.s3_endpoint, s.s3_region};
  auto store = store::open_blob_store(with_s3_config(s.store, s3));
  if (!store.is_ok()) return store.status().with_context("blob store " + s.store);
  p->store_ = std::move(store).value();
  auto embedder = embed::open_embedder(s.embedder);
  if (!embedder.is_ok()) return embedder.status().with_context("embedder " + s.embedder);
  p->embedder_ = std::move(embedder).value();
  auto index = index::open_index(s.index, p->embedder_->dimension(), p->embedder_->name());
  if (!index.is_ok()) return index.status().with_context("index " + s.index);
  p->index_ = std::move(index).value();
  p->sources_ = std::make_unique<SourceFetcher>(
      s3, (s.data_dir.empty() ? std::filesystem::temp_directory_path().string() : s.data_dir) + "/tmp");

  StageContext ctx;
  ctx.sources = p->sources_.get();
  ctx.store = p->store_.get();
  ctx.index = p->index_.get();
  ctx.embedder = p->embedder_.get();
  ctx.settings = s;
  ctx.worker = worker_name();
  for (const auto& name : p->opts_.stages) {
    StageDef def;
    if (name == "parse") {
      // A missing language pack is said now, once, rather than as a dead letter per document.
      if (s.ocr.mode != parse::OcrMode::kNever) {
        SLUICE_RETURN_IF_ERROR(parse::check_ocr_languages(s.ocr).with_context(
            "the parse stage's OCR (--ocr-lang " + s.ocr.languages + "; --ocr never turns it off)"));
      }
      ProcessPoolOptions pool;
      pool.program = p->opts_.parse_worker_program.empty() ? self_exe() : p->opts_.parse_worker_program;
      pool.args = {"__parse-worker"};
      pool.size = s.pool;
      pool.timeout = s.parse_timeout;
      pool.memory_limit = s.parse_memory;
      pool.nice = p->opts_.nice;
      auto parser = IsolatedParser::start(std::move(pool));
      if (!parser.is_ok()) return parser.status().with_context("starting the parser processes");
      p->parser_ = std::move(parser).value();
      ctx.parser = p->parser_.get();
      def = parse_stage(ctx);
    } else if (name == "embed") {
      def = embed_stage(ctx);
    } else {
      def = index_stage(ctx);
    }
    p->runners_.push_back(std::make_unique<StageRunner>(q, def.config, def.process, def.on_dead));
    p->names_.push_back(name);
  }
  if (!p->opts_.custom_stages.empty()) {
    SLUICE_RETURN_IF_ERROR(ensure_custom_topics(q.admin(), s, p->opts_.custom_stages));
  }
  for (const auto& spec : p->opts_.custom_stages) {
    StageDef def;
    if (spec.type == StageType::kExec) {
      def = exec_stage(ctx, spec);
    } else if (spec.type == StageType::kPlugin) {
      SLUICE_ASSIGN_OR_RETURN(def, plugin_stage(ctx, spec));
    } else {
      return Status::invalid_argument("stage '" + spec.name + "' is a built-in one: list it in the stages");
    }
    p->runners_.push_back(std::make_unique<StageRunner>(q, def.config, def.process, def.on_dead));
    p->names_.push_back(spec.name);
  }
  return p;
}

Pipeline::~Pipeline() {
  stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void Pipeline::start() {
  for (size_t i = 0; i < runners_.size(); ++i) {
    threads_.emplace_back([this, i] {
      // First, so that the consumers, workers and producers the runner starts inherit it.
      if (opts_.nice > 0) {
        if (Status n = set_thread_nice(opts_.nice); !n.is_ok())
          log::warn("stage priority", {{"error", n.to_string()}});
      }
      Status st = runners_[i]->run(stop_);
      if (!st.is_ok()) {
        std::lock_guard<std::mutex> l(mu_);
        if (failure_.is_ok()) failure_ = st.with_context("stage " + names_[i]);
      }
    });
  }
}

void Pipeline::stop() {
  stop_ = true;
}

Status Pipeline::wait() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  return failure();
}

Status Pipeline::failure() const {
  std::lock_guard<std::mutex> l(mu_);
  return failure_;
}

std::vector<std::pair<std::string, const StageStats*>> Pipeline::stats() const {
  std::vector<std::pair<std::string, const StageStats*>> out;
  for (size_t i = 0; i < runners_.size(); ++i) out.emplace_back(names_[i], &runners_[i]->stats());
  return out;
}

}  // namespace sluice::pipeline
