// The folder scanner over real trees in a temp dir: order, globs, the file limit, links (loops,
// files reached twice, dangling), unreadable entries, special files and bad arguments.
#include "pipeline/scanner.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

class ScannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() / ("sluice-scan-" + std::to_string(::getpid()) + "-" + info->name());
    remove_tree();
    fs::create_directories(root_);
  }
  void TearDown() override { remove_tree(); }

  // chmod 000 entries would stop remove_all as a normal user: open everything up first.
  void remove_tree() {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(root_, ec))) return;
    ::chmod(root_.c_str(), 0755);
    for (auto it = fs::recursive_directory_iterator(root_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_symlink(ec)) continue;
      ::chmod(it->path().c_str(), it->is_directory(ec) ? 0755 : 0644);
    }
    fs::remove_all(root_, ec);
  }

  void write(const std::string& rel, const std::string& content = "x") {
    fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }

  // The standard tree: files at several depths, an empty dir and a .git directory.
  void standard_tree() {
    write("b.txt", "bbb");
    write("a.md", "aa");
    write("sub/c.pdf");
    write("sub/deep/d.pdf");
    write("sub/B.txt");
    write(".git/config");
    fs::create_directories(root_ / "empty");
  }

  ScanResult run(ScanOptions opts = {}, std::vector<std::string> paths = {}) {
    if (paths.empty()) paths.push_back(root_.string());
    return scan(paths, opts);
  }

  static std::vector<std::string> relatives(const ScanResult& r) {
    std::vector<std::string> out;
    for (const auto& f : r.files) out.push_back(f.relative);
    return out;
  }

  static std::string problems(const ScanResult& r) {
    std::string out;
    for (const auto& p : r.problems) out += p.path + ": " + p.error.to_string() + "\n";
    return out;
  }

  fs::path root_;
};

using Rel = std::vector<std::string>;

TEST_F(ScannerTest, ScanNestedDirsInStableSortedOrder) {
  standard_tree();
  std::vector<std::string> seen;
  auto r = scan({root_.string()}, {}, [&](const ScannedFile& f) { seen.push_back(f.relative); });
  EXPECT_TRUE(r.problems.empty()) << problems(r);
  EXPECT_FALSE(r.truncated);
  // Byte order: '.' < uppercase < lowercase; a directory's files come where its name sorts.
  Rel want = {".git/config", "a.md", "b.txt", "sub/B.txt", "sub/c.pdf", "sub/deep/d.pdf"};
  EXPECT_EQ(relatives(r), want);
  EXPECT_EQ(seen, want) << "on_file is called for every file, in order";
  for (const auto& f : r.files) {
    EXPECT_EQ(f.path, (root_ / f.relative).string());
    EXPECT_GT(f.mtime_ns, 0);
  }
  EXPECT_EQ(r.files[1].size, 2u);
  EXPECT_EQ(r.files[2].size, 3u);
  struct stat st;
  ASSERT_EQ(::stat((root_ / "b.txt").c_str(), &st), 0);
  EXPECT_EQ(r.files[2].mtime_ns, int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec);
  // Same tree, same order, every time.
  EXPECT_EQ(relatives(run()), want);
}

TEST_F(ScannerTest, ScanIncludeAndExcludeGlobs) {
  standard_tree();
  fs::create_symlink(root_ / "nowhere", root_ / ".git" / "dangling");  // reported only if .git is entered
  auto opts = [](Rel inc, Rel exc) {
    ScanOptions o;
    o.include = std::move(inc);
    o.exclude = std::move(exc);
    return o;
  };
  // A bare-name glob matches at any depth; `*` crosses '/'.
  EXPECT_EQ(relatives(run(opts({"*.pdf"}, {}))), (Rel{"sub/c.pdf", "sub/deep/d.pdf"}));
  EXPECT_EQ(relatives(run(opts({"sub/*"}, {}))), (Rel{"sub/B.txt", "sub/c.pdf", "sub/deep/d.pdf"}));
  EXPECT_EQ(relatives(run(opts({"sub/deep/*"}, {}))), (Rel{"sub/deep/d.pdf"}));
  EXPECT_EQ(relatives(run(opts({"*.md", "b.*"}, {".git"}))), (Rel{"a.md", "b.txt"}));
  // An exclude wins over an include.
  EXPECT_EQ(relatives(run(opts({"*.pdf"}, {"d.pdf"}))), (Rel{"sub/c.pdf"}));
  // Excluding a directory by name or by relative path (a trailing slash is fine): not entered.
  auto no_git = run(opts({}, {".git"}));
  EXPECT_EQ(relatives(no_git), (Rel{"a.md", "b.txt", "sub/B.txt", "sub/c.pdf", "sub/deep/d.pdf"}));
  EXPECT_TRUE(no_git.problems.empty()) << problems(no_git);
  EXPECT_EQ(relatives(run(opts({}, {".git/", "sub/deep"}))),
            (Rel{"a.md", "b.txt", "sub/B.txt", "sub/c.pdf"}));
  // Entering .git does find its dangling link.
  auto with_git = run();
  ASSERT_EQ(with_git.problems.size(), 1u) << problems(with_git);
  EXPECT_EQ(with_git.problems[0].path, (root_ / ".git" / "dangling").string());
}

TEST_F(ScannerTest, ScanMaxFilesTruncates) {
  standard_tree();
  ScanOptions o;
  o.max_files = 2;
  std::vector<std::string> seen;
  auto r = scan({root_.string()}, o, [&](const ScannedFile& f) { seen.push_back(f.relative); });
  EXPECT_EQ(relatives(r), (Rel{".git/config", "a.md"}));
  EXPECT_EQ(seen, relatives(r));
  EXPECT_TRUE(r.truncated);
  // Exactly as many files as the limit: nothing was left out.
  o.max_files = 6;
  auto all = run(o);
  EXPECT_EQ(all.files.size(), 6u);
  EXPECT_FALSE(all.truncated);
  // The limit spans all PATH arguments.
  o.max_files = 3;
  auto two = run(o, {(root_ / "sub").string(), (root_ / "a.md").string()});
  EXPECT_EQ(relatives(two), (Rel{"B.txt", "c.pdf", "deep/d.pdf"}));
  EXPECT_TRUE(two.truncated);
}

TEST_F(ScannerTest, ScanSymlinkLoopReportedNotFollowed) {
  write("dir/f.txt");
  write("top.txt");
  fs::create_symlink("..", root_ / "dir" / "link");     // back to root, on the current walk
  fs::create_symlink("/", root_ / "dir" / "to-slash");  // an ancestor of the PATH argument
  fs::create_symlink("self", root_ / "self");           // a link to itself
  auto r = run();
  EXPECT_EQ(relatives(r), (Rel{"dir/f.txt", "top.txt"}));
  ASSERT_EQ(r.problems.size(), 3u) << problems(r);
  EXPECT_EQ(r.problems[0].path, (root_ / "dir" / "link").string());
  EXPECT_EQ(r.problems[1].path, (root_ / "dir" / "to-slash").string());
  EXPECT_EQ(r.problems[2].path, (root_ / "self").string());
  for (const auto& p : r.problems) {
    EXPECT_EQ(p.error.error_class(), ErrorClass::kBadInput) << p.error.to_string();
    EXPECT_NE(p.error.message().find("loop"), std::string::npos) << p.error.message();
    EXPECT_NE(p.error.message().find("--exclude"), std::string::npos) << p.error.message();
  }
}

TEST_F(ScannerTest, ScanFileReachedTwiceListedOnce) {
  write("real/f.txt");
  write("real/g.txt");
  fs::create_symlink("real", root_ / "alias");        // a directory link (not a loop)
  fs::create_symlink("real/g.txt", root_ / "glink");  // a file link
  fs::create_hard_link(root_ / "real" / "g.txt", root_ / "zhard");
  auto r = run();
  EXPECT_TRUE(r.problems.empty()) << problems(r);
  // First sighting wins, in walk order; the path keeps the link, unresolved.
  EXPECT_EQ(relatives(r), (Rel{"alias/f.txt", "alias/g.txt"}));
  EXPECT_EQ(r.files[0].path, (root_ / "alias" / "f.txt").string());
  // Overlapping PATH arguments list a file once too.
  auto twice = run({}, {(root_ / "real").string(), root_.string()});
  EXPECT_EQ(relatives(twice), (Rel{"f.txt", "g.txt"}));
}

TEST_F(ScannerTest, ScanDanglingLinkIsAProblem) {
  write("ok.txt");
  fs::create_symlink(root_ / "gone.txt", root_ / "broken.txt");
  auto r = run();
  EXPECT_EQ(relatives(r), (Rel{"ok.txt"}));
  ASSERT_EQ(r.problems.size(), 1u) << problems(r);
  EXPECT_EQ(r.problems[0].path, (root_ / "broken.txt").string());
  EXPECT_EQ(r.problems[0].error.error_class(), ErrorClass::kBadInput);
  EXPECT_NE(r.problems[0].error.message().find("dangling"), std::string::npos) << problems(r);
  EXPECT_NE(r.problems[0].error.message().find("gone.txt"), std::string::npos) << problems(r);
  ScanOptions o;
  o.exclude = {"broken.*"};
  EXPECT_TRUE(run(o).problems.empty());
  // Given as the PATH itself.
  auto direct = run({}, {(root_ / "broken.txt").string()});
  ASSERT_EQ(direct.problems.size(), 1u);
  EXPECT_NE(direct.problems[0].error.message().find("dangling"), std::string::npos);
}

TEST_F(ScannerTest, ScanUnreadableFileAndDirectory) {
  write("a.txt");
  write("secret.txt");
  write("locked/inner.txt");
  write("z.txt");
  ::chmod((root_ / "secret.txt").c_str(), 0);
  ::chmod((root_ / "locked").c_str(), 0);
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: permissions do not stop reads";
  auto r = run();
  EXPECT_EQ(relatives(r), (Rel{"a.txt", "z.txt"})) << "the walk goes on past what it cannot read";
  ASSERT_EQ(r.problems.size(), 2u) << problems(r);
  EXPECT_EQ(r.problems[0].path, (root_ / "locked").string());
  EXPECT_EQ(r.problems[1].path, (root_ / "secret.txt").string());
  for (const auto& p : r.problems) {
    EXPECT_EQ(p.error.error_class(), ErrorClass::kBadInput);
    EXPECT_NE(p.error.message().find("permission denied reading"), std::string::npos) << p.error.message();
    EXPECT_NE(p.error.message().find(p.path), std::string::npos) << p.error.message();
    EXPECT_NE(p.error.message().find("check its permissions or --exclude it"), std::string::npos);
  }
  // Excluded, they are no problem; an unreadable directory given as PATH is one.
  ScanOptions o;
  o.exclude = {"secret.txt", "locked"};
  EXPECT_TRUE(run(o).problems.empty());
  auto direct = run({}, {(root_ / "locked").string()});
  ASSERT_EQ(direct.problems.size(), 1u);
  EXPECT_TRUE(direct.files.empty());
}

TEST_F(ScannerTest, ScanFifoIsAProblem) {
  write("a.txt");
  ASSERT_EQ(::mkfifo((root_ / "pipe").c_str(), 0644), 0);
  auto r = run();  // must not block opening the FIFO
  EXPECT_EQ(relatives(r), (Rel{"a.txt"}));
  ASSERT_EQ(r.problems.size(), 1u) << problems(r);
  EXPECT_EQ(r.problems[0].path, (root_ / "pipe").string());
  EXPECT_EQ(r.problems[0].error.error_class(), ErrorClass::kBadInput);
  EXPECT_NE(r.problems[0].error.message().find("FIFO"), std::string::npos) << problems(r);
  // Left out by the globs, it is not reported.
  ScanOptions o;
  o.include = {"*.txt"};
  EXPECT_TRUE(run(o).problems.empty());
}

TEST_F(ScannerTest, ScanMissingPathReportedAndWalkGoesOn) {
  write("a.txt");
  std::string missing = (root_ / "no" / "such").string();
  auto r = run({}, {missing, root_.string(), ""});
  EXPECT_EQ(relatives(r), (Rel{"a.txt"}));
  ASSERT_EQ(r.problems.size(), 2u) << problems(r);
  EXPECT_EQ(r.problems[0].path, missing);
  EXPECT_EQ(r.problems[0].error.code(), Code::kNotFound);
  EXPECT_EQ(r.problems[0].error.error_class(), ErrorClass::kBadInput);
  EXPECT_NE(r.problems[0].error.message().find("does not exist"), std::string::npos);
  EXPECT_EQ(r.problems[1].error.error_class(), ErrorClass::kBadInput);  // the empty argument
}

TEST_F(ScannerTest, ScanSingleFileAsPath) {
  write("sub/file.md", "hello");
  // Given with "." and ".." in it: the path comes back lexically normal.
  auto r = run({}, {root_.string() + "/./sub/../sub/file.md"});
  ASSERT_EQ(r.files.size(), 1u) << problems(r);
  EXPECT_EQ(r.files[0].path, (root_ / "sub" / "file.md").string());
  EXPECT_EQ(r.files[0].relative, "file.md");
  EXPECT_EQ(r.files[0].size, 5u);
  // Globs apply to it by name.
  ScanOptions o;
  o.include = {"*.pdf"};
  EXPECT_TRUE(run(o, {(root_ / "sub" / "file.md").string()}).files.empty());
  // A relative PATH is made absolute against the working directory.
  fs::path old = fs::current_path();
  fs::current_path(root_);
  auto rel = run({}, {"sub"});
  std::error_code ec;
  fs::current_path(old, ec);
  ASSERT_EQ(rel.files.size(), 1u) << problems(rel);
  EXPECT_EQ(rel.files[0].path, (root_ / "sub" / "file.md").string());
  EXPECT_EQ(rel.files[0].relative, "file.md");
}

// The filter bucket listings use (sources.cc) decides as the walk does.
TEST(PathFilter, MeansTheSameOnKeysAsOnFolders) {
  PathFilter f({"*.csv", "*.md"}, {"drafts/", "tmp", "*-old.csv"});
  EXPECT_TRUE(f.selects_key("a.csv"));
  EXPECT_TRUE(f.selects_key("2024/08/a.csv"));
  EXPECT_TRUE(f.selects_key("2024/08/readme.md"));
  EXPECT_FALSE(f.selects_key("2024/08/a.pdf")) << "no include matches";
  EXPECT_FALSE(f.selects_key("drafts/a.csv")) << "a trailing slash names a directory, as on folders";
  EXPECT_FALSE(f.selects_key("x/drafts/a.csv")) << "an excluded folder anywhere above";
  EXPECT_FALSE(f.selects_key("x/tmp/y/a.csv"));
  EXPECT_TRUE(f.selects_key("x/tmpfiles/a.csv")) << "a glob matches a whole component";
  EXPECT_FALSE(f.selects_key("x/b-old.csv")) << "an exclude wins over an include";
  EXPECT_TRUE(f.excluded("drafts"));
  EXPECT_TRUE(f.selects_file("drafts.csv"));

  PathFilter all({}, {});
  EXPECT_TRUE(all.selects_key("any/thing"));
  EXPECT_FALSE(all.excluded("any"));
}

}  // namespace
}  // namespace sluice::pipeline
