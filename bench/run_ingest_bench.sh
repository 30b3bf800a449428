#!/usr/bin/env bash
# run_ingest_bench.sh: benchmarks `sluice ingest` and `sluice search` on real manuals shipped by
# Debian, next to pdftotext on the same PDFs, and measures retrieval quality on a checked set of
# questions. Prints the targets beside the figures; it does not enforce them.
#
# Usage: bench/run_ingest_bench.sh [--quick] [--repeats N] [--search-repeats N] [--workers N]
#                                  [--skip-100k] [--keep] [PATH/TO/sluice] [-- extra `sluice ingest` flags]
#
# Builds nothing: sluice comes from the argument or build/sluice. Installs the corpus packages
# when missing (`scripts/setup.sh --manuals`: r-doc-pdf python3-doc debian-edu-doc-zh-cn; a full
# run also installs the manuals of step e with `scripts/setup.sh --search-corpus`).
# Everything temporary lives in a directory next to the sluice binary (the disk being measured),
# removed at exit unless --keep.
#
# The corpus (full run; --quick takes a subset):
#   pdf  : the R manuals, /usr/share/R/doc/manual/*.pdf (r-doc-pdf; ~5,500 pages, refman.pdf and
#          fullrefman.pdf are two builds of the 2,415-page reference manual)
#   html : the Python 3.11 docs, /usr/share/doc/python3.11/html/**/*.html (python3-doc; ~530 files)
#   zh   : the Chinese Debian Edu manuals (debian-edu-doc-zh-cn): bookworm and bullseye, each as
#          HTML and PDF (the EPUBs are left out)
# Steps (figures are medians over REPEATS runs: 3, or 1 with --quick):
#   0. prints the machine: CPU model, cores, RAM, kernel, the disk and filesystem of the data dir;
#      checks bench/ingest/eval.jsonl against the corpus (bench/ingest/check_eval.py).
#   a. pdftotext (single-threaded) over the R PDFs, one process and WORKERS processes in parallel;
#      compared with `sluice ingest` of only those PDFs: pages/s raw, per core, and per CPU-second;
#      when sluice reports per-document parse-stage timings, also parse-stage pages/s per core.
#   b. `sluice ingest FILES --data FRESH_DIR --workers WORKERS` (and --pool/--progress json when
#      the help lists them) of each part in a fresh data dir: wall time, pages/s, MB/s (10^6 B),
#      documents/s, chunks/s, peak RSS (`/usr/bin/time -v`, largest process; and the sum over the
#      process tree, parse workers included, sampled every 50 ms). Then the whole corpus once in
#      one data dir: the index searched below and the whole-corpus RSS figure.
#   c. search latency: every eval question through `sluice search Q --data DIR -k 5 --json`,
#      SEARCH_REPEATS times each (20; 3 with --quick): process wall time p50/p90/p99, the process
#      start-up floor (`sluice --version`), and the in-process time when sluice prints one
#      (today: the "N hits in X ms" line on stderr).
#   e. (full runs, unless --skip-100k) the whole corpus's index grown to ~100k chunks with more
#      manuals Debian ships (the kernel's, PostgreSQL's, Django's, SQLite's, pandas', Octave's,
#      Maxima's and gnuplot's HTML and PDF), then step c again at that size, and recall there; the
#      search targets are judged at that size. Also, for both sizes: every question answered by one
#      `sluice search -` process (per-query time without process start and index load).
#   d. recall@5 per language: a question is answered when one of the top 5 hits' `source` ends
#      with its "expect" suffix (or an "also" suffix); also reported: expect-only recall, answer@5
#      (the hit's text contains the answer_hint) and MRR@5. Misses are listed. When `sluice search`
#      has --mode, recall is also measured for each mode (e.g. hybrid, keyword, vector) alone.
# Output: one JSON object {"type":"summary",...} on stdout with every figure and each target as
# measured/"met"/"missed"/"not_measured"; a readable summary and progress on stderr. Every run's
# raw output stays in the work directory with --keep (out/*.stdout, out/search_results.jsonl).
# How sluice's output is read lives in one place: bench/ingest/sluice_output.py.
#
# Exit status: 0 when everything ran (whether or not the targets were met), 1 when a step failed
# (including `sluice ingest`/`search` not available yet: the rest still runs and is reported),
# 2 on bad usage.
set -euo pipefail

SKIP100K=0
KEEP=0
ARGS=()
bench_option() {
  case "$1" in
    --skip-100k) SKIP100K=1; ARGS+=("$1"); BENCH_TOOK=1 ;;
    --keep) KEEP=1; BENCH_TOOK=1 ;;
    --repeats | --search-repeats | --workers)  # for ingest_bench.py
      if (($# < 2)); then
        echo "run_ingest_bench: $1 needs a value" >&2
        exit 2
      fi
      ARGS+=("$1" "$2")
      BENCH_TOOK=2
      ;;
  esac
}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_ingest_bench "$@"
SLUICE="$BENCH_ARG"
if [[ -z "$SLUICE" ]]; then SLUICE="$ROOT/build/sluice"; fi
if [[ ! -x "$SLUICE" ]]; then
  echo "run_ingest_bench: no sluice at $SLUICE; build it first, e.g." >&2
  echo "  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build sluice" >&2
  exit 1
fi
SLUICE="$(cd "$(dirname "$SLUICE")" && pwd)/$(basename "$SLUICE")"

# ---- the corpus (idempotent; the tools come with scripts/setup.sh, which a build needs anyway) ----
if ((QUICK || SKIP100K)); then
  bash "$ROOT/scripts/setup.sh" --manuals
else
  bash "$ROOT/scripts/setup.sh" --search-corpus
fi
for tool in pdftotext pdfinfo /usr/bin/time python3 df; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_ingest_bench: $tool is missing" >&2
    exit 1
  fi
done

# ---- work directory next to the binary (same disk as a build's data) ----
WORK="$(mktemp -d "$(dirname "$SLUICE")/ingest-bench.XXXXXX")"
cleanup() {
  if ((KEEP)); then
    echo "run_ingest_bench: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

QUICK_FLAG=()
if ((QUICK)); then QUICK_FLAG=(--quick); fi
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
set +e
python3 "$ROOT/bench/ingest/ingest_bench.py" --sluice "$SLUICE" --work "$WORK" "${QUICK_FLAG[@]}" \
  "${ARGS[@]}" -- "${EXTRA[@]}"
RC=$?
set -e
exit "$RC"
