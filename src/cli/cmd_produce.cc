// `sluice produce TOPIC`: sends one message per stdin line and exits once every line is
// acknowledged by the queue.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/common.h"

namespace sluice::cli {
namespace {

// Past this many, bad lines are counted but no longer described one by one.
constexpr uint64_t kMaxReportedBadLines = 100;

struct ProduceFlags {
  QueueFlags queue;
  std::string topic;
  std::string key_sep;
  bool key_sep_given = false;
  int32_t partition = -1;
  std::vector<std::string> headers;
  bool create = false;
  int32_t partitions = 1;
};

// Counts delivery reports; written from the backend's delivery thread.
struct Deliveries {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::mutex mu;
  Status first_failure;  // guarded by mu
};

// One line of stdin at a time, through getline(3): binary-safe, and a signal interrupts the read
// (iostreams retry on EINTR, so Ctrl-C would not stop a read from a terminal).
class LineReader {
 public:
  LineReader() = default;
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  ~LineReader() { std::free(buf_); }

  // The next line without its "\n" or "\r\n"; nullopt at the end of input or on an error.
  std::optional<std::string_view> next() {
    ssize_t n = ::getline(&buf_, &cap_, stdin);
    if (n < 0) return std::nullopt;
    std::string_view line(buf_, static_cast<size_t>(n));
    if (line.ends_with('\n')) line.remove_suffix(1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    return line;
  }
  bool failed() const { return std::ferror(stdin) != 0; }

 private:
  char* buf_ = nullptr;
  size_t cap_ = 0;
};

// Waits for every outstanding delivery report, as long as the queue keeps making progress.
Status flush_all(queue::Producer& producer) {
  uint64_t last = producer.outstanding();
  while (true) {
    Status st = producer.flush(queue::Millis(30000));
    uint64_t now = producer.outstanding();
    if (now == 0) return {};  // delivery failures are counted by the callback
    if (st.code() != Code::kTimeout && !st.is_ok()) return st;
    if (now >= last) {
      return Status::timeout(std::to_string(now) +
                             " messages still unacknowledged after 30 s without progress");
    }
    last = now;
  }
}

void print_line_error(uint64_t line_no, std::string_view what, uint64_t& reported) {
  if (++reported > kMaxReportedBadLines) return;
  report(Status::invalid_argument("line " + std::to_string(line_no) + ": " + std::string(what) +
                                  "; line not sent"));
  if (reported == kMaxReportedBadLines) {
    std::fputs("sluice: further bad lines are counted but not shown\n", stderr);
  }
}

int run_produce(const ProduceFlags& f) {
  if (Status st = queue::validate_topic_name(f.topic); !st.is_ok()) return report(st);
  if (f.key_sep_given && f.key_sep.empty()) return usage_error("--key-sep must not be empty");

  // "\t" is accepted as a tab: typing a literal tab in a shell is awkward.
  std::string sep = f.key_sep == "\\t" ? std::string("\t") : f.key_sep;

  std::vector<std::pair<std::string, std::string>> header_kv;
  for (const std::string& h : f.headers) {
    size_t eq = h.find('=');
    if (eq == std::string::npos || eq == 0) {
      return usage_error("--header '" + h + "' is not of the form KEY=VALUE");
    }
    header_kv.emplace_back(h.substr(0, eq), h.substr(eq + 1));
  }
  std::vector<queue::Header> headers;
  for (const auto& [k, v] : header_kv) headers.push_back({k, v});

  auto q = open_queue(f.queue, /*create=*/true);
  if (!q.is_ok()) return report(q.status());
  if (f.create) {
    queue::TopicConfig cfg;
    cfg.partitions = f.partitions;
    if (Status st = (*q)->admin().create_topic(f.topic, cfg); !st.is_ok()) return report(st);
  }

  // Declared before the producer: delivery callbacks may run until the producer is destroyed.
  Deliveries deliveries;
  queue::ProducerOptions popts;
  popts.on_delivery = [&deliveries](const queue::DeliveryReport& r) {
    if (r.status.is_ok()) {
      deliveries.ok.fetch_add(1);
      return;
    }
    deliveries.failed.fetch_add(1);
    std::lock_guard<std::mutex> lock(deliveries.mu);
    if (deliveries.first_failure.is_ok()) deliveries.first_failure = r.status;
  };
  auto producer_or = (*q)->make_producer(std::move(popts));
  if (!producer_or.is_ok()) return report(producer_or.status());
  std::unique_ptr<queue::Producer> producer = std::move(producer_or).value();

  install_stop_signals();
  LineReader reader;
  uint64_t line_no = 0;
  uint64_t bad_lines = 0;
  uint64_t reported = 0;
  Status fatal;  // an error that stopped the reading
  while (!stop_requested()) {
    std::optional<std::string_view> line = reader.next();
    if (!line) break;
    ++line_no;
    queue::OutMessage msg;
    msg.topic = f.topic;
    msg.headers = headers;
    if (f.partition >= 0) msg.partition = PartitionId(f.partition);
    if (!f.key_sep_given) {
      msg.value = *line;
    } else {
      size_t at = line->find(sep);
      if (at == std::string_view::npos) {
        ++bad_lines;
        print_line_error(line_no, "no key separator '" + f.key_sep + "' in the line", reported);
        continue;
      }
      msg.key = line->substr(0, at);
      msg.value = line->substr(at + sep.size());
    }
    auto ticket = producer->send(msg);
    if (ticket.is_ok()) continue;
    if (ticket.status().code() == Code::kTooLarge) {  // this line only; the next may fit
      ++bad_lines;
      print_line_error(line_no, ticket.status().message(), reported);
      continue;
    }
    // Anything else (unknown topic, bad partition, a broken queue) fails every line alike.
    fatal = ticket.status();
    break;
  }
  if (fatal.is_ok() && stop_requested()) {
    fatal =
        Status(ErrorClass::kRetriable, Code::kClosed,
               "interrupted after " + std::to_string(line_no) + " lines; the lines read so far were flushed");
  } else if (fatal.is_ok() && reader.failed()) {
    fatal = Status::io_error("reading stdin failed after line " + std::to_string(line_no));
  }

  Status flushed = flush_all(*producer);
  producer.reset();  // no delivery callback runs past this point

  int code = kExitOk;
  if (!fatal.is_ok()) code = report(fatal);
  if (!flushed.is_ok()) {
    report(flushed);
    code = kExitFailure;
  }
  uint64_t failed = deliveries.failed.load();
  if (failed > 0) {
    report(
        deliveries.first_failure.with_context(std::to_string(failed) + " messages were not stored; first"));
    code = kExitFailure;
  }
  if (bad_lines > 0 && code == kExitOk) code = kExitUsage;
  std::string summary = "produced " + std::to_string(deliveries.ok.load()) + " messages to " + f.topic;
  if (bad_lines > 0) summary += "; bad lines not sent: " + std::to_string(bad_lines);
  std::fprintf(stderr, "%s\n", summary.c_str());
  return code;
}

}  // namespace

Command add_produce_command(CLI::App& root) {
  auto flags = std::make_shared<ProduceFlags>();
  CLI::App* app = root.add_subcommand("produce", "Send one message per stdin line to a topic");
  app->add_option("TOPIC", flags->topic, "The topic to send to")->required();
  add_queue_options(*app, flags->queue);
  CLI::Option* key_sep = app->add_option(
      "--key-sep", flags->key_sep, "Split each line at the first SEP into key and value (\\t means a tab)");
  app->add_option("--partition", flags->partition, "Send every message to this partition")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--header", flags->headers, "Add a header KEY=VALUE to every message (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  CLI::Option* create = app->add_flag("--create", flags->create, "Create the topic when it does not exist");
  app->add_option("--partitions", flags->partitions, "Partitions of a topic made by --create (default 1)")
      ->check(CLI::Range(1, 1 << 20))
      ->needs(create);
  return {app, [flags, key_sep] {
            flags->key_sep_given = key_sep->count() > 0;
            return run_produce(*flags);
          }};
}

}  // namespace sluice::cli
