#!/usr/bin/env bash
# Installs what is missing, builds sluice twice (optimised, and with AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs every test suite in both builds, then a quick benchmark
# smoke run. Usage: scripts/test.sh [ctest args...]   e.g. scripts/test.sh -L fast
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/setup.sh

JOBS=$(nproc)
build() {  # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S "$ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  ninja -C "$dir" -j "$JOBS"
}

echo "== build (RelWithDebInfo)"
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== build (ASan + UBSan)"
build build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON -DSLUICE_BUILD_BENCH=OFF

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
export SLUICE_LOG_LEVEL=${SLUICE_LOG_LEVEL:-error}
export SLUICE_CRASH_ROUNDS=${SLUICE_CRASH_ROUNDS:-60}
# setup.sh installed every test server: a suite that skipped for want of one would pass untested.
export SLUICE_REQUIRE_TEST_SERVERS=1

run_ctest() {  # run_ctest DIR TIMEOUT [ctest args...]: runs and tees to DIR/ctest.log
  local dir=$1 timeout=$2
  shift 2
  if (cd "$dir" && ctest --output-on-failure --timeout "$timeout" -j 2 "$@") | tee "$dir/ctest.log"; then
    return 0
  fi
  # librdkafka 2.0.2 (Debian 12) can assert when a consumer closes while a cooperative
  # rebalance is still assigning (docs/kafka.md, "Known with librdkafka 2.0.2"); seen rarely, under
  # AddressSanitizer. When only kafka conformance tests failed, they get one more run; any other
  # failure, or a second one, fails the build.
  local failed
  failed=$(sed -n '/The following tests FAILED:/,$p' "$dir/ctest.log" | grep -E '^[[:space:]]+[0-9]+ - ' || true)
  if [[ -n "$failed" ]] && ! grep -qv '/kafka' <<<"$failed"; then
    echo "== one more run of the failed kafka conformance tests (librdkafka 2.0.2, see above)"
    (cd "$dir" && ctest --output-on-failure --timeout "$timeout" --rerun-failed) | tee "$dir/ctest-rerun.log"
    return
  fi
  return 1
}
echo "== tests (RelWithDebInfo)"
run_ctest build 600 "$@"
echo "== tests (ASan + UBSan)"
run_ctest build-asan 900 "$@"
total=0
for d in build build-asan; do
  n=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$d/ctest.log" | tail -n 1)
  total=$((total + ${n:-0}))
done

if [[ $# -eq 0 ]]; then
  echo "== benchmark smoke run (figures from --quick are not comparable with the targets)"
  bash bench/run_queue_bench.sh --quick build/bench/log_bench >/tmp/sluice-bench-smoke.json
  tail -n 1 /tmp/sluice-bench-smoke.json
  bash bench/run_chroma_bench.sh --quick build >/tmp/sluice-chroma-bench-smoke.json
  tail -n 1 /tmp/sluice-chroma-bench-smoke.json
  bash bench/run_ocr_bench.sh --quick build/bench/ocr_bench >/tmp/sluice-ocr-bench-smoke.json
  tail -n 1 /tmp/sluice-ocr-bench-smoke.json
fi
echo "== all test suites passed in both builds"
echo "$total passed, 0 failed"
