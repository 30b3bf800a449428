// The exec stage at unit level: placeholders and quoting, the command runner with real /bin/sh
// commands (outputs, exit status, stderr tail, time limit, signals), and the file stage around it
// (download, upload to a folder, result or chained tasks, output limit, cleanup settings).
#include "pipeline/exec_stage.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "pipeline/sources.h"
#include "pipeline/stage_runner.h"
#include "queue/queue.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandResult run_sh(const std::string& script, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                     std::chrono::milliseconds grace = std::chrono::seconds(2)) {
  CommandOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.timeout = timeout;
  o.grace = grace;
  auto r = run_command(o);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : CommandResult{};
}

TEST(ExpandCommand, ArgvIsNotQuotedAndShellIs) {
  PlaceholderValues v{"/w/in/my file.csv", "/w/out", "doc1", "my file", "data/my file.csv"};
  StageSpec s;
  s.name = "x";
  s.command = {"cut", "-f1", "{input}", "-o", "{output_dir}/{name}.txt"};
  auto argv = expand_command(s, v);
  ASSERT_TRUE(argv.is_ok());
  EXPECT_EQ(*argv, (std::vector<std::string>{"cut", "-f1", "/w/in/my file.csv", "-o", "/w/out/my file.txt"}));
  s.shell = true;
  s.command = {"sort {input} > {output_dir}/{name}.sorted"};
  argv = expand_command(s, v);
  ASSERT_TRUE(argv.is_ok());
  EXPECT_EQ(*argv, (std::vector<std::string>{"/bin/sh", "-c",
                                             "sort '/w/in/my file.csv' > '/w/out'/'my file'.sorted"}));
}

TEST(RunCommand, ShellQuotingSurvivesHostileNames) {
  // A value with quotes, spaces and $(...) is one word for the shell, never code.
  PlaceholderValues v{"/tmp/a'b $(touch /tmp/sluice-pwned) \"c\".txt", "/o", "d", "n", "k"};
  StageSpec s;
  s.shell = true;
  s.command = {"printf '%s' {input}"};
  auto argv = expand_command(s, v);
  ASSERT_TRUE(argv.is_ok());
  CommandOptions o;
  o.argv = *argv;
  auto r = run_command(o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_tail, v.input);
  EXPECT_FALSE(fs::exists("/tmp/sluice-pwned"));
}

TEST(RunCommand, SuccessWithEnvironmentAndWorkingDirectory) {
  const std::string dir = ::testing::TempDir() + "/run-command-cwd";
  fs::create_directories(dir);
  CommandOptions o;
  o.argv = {"/bin/sh", "-c", "echo \"$GREETING\"; pwd; echo err >&2"};
  o.env = {{"GREETING", "你好"}};
  o.cwd = dir;
  auto r = run_command(o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->stdout_tail, "你好\n" + fs::canonical(dir).string() + "\n");
  EXPECT_EQ(r->stderr_tail, "err\n");
  EXPECT_TRUE(command_status(*r, "cmd").is_ok());
}

TEST(RunCommand, AProgramFromPathWithoutAShell) {
  CommandOptions o;
  o.argv = {"printf", "%s-%s", "a b", "c"};
  auto r = run_command(o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->stdout_tail, "a b-c");
}

TEST(RunCommand, NonZeroExitIsBadInputWithTheStderrTail) {
  // 10 KiB of stderr: the message keeps the last 4 KiB (the end, where the reason usually is).
  CommandResult r = run_sh(
      "i=0; while [ $i -lt 200 ]; do echo \"line $i padding padding padding\" >&2; "
      "i=$((i+1)); done; echo 'the real reason' >&2; exit 3");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_LE(r.stderr_tail.size(), 4096u);
  Status st = command_status(r, "the csv command");
  EXPECT_EQ(st.error_class(), ErrorClass::kBadInput);
  EXPECT_NE(st.message().find("the csv command exited with status 3"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("the real reason"), std::string::npos);
  EXPECT_EQ(st.message().find("line 0 padding"), std::string::npos);  // the head was dropped
  EXPECT_NE(st.message().find("line 199 padding"), std::string::npos);
}

TEST(RunCommand, ExitTempFailIsRetriable) {
  CommandResult r = run_sh("echo 'server away' >&2; exit 75");
  Status st = command_status(r, "cmd");
  EXPECT_EQ(st.error_class(), ErrorClass::kRetriable);
  EXPECT_NE(st.message().find("EX_TEMPFAIL"), std::string::npos);
  EXPECT_NE(st.message().find("server away"), std::string::npos);
}

TEST(RunCommand, AHangIsKilledAtTheTimeoutWithItsChildren) {
  const auto t0 = Clock::now();
  // The shell's child (sleep) shares its group: both go, and the pipes close.
  CommandResult r = run_sh("echo started >&2; sleep 30; echo never", std::chrono::milliseconds(500));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_LT(s, 1.5);
  EXPECT_GE(s, 0.45);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.stdout_tail, "");
  Status st = command_status(r, "the hanging command");
  EXPECT_EQ(st.error_class(), ErrorClass::kResourceLimit);
  EXPECT_NE(st.message().find("did not finish within its timeout"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("started"), std::string::npos);
}

TEST(RunCommand, ACommandIgnoringSigtermGetsSigkillAfterTheGrace) {
  const auto t0 = Clock::now();
  CommandResult r = run_sh("trap '' TERM; while :; do sleep 0.05; done", std::chrono::milliseconds(300),
                           std::chrono::milliseconds(300));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_LT(s, 1.6);
  EXPECT_GE(s, 0.55);
}

TEST(RunCommand, LeftoverBackgroundProcessesAreKilledWhenItExits) {
  const auto t0 = Clock::now();
  CommandResult r = run_sh("sleep 30 & echo bye");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_tail, "bye\n");
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 2.0);
}

TEST(RunCommand, ACrashIsFatalNamingTheSignal) {
  CommandResult r = run_sh("kill -SEGV $$");
  EXPECT_EQ(r.signal, SIGSEGV);
  Status st = command_status(r, "cmd");
  EXPECT_EQ(st.error_class(), ErrorClass::kFatal);
  EXPECT_NE(st.message().find("SIGSEGV"), std::string::npos) << st.message();
}

TEST(RunCommand, AMissingProgramIsBadInput) {
  CommandOptions o;
  o.argv = {"sluice-no-such-program", "x"};
  auto r = run_command(o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(r.status().message().find("sluice-no-such-program"), std::string::npos);
  EXPECT_NE(r.status().message().find("PATH"), std::string::npos);
}

// The file stage over local files and a folder destination.
class FileStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::path(::testing::TempDir()) / ("file-stage-" + random_id().substr(0, 8))).string();
    fs::create_directories(root_ + "/src");
    ctx_.settings.data_dir = root_ + "/data";
    ctx_.worker = "test:1";
    ctx_.sources = &sources_;
    write("src/people.csv", "id,city\n1,Paris\n2,Beijing\n3,Addis\n");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void write(const std::string& rel, const std::string& bytes) { std::ofstream(root_ + "/" + rel) << bytes; }

  StageSpec spec(const std::string& script) {
    StageSpec s;
    s.name = "csv";
    s.type = StageType::kExec;
    s.input = "doc_upload";
    s.shell = true;
    s.command = {script};
    s.dest = root_ + "/dest/{doc_id}";
    s.timeout = std::chrono::seconds(10);
    return s;
  }

  // A doc_upload message for a file under root_.
  struct Msg {
    std::string value;
    queue::Message m;
  };
  std::unique_ptr<Msg> task_for(const std::string& rel) {
    Task t;
    t.source = file_source(root_ + "/" + rel);
    t.doc_id = doc_id_for(t.source.uri);
    t.trace_id = "trace-1";
    t.size = fs::exists(root_ + "/" + rel) ? fs::file_size(root_ + "/" + rel) : 0;
    auto msg = std::make_unique<Msg>();
    msg->value = to_json(t);
    msg->m.topic = "doc_upload";
    msg->m.key = t.doc_id;
    msg->m.value = msg->value;
    return msg;
  }

  static ResultNotification result_of(const Outcome& o) {
    EXPECT_EQ(o.outputs.size(), 1u);
    EXPECT_EQ(o.outputs.at(0).topic, "doc_results");
    auto r = parse_result(o.outputs.at(0).value);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : ResultNotification{};
  }

  bool tmp_is_empty() const {
    const std::string tmp = root_ + "/data/tmp";
    return !fs::exists(tmp) || fs::is_empty(tmp);
  }

  std::string root_;
  SourceFetcher sources_{S3Config{}, ""};
  StageContext ctx_;
};

TEST_F(FileStageTest, RunsTheCommandUploadsEveryOutputAndPublishesTheResult) {
  StageDef def =
      exec_stage(ctx_, spec("tail -n +2 {input} | cut -d, -f2 | sort > {output_dir}/{name}.cities; "
                            "mkdir {output_dir}/sub && echo {doc_id} > {output_dir}/sub/id.txt"));
  EXPECT_EQ(def.config.name, "csv");
  EXPECT_EQ(def.config.group, "sluice-csv");
  EXPECT_EQ(def.config.input_topic, "doc_upload");
  auto msg = task_for("src/people.csv");
  Outcome o = def.process(msg->m);
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  ResultNotification r = result_of(o);
  const std::string doc = doc_id_for("file://" + root_ + "/src/people.csv");
  EXPECT_EQ(r.status, ResultStatus::kSuccess);
  EXPECT_EQ(r.doc_id, doc);
  EXPECT_EQ(r.trace_id, "trace-1");
  EXPECT_EQ(r.input_size, fs::file_size(root_ + "/src/people.csv"));
  ASSERT_EQ(r.outputs.size(), 2u);
  EXPECT_EQ(r.outputs[0].uri, "file://" + root_ + "/dest/" + doc + "/people.cities");
  EXPECT_EQ(r.outputs[1].uri, "file://" + root_ + "/dest/" + doc + "/sub/id.txt");
  EXPECT_EQ(r.outputs[0].size, std::string("Addis\nBeijing\nParis\n").size());
  EXPECT_EQ(r.outputs[0].hash.size(), 32u);
  EXPECT_EQ(r.output_size, r.outputs[0].size + r.outputs[1].size);
  ASSERT_TRUE(r.destination.has_value());
  EXPECT_EQ(r.destination->uri, r.outputs[0].uri);
  ASSERT_EQ(r.stage_ms.size(), 1u);
  EXPECT_EQ(r.stage_ms[0].first, "csv");
  EXPECT_EQ(read_file(root_ + "/dest/" + doc + "/people.cities"), "Addis\nBeijing\nParis\n");
  EXPECT_EQ(read_file(root_ + "/dest/" + doc + "/sub/id.txt"), doc + "\n");
  EXPECT_TRUE(tmp_is_empty());  // cleanup_files defaults to true
}

TEST_F(FileStageTest, WithAnOutputTopicEachFileIsTheNextStagesTask) {
  StageSpec first = spec("cut -d, -f2 {input} > {output_dir}/{name}.col");
  first.output = "columns";
  Outcome o = exec_stage(ctx_, first).process(task_for("src/people.csv")->m);
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  ASSERT_EQ(o.outputs.size(), 1u);
  EXPECT_EQ(o.outputs[0].topic, "columns");
  auto next = parse_task(o.outputs[0].value);
  ASSERT_TRUE(next.is_ok());
  EXPECT_EQ(next->doc_id, doc_id_for("file://" + root_ + "/src/people.csv"));  // the document's identity
  EXPECT_EQ(next->trace_id, "trace-1");
  EXPECT_EQ(next->source.uri, "file://" + root_ + "/dest/" + next->doc_id + "/people.col");
  EXPECT_EQ(next->metadata["chain"]["origin"]["uri"], "file://" + root_ + "/src/people.csv");

  // The second stage reads it and ends the document; the result has both stages' timings.
  StageSpec second = spec("wc -l < {input} > {output_dir}/{name}.count");
  second.name = "summary";
  second.input = "columns";
  second.dest = root_ + "/summary";
  queue::Message m2;
  m2.topic = "columns";
  m2.value = o.outputs[0].value;
  Outcome o2 = exec_stage(ctx_, second).process(m2);
  ASSERT_TRUE(o2.status.is_ok()) << o2.status.to_string();
  ResultNotification r = result_of(o2);
  EXPECT_EQ(r.source.uri, "file://" + root_ + "/src/people.csv");  // the document, not the middle file
  EXPECT_EQ(r.input_size, fs::file_size(root_ + "/src/people.csv"));
  EXPECT_EQ(r.output_size, 2u);
  ASSERT_EQ(r.stage_ms.size(), 2u);
  EXPECT_EQ(r.stage_ms[0].first, "csv");
  EXPECT_EQ(r.stage_ms[1].first, "summary");
  EXPECT_EQ(read_file(root_ + "/summary/people.count"), "4\n");
}

TEST_F(FileStageTest, AnIntermediateStageWithoutOutputsReportsTheDocumentSkipped) {
  StageSpec s = spec("true");
  s.output = "next";
  Outcome o = exec_stage(ctx_, s).process(task_for("src/people.csv")->m);
  ASSERT_TRUE(o.status.is_ok());
  ResultNotification r = result_of(o);
  EXPECT_EQ(r.status, ResultStatus::kSkipped);
  EXPECT_NE(r.reason.find("wrote no output file"), std::string::npos);
}

TEST_F(FileStageTest, OutputsOverTheLimitAreAResourceLimitAndNothingIsUploaded) {
  StageSpec s = spec("head -c 2000 /dev/zero > {output_dir}/a; head -c 2000 /dev/zero > {output_dir}/b");
  s.max_output_bytes = 3000;
  s.cleanup_on_error = true;
  Outcome o = exec_stage(ctx_, s).process(task_for("src/people.csv")->m);
  EXPECT_EQ(o.status.error_class(), ErrorClass::kResourceLimit);
  EXPECT_NE(o.status.message().find("over the stage's max_output_bytes"), std::string::npos)
      << o.status.message();
  EXPECT_FALSE(fs::exists(root_ + "/dest"));
  EXPECT_TRUE(tmp_is_empty());
}

TEST_F(FileStageTest, AFailureKeepsTheTempFilesByDefaultAndSaysWhere) {
  Outcome o = exec_stage(ctx_, spec("echo partial > {output_dir}/x; echo 'bad row 7' >&2; exit 2"))
                  .process(task_for("src/people.csv")->m);
  EXPECT_EQ(o.status.error_class(), ErrorClass::kBadInput);
  EXPECT_NE(o.status.message().find("exited with status 2"), std::string::npos);
  EXPECT_NE(o.status.message().find("bad row 7"), std::string::npos);
  const std::string& msg = o.status.message();
  const size_t at = msg.find("temp files kept in ");
  ASSERT_NE(at, std::string::npos) << msg;
  const std::string dir = msg.substr(at + 19, msg.size() - at - 20);
  EXPECT_EQ(read_file(dir + "/out/x"), "partial\n");
  EXPECT_FALSE(fs::exists(root_ + "/dest"));
}

TEST_F(FileStageTest, CleanupOnErrorRemovesThem) {
  StageSpec s = spec("echo partial > {output_dir}/x; exit 1");
  s.cleanup_on_error = true;
  Outcome o = exec_stage(ctx_, s).process(task_for("src/people.csv")->m);
  EXPECT_FALSE(o.status.is_ok());
  EXPECT_EQ(o.status.message().find("temp files kept"), std::string::npos);
  EXPECT_TRUE(tmp_is_empty());
}

TEST_F(FileStageTest, CleanupFilesFalseKeepsASuccessfulTasksFiles) {
  StageSpec s = spec("cp {input} {output_dir}/copy.csv");
  s.cleanup_files = false;
  Outcome o = exec_stage(ctx_, s).process(task_for("src/people.csv")->m);
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  EXPECT_FALSE(tmp_is_empty());
}

TEST_F(FileStageTest, TheSettingWinsOverTheStagesOwnCleanup) {
  StageSpec s = spec("cp {input} {output_dir}/copy.csv");
  s.cleanup_files = true;
  ctx_.settings.cleanup_files = false;  // CLEANUP_FILES=false in the environment
  Outcome o = exec_stage(ctx_, s).process(task_for("src/people.csv")->m);
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  EXPECT_FALSE(tmp_is_empty());
}

TEST_F(FileStageTest, AMissingInputIsBadInputAndTheFailureNotificationSaysSo) {
  StageSpec s = spec("cp {input} {output_dir}/x");
  s.cleanup_on_error = true;
  StageDef def = exec_stage(ctx_, s);
  auto msg = task_for("src/gone.csv");
  Outcome o = def.process(msg->m);
  EXPECT_EQ(o.status.error_class(), ErrorClass::kBadInput);
  EXPECT_NE(o.status.message().find("no longer exists"), std::string::npos);
  auto outs = def.on_dead(msg->m, o.status, 1);
  ASSERT_EQ(outs.size(), 1u);
  auto r = parse_result(outs[0].value);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, ResultStatus::kFailed);
  EXPECT_EQ(r->error->error_class(), ErrorClass::kBadInput);
  EXPECT_EQ(r->source.uri, "file://" + root_ + "/src/gone.csv");
}

TEST_F(FileStageTest, ATasksDestKeyNamesItsSingleOutput) {
  Task t;
  t.source = file_source(root_ + "/src/people.csv");
  t.doc_id = "d";
  t.dest_key = "processed/people.json";
  const std::string value = to_json(t);
  queue::Message m;
  m.value = value;
  Outcome o = exec_stage(ctx_, spec("echo '{{}}' > {output_dir}/out.json")).process(m);
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  EXPECT_EQ(read_file(root_ + "/dest/d/processed/people.json"), "{}\n");
}

TEST_F(FileStageTest, ATimeoutInTheStageIsAResourceLimit) {
  StageSpec s = spec("sleep 20");
  s.timeout = std::chrono::milliseconds(300);
  const auto t0 = Clock::now();
  Outcome o = exec_stage(ctx_, s).process(task_for("src/people.csv")->m);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.5);
  EXPECT_EQ(o.status.error_class(), ErrorClass::kResourceLimit);
  EXPECT_NE(o.status.message().find("timeout 300ms"), std::string::npos) << o.status.message();
}

}  // namespace
}  // namespace sluice::pipeline

namespace sluice::pipeline {
namespace {

TEST(ExecStageSettings, CleanupComesFromTheSeedsVariablesOnlyWhenGiven) {
  auto none = resolve_settings({}, "/d", [](const char*) -> const char* { return nullptr; });
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->cleanup_files.has_value());  // so the stage's own setting applies
  EXPECT_FALSE(none->cleanup_on_error.has_value());
  auto env = resolve_settings({}, "/d", [](const char* n) -> const char* {
    if (std::string_view(n) == "CLEANUP_FILES") return "false";
    if (std::string_view(n) == "CLEANUP_ON_ERROR") return "true";
    return nullptr;
  });
  ASSERT_TRUE(env.is_ok()) << env.status().to_string();
  EXPECT_EQ(env->cleanup_files, false);
  EXPECT_EQ(env->cleanup_on_error, true);
  auto bad = resolve_settings({}, "/d", [](const char* n) -> const char* {
    return std::string_view(n) == "CLEANUP_FILES" ? "sometimes" : nullptr;
  });
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("CLEANUP_FILES"), std::string::npos) << bad.status().message();
}

TEST(ExecStageResult, OutputsRoundTripThroughTheResultJson) {
  ResultNotification r;
  r.doc_id = "d";
  r.outputs = {{"s3://b/k/a.mp3", 12, "0123456789abcdef0123456789abcdef"}, {"file:///o/x", 0, ""}};
  const std::string j = to_json(r);
  EXPECT_NE(
      j.find(R"("outputs":[{"uri":"s3://b/k/a.mp3","size":12,"hash":"0123456789abcdef0123456789abcdef"})"),
      std::string::npos)
      << j;
  auto back = parse_result(j);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->outputs, r.outputs);
  ResultNotification plain;
  EXPECT_EQ(to_json(plain).find("outputs"), std::string::npos);  // absent when there are none
}

}  // namespace
}  // namespace sluice::pipeline

namespace sluice::pipeline {
namespace {

// A custom stage may read the input of another stage (fan-out: two groups on doc_upload); they
// share `<input>.retry`, and each must redo only its own retries.
TEST(SharedInput, EachStageTakesOnlyItsOwnRetries) {
  const fs::path dir = fs::temp_directory_path() / ("sluice-shared-" + random_id().substr(0, 8));
  auto qr = queue::open_queue("log:" + dir.string());
  ASSERT_TRUE(qr.is_ok()) << qr.status().to_string();
  queue::Queue& q = **qr;
  ASSERT_TRUE(q.admin().create_topic("in", {.partitions = 1}).is_ok());
  {
    auto p = q.make_producer({});
    ASSERT_TRUE(p.is_ok());
    ASSERT_TRUE((*p)->send({.topic = "in", .key = std::string_view("k"), .value = "v"}).is_ok());
    ASSERT_TRUE((*p)->flush(queue::Millis(5000)).is_ok());
  }
  std::atomic<int> a_calls{0}, b_calls{0};
  ProcessFn a = [&](const queue::Message&) -> Outcome {
    return {++a_calls == 1 ? Status::busy("once more") : Status(), {}, {}};
  };
  ProcessFn b = [&](const queue::Message&) -> Outcome {
    ++b_calls;
    return {};
  };
  StageRunner ra(
      q, {.name = "a", .input_topic = "in", .group = "g-a", .workers = 1, .backoff = queue::Millis(20)}, a);
  StageRunner rb(
      q, {.name = "b", .input_topic = "in", .group = "g-b", .workers = 1, .backoff = queue::Millis(20)}, b);
  std::atomic<bool> stop{false};
  Status sa, sb;
  std::thread ta([&] { sa = ra.run(stop); });
  std::thread tb([&] { sb = rb.run(stop); });
  const auto t0 = Clock::now();
  while (a_calls < 2 && Clock::now() - t0 < std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // time for b to see a's retry copy
  stop = true;
  ta.join();
  tb.join();
  EXPECT_TRUE(sa.is_ok()) << sa.to_string();
  EXPECT_TRUE(sb.is_ok()) << sb.to_string();
  EXPECT_EQ(a_calls.load(), 2);  // its first try and its retry
  EXPECT_EQ(b_calls.load(), 1);  // the input once; a's retry is not b's
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace sluice::pipeline
