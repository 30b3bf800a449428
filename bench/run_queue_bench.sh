#!/usr/bin/env bash
# run_queue_bench.sh: benchmarks sluice's `log` queue backend next to Redis Streams on this machine
# and judges the performance targets (which live here only, never in tests).
#
# Usage: bench/run_queue_bench.sh [--quick] [--repeats N] [PATH/TO/log_bench] [-- extra log_bench flags]
#
# Builds nothing: log_bench comes from $1 or build/bench/log_bench. Steps:
#   1. Starts a throw-away redis-server (no persistence: --save '' --appendonly no) on a free
#      loopback port with a temporary --dir, waits for PING, and runs REPEATS times (3; 1 with
#      --quick), each on an emptied stream:
#        redis-benchmark -p PORT -n 1000000 -P 64 -c 50 -r 1000000000000 --csv \
#          XADD bench '*' field vvv…vvv__rand_int__
#      redis-benchmark has no xadd test and its -d only sizes SET/GET values, so the value is an
#      88-byte literal followed by __rand_int__, which -r replaces with a 12-digit number: every
#      XADD carries one 100-byte field value. -n is 100000 with --quick. The median of the
#      requests per second is the Redis figure. The server is then shut down (a trap kills it on
#      any exit).
#   2. Runs log_bench (--quick passes through) with its data under the same temporary directory,
#      next to the build (same disk), echoing its JSON lines.
#   3. Prints one final JSON line {"type":"summary",...}: the Redis figure, sluice's durable
#      100-byte single-thread produce rate, their ratio, and every target with measured value and
#      "met"/"missed"/"not_measured". Targets are judged on the medians over repeats.
#
# Exit status: 0 when everything ran (whether or not the targets were met), 1 when a step failed,
# 2 on bad usage. Needs redis-server, redis-cli, redis-benchmark and python3.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_queue_bench "$@"
LOG_BENCH="$BENCH_ARG"
if [[ -z "$LOG_BENCH" ]]; then LOG_BENCH="$ROOT/build/bench/log_bench"; fi
if [[ ! -x "$LOG_BENCH" ]]; then
  echo "run_queue_bench: no log_bench at $LOG_BENCH; build it first, e.g." >&2
  echo "  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build log_bench" >&2
  exit 1
fi
for tool in redis-server redis-cli redis-benchmark python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_queue_bench: $tool is missing (scripts/setup.sh installs it)" >&2
    exit 1
  fi
done
LOG_BENCH="$(cd "$(dirname "$LOG_BENCH")" && pwd)/$(basename "$LOG_BENCH")"

bench_repeats 3 1
REDIS_N=1000000
QUICK_FLAG=()
if ((QUICK)); then
  REDIS_N=100000
  QUICK_FLAG=(--quick)
fi

# Everything temporary lives next to the build, on the disk being measured.
WORK="$(mktemp -d "$(dirname "$LOG_BENCH")/queue-bench.XXXXXX")"
REDIS_PID=""
stop_redis() {
  if [[ -n "$REDIS_PID" ]]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
  fi
}
cleanup() {
  stop_redis
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- 1. Redis Streams ----
mkdir -p "$WORK/redis"
PORT=""
for attempt in 1 2 3; do
  PORT="$(free_port)"
  redis-server --save '' --appendonly no --port "$PORT" --bind 127.0.0.1 --dir "$WORK/redis" \
    --daemonize no --logfile "$WORK/redis/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 100); do
    if [[ "$(redis-cli -p "$PORT" ping 2>/dev/null)" == "PONG" ]]; then break 2; fi
    if ! kill -0 "$REDIS_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  stop_redis
  echo "run_queue_bench: redis-server on port $PORT did not answer (attempt $attempt)" >&2
done
if [[ -z "$REDIS_PID" ]]; then
  cat "$WORK/redis/redis.log" >&2 || true
  exit 1
fi
REDIS_VERSION="$(redis-cli -p "$PORT" info server | sed -n 's/^redis_version:\([^[:space:]]*\).*/\1/p')"

VALUE="$(printf 'v%.0s' $(seq 88))__rand_int__"  # 88 + 12 digits = 100 bytes
REDIS_CMD=(redis-benchmark -p "$PORT" -n "$REDIS_N" -P 64 -c 50 -r 1000000000000 --csv
  XADD bench '*' field "$VALUE")
REDIS_RPS=()
for ((r = 1; r <= REPEATS; r++)); do
  redis-cli -p "$PORT" del bench >/dev/null
  echo "run_queue_bench: redis XADD run $r/$REPEATS" >&2
  out="$("${REDIS_CMD[@]}")"
  rps="$(printf '%s\n' "$out" | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
print(rows[-1][1] if len(rows) >= 2 and rows[0][:2] == ["test", "rps"] else "")')"
  if [[ -z "$rps" ]]; then
    echo "run_queue_bench: cannot read requests/s from redis-benchmark output:" >&2
    printf '%s\n' "$out" >&2
    exit 1
  fi
  REDIS_RPS+=("$rps")
done
REDIS_XLEN="$(redis-cli -p "$PORT" xlen bench)"
stop_redis
REDIS_CMD_TEXT="$(printf '%q ' "${REDIS_CMD[@]}")"  # exactly what ran, shell-quoted
REDIS_CMD_TEXT="${REDIS_CMD_TEXT% }"

# ---- 2. log_bench ----
set +e
"$LOG_BENCH" --dir "$WORK/log" "${QUICK_FLAG[@]}" "${EXTRA[@]}" | tee "$WORK/log_bench.jsonl"
LOG_BENCH_RC=${PIPESTATUS[0]}
set -e

# ---- 3. summary ----
export REDIS_RPS_LIST="${REDIS_RPS[*]}" REDIS_CMD_TEXT REDIS_VERSION REDIS_XLEN QUICK LOG_BENCH_RC
python3 - "$WORK/log_bench.jsonl" <<'EOF'
import json, os, statistics, sys

lines = []
with open(sys.argv[1]) as f:
    for raw in f:
        raw = raw.strip()
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
machine = next((l for l in lines if l.get("type") == "machine"), {})
scen = {l["name"]: l for l in lines if l.get("type") == "scenario"}

def med(name, field):
    line = scen.get(name)
    if not line or "error" in line or field not in line.get("median", {}):
        return None
    return line["median"][field]

redis_runs = [float(x) for x in os.environ["REDIS_RPS_LIST"].split()]
redis_rps = statistics.median(redis_runs) if redis_runs else None
produce = med("produce_100B_1t_1p_batch", "msgs_per_s")
ratio = produce / redis_rps if produce is not None and redis_rps else None
rss_bytes = (scen.get("rss_1KiB") or {}).get("params", {}).get("bytes")

def target(name, what, measured, unit, ok, note=None):
    t = {"name": name, "target": what, "measured": measured, "unit": unit,
         "status": "not_measured" if measured is None else ("met" if ok(measured) else "missed")}
    if note:
        t["note"] = note
    return t

targets = [
    target("produce_durable_100B", ">= 1500000", produce, "msgs/s", lambda v: v >= 1.5e6,
           "produce_100B_1t_1p_batch: 1 producer thread, 1 partition, fsync=batch"),
    target("produce_vs_redis_xadd", ">= 2.0", None if ratio is None else round(ratio, 3), "ratio",
           lambda v: v >= 2.0),
    target("consume_100B", ">= 3000000", med("consume_100B", "msgs_per_s"), "msgs/s", lambda v: v >= 3e6),
    target("end_to_end_100B", ">= 1000000", med("e2e_100B", "msgs_per_s"), "msgs/s", lambda v: v >= 1e6),
    target("produce_ack_p99_at_10k", "<= 2000", med("latency_100B", "p99_us"), "us", lambda v: v <= 2000),
    target("peak_rss_2GiB", "< 64", med("rss_1KiB", "peak_rss_mib"), "MiB", lambda v: v < 64,
           None if rss_bytes == 2 << 30 else f"measured over {rss_bytes} bytes, not 2 GiB"),
]
failed = sorted(n for n, l in scen.items() if "error" in l)
summary = {
    "type": "summary",
    "quick": os.environ["QUICK"] == "1",
    "redis": {"version": os.environ["REDIS_VERSION"], "command": os.environ["REDIS_CMD_TEXT"],
              "persistence": "none (--save '' --appendonly no)", "xadd_rps_runs": redis_runs,
              "xadd_rps": redis_rps, "stream_length_after_last_run": int(os.environ["REDIS_XLEN"])},
    "sluice_produce_durable_100B_1t_msgs_per_s": produce,
    "ratio_sluice_over_redis": None if ratio is None else round(ratio, 3),
    "targets": targets,
    "targets_met": sum(t["status"] == "met" for t in targets),
    "targets_total": len(targets),
    "log_bench_exit_status": int(os.environ["LOG_BENCH_RC"]),
    "failed_scenarios": failed,
    "machine": {k: machine.get(k) for k in ("cpu_model", "cores", "kernel", "filesystem", "build_type")},
}
if summary["quick"]:
    summary["note"] = "--quick: smoke-test figures, too short to judge the targets"
print(json.dumps(summary, separators=(",", ":")))
for t in targets:
    print(f"  {t['status']:>12}  {t['name']:<24} {t['target']:>10} {t['unit']:<7} measured {t['measured']}",
          file=sys.stderr)
EOF
if ((LOG_BENCH_RC != 0)); then exit 1; fi
