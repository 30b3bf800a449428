#!/usr/bin/env bash
# run_chroma_bench.sh: the chroma index measured beside a plain batched HTTP loop, in one run,
# against one Chroma server (the npm package chromadb's `chroma run`, which build/bench/chroma_bench
# starts on a free loopback port, as the tests do):
#  - sluice: Index::upsert_document per document through `chroma://` (pointer read, chunk batches,
#    commit token, pointer write, old-version delete);
#  - plain: POST .../upsert of the same records in the same batches through the same HTTP client.
# Upserts/s of each (medians of REPEATS runs, 3; 1 with --quick) and the ratio sluice/plain.
# Target (reported, not enforced): sluice >= 0.8x the plain loop. Prints the runs' JSON lines and
# the summary (the last line, with the machine: CPU model, cores) on stdout, a readable line on
# stderr.
#
# Usage: bench/run_chroma_bench.sh [--quick] [--repeats N] [BUILD_DIR] [-- chroma_bench args...]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_chroma_bench "$@"
BUILD="$(cd "${BENCH_ARG:-$ROOT/build}" && pwd)"  # absolute: servers below chdir
bench_repeats 3 1
for b in "$BUILD/bench/chroma_bench" "$ROOT/node_modules/.bin/chroma"; do
  if [[ ! -x "$b" ]]; then
    echo "run_chroma_bench: $b is missing (ninja -C $BUILD chroma_bench; npm ci for chroma)" >&2
    exit 1
  fi
done
ARGS=(--repeats "$REPEATS")
if ((QUICK)); then ARGS=(--quick); fi
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
"$BUILD/bench/chroma_bench" "${ARGS[@]}" "${EXTRA[@]}" | tee "$OUT"
python3 - "$(tail -n 1 "$OUT")" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
m, st, mach = s["median"], s["settings"], s["machine"]
print(f"\n== chroma upserts ({st['records_per_run']} records: {st['docs']} documents x {st['chunks_per_doc']} chunks, "
      f"dim {st['dim']}, batch {st['batch']}, medians of {st['repeats']}) on {mach['cpu_model']} ({mach['cores']} cores)",
      file=sys.stderr)
status = "met" if s["target"]["met"] else "missed"
print(f"sluice {m['sluice_upserts_per_s']:.0f}/s, plain loop {m['plain_upserts_per_s']:.0f}/s -> "
      f"{m['ratio_sluice_vs_plain']:.3f}x (target >= 0.8: {status})", file=sys.stderr)
PY
