// Plugin stages: the test plugin (test_plugin.c, built as a shared library) loaded through the C
// ABI, its outputs uploaded as an exec stage's are, its error codes mapped to failure classes, and
// a bad library refused at start with a clear message.
#include "pipeline/plugin_stage.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/sources.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

class PluginStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::path(::testing::TempDir()) / ("plugin-stage-" + random_id().substr(0, 8))).string();
    fs::create_directories(root_ + "/src");
    ctx_.settings.data_dir = root_ + "/data";
    ctx_.sources = &sources_;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  StageSpec spec(const std::string& config = "suffix=.up") {
    StageSpec s;
    s.name = "upper";
    s.type = StageType::kPlugin;
    s.input = "doc_upload";
    s.library = SLUICE_TEST_PLUGIN;
    s.config = config;
    s.dest = root_ + "/dest";
    s.cleanup_on_error = true;
    return s;
  }

  Outcome run(const StageDef& def, const std::string& name, const std::string& bytes) {
    std::ofstream(root_ + "/src/" + name) << bytes;
    Task t;
    t.source = file_source(root_ + "/src/" + name);
    t.doc_id = doc_id_for(t.source.uri);
    value_ = to_json(t);
    queue::Message m;
    m.value = value_;
    return def.process(m);
  }

  std::string root_;
  std::string value_;
  SourceFetcher sources_{S3Config{}, ""};
  StageContext ctx_;
};

TEST_F(PluginStageTest, ProcessesInProcessAndUploadsItsOutput) {
  auto def = plugin_stage(ctx_, spec());
  ASSERT_TRUE(def.is_ok()) << def.status().to_string();
  Outcome o = run(*def, "note.txt", "hello 世界\n");
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  ASSERT_EQ(o.outputs.size(), 1u);
  auto r = parse_result(o.outputs[0].value);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].uri, "file://" + root_ + "/dest/note.up");
  std::ifstream in(root_ + "/dest/note.up");
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "HELLO 世界\n");
}

TEST_F(PluginStageTest, ItsErrorCodesAreFailureClassesWithItsMessage) {
  auto def = plugin_stage(ctx_, spec());
  ASSERT_TRUE(def.is_ok()) << def.status().to_string();
  Outcome bad = run(*def, "a.txt", "FAIL here");
  EXPECT_EQ(bad.status.error_class(), ErrorClass::kBadInput);
  EXPECT_NE(bad.status.message().find("starts with FAIL"), std::string::npos) << bad.status.message();
  Outcome again = run(*def, "b.txt", "RETRY later");
  EXPECT_EQ(again.status.error_class(), ErrorClass::kRetriable);
  EXPECT_NE(again.status.message().find("try " + root_ + "/src/b.txt again"), std::string::npos)
      << again.status.message();
}

TEST_F(PluginStageTest, AMissingLibraryIsBadInputAtStart) {
  StageSpec s = spec();
  s.library = root_ + "/libnothere.so";
  auto def = plugin_stage(ctx_, s);
  ASSERT_FALSE(def.is_ok());
  EXPECT_EQ(def.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(def.status().message().find("stage 'upper'"), std::string::npos);
  EXPECT_NE(def.status().message().find("cannot load the plugin library " + s.library), std::string::npos)
      << def.status().message();
}

TEST_F(PluginStageTest, ALibraryWithoutTheSymbolsIsBadInputNamingTheSymbol) {
  StageSpec s = spec();
  s.library = "libm.so.6";  // a real library, not a plugin
  auto def = plugin_stage(ctx_, s);
  ASSERT_FALSE(def.is_ok());
  EXPECT_EQ(def.status().error_class(), ErrorClass::kBadInput);
  EXPECT_NE(def.status().message().find("does not export sluice_stage_init"), std::string::npos)
      << def.status().message();
}

TEST_F(PluginStageTest, AFailedInitIsBadInputAtStart) {
  auto def = plugin_stage(ctx_, spec("refuse"));
  ASSERT_FALSE(def.is_ok());
  EXPECT_NE(def.status().message().find("refused its config"), std::string::npos) << def.status().message();
}

}  // namespace
}  // namespace sluice::pipeline
