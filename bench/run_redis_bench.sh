#!/usr/bin/env bash
# run_redis_bench.sh: the `redis` backend measured beside its comparisons, in one run.
#  1. starts a throw-away redis-server (AOF on, appendfsync everysec, as a deployment that wants
#     its queue back after a restart runs it) on a free loopback port with a temporary --dir;
#  2. redis-benchmark XADD with the pipelining depth sluice's producer uses (-P 64, one
#     connection, as sluice's one sender connection), the value 100 bytes: the target's anchor;
#  3. build/bench/redis_bench: produce and consume msgs/s through sluice's Producer/Consumer and
#     through a plain hiredis loop (XADD 64 deep; XREADGROUP COUNT 4096 + XACK per batch);
#  4. the pipeline end to end: `sluice ingest` of the Python 3.11 HTML docs (python3-doc), stages
#     in-process, on `--queue redis://` and on the embedded log, same workers; documents/s.
# Target: sluice's produce >= 0.7x redis-benchmark XADD at the same depth. Prints JSON lines (the
# last one the summary) on stdout and a readable summary on stderr; it reports, it does not enforce.
#
# Usage: bench/run_redis_bench.sh [--quick] [--repeats N] [BUILD_DIR]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_redis_bench "$@"
BUILD="$(cd "${BENCH_ARG:-$ROOT/build}" && pwd)"  # absolute: servers below chdir
bench_repeats 3 1
for b in "$BUILD/bench/redis_bench" "$BUILD/sluice"; do
  if [[ ! -x "$b" ]]; then
    echo "run_redis_bench: $b is missing; build it first (ninja -C $BUILD redis_bench sluice)" >&2
    exit 1
  fi
done
MESSAGES=1000000
DEPTH=64
if ((QUICK)); then MESSAGES=50000; fi
WORK="$(mktemp -d "$BUILD/redis-bench.XXXXXX")"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK" --appendonly yes --appendfsync everysec --save '' \
  --daemonize no --loglevel warning --logfile "$WORK/redis.log" &
REDIS_PID=$!
cleanup() {
  kill "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

# ---- 2. redis-benchmark XADD ----
VALUE="$(printf 'v%.0s' $(seq 88))__rand_int__"  # 88 bytes + a 12-digit number: 100-byte values
: >"$WORK/xadd.txt"
for ((r = 1; r <= REPEATS; r++)); do
  redis-cli -p "$PORT" flushall >/dev/null
  redis-benchmark -p "$PORT" -n "$MESSAGES" -P "$DEPTH" -c 1 -r 1000000000000 --csv XADD bench '*' field "$VALUE" |
    python3 -c 'import csv,sys; rows=list(csv.reader(sys.stdin)); print(rows[-1][1])' | tee -a "$WORK/xadd.txt"
done
redis-cli -p "$PORT" flushall >/dev/null

# ---- 3. the queue paths ----
"$BUILD/bench/redis_bench" --port "$PORT" --messages "$MESSAGES" --pipeline "$DEPTH" --repeats "$REPEATS" |
  tee "$WORK/queue.jsonl"
QUEUE_SUMMARY="$(tail -n 1 "$WORK/queue.jsonl")"

# ---- 4. the pipeline, redis:// beside log ----
if ((QUICK)); then
  CORPUS=/usr/share/doc/python3.11/html/tutorial
else
  CORPUS=/usr/share/doc/python3.11/html
fi
if [[ ! -d "$CORPUS" ]]; then bash "$ROOT/scripts/setup.sh" --manuals >/dev/null; fi
ingest() {  # ingest QUEUE_URI: the summary JSON of one fresh run
  rm -rf "$WORK/data"
  local args=("$BUILD/sluice" ingest "$CORPUS" --include '*.html' --data "$WORK/data" --workers 2 --pool 2
              --progress none --json)
  if [[ -n "$1" ]]; then args+=(--queue "$1"); fi
  "${args[@]}" | tail -n 1
}
: >"$WORK/pipeline.jsonl"
for ((r = 1; r <= REPEATS; r++)); do
  LOG="$(ingest "")"
  redis-cli -p "$PORT" flushall >/dev/null
  REDIS="$(ingest "redis://127.0.0.1:$PORT")"
  python3 -c 'import json,sys; l=json.loads(sys.argv[1]); r=json.loads(sys.argv[2]); print(json.dumps({"type":"pipeline_run","run":int(sys.argv[3]),"documents":l["ok"],"redis_documents":r["ok"],"redis_failed":r["failed"],"log_s":l["seconds"],"redis_s":r["seconds"]}))' \
    "$LOG" "$REDIS" "$r" | tee -a "$WORK/pipeline.jsonl"
done

python3 - "$QUEUE_SUMMARY" "$WORK/xadd.txt" "$WORK/pipeline.jsonl" "$DEPTH" <<'PY'
import json, statistics, sys
q = json.loads(sys.argv[1])
xadd = [float(l) for l in open(sys.argv[2]) if l.strip()]
runs = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
m = q["median"]
xm = statistics.median(xadd)
ratio = m["sluice_produce_msgs_s"] / xm if xm > 0 else 0
lm, rm = statistics.median(r["log_s"] for r in runs), statistics.median(r["redis_s"] for r in runs)
ok = all(r["redis_documents"] == r["documents"] and r["redis_failed"] == 0 for r in runs)
out = {"type": "summary", "queue": q,
       "redis_benchmark": {"command": f"redis-benchmark -n {q['messages']} -P {sys.argv[4]} -c 1 XADD bench * field <100 B>",
                           "xadd_rps_runs": xadd, "xadd_rps": xm},
       "pipeline": {"corpus_documents": runs[0]["documents"], "log_seconds": [r["log_s"] for r in runs],
                    "redis_seconds": [r["redis_s"] for r in runs], "ratio_redis_vs_log": round(lm / rm, 3) if ok else None},
       "targets": [{"name": "produce_vs_redis_benchmark_xadd", "target": ">= 0.7", "measured": round(ratio, 3),
                    "status": "met" if ratio >= 0.7 else "missed"}]}
print(json.dumps(out))
print(f"\n== redis benchmark ({q['messages']} x {q['value_bytes']} B, {q['partitions']} partitions, depth {sys.argv[4]}, medians of {q['repeats']})", file=sys.stderr)
print(f"produce: redis-benchmark XADD {xm:.0f} msgs/s, plain hiredis {m['plain_produce_msgs_s']:.0f}, sluice {m['sluice_produce_msgs_s']:.0f} -> {ratio:.2f}x of redis-benchmark, {q['ratio_produce_vs_plain']:.2f}x of hiredis", file=sys.stderr)
print(f"consume: plain hiredis {m['plain_consume_msgs_s']:.0f} msgs/s, sluice {m['sluice_consume_msgs_s']:.0f} -> {q['ratio_consume_vs_plain']:.2f}x", file=sys.stderr)
print(f"pipeline ({runs[0]['documents']} files): log {lm:.2f} s, redis {rm:.2f} s -> {out['pipeline']['ratio_redis_vs_log']}x", file=sys.stderr)
for t in out["targets"]:
    print(f"  {t['status']:>8}  {t['name']:<36} {t['target']:>7}  measured {t['measured']}", file=sys.stderr)
PY
