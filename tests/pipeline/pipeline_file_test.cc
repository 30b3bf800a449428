// Pipeline files: the example of the docs parses into what it says, stages chain by topics, and
// each validation error is a kBadInput naming the line, the stage and the key.
#include "pipeline/pipeline_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>

namespace sluice::pipeline {
namespace {

Result<PipelineFile> parse(const std::string& yaml) {
  return parse_pipeline_file(yaml, "/etc/sluice", "p.yaml");
}

// The file fails with kBadInput and a message holding every one of parts.
void expect_error(const std::string& yaml, std::initializer_list<std::string> parts) {
  auto r = parse(yaml);
  ASSERT_FALSE(r.is_ok()) << yaml;
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput) << r.status().to_string();
  for (const auto& p : parts)
    EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().message();
}

// A valid exec stage, with `extra` lines added to it (indented as its keys).
std::string exec_with(const std::string& extra, const std::string& name = "t") {
  return "stages:\n  - name: " + name + "\n    type: exec\n    command: [\"true\"]\n    dest: /out\n" + extra;
}

TEST(PipelineFile, TheDocsExampleParsesWithItsValuesAndDefaults) {
  auto r = parse(R"(
stages:
  - name: transcode
    type: exec
    output: transcoded
    command: ["/usr/bin/ffmpeg", "-i", "{input}", "{output_dir}/{name}.mp3"]
    timeout: 90s
    dest: s3://processed-files/audio/
    max_output_bytes: 64MiB
    workers: 3
    cleanup_files: false
    env: {LANG: C.UTF-8, DOC: "{doc_id}"}
  - name: upload
    type: exec
    shell: true
    command: "wc -c < {input} > {output_dir}/{name}.count"
    dest: ./results/{doc_id}
    cleanup_on_error: true
  - name: lib
    type: plugin
    input: transcoded
    library: plugins/libx.so
    config: "level=3"
    dest: file:/var/out
  - name: index
    type: builtin
)");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->stages.size(), 4u);
  const StageSpec& t = r->stages[0];
  EXPECT_EQ(t.name, "transcode");
  EXPECT_EQ(t.type, StageType::kExec);
  EXPECT_EQ(t.line, 3);
  EXPECT_EQ(t.input, "doc_upload");  // the first stage's default
  EXPECT_EQ(t.output, "transcoded");
  EXPECT_EQ(t.command,
            (std::vector<std::string>{"/usr/bin/ffmpeg", "-i", "{input}", "{output_dir}/{name}.mp3"}));
  EXPECT_FALSE(t.shell);
  EXPECT_EQ(t.timeout, std::chrono::seconds(90));
  EXPECT_EQ(t.dest, "s3://processed-files/audio/");
  EXPECT_EQ(t.max_output_bytes, 64u << 20);
  EXPECT_EQ(t.workers, 3u);
  EXPECT_EQ(t.cleanup_files, false);
  EXPECT_FALSE(t.cleanup_on_error.has_value());
  EXPECT_EQ(t.env,
            (std::vector<std::pair<std::string, std::string>>{{"LANG", "C.UTF-8"}, {"DOC", "{doc_id}"}}));

  const StageSpec& u = r->stages[1];
  EXPECT_EQ(u.input, "transcoded");  // the previous stage's output
  EXPECT_TRUE(u.output.empty());
  EXPECT_TRUE(u.shell);
  EXPECT_EQ(u.command, (std::vector<std::string>{"wc -c < {input} > {output_dir}/{name}.count"}));
  EXPECT_EQ(u.timeout, std::chrono::minutes(10));  // default
  EXPECT_EQ(u.max_output_bytes, 1u << 30);
  EXPECT_EQ(u.workers, 0u);                           // the workers setting
  EXPECT_EQ(u.dest, "/etc/sluice/results/{doc_id}");  // relative to the file's directory
  EXPECT_EQ(u.cleanup_on_error, true);

  const StageSpec& l = r->stages[2];
  EXPECT_EQ(l.type, StageType::kPlugin);
  EXPECT_EQ(l.library, "/etc/sluice/plugins/libx.so");
  EXPECT_EQ(l.config, "level=3");
  EXPECT_EQ(l.dest, "/var/out");

  const StageSpec& i = r->stages[3];
  EXPECT_EQ(i.type, StageType::kBuiltin);
  EXPECT_EQ(i.input, "doc_embedded");
}

TEST(PipelineFile, ARelativeProgramIsTheFilesNeighbourAndABareOneStaysForPath) {
  auto r = parse(
      "stages:\n  - {name: a, type: exec, command: [./bin/x.sh, '{input}'], dest: /o, output: mid}\n"
      "  - {name: b, type: exec, command: [wc, -l], dest: /o}\n");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->stages[0].command[0], "/etc/sluice/bin/x.sh");
  EXPECT_EQ(r->stages[1].command[0], "wc");
}

TEST(PipelineFile, LoadsAFileAndNamesItInErrors) {
  const std::string dir = ::testing::TempDir() + "/pipeline-file-test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/ok.yaml") << exec_with("", "x");
    std::ofstream(dir + "/bad.yaml") << exec_with("    timeout: soon\n", "x");
  }
  auto ok = load_pipeline_file(dir + "/ok.yaml");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->path, dir + "/ok.yaml");
  auto bad = load_pipeline_file(dir + "/bad.yaml");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find(dir + "/bad.yaml:6: stage 'x': timeout"), std::string::npos)
      << bad.status().message();
}

TEST(PipelineFile, AMissingFileIsBadInputNamingIt) {
  auto r = load_pipeline_file("/nonexistent/pipeline.yaml");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(r.status().message().find("/nonexistent/pipeline.yaml"), std::string::npos);
}

TEST(PipelineFile, InvalidYamlNamesTheLine) {
  expect_error("stages:\n  - name: [unclosed\n", {"p.yaml:", "not valid YAML"});
}

TEST(PipelineFile, TheRootMustBeAMapping) {
  expect_error("- a\n- b\n", {"p.yaml:1:", "'stages' list"});
}

TEST(PipelineFile, UnknownRootKey) {
  expect_error("stages: []\nworkers: 2\n", {"p.yaml:2:", "workers: unknown key"});
}

TEST(PipelineFile, StagesMustBeANonEmptyList) {
  expect_error("stages: []\n", {"stages: must be a non-empty list"});
  expect_error("stages: {a: 1}\n", {"stages: must be a non-empty list"});
}

TEST(PipelineFile, AStageMustBeAMapping) {
  expect_error("stages:\n  - just-a-name\n", {"p.yaml:2:", "mapping"});
}

TEST(PipelineFile, NameIsRequired) {
  expect_error("stages:\n  - type: exec\n    command: [x]\n    dest: /o\n",
               {"p.yaml:2:", "stages[0]", "name is required"});
}

TEST(PipelineFile, BadStageName) {
  expect_error("stages:\n  - name: 'a b'\n    type: exec\n", {"p.yaml:2:", "'a b' is not a stage name"});
}

TEST(PipelineFile, TypeIsRequired) {
  expect_error("stages:\n  - name: a\n", {"stage 'a': type: is required"});
}

TEST(PipelineFile, UnknownType) {
  expect_error("stages:\n  - name: a\n    type: lambda\n", {"p.yaml:3:", "'lambda' is not a stage type"});
}

TEST(PipelineFile, ABuiltinStageMustBeParseEmbedOrIndex) {
  expect_error("stages:\n  - name: ocr\n    type: builtin\n", {"stage 'ocr'", "parse, embed or index"});
}

TEST(PipelineFile, ACustomStageCannotTakeABuiltinName) {
  expect_error(exec_with("", "parse"), {"stage 'parse'", "built-in stage's name"});
}

TEST(PipelineFile, UnknownKeyNamesItsLineAndTheKeysAllowed) {
  expect_error(exec_with("    retries: 3\n"),
               {"p.yaml:6:", "stage 't': retries: unknown key for a exec stage", "timeout"});
  // A key of another type is unknown too: a builtin stage takes no command.
  expect_error("stages:\n  - name: parse\n    type: builtin\n    command: [x]\n",
               {"p.yaml:4:", "command: unknown key"});
}

TEST(PipelineFile, BadTopicName) {
  expect_error(exec_with("    input: 'no spaces'\n"), {"p.yaml:6:", "stage 't': input:"});
}

TEST(PipelineFile, ReservedTopics) {
  expect_error(exec_with("    output: doc_results\n"),
               {"stage 't': output: 'doc_results' carries the pipeline's own"});
  expect_error(exec_with("    input: doc_upload.dlq\n"), {"stage 't': input:"});
}

TEST(PipelineFile, BadTimeout) {
  expect_error(exec_with("    timeout: 10x\n"), {"p.yaml:6:", "timeout: '10x' is not a positive duration"});
  expect_error(exec_with("    timeout: 0s\n"), {"timeout: '0s' is not a positive duration"});
}

TEST(PipelineFile, BadMaxOutputBytes) {
  expect_error(exec_with("    max_output_bytes: lots\n"),
               {"p.yaml:6:", "max_output_bytes: 'lots' is not a size"});
}

TEST(PipelineFile, BadWorkers) {
  expect_error(exec_with("    workers: 0\n"), {"workers: '0' is not a number of workers"});
  expect_error(exec_with("    workers: two\n"), {"workers: 'two'"});
}

TEST(PipelineFile, BadBoolean) {
  expect_error(exec_with("    cleanup_files: maybe\n"),
               {"p.yaml:6:", "cleanup_files: 'maybe' is not true or false"});
}

TEST(PipelineFile, DestIsRequired) {
  expect_error("stages:\n  - name: a\n    type: exec\n    command: [x]\n", {"stage 'a': dest: is required"});
}

TEST(PipelineFile, DestWithABadBucket) {
  expect_error("stages:\n  - {name: a, type: exec, command: [x], dest: 's3://Bad_Bucket/p'}\n",
               {"stage 'a': dest:", "is not a bucket name"});
}

TEST(PipelineFile, DestWithAnotherScheme) {
  expect_error("stages:\n  - {name: a, type: exec, command: [x], dest: 'http://h/p'}\n",
               {"dest: 'http://h/p' is neither s3://BUCKET/PREFIX nor a folder"});
}

TEST(PipelineFile, CommandIsRequired) {
  expect_error("stages:\n  - name: a\n    type: exec\n    dest: /o\n", {"stage 'a': command: is required"});
}

TEST(PipelineFile, ACommandStringNeedsShell) {
  expect_error("stages:\n  - {name: a, type: exec, command: 'wc -l {input}', dest: /o}\n",
               {"command: is a string: give a list", "shell: true"});
}

TEST(PipelineFile, AnEmptyCommandList) {
  expect_error("stages:\n  - {name: a, type: exec, command: [], dest: /o}\n",
               {"command: must be a non-empty list"});
}

TEST(PipelineFile, ShellTakesOneString) {
  expect_error("stages:\n  - {name: a, type: exec, shell: true, command: [wc, -l], dest: /o}\n",
               {"with shell: true, the command is one string"});
}

TEST(PipelineFile, UnknownPlaceholderInTheCommand) {
  expect_error("stages:\n  - {name: a, type: exec, command: [cp, '{input}', '{out}'], dest: /o}\n",
               {"p.yaml:2:", "stage 'a': command: unknown placeholder {out}"});
}

TEST(PipelineFile, UnknownPlaceholderInDestAndEnv) {
  expect_error("stages:\n  - {name: a, type: exec, command: [x], dest: '/o/{date}'}\n",
               {"dest: unknown placeholder {date}"});
  expect_error(exec_with("    env: {A: '{bucket}'}\n"), {"env: A: unknown placeholder {bucket}"});
}

TEST(PipelineFile, BadEnv) {
  expect_error(exec_with("    env: [A, B]\n"), {"env: must be a mapping"});
  expect_error(exec_with("    env: {'1X': y}\n"), {"env: '1X' is not a variable name"});
}

TEST(PipelineFile, APluginNeedsALibrary) {
  expect_error("stages:\n  - {name: p, type: plugin, dest: /o}\n", {"stage 'p': library: is required"});
}

TEST(PipelineFile, DuplicateNames) {
  expect_error(exec_with("    output: mid\n  - {name: t, type: exec, command: [x], dest: /o}\n"),
               {"p.yaml:7:", "stage 't': name: another stage has this name"});
}

TEST(PipelineFile, InputIsRequiredAfterAStageWithoutOutput) {
  expect_error(exec_with("  - {name: u, type: exec, command: [x], dest: /o}\n"),
               {"stage 'u': input: is required: the previous stage 't' has no output"});
  expect_error(
      "stages:\n  - {name: parse, type: builtin}\n  - {name: u, type: exec, command: [x], dest: /o}\n",
      {"stage 'u': input: is required"});
}

TEST(PipelineFile, OutputIsNotTheInput) {
  expect_error(exec_with("    input: loop\n    output: loop\n"),
               {"stage 't': output: is the stage's own input"});
}

TEST(Placeholders, ExpandAndQuote) {
  PlaceholderValues v{"/tmp/in/it's a.csv", "/tmp/out", "d1", "it's a", "data/it's a.csv"};
  auto plain = expand_placeholders("{input}|{output_dir}/{name}.txt|{doc_id}|{key}|{{literal}}", v, false);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(*plain, "/tmp/in/it's a.csv|/tmp/out/it's a.txt|d1|data/it's a.csv|{literal}");
  auto quoted = expand_placeholders("cat {input} > {output_dir}/x", v, true);
  ASSERT_TRUE(quoted.is_ok());
  EXPECT_EQ(*quoted, "cat '/tmp/in/it'\\''s a.csv' > '/tmp/out'/x");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_FALSE(expand_placeholders("{nope}", v, false).is_ok());
  EXPECT_FALSE(check_placeholders("a { b").is_ok());
  EXPECT_FALSE(check_placeholders("a } b").is_ok());
  EXPECT_TRUE(check_placeholders("awk '{{print $1}}'").is_ok());
}

TEST(Placeholders, DurationsAndSizes) {
  EXPECT_EQ(parse_duration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_duration("30"), std::chrono::seconds(30));
  EXPECT_EQ(parse_duration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(parse_duration("10m"), std::chrono::minutes(10));
  EXPECT_EQ(parse_duration("2h"), std::chrono::hours(2));
  EXPECT_FALSE(parse_duration("").has_value());
  EXPECT_FALSE(parse_duration("m").has_value());
  EXPECT_FALSE(parse_duration("5 days").has_value());
  EXPECT_EQ(parse_size("1048576"), 1048576u);
  EXPECT_EQ(parse_size("64KiB"), 64u << 10);
  EXPECT_EQ(parse_size("8M"), 8u << 20);
  EXPECT_EQ(parse_size("1GiB"), 1u << 30);
  EXPECT_EQ(parse_size("2GB"), 2ull << 30);
  EXPECT_FALSE(parse_size("1.5G").has_value());
  EXPECT_FALSE(parse_size("99999999999999999999").has_value());
  EXPECT_FALSE(parse_size("1XB").has_value());
}

}  // namespace
}  // namespace sluice::pipeline

namespace sluice::pipeline {
namespace {

// The example in docs/pipeline.md ("Custom stages") is a valid file.
TEST(PipelineFile, TheExampleInTheDocsIsValid) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/docs/pipeline.md");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string doc = buf.str();
  const size_t section = doc.find("## Custom stages");
  ASSERT_NE(section, std::string::npos);
  const size_t start = doc.find("```yaml\n", section);
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc.find("```", start + 8);
  auto r = parse_pipeline_file(doc.substr(start + 8, end - start - 8), "/srv", "docs example");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->stages.size(), 3u);
  EXPECT_EQ(r->stages[0].name, "transcode");
  EXPECT_EQ(r->stages[1].input, "transcoded");
  EXPECT_EQ(r->stages[2].library, "/srv/libmystage.so");
}

}  // namespace
}  // namespace sluice::pipeline
