#!/usr/bin/env bash
# run_s3_bench.sh: sluice's S3 path measured beside its comparisons, in one run, against one local
# S3 endpoint (the npm package s3rver that the tests use, on a free loopback port):
#  1. fills a prefix with OBJECTS small objects (4 KiB) through sluice's store (s3_bench put);
#  2. list + download every object: build/bench/s3_bench pull (sluice's store: ListObjectsV2 pages,
#     pooled keep-alive connections) with 1 and 4 threads, beside curl doing the same with
#     --aws-sigv4 (one curl per listing page, then ONE curl process for all downloads from a -K
#     config: sequential keep-alive, and --parallel --parallel-max 4): objects/s;
#  3. end to end: `sluice ingest s3://bucket/corpus/` of the Python 3.11 tutorial HTML (the whole
#     library reference without --quick) uploaded to the bucket, beside `sluice ingest` of the same
#     folder; seconds and documents/s.
# Repeats REPEATS times (3; 1 with --quick) and reports medians. Prints JSON lines (the last is the
# summary) on stdout and a readable summary on stderr. No targets: the issue asks for the figures.
#
# Usage: bench/run_s3_bench.sh [--quick] [--repeats N] [BUILD_DIR]
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_s3_bench "$@"
BUILD="$(cd "${BENCH_ARG:-$ROOT/build}" && pwd)"  # absolute: servers below chdir
bench_repeats 3 1
S3RVER="$ROOT/node_modules/.bin/s3rver"
for b in "$BUILD/bench/s3_bench" "$BUILD/sluice" "$S3RVER"; do
  if [[ ! -x "$b" ]]; then
    echo "run_s3_bench: $b is missing (ninja -C $BUILD s3_bench sluice; npm ci for s3rver)" >&2
    exit 1
  fi
done
OBJECTS=2000
CORPUS=/usr/share/doc/python3.11/html/library
if ((QUICK)); then OBJECTS=300; CORPUS=/usr/share/doc/python3.11/html/tutorial; fi
if [[ ! -d "$CORPUS" ]]; then bash "$ROOT/scripts/setup.sh" --manuals >/dev/null; fi

WORK="$(mktemp -d "$BUILD/s3-bench.XXXXXX")"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BUCKET=bench
mkdir -p "$WORK/s3"
# s3rver encrypts continuation tokens with DES, which Node 20's OpenSSL 3 has only in its legacy provider.
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" --directory "$WORK/s3" --address 127.0.0.1 --port "$PORT" --silent --configure-bucket "$BUCKET" \
  >"$WORK/s3rver.log" 2>&1 &
S3_PID=$!
cleanup() {
  kill "$S3_PID" 2>/dev/null || true
  wait "$S3_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ENDPOINT="http://127.0.0.1:$PORT"
for _ in $(seq 200); do curl -s -o /dev/null "$ENDPOINT/" && break; sleep 0.05; done

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
STORE="s3://$BUCKET?endpoint=$ENDPOINT&region=us-east-1"
# curl 7.88 does not send x-amz-content-sha256 itself (S3 requires it); given, it is signed too.
SIGV4=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "S3RVER:S3RVER" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")

MACHINE="$(python3 -c 'import json,os,platform
m=[l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
mem=[int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")][0]
print(json.dumps({"nproc":os.cpu_count(),"cpu_model":m[0] if m else "?","mem_total_kib":mem,"kernel":platform.release(),"loadavg_at_start":open("/proc/loadavg").read().split()[:3]}))')"
echo "run_s3_bench: machine $MACHINE" >&2

echo "run_s3_bench: putting $OBJECTS objects of 4 KiB" >&2
"$BUILD/bench/s3_bench" put --uri "$STORE" --prefix small/ --count "$OBJECTS" --size 4096

urlencode() {  # RFC 3986 for an ASCII token
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in
      [a-zA-Z0-9.~_-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s' "$out"
}
# curl: list page by page (continuation tokens from the XML), then download every key with one curl.
curl_pull() {  # curl_pull PARALLEL OUTDIR: prints {"type":"curl_pull",...}
  local par=$1 out=$2 t0 t1 t2 token="" keys="$WORK/keys.txt" page="$WORK/page.xml"
  : >"$keys"
  t0=$(date +%s.%N)
  while :; do
    local url="$ENDPOINT/$BUCKET?list-type=2&max-keys=1000&prefix=small%2F"
    if [[ -n "$token" ]]; then url+="&continuation-token=$(urlencode "$token")"; fi
    curl -sf "${SIGV4[@]}" -o "$page" "$url"
    # grep and sed, not a Python parser: the anchor's listing should cost what curl costs.
    grep -o '<Key>[^<]*</Key>' "$page" | sed 's/<Key>\(.*\)<\/Key>/\1/' >>"$keys"
    token=""
    if grep -q '<IsTruncated>true</IsTruncated>' "$page"; then
      token="$(grep -o '<NextContinuationToken>[^<]*</NextContinuationToken>' "$page" | sed 's/<[^>]*>//g')"
    fi
    [[ -n "$token" ]] || break
  done
  t1=$(date +%s.%N)
  local cfg="$WORK/curl.cfg" i=0
  : >"$cfg"
  while read -r k; do
    printf 'url = "%s/%s/%s"\noutput = "%s/%d"\n' "$ENDPOINT" "$BUCKET" "$k" "$out" "$i" >>"$cfg"
    i=$((i + 1))
  done <"$keys"
  local extra=()
  if ((par > 1)); then extra=(--parallel --parallel-max "$par"); fi
  curl -sf --no-progress-meter "${SIGV4[@]}" "${extra[@]}" -K "$cfg"
  t2=$(date +%s.%N)
  python3 -c 'import json,sys; n,t0,t1,t2,p=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]),float(sys.argv[4]),int(sys.argv[5]); print(json.dumps({"type":"curl_pull","threads":p,"objects":n,"list_s":round(t1-t0,3),"download_s":round(t2-t1,3),"list_objects_per_s":round(n/(t1-t0),1),"download_objects_per_s":round(n/(t2-t1),1),"total_objects_per_s":round(n/(t2-t0),1)}))' \
    "$i" "$t0" "$t1" "$t2" "$par"
}

: >"$WORK/pull.jsonl"
for ((r = 1; r <= REPEATS; r++)); do
  for threads in 1 4; do
    rm -rf "$WORK/out" && mkdir -p "$WORK/out"
    "$BUILD/bench/s3_bench" pull --uri "$STORE" --prefix small/ --out "$WORK/out" --threads "$threads" |
      python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); j["run"]=int(sys.argv[1]); print(json.dumps(j))' "$r" |
      tee -a "$WORK/pull.jsonl"
    got=$(find "$WORK/out" -type f | wc -l)
    [[ "$got" == "$OBJECTS" ]] || { echo "run_s3_bench: sluice downloaded $got of $OBJECTS" >&2; exit 1; }
    rm -rf "$WORK/out" && mkdir -p "$WORK/out"
    curl_pull "$threads" "$WORK/out" |
      python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); j["run"]=int(sys.argv[1]); print(json.dumps(j))' "$r" |
      tee -a "$WORK/pull.jsonl"
    got=$(find "$WORK/out" -type f | wc -l)
    [[ "$got" == "$OBJECTS" ]] || { echo "run_s3_bench: curl downloaded $got of $OBJECTS" >&2; exit 1; }
  done
done

# End to end: the same corpus from the bucket and from the folder.
"$BUILD/bench/s3_bench" putdir --uri "$STORE" --prefix corpus/ --dir "$CORPUS"
ingest() {  # ingest SOURCE: the summary JSON of one fresh run
  rm -rf "$WORK/data"
  "$BUILD/sluice" ingest "$1" --include '*.html' --data "$WORK/data" --workers 2 --pool 2 --progress none --json \
    --s3-endpoint "$ENDPOINT" --s3-region us-east-1 | tail -n 1
}
: >"$WORK/ingest.jsonl"
for ((r = 1; r <= REPEATS; r++)); do
  FOLDER="$(ingest "$CORPUS")"
  BKT="$(ingest "s3://$BUCKET/corpus/")"
  python3 -c 'import json,sys; f=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(json.dumps({"type":"ingest_run","run":int(sys.argv[3]),"folder_ok":f["ok"],"folder_failed":f["failed"],"bucket_ok":b["ok"],"bucket_failed":b["failed"],"folder_s":f["seconds"],"bucket_s":b["seconds"]}))' \
    "$FOLDER" "$BKT" "$r" | tee -a "$WORK/ingest.jsonl"
done

python3 - "$WORK/pull.jsonl" "$WORK/ingest.jsonl" "$MACHINE" "$OBJECTS" "$CORPUS" <<'PY'
import json, statistics, sys
pulls = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ingests = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
def med(kind, threads, field):
    return statistics.median(p[field] for p in pulls if p["type"] == kind and p["threads"] == threads)
fig = {}
for t in (1, 4):
    for field in ("list_objects_per_s", "download_objects_per_s", "total_objects_per_s"):
        s, c = med("sluice_pull", t, field), med("curl_pull", t, field)
        fig[f"{field}_{t}"] = {"sluice": s, "curl": c, "ratio": round(s / c, 3) if c else None}
fs = statistics.median(i["folder_s"] for i in ingests)
bs = statistics.median(i["bucket_s"] for i in ingests)
docs = ingests[0]["folder_ok"]
same = all(i["bucket_ok"] == i["folder_ok"] and i["bucket_failed"] == 0 for i in ingests)
out = {"type": "summary", "bench": "s3", "machine": json.loads(sys.argv[3]), "objects": int(sys.argv[4]),
       "object_bytes": 4096, "repeats": len(ingests), "pull": fig,
       "ingest": {"corpus": sys.argv[5], "documents": docs, "folder_s_runs": [i["folder_s"] for i in ingests],
                  "bucket_s_runs": [i["bucket_s"] for i in ingests], "folder_s": fs, "bucket_s": bs,
                  "all_documents_from_bucket": same, "ratio_bucket_vs_folder_docs_per_s": round(fs / bs, 3)}}
print(json.dumps(out))
print(f"\n== S3 benchmark ({out['objects']} x 4 KiB objects on s3rver, medians of {out['repeats']})", file=sys.stderr)
for t in (1, 4):
    for field in ("list_objects_per_s", "download_objects_per_s", "total_objects_per_s"):
        f = fig[f"{field}_{t}"]
        print(f"  {field:<24} {t} thread(s): sluice {f['sluice']:>8.1f}  curl {f['curl']:>8.1f}  ratio {f['ratio']}", file=sys.stderr)
print(f"  ingest {docs} HTML files: folder {fs:.2f} s, bucket {bs:.2f} s -> bucket/folder speed {out['ingest']['ratio_bucket_vs_folder_docs_per_s']}x"
      + ("" if same else "  (NOT every document came through from the bucket)"), file=sys.stderr)
PY
