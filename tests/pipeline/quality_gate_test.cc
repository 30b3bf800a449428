// The OCR settings and the parse stage's quality gate (stages.h): what holds a document and the
// reason it gives; and the OCR figures travelling in the Work envelope and the result notification.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "parse/document.h"
#include "pipeline/envelope.h"
#include "pipeline/settings.h"
#include "pipeline/stages.h"

namespace sluice::pipeline {
namespace {

const char* no_env(const char*) {
  return nullptr;
}

parse::ParsedDocument ocr_doc(std::vector<parse::OcrPage> pages, int total_pages, int empty) {
  parse::ParsedDocument d;
  d.format = "pdf";
  d.pages = total_pages;
  d.empty_pages = empty;
  d.ocr = std::move(pages);
  return d;
}

TEST(OcrSettings, DefaultsAndLayers) {
  auto d = resolve_settings({}, "/data", no_env);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->ocr.mode, parse::OcrMode::kAuto);
  EXPECT_EQ(d->ocr.languages, "eng+chi_sim");
  EXPECT_EQ(d->ocr.dpi, 300);
  EXPECT_EQ(d->min_ocr_confidence, 60);
  EXPECT_DOUBLE_EQ(d->max_empty_page_ratio, 0.5);

  std::map<std::string, std::string> env = {{"SLUICE_OCR", "never"}, {"SLUICE_OCR_LANG", "chi_sim"}};
  auto getenv = [&env](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto e = resolve_settings({{"ocr", "always"}, {"max_empty_page_ratio", "0.25"}}, "/data", getenv);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(e->ocr.mode, parse::OcrMode::kAlways);  // the flag wins over the environment
  EXPECT_EQ(e->ocr.languages, "chi_sim");
  EXPECT_DOUBLE_EQ(e->max_empty_page_ratio, 0.25);

  for (const char* bad : {"-0.1", "1.01", "half", "", "0.5x", "nan"}) {
    auto r = resolve_settings({{"max_empty_page_ratio", bad}}, "/data", no_env);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().error_class(), ErrorClass::kBadInput);
    EXPECT_NE(r.status().message().find("must be a number from 0 to 1"), std::string::npos)
        << r.status().message();
  }
  EXPECT_FALSE(resolve_settings({{"ocr", "sometimes"}}, "/data", no_env).is_ok());
  EXPECT_FALSE(resolve_settings({{"min_ocr_confidence", "101"}}, "/data", no_env).is_ok());
}

TEST(QualityGate, ConfidenceAndEmptyPages) {
  PipelineSettings s;  // 60, 0.5
  // Text documents (no OCR, no pages) always pass.
  EXPECT_EQ(quality_gate_reason(parse::ParsedDocument{}, s), "");
  // Confident OCR passes; a low mean is held (empty OCR pages do not pull the mean down).
  EXPECT_EQ(quality_gate_reason(ocr_doc({{1, 91, false}, {2, 0, true}}, 2, 1), s), "");
  EXPECT_EQ(quality_gate_reason(ocr_doc({{1, 50, false}, {2, 61, false}}, 2, 0), s),
            "mean OCR confidence 55.5 is below the minimum of 60 (--min-ocr-confidence)");
  // Half the pages empty is allowed; more is not.
  EXPECT_EQ(quality_gate_reason(ocr_doc({}, 4, 2), s), "");
  EXPECT_EQ(quality_gate_reason(ocr_doc({}, 4, 3), s),
            "3 of 4 pages have no text (75.0%), over the maximum of 50.0% (--max-empty-page-ratio)");
  // Both reasons at once.
  EXPECT_EQ(
      quality_gate_reason(ocr_doc({{1, 20, false}, {2, 0, true}, {3, 0, true}}, 3, 2), s),
      "mean OCR confidence 20.0 is below the minimum of 60 (--min-ocr-confidence); 2 of 3 pages have no "
      "text (66.7%), over the maximum of 50.0% (--max-empty-page-ratio)");
  // Off.
  s.min_ocr_confidence = 0;
  s.max_empty_page_ratio = 1;
  EXPECT_EQ(quality_gate_reason(ocr_doc({{1, 1, false}, {2, 0, true}}, 2, 2), s), "");
}

TEST(QualityGate, OcrFiguresTravelInTheEnvelopeAndTheResult) {
  Work w;
  w.task.doc_id = "d1";
  w.task.source.uri = "file:///scan.pdf";
  w.version = "v1";
  w.pages = 3;
  w.empty_pages = 1;
  w.ocr = OcrSummary{2, 77.5, {{1, 80.0}, {3, 75.0}}};
  w.review_reason = "mean OCR confidence 77.5 is below the minimum of 80 (--min-ocr-confidence)";
  // decode_work's payload is a view into the encoded message, which must outlive it.
  const std::string encoded = encode_work(w, "payload");
  auto back = decode_work(encoded);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->first.empty_pages, 1);
  ASSERT_TRUE(back->first.ocr.has_value());
  EXPECT_EQ(*back->first.ocr, *w.ocr);
  EXPECT_EQ(back->first.review_reason, w.review_reason);
  EXPECT_EQ(back->second, "payload");

  ResultNotification r;
  r.status = ResultStatus::kReview;
  r.doc_id = "d1";
  r.reason = "held for review: " + w.review_reason;
  r.empty_pages = 1;
  r.ocr = w.ocr;
  const std::string j = to_json(r);
  EXPECT_NE(j.find("\"status\":\"review\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"ocr\":{\"pages\":2,\"mean_confidence\":77.5,\"page_confidence\":[{\"page\":1,"
                   "\"confidence\":80.0},"
                   "{\"page\":3,\"confidence\":75.0}]}"),
            std::string::npos)
      << j;
  auto parsed = parse_result(j);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->status, ResultStatus::kReview);
  EXPECT_EQ(parsed->empty_pages, 1);
  EXPECT_EQ(parsed->ocr, w.ocr);
  EXPECT_EQ(parsed->reason, r.reason);
  // A result without OCR says nothing of it.
  ResultNotification plain;
  EXPECT_EQ(to_json(plain).find("\"ocr\""), std::string::npos);
}

}  // namespace
}  // namespace sluice::pipeline
