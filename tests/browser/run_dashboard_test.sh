#!/usr/bin/env bash
# Starts `sluice serve` on a free loopback port with a fresh data directory and runs the browser
# test of the dashboard against it (tests/browser/dashboard_test.mjs). The screenshot is kept in
# ${SLUICE_TEST_ARTIFACTS:-build/test-artifacts}/dashboard.png.
# Usage: tests/browser/run_dashboard_test.sh SLUICE_BINARY
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SLUICE=${1:?usage: run_dashboard_test.sh SLUICE_BINARY}
cd "$ROOT"
if [[ ! -d node_modules/playwright-core ]]; then
  echo "node_modules/playwright-core is missing: run scripts/setup.sh (it runs npm ci)" >&2
  exit 1
fi
ARTIFACTS=${SLUICE_TEST_ARTIFACTS:-$ROOT/build/test-artifacts}
mkdir -p "$ARTIFACTS"
TMP=$(mktemp -d /tmp/sluice-dashboard-XXXXXX)
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$SLUICE" serve --listen "127.0.0.1:$PORT" --data "$TMP/data" 2>"$TMP/serve.log" &
PID=$!
for _ in $(seq 300); do
  if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "sluice serve exited:" >&2
    cat "$TMP/serve.log" >&2
    exit 1
  fi
  sleep 0.1
done
PHRASE="kingfishers dive for minnows below the weir"
printf '# 河边笔记\n\nThe %s, and the 消息队列 keeps every upload until it is indexed.\n' "$PHRASE" >"$TMP/riverside-notes.md"
if ! node tests/browser/dashboard_test.mjs "http://127.0.0.1:$PORT/" "$TMP/riverside-notes.md" "$PHRASE" \
  "$ARTIFACTS/dashboard.png"; then
  echo "--- sluice serve's log:" >&2
  tail -n 50 "$TMP/serve.log" >&2
  exit 1
fi
