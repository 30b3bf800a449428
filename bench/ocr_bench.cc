// ocr_bench: OCR seconds per page, sluice's in-process OCR (parse_file on a PNG: decode, gray, one
// tesseract engine per thread) beside the `tesseract` command on the same images in the same run,
// with 1 and 2 threads (sluice: threads sharing the pages; tesseract: as many processes, each given
// its share as a list file, so that it loads its models once as sluice's engines do); and the
// character accuracy of sluice's text on clean English pages against the PDF's own text layer.
//
// Pages: pages of the libtasn1 manual (English, tests/support/ocr_accuracy.h) rendered with
// `pdftoppm -gray -r 300`, and one page of the Chinese maintainers' guide for a Chinese figure.
// Every run starts fresh threads or processes, so model loading is inside both figures alike. The
// command runs with OMP_THREAD_LIMIT=1, as sluice runs tesseract (ocr.h: one OpenMP thread per
// engine); its default (OpenMP on) is measured once too, for the record.
//
// Output: JSON lines — {"type":"machine",...}, one {"type":"run",...} per repeat and thread count,
// then {"type":"summary",...} with the medians, the ratio (tesseract's seconds per page over
// sluice's: >= 1 means sluice is at least as fast) and the accuracy. bench/run_ocr_bench.sh judges
// the targets.
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "parse/parser.h"
#include "support/ocr_accuracy.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;
using sluice::bench::Clock;
using sluice::bench::seconds_since;

std::string all_text(const sluice::parse::ParsedDocument& doc) {
  std::string out;
  for (const auto& b : doc.blocks) out += b.text + "\n";
  return out;
}

// sluice: `threads` fresh threads share the images; returns seconds and fills texts[i].
double run_sluice(const std::vector<std::string>& images, int threads, const std::string& lang,
                  std::vector<std::string>* texts, bool* ok) {
  texts->assign(images.size(), "");
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  sluice::parse::ParseOptions opts;
  opts.ocr.languages = lang;
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < images.size();) {
        auto r = sluice::parse::parse_file(images[i], opts);
        if (!r.is_ok()) {
          std::fprintf(stderr, "ocr_bench: %s: %s\n", images[i].c_str(), r.status().to_string().c_str());
          failed = true;
          continue;
        }
        (*texts)[i] = all_text(*r);
      }
    });
  }
  for (auto& t : pool) t.join();
  *ok = !failed;
  return seconds_since(t0);
}

// The tesseract command: `procs` processes at once, each reading a list file of its share.
double run_cli(const std::vector<std::string>& images, int procs, const std::string& lang,
               const std::string& dir, bool omp_single, std::vector<std::string>* texts, bool* ok) {
  texts->assign(images.size(), "");
  std::vector<std::vector<size_t>> shares(procs);
  for (size_t i = 0; i < images.size(); ++i) shares[i % procs].push_back(i);
  std::vector<std::thread> runners;
  std::atomic<bool> failed{false};
  const auto t0 = Clock::now();
  for (int p = 0; p < procs; ++p) {
    runners.emplace_back([&, p] {
      const std::string list = dir + "/list" + std::to_string(p) + ".txt";
      {
        std::ofstream f(list);
        for (size_t i : shares[p]) f << images[i] << "\n";
      }
      const std::string out = dir + "/cli" + std::to_string(p);
      const std::string cmd = std::string(omp_single ? "OMP_THREAD_LIMIT=1 " : "") + "tesseract " +
                              sluice::test::shell_quote(list) + " " + sluice::test::shell_quote(out) +
                              " -l " + sluice::test::shell_quote(lang) + " >/dev/null 2>&1";
      if (std::system(cmd.c_str()) != 0) failed = true;
    });
  }
  for (auto& t : runners) t.join();
  const double secs = seconds_since(t0);
  // A list's pages come out in one text file, each page ending in a form feed.
  for (int p = 0; p < procs; ++p) {
    std::ifstream f(dir + "/cli" + std::to_string(p) + ".txt");
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t pos = 0;
    for (size_t i : shares[p]) {
      const size_t ff = all.find('\f', pos);
      (*texts)[i] = all.substr(pos, ff == std::string::npos ? std::string::npos : ff - pos);
      pos = ff == std::string::npos ? all.size() : ff + 1;
    }
  }
  *ok = !failed;
  return secs;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

void print(const ordered_json& j) {
  std::printf("%s\n", j.dump(-1, ' ', false, ordered_json::error_handler_t::replace).c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"OCR seconds per page: sluice beside the tesseract command"};
  int pages = 6, first_page = 5, repeats = 3;
  std::string lang = "eng+chi_sim", work_base = fs::temp_directory_path().string();
  std::vector<int> thread_counts = {1, 2};
  bool quick = false;
  app.add_option("--pages", pages, "English pages of the libtasn1 manual to read")->check(CLI::Range(1, 30));
  app.add_option("--first-page", first_page, "The first of them")->check(CLI::Range(1, 36));
  app.add_option("--repeats", repeats, "Runs per thread count (medians are reported)")
      ->check(CLI::Range(1, 20));
  app.add_option("--threads", thread_counts, "Thread (and process) counts")->delimiter(',');
  app.add_option("--lang", lang, "OCR languages, for both");
  app.add_option("--work", work_base, "Where the rendered pages go");
  app.add_flag("--quick", quick, "One page, one repeat, one thread: a smoke run");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    pages = 1;
    repeats = 1;
    thread_counts = {1};
  }
  for (const char* pdf : {sluice::test::kEnglishPdf, sluice::test::kChinesePdf}) {
    if (!fs::exists(pdf)) {
      std::fprintf(stderr, "ocr_bench: %s is missing (scripts/setup.sh installs it)\n", pdf);
      return 1;
    }
  }
  auto dir = sluice::bench::make_temp_dir(work_base, "sluice-ocr-bench-");
  if (!dir.is_ok()) {
    std::fprintf(stderr, "ocr_bench: %s\n", dir.status().to_string().c_str());
    return 1;
  }
  json machine = sluice::bench::machine_facts(*dir);
  machine["type"] = "machine";
  bool ok = false;
  machine["tesseract"] = sluice::test::run_command("tesseract --version 2>&1 | head -n 1", &ok);
  print(machine);

  // The pages, rendered and with their text layers.
  std::vector<std::string> images, references;
  for (int p = first_page; p < first_page + pages; ++p) {
    const std::string img =
        sluice::test::render_page(sluice::test::kEnglishPdf, p, *dir + "/en" + std::to_string(p));
    if (img.empty()) {
      std::fprintf(stderr, "ocr_bench: pdftoppm failed on page %d\n", p);
      return 1;
    }
    images.push_back(img);
    references.push_back(sluice::test::pdf_page_text(sluice::test::kEnglishPdf, p, &ok));
  }

  std::vector<ordered_json> summary_rows;
  std::vector<double> accuracy, cli_accuracy;
  for (int threads : thread_counts) {
    std::vector<double> s_sluice, s_cli;
    for (int r = 0; r < repeats; ++r) {
      std::vector<std::string> texts, cli_texts;
      bool ok_s = false, ok_c = false;
      const double ts = run_sluice(images, threads, lang, &texts, &ok_s);
      const double tc = run_cli(images, threads, lang, *dir, /*omp_single=*/true, &cli_texts, &ok_c);
      if (!ok_s || !ok_c) {
        std::fprintf(stderr, "ocr_bench: a run failed (sluice ok: %d, tesseract ok: %d)\n", ok_s, ok_c);
        return 1;
      }
      s_sluice.push_back(ts / images.size());
      s_cli.push_back(tc / images.size());
      if (threads == thread_counts.front() && r == 0) {
        for (size_t i = 0; i < images.size(); ++i) {
          accuracy.push_back(sluice::test::character_accuracy(texts[i], references[i]));
          cli_accuracy.push_back(sluice::test::character_accuracy(cli_texts[i], references[i]));
        }
      }
      print({{"type", "run"},
             {"threads", threads},
             {"repeat", r + 1},
             {"pages", images.size()},
             {"sluice_s_per_page", sluice::bench::round_to(ts / images.size())},
             {"tesseract_s_per_page", sluice::bench::round_to(tc / images.size())}});
    }
    const double ms = sluice::bench::median(s_sluice), mc = sluice::bench::median(s_cli);
    summary_rows.push_back({{"threads", threads},
                            {"sluice_s_per_page", sluice::bench::round_to(ms)},
                            {"tesseract_s_per_page", sluice::bench::round_to(mc)},
                            {"throughput_ratio", sluice::bench::round_to(ms > 0 ? mc / ms : 0)}});
  }

  // For the record: the command with OpenMP as it comes, one process; and a Chinese page.
  ordered_json extra = ordered_json::object();
  if (!quick) {
    std::vector<std::string> t;
    bool ok_c = false;
    const double omp = run_cli(images, 1, lang, *dir, /*omp_single=*/false, &t, &ok_c);
    if (ok_c) extra["tesseract_openmp_default_s_per_page"] = sluice::bench::round_to(omp / images.size());
    const std::string zh = sluice::test::render_page(sluice::test::kChinesePdf, 10, *dir + "/zh10");
    std::vector<std::string> zt;
    bool ok_z = false;
    const double tz = run_sluice({zh}, 1, lang, &zt, &ok_z);
    if (ok_z) {
      extra["chinese_page_s"] = sluice::bench::round_to(tz);
      extra["chinese_accuracy"] =
          sluice::bench::round_to(sluice::test::character_accuracy(
                                      zt[0], sluice::test::pdf_page_text(sluice::test::kChinesePdf, 10, &ok)),
                                  4);
    }
  }
  ordered_json s = {{"type", "summary"},
                    {"build", SLUICE_BENCH_BUILD_TYPE},
                    {"cpu_model", machine.value("cpu_model", "")},
                    {"cores", machine.value("cores", 0)},
                    {"languages", lang},
                    {"pages", images.size()},
                    {"repeats", repeats},
                    {"by_threads", summary_rows},
                    {"english_accuracy_mean", sluice::bench::round_to(mean(accuracy), 4)},
                    {"english_accuracy_min",
                     sluice::bench::round_to(
                         accuracy.empty() ? 0 : *std::min_element(accuracy.begin(), accuracy.end()), 4)},
                    {"tesseract_english_accuracy_mean", sluice::bench::round_to(mean(cli_accuracy), 4)},
                    {"load_average", sluice::bench::load_average()}};
  for (auto& [k, v] : extra.items()) s[k] = v;
  print(s);
  sluice::bench::remove_tree(*dir);
  return 0;
}
