#!/usr/bin/env bash
# The README's bucket walkthrough, end to end on this machine: a local S3 endpoint (s3rver, which
# scripts/setup.sh installs with npm ci) with an input and a destination bucket, CSV files put
# into the input bucket, `sluice generate`, a worker running docs/examples/csv_summary.yaml, the
# summaries in the destination bucket and one result per file on doc_results; then the built-in
# RAG stages on a bucket (`sluice ingest s3://...`, `sluice search`).
# Usage: scripts/bucket_walkthrough.sh   (SLUICE=path/to/sluice for another binary; KEEP=1 keeps
# the work directory). Exits non-zero when a step does not give what the README says.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
S=${SLUICE:-$ROOT/build/sluice}
[[ -x "$S" ]] || { echo "no $S: build first (./scripts/demo.sh or ./scripts/test.sh)" >&2; exit 1; }
[[ -x node_modules/.bin/s3rver ]] || { echo "no node_modules/.bin/s3rver: run ./scripts/setup.sh" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-walkthrough-XXXXXX")
S3PID=""
WPID=""
cleanup() {
  [[ -n "$WPID" ]] && kill "$WPID" 2>/dev/null || true
  [[ -n "$S3PID" ]] && kill "$S3PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ -z "${KEEP:-}" ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT
fail() { echo "walkthrough: $*" >&2; exit 1; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# 1. A local S3 endpoint with two buckets (any S3 API works the same: AWS, OBS, MinIO).
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# s3rver's listing continuation tokens need Node's legacy OpenSSL provider.
NODE_OPTIONS=--openssl-legacy-provider node_modules/.bin/s3rver --directory "$WORK/s3" --address 127.0.0.1 \
  --port "$PORT" --silent --configure-bucket input-files --configure-bucket processed-files &
S3PID=$!
export OBS_ACCESS_KEY=S3RVER OBS_SECRET_KEY=S3RVER OBS_SERVER=http://127.0.0.1:$PORT OBS_REGION=us-east-1
for _ in $(seq 100); do curl -sf "$OBS_SERVER/" >/dev/null 2>&1 && break; sleep 0.1; done
# curl signs with SigV4 itself; S3 wants the payload hash header, which curl 7.88 does not add.
s3() {
  curl -sS --fail-with-body --aws-sigv4 "aws:amz:$OBS_REGION:s3" --user "$OBS_ACCESS_KEY:$OBS_SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

# 2. Files in the input bucket: three good CSVs under data/2024/08/, one broken, one elsewhere.
mkdir -p "$WORK/files"
printf 'city,population,area_km2\nBeijing,21893095,16410.5\nShanghai,24870895,6340.5\n广州,18676605,7434.4\n' > "$WORK/files/cities.csv"
printf 'day,orders,refunds\n2024-08-01,120,3\n2024-08-02,98,1\n2024-08-03,143,7\n' > "$WORK/files/orders.csv"
printf 'sensor,reading\nA,0.5\nB,-1.25\n' > "$WORK/files/sensors.csv"
printf 'sensor,reading\nA,0.5\nB\n' > "$WORK/files/broken.csv"
for f in cities orders sensors broken; do s3 -T "$WORK/files/$f.csv" "$OBS_SERVER/input-files/data/2024/08/$f.csv"; done
s3 -T "$WORK/files/cities.csv" "$OBS_SERVER/input-files/data/2023/old.csv"
printf '# 消息队列\n\nsluice 把文档变成队列上的任务。Workers parse, chunk, embed and index them.\n' > "$WORK/files/intro.md"
s3 -T "$WORK/files/intro.md" "$OBS_SERVER/input-files/docs/intro.md"

export SLUICE_DATA=$WORK/data SLUICE_LOG_LEVEL=warn
cp docs/examples/csv_summary.yaml docs/examples/csv_summary.sh "$WORK/"

# 3. Tasks: a dry run shows them, then they are queued.
step sluice generate s3://input-files --prefix data/2024/08/ --dest-bucket processed-files --dry-run
"$S" generate s3://input-files --prefix data/2024/08/ --dest-bucket processed-files --dry-run | tee "$WORK/dry.jsonl"
[[ $(wc -l < "$WORK/dry.jsonl") -eq 4 ]] || fail "the dry run should list 4 tasks"
grep -q '"dest_bucket":"processed-files"' "$WORK/dry.jsonl" || fail "tasks should carry dest_bucket"
step sluice generate s3://input-files --prefix data/2024/08/ --dest-bucket processed-files
"$S" generate s3://input-files --prefix data/2024/08/ --dest-bucket processed-files

# 4. A worker with the pipeline file, until every task has its result on doc_results.
step sluice worker --pipeline csv_summary.yaml '2> worker.log &'
"$S" worker --pipeline "$WORK/csv_summary.yaml" 2> "$WORK/worker.log" &
WPID=$!
step sluice tail doc_results --from-beginning --max 4 --timeout 60
"$S" tail doc_results --from-beginning --max 4 --timeout 60 > "$WORK/results.jsonl"
kill -TERM "$WPID"
wait "$WPID" || fail "the worker should exit 0 on SIGTERM (its log: $WORK/worker.log)"
WPID=""
python3 - "$WORK/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(json.loads(l)["value"]) for l in open(sys.argv[1])]
for r in rows:
    where = r["destination"]["uri"] if "destination" in r else r.get("error", {}).get("message", "")
    print(f'{r["status"]:8} {r["source"]["key"]}  ->  {where}')
status = sorted((r["source"]["key"].rsplit("/", 1)[-1], r["status"]) for r in rows)
want = [("broken.csv", "failed"), ("cities.csv", "success"), ("orders.csv", "success"), ("sensors.csv", "success")]
if status != want:
    sys.exit(f"walkthrough: results {status}, expected {want}")
PY

# 5. The summaries in the destination bucket.
step "curl .../processed-files?list-type=2&prefix=summaries/   # or aws s3 ls, obsutil ls"
s3 "$OBS_SERVER/processed-files?list-type=2&prefix=summaries/" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g' | tee "$WORK/keys"
[[ $(wc -l < "$WORK/keys") -eq 3 ]] || fail "3 summaries expected in processed-files"
s3 "$OBS_SERVER/processed-files/summaries/cities.summary.json" | tee "$WORK/cities.json"; echo
grep -q '"rows": 3' "$WORK/cities.json" || fail "cities.summary.json should count 3 rows"

# 6. Run again: nothing new to do (same ETags), unless forced.
step sluice generate s3://input-files --prefix data/2024/08/ --dest-bucket processed-files
"$S" generate s3://input-files --prefix data/2024/08/ --dest-bucket processed-files 2>&1 | tee "$WORK/again.txt"

# 7. The built-in RAG stages on a bucket, and a search.
step sluice ingest s3://input-files/docs/ --data rag
"$S" ingest s3://input-files/docs/ --data "$WORK/rag" > "$WORK/ingest.json"
cat "$WORK/ingest.json"
step sluice search 消息队列 --data rag
"$S" search 消息队列 --data "$WORK/rag" | tee "$WORK/search.txt"
grep -q 's3://input-files/docs/intro.md' "$WORK/search.txt" || fail "the search should find docs/intro.md"
echo
echo "walkthrough: all steps gave what the README shows"
