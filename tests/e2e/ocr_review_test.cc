// End-to-end tests of OCR and the quality gate with the built `sluice` binary: images and a scanned
// (image-only) PDF made from pages of a real manual are ingested and found by search; `--ocr never`,
// a corrupt image and a missing language pack fail the way the user is told; a noise image and a
// mostly blank scan are held on doc_review with their reasons, listed by `sluice review list`, and
// `sluice review release` puts them through embed and index to a success result.
//
// SLUICE_KEEP_TEST_DIRS=1 keeps the data directories for a look after a failure.
#include <gtest/gtest.h>
#include <leptonica/allheaders.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "e2e/sluice_runner.h"
#include "support/ocr_accuracy.h"

namespace {

namespace fs = std::filesystem;
using namespace sluice::test;
using nlohmann::json;

json last_json(const std::string& out) {
  auto lines = split_lines(out);
  return lines.empty() ? json() : json::parse(lines.back(), nullptr, false);
}

// The result notifications on doc_results, oldest first (waits until there are `n`).
std::vector<json> results(const std::string& data, size_t n, int timeout_s = 60) {
  RunOptions o;
  o.kill_after = std::chrono::milliseconds((timeout_s + 30) * 1000);
  RunResult r = run_sluice({"tail", "doc_results", "--data", data, "--from-beginning", "--max",
                            std::to_string(n), "--timeout", std::to_string(timeout_s)},
                           o);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  std::vector<json> out;
  for (const std::string& line : split_lines(r.out))
    out.push_back(json::parse(json::parse(line)["value"].get<std::string>()));
  return out;
}

class OcrE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kEnglishPdf)) << kEnglishPdf << " is missing: install " << kEnglishPdfPackage;
    docs_ = dir_.path() + "/docs";
    data_ = dir_.path() + "/data";
    work_ = dir_.path() + "/work";
    fs::create_directories(docs_);
    fs::create_directories(work_);
  }

  // Page `page` of the English manual rendered at 300 dpi, as `format`, copied into docs as `name`.
  std::string add_page(int page, const std::string& name, const std::string& format = "png") {
    const std::string img = render_page(kEnglishPdf, page, work_ + "/p" + std::to_string(page), format);
    EXPECT_FALSE(img.empty());
    fs::copy_file(img, docs_ + "/" + name, fs::copy_options::overwrite_existing);
    return docs_ + "/" + name;
  }

  // An image-only PDF of the given pages of the English manual (0: a blank page).
  std::string add_scanned_pdf(const std::vector<int>& pages, const std::string& name) {
    Pixa* pixa = pixaCreate(static_cast<int>(pages.size()));
    for (int page : pages) {
      Pix* pix = nullptr;
      if (page == 0) {
        pix = pixCreate(2550, 3300, 8);
        pixSetAll(pix);  // white
      } else {
        const std::string img = render_page(kEnglishPdf, page, work_ + "/s" + std::to_string(page));
        pix = pixRead(img.c_str());
      }
      EXPECT_NE(pix, nullptr);
      pixaAddPix(pixa, pix, L_INSERT);
    }
    const std::string out = docs_ + "/" + name;
    EXPECT_EQ(pixaConvertToPdf(pixa, 300, 1.0, L_FLATE_ENCODE, 0, "scan", out.c_str()), 0);
    pixaDestroy(&pixa);
    return out;
  }

  std::string add_noise(const std::string& name) {
    Pix* pix = pixCreate(800, 500, 8);
    std::mt19937 rng(7);
    for (int y = 0; y < 500; ++y)
      for (int x = 0; x < 800; ++x) pixSetPixel(pix, x, y, rng() % 256);
    pixSetResolution(pix, 300, 300);
    const std::string out = docs_ + "/" + name;
    EXPECT_EQ(pixWrite(out.c_str(), pix, IFF_PNG), 0);
    pixDestroy(&pix);
    return out;
  }

  RunResult ingest(std::vector<std::string> args, RunOptions opts = {}) {
    args.insert(args.begin(), {"ingest", docs_, "--data", data_, "--progress", "json"});
    opts.kill_after = std::chrono::milliseconds(240000);
    return run_sluice(args, opts);
  }

  std::vector<json> search(const std::string& query) {
    RunResult r = run_sluice({"search", query, "--data", data_, "--json", "-k", "3"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    std::vector<json> hits;
    for (const std::string& line : split_lines(r.out)) hits.push_back(json::parse(line));
    return hits;
  }

  TempDir dir_{"sluice-ocr"};
  std::string docs_, data_, work_;
};

TEST_F(OcrE2e, ImagesAndAScannedPdfAreSearchable) {
  add_page(5, "structure.png");
  add_page(5, "structure.jpg", "jpeg");
  add_scanned_pdf({20}, "scan.pdf");
  RunResult r = ingest({});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json s = last_json(r.out);
  EXPECT_EQ(s["ok"], 3) << s.dump();
  EXPECT_EQ(s["review"], 0) << s.dump();

  std::vector<json> hits = search("The parser is case sensitive. The comments begin with");
  ASSERT_FALSE(hits.empty());
  const std::string top = fs::path(hits[0]["source"].get<std::string>()).filename();
  EXPECT_TRUE(top == "structure.png" || top == "structure.jpg") << hits[0].dump();

  // Every result carries how OCR read the document.
  for (const json& res : results(data_, 3)) {
    EXPECT_EQ(res["status"], "success") << res.dump();
    ASSERT_TRUE(res.contains("ocr")) << res.dump();
    EXPECT_EQ(res["ocr"]["pages"], 1) << res.dump();
    EXPECT_GT(res["ocr"]["mean_confidence"].get<double>(), 80) << res.dump();
    ASSERT_EQ(res["ocr"]["page_confidence"].size(), 1u);
    EXPECT_EQ(res["ocr"]["page_confidence"][0]["page"], 1);
  }
  bool ok = false;
  const std::string page20 = pdf_page_text(kEnglishPdf, 20, &ok);
  ASSERT_TRUE(ok);
  // A line of page 20's text finds the scanned PDF, page 1.
  std::string probe = page20.substr(page20.find('\n', page20.size() / 3) + 1);
  probe = probe.substr(0, probe.find('\n'));
  hits = search(probe);
  ASSERT_FALSE(hits.empty()) << probe;
  EXPECT_EQ(fs::path(hits[0]["source"].get<std::string>()).filename(), "scan.pdf") << probe << "\n"
                                                                                   << hits[0].dump();
  EXPECT_EQ(hits[0]["page"], 1);
}

TEST_F(OcrE2e, OcrNeverFailsImagesWithBadInput) {
  const std::string png = add_page(5, "page.png");
  RunResult r = ingest({"--ocr", "never"});
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_NE(r.err.find("\"error_class\":\"bad_input\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is a PNG image, whose text only OCR can read, and OCR is off (--ocr never"),
            std::string::npos)
      << r.err;
  // The environment says the same.
  RunOptions env;
  env.env = {{"SLUICE_OCR", "never"}};
  fs::remove_all(data_);
  EXPECT_EQ(ingest({}, env).exit_code, 3);
}

TEST_F(OcrE2e, CorruptImageIsBadInput) {
  const std::string png = add_page(5, "page.png");
  std::ifstream in(png, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  std::ofstream(png, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  RunResult r = ingest({});
  EXPECT_EQ(r.exit_code, 3) << describe(r);
  EXPECT_NE(r.err.find("\"error_class\":\"bad_input\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("corrupt or truncated PNG image"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("libpng"), std::string::npos) << r.err;  // nothing leaks from the libraries
}

TEST_F(OcrE2e, MissingLanguageIsAClearErrorAtStart) {
  add_page(5, "page.png");
  RunResult r = ingest({"--ocr-lang", "eng+xyz_nope"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("OCR language 'xyz_nope' is not installed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("install tesseract-ocr-xyz-nope"), std::string::npos) << r.err;

  // A machine with only the English pack is told which package the default needs.
  const fs::path tessdata = fs::path(work_) / "tessdata";
  fs::create_directories(tessdata);
  fs::create_symlink("/usr/share/tesseract-ocr/5/tessdata/eng.traineddata", tessdata / "eng.traineddata");
  RunOptions o;
  o.env = {{"TESSDATA_PREFIX", tessdata.string()}};
  r = ingest({}, o);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("install tesseract-ocr-chi-sim"), std::string::npos) << r.err;
  // ...and works with the language it has.
  EXPECT_EQ(ingest({"--ocr-lang", "eng"}, o).exit_code, 0);
}

TEST_F(OcrE2e, QualityGateHoldsDocumentsUntilReleased) {
  add_page(5, "good.png");
  add_noise("noise.png");
  add_scanned_pdf({5, 0, 0}, "blank.pdf");  // two of its three pages are empty
  RunResult r = ingest({});
  ASSERT_EQ(r.exit_code, 0) << describe(r);  // held is not failed
  json s = last_json(r.out);
  EXPECT_EQ(s["ok"], 1) << s.dump();
  EXPECT_EQ(s["review"], 2) << s.dump();
  EXPECT_NE(r.err.find("\"event\":\"review\""), std::string::npos) << r.err;

  // One result each: success for the good page, review (with the reason) for the others.
  std::map<std::string, json> by_source;
  for (const json& res : results(data_, 3))
    by_source[fs::path(res["source"]["key"].get<std::string>()).filename()] = res;
  ASSERT_EQ(by_source.size(), 3u);
  EXPECT_EQ(by_source["good.png"]["status"], "success");
  EXPECT_EQ(by_source["noise.png"]["status"], "review");
  EXPECT_NE(by_source["noise.png"]["reason"].get<std::string>().find("held for review: mean OCR confidence"),
            std::string::npos)
      << by_source["noise.png"].dump();
  EXPECT_LT(by_source["noise.png"]["ocr"]["mean_confidence"].get<double>(), 60);
  EXPECT_EQ(by_source["blank.pdf"]["status"], "review");
  EXPECT_EQ(by_source["blank.pdf"]["empty_pages"], 2);
  EXPECT_NE(by_source["blank.pdf"]["reason"].get<std::string>().find(
                "2 of 3 pages have no text (66.7%), over the maximum of 50.0% (--max-empty-page-ratio)"),
            std::string::npos)
      << by_source["blank.pdf"].dump();

  // The listing.
  RunResult list = run_sluice({"review", "list", "--data", data_, "--json"});
  ASSERT_EQ(list.exit_code, 0) << describe(list);
  auto lines = split_lines(list.out);
  ASSERT_EQ(lines.size(), 2u) << list.out;
  std::string noise_id;
  for (const std::string& line : lines) {
    json h = json::parse(line);
    EXPECT_EQ(h["released"], false);
    EXPECT_EQ(h["topic"], "doc_review");
    if (fs::path(h["source"].get<std::string>()).filename() == "noise.png") {
      noise_id = h["doc_id"];
      EXPECT_NE(h["reason"].get<std::string>().find("below the minimum of 60"), std::string::npos)
          << h.dump();
    }
  }
  ASSERT_FALSE(noise_id.empty()) << list.out;
  RunResult table = run_sluice({"review", "list", "--data", data_});
  EXPECT_EQ(table.exit_code, 0) << describe(table);
  EXPECT_NE(table.out.find("REASON"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("noise.png"), std::string::npos) << table.out;
  EXPECT_NE(table.err.find("2 held documents, 0 released"), std::string::npos) << table.err;

  // Releasing one sends it on; a worker with embed and index finishes it.
  RunResult rel = run_sluice({"review", "release", "--data", data_, "--doc", noise_id});
  ASSERT_EQ(rel.exit_code, 0) << describe(rel);
  EXPECT_EQ(rel.out, "released 1 held document to doc_parsed (embed and index take them from there)\n");
  BackgroundSluice background({"worker", "--data", data_, "--stages", "embed,index"},
                              {.kill_after = std::chrono::milliseconds(120000)});
  std::vector<json> all = results(data_, 4);
  const RunResult& worker = background.stop();
  EXPECT_EQ(worker.exit_code, 0) << describe(worker);
  ASSERT_EQ(all.size(), 4u);
  const json& released = all.back();
  EXPECT_EQ(released["doc_id"], noise_id);
  EXPECT_EQ(released["status"], "success") << released.dump();
  EXPECT_NE(released["reason"].get<std::string>().find("released from review: mean OCR confidence"),
            std::string::npos)
      << released.dump();
  EXPECT_EQ(released["trace_id"], by_source["noise.png"]["trace_id"]);  // the same run

  // Marked released; not sent twice; an unknown doc is refused.
  list = run_sluice({"review", "list", "--data", data_, "--json"});
  for (const std::string& line : split_lines(list.out)) {
    json h = json::parse(line);
    EXPECT_EQ(h["released"], h["doc_id"] == noise_id) << h.dump();
  }
  rel = run_sluice({"review", "release", "--data", data_, "--doc", noise_id});
  EXPECT_EQ(rel.exit_code, 0) << describe(rel);
  EXPECT_NE(rel.err.find("its 1 held document was already released; not sent again"), std::string::npos)
      << rel.err;
  EXPECT_EQ(rel.out, "released 0 held documents\n");
  rel = run_sluice({"review", "release", "--data", data_, "--doc", "nope"});
  EXPECT_NE(rel.exit_code, 0);
  EXPECT_NE(rel.err.find("no held document for doc 'nope' in doc_review (see `sluice review list`)"),
            std::string::npos)
      << rel.err;
  rel = run_sluice({"review", "release", "--data", data_});
  EXPECT_EQ(rel.exit_code, 2) << describe(rel);
}

TEST_F(OcrE2e, GateThresholdsAreSettings) {
  add_noise("noise.png");
  // Off: the noise goes to the index like any document.
  RunResult r = ingest({"--min-ocr-confidence", "0"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(last_json(r.out)["ok"], 1) << r.out;
  RunResult bad = ingest({"--max-empty-page-ratio", "1.5"});
  EXPECT_EQ(bad.exit_code, 2) << describe(bad);
  EXPECT_NE(bad.err.find("max_empty_page_ratio '1.5' must be a number from 0 to 1"), std::string::npos)
      << bad.err;
}

}  // namespace
