#!/usr/bin/env bash
# run_kafka_bench.sh: the `kafka` backend measured beside its comparisons, in one run.
#  1. build/bench/kafka_bench: produce and consume msgs/s through sluice's Producer/Consumer and
#     through a plain librdkafka loop configured the same way, on one in-process 3-broker mock
#     cluster (librdkafka's rdkafka_mock); medians and ratios (target >= 0.8 each). The consumer is
#     compared with two plain loops: one taking batches (the API sluice uses) and one
#     rd_kafka_consumer_poll per message (librdkafka's examples).
#  2. the pipeline end to end: `sluice ingest` of the Python 3.11 HTML docs (python3-doc) with the
#     stages in-process, on `--queue kafka://` (a sluice-kafka-mock with 3 brokers) and on the
#     embedded log, same workers; documents/s and the ratio (target >= 0.7), for the whole run and
#     from the first result to the last (without the start, where the mock holds a new group's
#     first join for 3 s, as a real broker's group.initial.rebalance.delay.ms does).
# Prints JSON lines (the last one the summary) on stdout and a readable summary on stderr; it
# reports the targets, it does not enforce them.
#
# Usage: bench/run_kafka_bench.sh [--quick] [--repeats N] [BUILD_DIR]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_kafka_bench "$@"
BUILD="$(cd "${BENCH_ARG:-$ROOT/build}" && pwd)"  # absolute: servers below chdir
bench_repeats 3 1
for b in "$BUILD/bench/kafka_bench" "$BUILD/sluice" "$BUILD/sluice-kafka-mock"; do
  if [[ ! -x "$b" ]]; then
    echo "run_kafka_bench: $b is missing; build it first (ninja -C $BUILD kafka_bench sluice sluice-kafka-mock)" >&2
    exit 1
  fi
done

MESSAGES=1000000
if ((QUICK)); then MESSAGES=50000; fi
WORK="$(mktemp -d "$BUILD/kafka-bench.XXXXXX")"
MOCK_PID=""
cleanup() {
  if [[ -n "$MOCK_PID" ]]; then kill "$MOCK_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- 1. the queue paths ----
"$BUILD/bench/kafka_bench" --messages "$MESSAGES" --repeats "$REPEATS" | tee "$WORK/queue.jsonl"
QUEUE_SUMMARY="$(tail -n 1 "$WORK/queue.jsonl")"

# ---- 2. the pipeline, kafka:// beside log ----
# Corpora: NAME|PATHS (space-separated). The Python HTML docs (530 files, ~5 s on log), and in full
# runs also the whole set of manuals (R PDFs, Python HTML, the Chinese Debian Edu manuals: ~17 s),
# where the fixed start of a Kafka run weighs what it weighs in a real ingest of some size.
if ((QUICK)); then
  CORPORA=("python-tutorial|/usr/share/doc/python3.11/html/tutorial")
else
  bash "$ROOT/scripts/setup.sh" --manuals >/dev/null
  CORPORA=("python-html|/usr/share/doc/python3.11/html"
           "manuals|/usr/share/R/doc/manual /usr/share/doc/python3.11/html /usr/share/doc/debian-edu-doc-zh-cn")
fi
ingest() {  # ingest NAME QUEUE_URI PATH...: prints the summary JSON of one fresh run
  local data="$WORK/data-$1" queue=$2
  shift 2
  rm -rf "$data"
  local args=("$BUILD/sluice" ingest "$@" --include '*.html' --include '*.pdf' --data "$data" --workers 2
              --pool 2 --progress none --json)
  if [[ -n "$queue" ]]; then args+=(--queue "$queue"); fi
  "${args[@]}" | tail -n 1
}
# span NAME DOCS [QUEUE_URI]: seconds from the first result notification to the last of the run
# just made (the steady state: without the start, where a new Kafka group's first join is held 3 s).
span() {
  local args=("$BUILD/sluice" tail doc_results --data "$WORK/data-$1" --from-beginning --timeout 5 --max "$2")
  if [[ -n "${3:-}" ]]; then args+=(--queue "$3"); fi
  "${args[@]}" | python3 -c 'import json,sys; t=[json.loads(l)["timestamp"] for l in sys.stdin if l.strip()]; print((max(t)-min(t))/1000 if len(t) > 1 else -1)'
}
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]] if d["failed"] == 0 else -1)' "$1" "$2"; }
: >"$WORK/pipeline.jsonl"
for c in "${CORPORA[@]}"; do
  NAME=${c%%|*}
  read -r -a PATHS <<<"${c#*|}"
  for ((r = 1; r <= REPEATS; r++)); do
    s="$(ingest log "" "${PATHS[@]}")"
    LOG_S="$(field "$s" seconds)" DOCS="$(field "$s" ok)"
    LOG_SPAN="$(span log "$DOCS")"
    # A fresh cluster per run: topics made with the pipeline's partitions (4), replication 3.
    coproc MOCK { "$BUILD/sluice-kafka-mock" --brokers 3 --pipeline-topics 4:3; }
    MOCK_IN=${MOCK[1]}
    read -r BOOTSTRAP <&"${MOCK[0]}"
    # The mock answers a fetch that finds nothing only after fetch.wait.max.ms (500 by default),
    # even when data arrives meanwhile (a real broker answers at once): each stage would wait up
    # to that long whenever its input ran dry. 20 ms makes the mock behave like a broker here.
    KURI="kafka://$BOOTSTRAP?fetch.wait.max.ms=20"
    s="$(SLUICE_PARTITIONS=4 ingest kafka "$KURI" "${PATHS[@]}")"
    KAFKA_S="$(field "$s" seconds)" KAFKA_DOCS="$(field "$s" ok)"
    KAFKA_SPAN="$(span kafka "$KAFKA_DOCS" "$KURI")"
    eval "exec ${MOCK_IN}>&-"  # the end of its input stops the mock
    wait "$MOCK_PID" 2>/dev/null || true
    MOCK_PID=""
    line="{\"type\":\"pipeline_run\",\"corpus\":\"$NAME\",\"run\":$r,\"documents\":$DOCS,\"kafka_documents\":$KAFKA_DOCS,\"log_s\":$LOG_S,\"kafka_s\":$KAFKA_S,\"log_results_span_s\":$LOG_SPAN,\"kafka_results_span_s\":$KAFKA_SPAN}"
    echo "$line" | tee -a "$WORK/pipeline.jsonl"
  done
done

python3 - "$QUEUE_SUMMARY" "$WORK/pipeline.jsonl" <<'EOF'
import json, statistics, sys
q = json.loads(sys.argv[1])
runs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
pipelines = {}
for name in dict.fromkeys(r["corpus"] for r in runs):
    rs = [r for r in runs if r["corpus"] == name]
    ok = all(r["kafka_s"] > 0 and r["kafka_documents"] == r["documents"] for r in rs)
    med = lambda k: statistics.median(r[k] for r in rs)
    lm, km, ls, ks = med("log_s"), med("kafka_s"), med("log_results_span_s"), med("kafka_results_span_s")
    docs = rs[0]["documents"]
    pipelines[name] = {
        "documents": docs, "log_seconds": [r["log_s"] for r in rs], "kafka_seconds": [r["kafka_s"] for r in rs],
        "log_docs_per_s": round(docs / lm, 1), "kafka_docs_per_s": round(docs / km, 1) if ok else None,
        "ratio_kafka_vs_log": round(lm / km, 3) if ok else None,
        "log_results_span_seconds": [r["log_results_span_s"] for r in rs],
        "kafka_results_span_seconds": [r["kafka_results_span_s"] for r in rs],
        "ratio_kafka_vs_log_steady": round(ls / ks, 3) if ok and ks > 0 and ls > 0 else None,
        "medians": {"log_s": lm, "kafka_s": km, "log_span_s": ls, "kafka_span_s": ks}}
out = {"type": "summary", "queue": q, "pipeline": pipelines,
       "pipeline_note": "kafka: sluice-kafka-mock, 3 brokers, 4 partitions, replication 3, fetch.wait.max.ms=20; "
                        "stages in-process, --workers 2 --pool 2 on both; the mock holds every new group's "
                        "first join for 3 s (as a broker's group.initial.rebalance.delay.ms does)"}
def target(name, measured):
    return {"name": name, "target": ">= 0.7", "measured": measured,
            "status": "not_measured" if measured is None else ("met" if measured >= 0.7 else "missed")}
targets = list(q.get("targets", []))
for name, p in pipelines.items():
    targets.append(target(f"pipeline_kafka_vs_log[{name}]", p["ratio_kafka_vs_log"]))
    targets.append(target(f"pipeline_kafka_vs_log_steady[{name}]", p["ratio_kafka_vs_log_steady"]))
out["targets"] = targets
print(json.dumps(out))
m = q["median"]
print(f"\n== kafka benchmark ({q['cluster']}, {q['messages']} x {q['value_bytes']} B, {q['partitions']} partitions, medians of {q['repeats']})", file=sys.stderr)
print(f"produce: plain librdkafka {m['plain_produce_msgs_s']:.0f} msgs/s, sluice {m['sluice_produce_msgs_s']:.0f} -> {q['ratio_produce_vs_plain']:.2f}x", file=sys.stderr)
print(f"consume: plain librdkafka batched {m['plain_consume_msgs_s']:.0f} msgs/s, poll loop {m['plain_poll_consume_msgs_s']:.0f}, sluice {m['sluice_consume_msgs_s']:.0f} -> {q['ratio_consume_vs_plain']:.2f}x, {q['ratio_consume_vs_poll_loop']:.2f}x", file=sys.stderr)
for name, p in pipelines.items():
    md = p["medians"]
    print(f"pipeline {name} ({p['documents']} files): log {md['log_s']:.2f} s, kafka {md['kafka_s']:.2f} s -> {p['ratio_kafka_vs_log']}x;"
          f" first to last result: log {md['log_span_s']:.2f} s, kafka {md['kafka_span_s']:.2f} s -> {p['ratio_kafka_vs_log_steady']}x", file=sys.stderr)
for t in targets:
    print(f"  {t['status']:>12}  {t['name']:<40} {t['target']:>7}  measured {t['measured']}", file=sys.stderr)
EOF
