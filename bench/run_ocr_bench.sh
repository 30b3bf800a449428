#!/usr/bin/env bash
# run_ocr_bench.sh: OCR seconds per page, sluice beside the `tesseract` command on the same images in
# the same run, and sluice's character accuracy on clean English pages; judges the targets (which
# live here only, never in tests).
#
# Usage: bench/run_ocr_bench.sh [--quick] [--repeats N] [PATH/TO/ocr_bench] [-- extra ocr_bench flags]
#
# Builds nothing: ocr_bench comes from $1 or build/bench/ocr_bench. It renders pages 5-10 of the
# libtasn1 manual (Debian's libtasn1-doc) with `pdftoppm -gray -r 300`, then, 3 times for 1 and for
# 2 threads: sluice's OCR (parse_file on each PNG, fresh threads sharing the pages) and the
# tesseract command (as many processes, each given its share as a list file, OMP_THREAD_LIMIT=1
# like sluice), both with -l eng+chi_sim (sluice's default). --quick: one page, one run, one thread
# (a smoke run; its figures are not comparable with the targets). Prints ocr_bench's JSON lines,
# then one final {"type":"summary_targets",...} line: the machine, the medians per thread count,
# the ratios and every target as "met"/"missed"/"not_measured".
#
# Targets (2 cores): OCR throughput >= 0.9x the tesseract command per page (at each thread count);
# character accuracy >= 95% on clean English pages.
#
# Exit status: 0 when everything ran (whether or not the targets were met), 1 when a step failed,
# 2 on bad usage. Needs tesseract (tesseract-ocr), pdftoppm/pdftotext (poppler-utils), python3.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_ocr_bench "$@"
BENCH="$BENCH_ARG"
if [[ -z "$BENCH" ]]; then BENCH="$ROOT/build/bench/ocr_bench"; fi
if [[ ! -x "$BENCH" ]]; then
  echo "run_ocr_bench: $BENCH is not built (ninja -C build ocr_bench)" >&2
  exit 1
fi
for tool in tesseract pdftoppm pdftotext python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run_ocr_bench: $tool is missing (scripts/setup.sh installs it)" >&2
    exit 1
  fi
done

ARGS=(--work "$ROOT/build")
if ((QUICK)); then ARGS+=(--quick); fi
if [[ -n "$REPEATS" ]]; then ARGS+=(--repeats "$REPEATS"); fi
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
if ! "$BENCH" "${ARGS[@]}" "${EXTRA[@]}" | tee "$OUT"; then
  echo "run_ocr_bench: ocr_bench failed" >&2
  exit 1
fi

python3 - "$OUT" "$QUICK" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
quick = sys.argv[2] == "1"
s = next((l for l in lines if l.get("type") == "summary"), None)
if s is None:
    sys.exit("run_ocr_bench: no summary line")
targets = []
for row in s["by_threads"]:
    r = row["throughput_ratio"]
    targets.append({"target": f"throughput >= 0.9x tesseract, {row['threads']} thread(s)",
                    "measured": r, "status": "met" if r >= 0.9 else "missed"})
acc = s.get("english_accuracy_mean")
targets.append({"target": "accuracy >= 95% on clean English pages", "measured": acc,
                "status": "not_measured" if acc is None else ("met" if acc >= 0.95 else "missed")})
print(json.dumps({"type": "summary_targets", "quick": quick, "cpu_model": s["cpu_model"], "cores": s["cores"],
                  "by_threads": s["by_threads"], "english_accuracy_mean": acc,
                  "chinese_accuracy": s.get("chinese_accuracy"), "targets": targets}, ensure_ascii=False))
PY
