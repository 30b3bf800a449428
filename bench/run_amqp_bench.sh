#!/usr/bin/env bash
# run_amqp_bench.sh: the `amqp` backend measured beside its comparisons, in one run.
# build/bench/amqp_bench starts a throw-away rabbitmq-server (free loopback ports, a temporary
# directory) and measures, on it:
#  1. produce and consume msgs/s through sluice's Producer/Consumer and through a plain librabbitmq
#     loop, both durable (persistent messages, durable queues) and confirmed (publisher confirms,
#     1024 in flight), consumers with prefetch 256 acking each message;
#  2. the pipeline end to end: `sluice ingest` of the Python 3.11 HTML docs (python3-doc), stages
#     in-process, on `--queue amqp://` and on the embedded log, same workers; documents/s.
# Target: RabbitMQ with publisher confirms >= 20k msgs/s through sluice's producer. Prints JSON
# lines (the last one the summary) on stdout and a readable summary on stderr; it reports, it does
# not enforce.
#
# Usage: bench/run_amqp_bench.sh [--quick] [--repeats N] [BUILD_DIR]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_amqp_bench "$@"
BUILD="$(cd "${BENCH_ARG:-$ROOT/build}" && pwd)"  # absolute: servers below chdir
bench_repeats 3 1
for b in "$BUILD/bench/amqp_bench" "$BUILD/sluice"; do
  if [[ ! -x "$b" ]]; then
    echo "run_amqp_bench: $b is missing; build it first (ninja -C $BUILD amqp_bench sluice)" >&2
    exit 1
  fi
done
MESSAGES=500000
CORPUS=/usr/share/doc/python3.11/html
if ((QUICK)); then MESSAGES=50000; CORPUS=/usr/share/doc/python3.11/html/tutorial; fi
if [[ ! -d "$CORPUS" ]]; then bash "$ROOT/scripts/setup.sh" --manuals >/dev/null; fi
WORK="$(mktemp -d "$BUILD/amqp-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
"$BUILD/bench/amqp_bench" --messages "$MESSAGES" --repeats "$REPEATS" --corpus "$CORPUS" --sluice "$BUILD/sluice" \
  --work "$WORK"
