#!/usr/bin/env bash
# run_serve_bench.sh: benchmarks `sluice serve`'s upload endpoint (POST /v1/documents, raw body,
# docs/http_api.md) next to a FastAPI app that only writes each upload to disk and answers
# (bench/serve/fastapi_upload.py under uvicorn), and judges the upload targets (which live here
# only, never in tests). Prints the targets beside the figures; it does not enforce them.
#
# Usage: bench/run_serve_bench.sh [--quick] [--repeats N] [--keep] [--auth] [PATH/TO/sluice]
#
# Builds nothing: sluice comes from the argument or build/sluice, and must have `serve`.
# Every request is one ~1 KB text upload from wrk with bench/serve/upload.lua:
#   wrk -t2 -c64 -d10s --latency -s bench/serve/upload.lua http://127.0.0.1:PORT/v1/documents
# (-d5s with --quick; WRK_THREADS, WRK_CONNECTIONS and WRK_DURATION override -t, -c, -d).
# wrk runs on the same machine as the server under test and takes CPU from it; both servers pay
# that alike. Steps, REPEATS times (3; 1 with --quick), alternating, each on a fresh server and
# data directory:
#   a. sluice: `sluice serve --listen 127.0.0.1:PORT --data DIR` (in-process workers, the
#      default), waits for /readyz 200, then gives it a backlog: BACKLOG_DOCS (2,000) uploads
#      from wrk (-c16, stopped once /v1/stats counts them accepted), so the parse, embed and index
#      stages are busy; then the timed wrk run while that backlog is processed. /v1/stats is read
#      right after wrk ends: the backlog counts as still there when a stage's lag > 0 or
#      documents.queued > 0 (reported per run, and as a precondition of the targets).
#   b. FastAPI: `python3 -m uvicorn fastapi_upload:app` (ONE worker process, as a plain
#      `uvicorn app:app`; --no-access-log), UPLOAD_DIR on the same disk; the same wrk command.
#   b2. the same with `--workers 2` (labelled fastapi_2_workers; informative, not the anchor).
#      FASTAPI_2W=0 leaves it out.
#   d. memory: a fresh sluice server takes MEM_UPLOADS (10,000) uploads as fast as wrk sends them
#      (stopped once /v1/stats counts them accepted; capped at 120 s); the server's VmHWM (peak
#      RSS, /proc/PID/status) before and after, a curve of it against the uploads accepted so
#      far, how many were accepted, and the backlog left. Twice: as benchmarked (in-process
#      workers index meanwhile) and with --no-workers (nothing consumes them: all stay queued).
#      Every timed sluice run (a) also reports VmHWM after its uploads, for comparison.
# Before each timed run, one connection uploads one document at a time for 1 s (wrk -t1 -c1):
# the unloaded round trip, reported as keepalive_1conn (~40 ms there means TCP_NODELAY is off).
# Figures: per run and median over the repeats: requests/s (wrk's, every answer),
# uploads/s (2xx answers only: requests minus non-2xx, over wrk's duration), p50 and p99
# latency (wrk's --latency distribution, every answer), non-2xx count (wrk's status >= 400) and
# socket errors. Targets (on the medians): sluice >= 5000 uploads/s with p99 <= 50 ms; sluice
# uploads/s >= 3x FastAPI's (one worker).
# --auth starts sluice with a random token (SLUICE_API_TOKENS) and sends
# `Authorization: Bearer TOKEN` on every request, to both servers (FastAPI ignores it).
# Output: one JSON object on stdout; progress and a readable summary on stderr. Everything
# temporary lives in a directory next to the sluice binary (same disk for both servers), removed
# at exit unless --keep (then out/ has every raw wrk output, /v1/stats answer and server log).
# FASTAPI_PYTHON names the python3 that has fastapi and uvicorn (default: the first of python3,
# /usr/bin/python3 that imports both).
#
# Exit status: 0 when everything ran (whether or not the targets were met), 1 when a step failed
# (a server that does not start, a wrk run that fails), 2 on bad usage. Needs wrk, curl, setsid,
# python3, and fastapi + uvicorn (scripts/setup.sh installs them).
set -euo pipefail

KEEP=0
AUTH=0
bench_option() {
  case "$1" in
    --keep) KEEP=1; BENCH_TOOK=1 ;;
    --auth) AUTH=1; BENCH_TOOK=1 ;;
    --)
      echo "run_serve_bench: it runs no other program; nothing goes after --" >&2
      exit 2
      ;;
  esac
}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_parse run_serve_bench "$@"
SLUICE="$BENCH_ARG"

say() { echo "run_serve_bench: $*" >&2; }
die() {
  say "$*"
  exit 1
}

LUA="$ROOT/bench/serve/upload.lua"
APP_DIR="$ROOT/bench/serve"
if [[ -z "$SLUICE" ]]; then SLUICE="$ROOT/build/sluice"; fi
if [[ ! -x "$SLUICE" ]]; then
  say "no sluice at $SLUICE; build it first, e.g."
  say "  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build sluice"
  exit 1
fi
SLUICE="$(cd "$(dirname "$SLUICE")" && pwd)/$(basename "$SLUICE")"
if ! "$SLUICE" serve --help >/dev/null 2>&1; then
  die "$SLUICE has no working \`serve\` subcommand (\`$SLUICE serve --help\` failed); build a sluice that has it"
fi
for tool in wrk curl setsid python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs it)"
done
for f in "$LUA" "$APP_DIR/fastapi_upload.py"; do
  [[ -f "$f" ]] || die "missing $f"
done
PYFA=""
for p in ${FASTAPI_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import fastapi, uvicorn' 2>/dev/null; then
    PYFA="$(command -v "$p")"
    break
  fi
done
[[ -n "$PYFA" ]] || die "no python3 with fastapi and uvicorn (apt-get install python3-fastapi python3-uvicorn, or set FASTAPI_PYTHON)"

bench_repeats 3 1
DURATION=10
if ((QUICK)); then
  DURATION=5
fi
DURATION="${WRK_DURATION:-$DURATION}"
DURATION="${DURATION%s}"
THREADS="${WRK_THREADS:-2}"
CONNS="${WRK_CONNECTIONS:-64}"
BACKLOG_DOCS="${BACKLOG_DOCS:-2000}"
MEM_UPLOADS="${MEM_UPLOADS:-10000}"
FASTAPI_2W="${FASTAPI_2W:-1}"
START_TIMEOUT=60
for v in DURATION THREADS CONNS BACKLOG_DOCS MEM_UPLOADS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || {
    say "$v must be a positive integer, not '${!v}'"
    exit 2
  }
done

# Everything temporary lives next to the sluice binary, on the disk being measured.
PARENT="$(dirname "$SLUICE")"
[[ -w "$PARENT" ]] || PARENT="${TMPDIR:-/tmp}"
WORK="$(mktemp -d "$PARENT/serve-bench.XXXXXX")"
OUT="$WORK/out"
mkdir -p "$OUT"
RUNS="$WORK/runs.jsonl"
: >"$RUNS"

SERVER_PID=""
SERVER_GROUP=0
WRK_PID=""
# alive PID: the child still runs (kill -0 also succeeds on a child that exited but was not waited for)
alive() {
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ "$st" != Z* ]]
}
stop_server() {
  if [[ -z "$SERVER_PID" ]]; then return 0; fi
  local target="$SERVER_PID"
  if ((SERVER_GROUP)); then target="-$SERVER_PID"; fi  # its process group: uvicorn's workers too
  kill -TERM -- "$target" 2>/dev/null || true
  for _ in $(seq 100); do
    alive "$SERVER_PID" || break
    sleep 0.1
  done
  kill -KILL -- "$target" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  if [[ -n "$WRK_PID" ]]; then
    kill -TERM "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" 2>/dev/null || true
  fi
  stop_server
  if ((KEEP)); then
    say "kept $WORK"
  elif ((rc != 0 && rc != 130)); then
    find "$WORK" -mindepth 1 -maxdepth 1 ! -name out -exec rm -rf {} +
    say "failed: the logs and raw outputs are kept in $OUT"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers in python: ports, wrk output, /proc, /v1/stats, the summary ----
HELPER="$WORK/helper.py"
cat >"$HELPER" <<'EOF'
import json, os, re, socket, statistics, sys

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}

def parse_wrk(path):
    """wrk --latency text plus upload.lua's done() line -> one JSON object."""
    text = open(path, errors="replace").read()
    r = {}
    for pct, val, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        r[f"p{pct}_ms"] = round(float(val) * UNIT[unit], 3)
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    r["requests_per_s"] = float(m.group(1)) if m else None
    lua = None
    for line in text.splitlines():
        if line.startswith("upload.lua: {"):
            lua = json.loads(line[len("upload.lua: "):])
    if lua is not None and "p99_ms" not in r:  # a run without --latency
        r["p50_ms"], r["p99_ms"] = lua["p50_us"] / 1e3, lua["p99_us"] / 1e3
    if lua is None or r["requests_per_s"] is None:
        return {"error": f"cannot read wrk's output ({os.path.basename(path)})"}
    dur = lua["duration_us"] / 1e6
    r["requests"] = lua["requests"]
    r["duration_s"] = round(dur, 3)
    r["non2xx"] = lua["non2xx"]
    r["accepted"] = lua.get("ok", lua["requests"] - lua["non2xx"])
    r["uploads_per_s"] = round((lua["requests"] - lua["non2xx"]) / dur, 1) if dur > 0 else None
    r["socket_errors"] = {k: lua[k + "_errors"] for k in ("connect", "read", "write")}
    r["socket_errors"]["timeout"] = lua["timeouts"]
    if "statuses" in lua:
        r["statuses"] = lua["statuses"]
    return r

def procs():
    """pid -> (ppid, pgid, utime+stime jiffies) of every process."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            out[int(p)] = (int(f[1]), int(f[2]), int(f[11]) + int(f[12]))
        except (OSError, IndexError, ValueError):
            continue
    return out

def tree(pid, table):
    """PID, its descendants and the members of its process group."""
    pid = int(pid)
    kids = {}
    for p, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(p)
    seen, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p in seen or p not in table:
            continue
        seen.add(p)
        todo.extend(kids.get(p, []))
    seen.update(p for p, (_, pgid, _) in table.items() if pgid == pid)
    return seen

def proc_mem(pid):
    """VmHWM/VmRSS (KiB) of PID, and summed over its process tree (see tree())."""
    def status(p):
        d = {}
        try:
            for line in open(f"/proc/{p}/status"):
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    d[k] = int(v.split()[0])
        except OSError:
            return None
        return d
    main = status(pid) or {}
    t = {"pids": 0, "VmHWM": 0, "VmRSS": 0}
    for p in tree(pid, procs()):
        st = status(p)
        if st:
            t["pids"] += 1
            t["VmHWM"] += st.get("VmHWM", 0)
            t["VmRSS"] += st.get("VmRSS", 0)
    return {"vmhwm_kib": main.get("VmHWM"), "vmrss_kib": main.get("VmRSS"),
            "tree_processes": t["pids"], "tree_vmhwm_kib_sum": t["VmHWM"],
            "tree_vmrss_kib_sum": t["VmRSS"]}

def cpu_snap(pid):
    """The machine's busy and total jiffies (/proc/stat) and the server tree's CPU jiffies."""
    import time
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    table = procs()
    steal = f[7] if len(f) > 7 else 0
    return {"t": time.time(), "total": sum(f[:8]), "busy": sum(f[:8]) - idle - steal, "steal": steal,
            "server": sum(table[p][2] for p in tree(pid, table) if p in table)}

def cpu_use(before, after, wrk_s):
    """Cores used during a run: the whole machine, the server (with its children), wrk, others."""
    b, a = load_json(before), load_json(after)
    if not b or not a or a["t"] <= b["t"]:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    wall = a["t"] - b["t"]
    ncpu = os.cpu_count() or 1
    total = max(1, a["total"] - b["total"])
    machine = (a["busy"] - b["busy"]) / total * ncpu
    steal = (a.get("steal", 0) - b.get("steal", 0)) / total * ncpu
    server = (a["server"] - b["server"]) / hz / wall
    wrk = wrk_s / wall if wrk_s is not None else None
    others = machine - server - (wrk or 0)
    return {"machine": round(machine, 2), "server": round(server, 2),
            "wrk": None if wrk is None else round(wrk, 2), "others": round(max(0.0, others), 2),
            "steal": round(steal, 2),
            "note": "cores busy over the timed run; others = machine - server - wrk (the server's "
                    "tree as it was at the end; processes that exited during the run count as "
                    "others); steal: time the hypervisor gave the vCPUs to someone else"}

def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def backlog(stats):
    """The backlog in a /v1/stats answer: stage lags and documents still queued."""
    if not isinstance(stats, dict):
        return {"known": False, "nonempty": None}
    docs = stats.get("documents") or {}
    stages = stats.get("stages") or []
    lags = {s.get("name", "?"): s.get("lag") for s in stages}
    lag_total = sum(v for v in lags.values() if isinstance(v, (int, float)))
    queued = docs.get("queued")
    return {"known": True,
            "nonempty": bool(lag_total > 0 or (isinstance(queued, (int, float)) and queued > 0)),
            "lag_total": lag_total, "lag_by_stage": lags, "documents": docs,
            "per_s_by_stage": {s.get("name", "?"): s.get("per_s") for s in stages},
            "uploads": stats.get("uploads")}

def record(args):
    """kind repeat then key=value: wrk load probe [stats_before stats_after proc cpu_before
    cpu_after wrk_cpu_s] -> one JSON line."""
    kind, rep = args[:2]
    kv = dict(a.split("=", 1) for a in args[2:])
    r = {"kind": kind, "repeat": int(rep), "loadavg_1m_before": float(kv["load"])}
    r.update(parse_wrk(kv["wrk"]))
    probe = parse_wrk(kv["probe"])
    if "error" not in probe:
        r["keepalive_1conn"] = {"p50_ms": probe["p50_ms"], "requests_per_s": probe["requests_per_s"]}
        if probe["p50_ms"] >= 35:
            r["keepalive_1conn"]["note"] = (
                "~40 ms per upload on one otherwise idle keep-alive connection: consistent with "
                "Nagle's algorithm meeting the client's delayed ACK (TCP_NODELAY off on the "
                "server's sockets)")
    if "cpu_before" in kv:
        wrk_s = float(kv["wrk_cpu_s"]) if kv.get("wrk_cpu_s") else None
        r["cpu_cores"] = cpu_use(kv["cpu_before"], kv["cpu_after"], wrk_s)
    if "stats_before" in kv:
        r["backlog_at_start"] = backlog(load_json(kv["stats_before"]))
        r["backlog_at_end"] = backlog(load_json(kv["stats_after"]))
        r["memory_after_run"] = load_json(kv["proc"])
    print(json.dumps(r, separators=(",", ":")))

def progress(line):
    r = json.loads(line)
    if "error" in r:
        return f"{r['kind']} run {r['repeat']}: {r['error']}"
    s = (f"{r['kind']} run {r['repeat']}: {r['uploads_per_s']:.0f} uploads/s "
         f"({r['requests_per_s']:.0f} requests/s), p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
         f"non-2xx {r['non2xx']}")
    c = r.get("cpu_cores")
    if c:
        s += f"; cores: server {c['server']}, wrk {c['wrk']}, others {c['others']}, steal {c['steal']}"
    k = r.get("keepalive_1conn")
    if k:
        s += f"; one keep-alive connection alone: p50 {k['p50_ms']} ms" + (" (Nagle? see JSON)" if "note" in k else "")
    if "backlog_at_end" in r:
        b = r["backlog_at_end"]
        s += (f"; backlog when wrk ended: lag {b.get('lag_total')}, queued "
              f"{(b.get('documents') or {}).get('queued')}" if b["known"] else "; backlog unknown")
    return s

def med(runs, field):
    vals = [r[field] for r in runs if r.get(field) is not None]
    return statistics.median(vals) if vals else None

def summary(args):
    runs_path, mem_with, mem_without = args
    runs = [json.loads(l) for l in open(runs_path) if l.strip()]
    env = os.environ
    def side(kind, extra):
        rs = [r for r in runs if r["kind"] == kind]
        ok = [r for r in rs if "error" not in r]
        m = {f: med(ok, f) for f in ("uploads_per_s", "requests_per_s", "p50_ms", "p99_ms", "non2xx")}
        d = dict(extra)
        d.update({"runs": rs, "median": m,
                  "non2xx_total": sum(r.get("non2xx", 0) for r in ok),
                  "socket_errors_total": sum(sum(r.get("socket_errors", {}).values()) for r in ok)})
        return d
    sl = side("sluice", {"command": env["SLUICE_CMD_TEXT"], "workers": "in-process (default)"})
    fa = side("fastapi", {"command": env["FASTAPI_CMD_TEXT"] + " --workers 1", "workers": 1, "single_process": True,
                          "note": "one uvicorn worker process (a plain `uvicorn app:app`), the anchor"})
    fa2 = side("fastapi_2_workers", {"command": env["FASTAPI_CMD_TEXT"] + " --workers 2",
                                     "workers": 2, "single_process": False,
                                     "note": "informative only; the ratio target uses one worker. fastapi_upload.py sets "
                                             "TCP_NODELAY, which uvicorn --workers N loses "
                                             "(Kludex/uvicorn#3149)"})
    su, fu = sl["median"]["uploads_per_s"], fa["median"]["uploads_per_s"]
    fu2 = fa2["median"]["uploads_per_s"]
    ratio = round(su / fu, 3) if su is not None and fu else None
    ratio2 = round(su / fu2, 3) if su is not None and fu2 else None
    sr = [r for r in sl["runs"] if "error" not in r]
    backlog_ok = None
    if sr and all(r["backlog_at_end"]["known"] for r in sr):
        backlog_ok = all(r["backlog_at_end"]["nonempty"] for r in sr)
    p99 = sl["median"]["p99_ms"]

    def target(name, what, measured, unit, ok, note=None):
        t = {"name": name, "target": what, "measured": measured, "unit": unit,
             "status": "not_measured" if measured is None else ("met" if ok(measured) else "missed")}
        if note:
            t["note"] = note
        return t
    targets = [
        target("sluice_uploads_per_s_with_p99", ">= 5000 uploads/s and p99 <= 50 ms",
               None if su is None or p99 is None else {"uploads_per_s": su, "p99_ms": p99},
               "uploads/s, ms", lambda v: v["uploads_per_s"] >= 5000 and v["p99_ms"] <= 50,
               "medians; uploads/s counts 2xx answers only; p99 over every answer"),
        target("sluice_vs_fastapi", ">= 3.0", ratio, "ratio", lambda v: v >= 3.0,
               "median uploads/s of sluice over FastAPI's under one uvicorn worker process"),
        target("backlog_nonempty_when_wrk_ended", "true in every sluice run", backlog_ok, "bool",
               lambda v: v is True,
               "precondition: the uploads were measured while parse/embed/index were busy"),
    ]
    mem = {"with_workers": load_json(mem_with) or {"error": "the memory step did not run"},
           "no_workers": load_json(mem_without) or {"error": "the memory step did not run"},
           "note": "with_workers: `sluice serve` as benchmarked (its stages parse, embed and index "
                   "meanwhile, so the in-memory index grows with the documents indexed); "
                   "no_workers: `sluice serve --no-workers`, nothing consumes the uploads, all of "
                   "them stay queued: the memory of the upload path and the queue alone"}
    out = {
        "type": "summary",
        "bench": "serve_upload",
        "quick": env["QUICK"] == "1",
        "machine": {"nproc": int(env["M_NPROC"]), "cpu_model": env["M_CPU"],
                    "mem_total_kib": int(env["M_MEM_KIB"]), "kernel": env["M_KERNEL"],
                    "loadavg_at_start": env["M_LOAD"]},
        "tools": json.loads(env["TOOLS_JSON"]),
        "config": {"wrk_command": env["WRK_CMD_TEXT"], "lua": "bench/serve/upload.lua",
                   "body_bytes_approx": int(env["BODY_BYTES"]), "content_type": "text/plain",
                   "repeats": int(env["REPEATS"]), "duration_s": int(env["DURATION"]),
                   "backlog_docs_before_each_sluice_run": int(env["BACKLOG_DOCS"]),
                   "auth": env["AUTH"] == "1",
                   "same_machine": "wrk, the server and its workers share the machine's cores"},
        "sluice": sl,
        "fastapi": fa,
        "ratio_sluice_over_fastapi": ratio,
        "ratio_sluice_over_fastapi_2_workers": ratio2,
        "targets": targets,
        "targets_met": sum(t["status"] == "met" for t in targets),
        "targets_total": len(targets),
        "memory": mem,
    }
    if fa2["runs"]:
        out["fastapi_2_workers"] = fa2
    if out["quick"]:
        out["note"] = "--quick: one short repeat, smoke-test figures, too short to judge the targets"
    print(json.dumps(out, separators=(",", ":")))
    for name, s in (("sluice", sl), ("fastapi (1 process)", fa), ("fastapi --workers 2", fa2)):
        m = s["median"]
        if s["runs"]:
            print(f"  {name:<20} median {m['uploads_per_s']} uploads/s, p50 {m['p50_ms']} ms, "
                  f"p99 {m['p99_ms']} ms, non-2xx total {s['non2xx_total']}", file=sys.stderr)
    print(f"  ratio sluice/fastapi {ratio} (vs 2 workers: {ratio2})", file=sys.stderr)
    for label in ("with_workers", "no_workers"):
        m = mem[label]
        if "vmhwm_kib_after" in m:
            b = m["backlog_after"]
            print(f"  memory ({label}): {m['accepted_server']} uploads accepted, VmHWM "
                  f"{m['vmhwm_kib_before']} -> {m['vmhwm_kib_after']} KiB (second half: "
                  f"{m.get('vmhwm_growth_bytes_per_upload_second_half')} B/upload); then queued "
                  f"{(b.get('documents') or {}).get('queued')}, lag {b.get('lag_total')}",
                  file=sys.stderr)
    for t in targets:
        print(f"  {t['status']:>12}  {t['name']:<32} {t['target']:<36} measured {t['measured']}",
              file=sys.stderr)

def curve(path):
    rows = []
    try:
        for line in open(path):
            f = line.split()
            if len(f) == 3 and all(x.lstrip("-").isdigit() for x in f):
                rows.append([int(x) for x in f])
    except OSError:
        return []
    if len(rows) <= 12:
        return rows
    step = (len(rows) - 1) / 10
    return [rows[round(i * step)] for i in range(11)]

def memory(args):
    """proc_before proc_after stats_before stats_after wrk_out elapsed_s target curve -> JSON."""
    pb, pa, sb, sa = (load_json(a) for a in args[:4])
    wrk = parse_wrk(args[4])
    acc = lambda s: (s or {}).get("uploads", {}).get("accepted")
    a0, a1 = acc(sb), acc(sa)
    n = a1 - a0 if isinstance(a0, int) and isinstance(a1, int) else None
    out = {"target_uploads": int(args[6]), "elapsed_s": float(args[5]),
           "accepted_server": n,
           "accepted_wrk_2xx": wrk.get("accepted"), "non2xx": wrk.get("non2xx"),
           "statuses": wrk.get("statuses"),
           "vmhwm_kib_before": (pb or {}).get("vmhwm_kib"), "vmrss_kib_before": (pb or {}).get("vmrss_kib"),
           "vmhwm_kib_after": (pa or {}).get("vmhwm_kib"), "vmrss_kib_after": (pa or {}).get("vmrss_kib"),
           "tree_processes": (pa or {}).get("tree_processes"),
           "tree_vmhwm_kib_sum_after": (pa or {}).get("tree_vmhwm_kib_sum"),
           "backlog_after": backlog(sa),
           "curve": [[0, (pb or {}).get("vmhwm_kib"), (pb or {}).get("vmrss_kib")]] + curve(args[7]),
           "note": "VmHWM of the `sluice serve` process (peak RSS); tree_*: summed over it and "
                   "its child processes; curve: [accepted so far, VmHWM KiB, VmRSS KiB] while "
                   "the uploads went in (about 10 points)"}
    if n and out["vmhwm_kib_before"] is not None and out["vmhwm_kib_after"] is not None:
        out["vmhwm_growth_bytes_per_upload"] = round(
            (out["vmhwm_kib_after"] - out["vmhwm_kib_before"]) * 1024 / n, 1)
    # growth over the second half of the uploads: near 0 when memory levels off, steady when it
    # grows with every upload kept
    pts = [c for c in out["curve"] if None not in c]
    if len(pts) >= 3 and pts[-1][0] > 0:
        mid = min(pts, key=lambda c: abs(c[0] - pts[-1][0] / 2))
        if pts[-1][0] > mid[0]:
            out["vmhwm_growth_bytes_per_upload_second_half"] = round(
                (pts[-1][1] - mid[1]) * 1024 / (pts[-1][0] - mid[0]), 1)
    print(json.dumps(out, separators=(",", ":")))

cmd, rest = sys.argv[1], sys.argv[2:]
if cmd == "free_port": free_port()
elif cmd == "proc": print(json.dumps(proc_mem(rest[0])))
elif cmd == "cpu": print(json.dumps(cpu_snap(rest[0])))
elif cmd == "record": record(rest)
elif cmd == "progress": print(progress(sys.stdin.readline()))
elif cmd == "memory": memory(rest)
elif cmd == "summary": summary(rest)
else: sys.exit(f"helper: unknown command {cmd}")
EOF
helper() { python3 "$HELPER" "$@"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

TOKEN=""
CURL_AUTH=()
WRK_ENV=(UPLOAD_THREADS="$THREADS")
SLUICE_ENV=()
if ((AUTH)); then
  TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  CURL_AUTH=(-H "Authorization: Bearer $TOKEN")
  WRK_ENV+=(UPLOAD_AUTHORIZATION="Bearer $TOKEN")
  SLUICE_ENV=(SLUICE_API_TOKENS="$TOKEN")
fi

# start_server NAME READY PORT LOG CMD...: starts CMD in its own process group (setsid keeps the
# pid: the script's children are not group leaders) and waits until http://127.0.0.1:PORT
# answers: READY is a path that must answer 200, or "any" for any HTTP answer. Returns 3 when
# the process exited before answering (the caller may retry on another port), 1 on a time-out.
start_server() {
  local name="$1" ready="$2" port="$3" log="$4" code rc
  shift 4
  setsid "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  SERVER_GROUP=0
  local path="$ready"
  if [[ "$ready" == any ]]; then path=/; fi
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! alive "$SERVER_PID"; then
      rc=0
      wait "$SERVER_PID" || rc=$?
      SERVER_PID=""
      say "$name exited with status $rc before answering on 127.0.0.1:$port; the end of its log ($log):"
      tail -n 20 "$log" >&2 || true
      return 3
    fi
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "${CURL_AUTH[@]}" \
      "http://127.0.0.1:$port$path" 2>/dev/null || true)"
    if [[ "$code" == 200 || ("$ready" == any && -n "$code" && "$code" != 000) ]]; then
      # setsid made it a process group leader (its children share the group): stop the group
      if [[ "$(ps -o pgid= -p "$SERVER_PID" 2>/dev/null | tr -d ' ')" == "$SERVER_PID" ]]; then
        SERVER_GROUP=1
      fi
      return 0
    fi
    sleep 0.1
  done
  say "$name did not answer on http://127.0.0.1:$port$path within ${START_TIMEOUT}s (last status '$code'); the end of its log ($log):"
  tail -n 20 "$log" >&2 || true
  stop_server
  return 1
}

# start_sluice TAG [EXTRA FLAGS]: a fresh data dir and server; sets PORT, DATA, SLUICE_LOG.
start_sluice() {
  local tag="$1" rc
  shift
  DATA="$WORK/sluice-$tag"
  SLUICE_LOG="$OUT/sluice-$tag.log"
  for attempt in 1 2 3; do
    rm -rf "$DATA"
    mkdir -p "$DATA"
    PORT="$(helper free_port)"
    rc=0
    start_server "sluice serve" /readyz "$PORT" "$SLUICE_LOG" \
      env "${SLUICE_ENV[@]}" "$SLUICE" serve --listen "127.0.0.1:$PORT" --data "$DATA" "$@" || rc=$?
    if ((rc == 0)); then return 0; fi
    if ((rc != 3)) || ! grep -qiE 'address|in use|bind' "$SLUICE_LOG"; then break; fi
    say "sluice serve did not start, perhaps the port was taken (attempt $attempt of 3)"
  done
  die "cannot start sluice serve ($SLUICE serve --listen 127.0.0.1:PORT --data DIR); see the log above"
}

# start_fastapi TAG WORKERS: sets PORT.
start_fastapi() {
  local tag="$1" workers="$2" rc
  local up="$WORK/$tag-uploads"
  for attempt in 1 2 3; do
    rm -rf "$up"
    PORT="$(helper free_port)"
    rc=0
    start_server "FastAPI (uvicorn, $workers worker(s))" any "$PORT" "$OUT/$tag.log" \
      env UPLOAD_DIR="$up" "$PYFA" -m uvicorn fastapi_upload:app --app-dir "$APP_DIR" \
      --host 127.0.0.1 --port "$PORT" --workers "$workers" --no-access-log --log-level info || rc=$?
    if ((rc == 0)); then
      # one answer came from the first worker; wait until every worker has started
      for _ in $(seq 100); do
        if (($(grep -c 'Application startup complete' "$OUT/$tag.log") >= workers)); then return 0; fi
        sleep 0.1
      done
      stop_server
      die "uvicorn did not start its $workers workers within 10 s; see $OUT/$tag.log"
    fi
    if ((rc != 3)) || ! grep -qiE 'address|in use|bind' "$OUT/$tag.log"; then break; fi
    say "FastAPI did not start, perhaps the port was taken (attempt $attempt of 3)"
  done
  die "cannot start the FastAPI app under uvicorn ($PYFA -m uvicorn fastapi_upload:app); see the log above"
}

get_stats() {  # FILE: the server's /v1/stats answer (empty file when it did not answer)
  curl -s --max-time 5 "${CURL_AUTH[@]}" "http://127.0.0.1:$PORT/v1/stats" >"$1" || : >"$1"
}

RUN_SEQ=0
next_run_id() {  # a fresh UPLOAD_RUN_ID per wrk invocation: no upload repeats an earlier one
  RUN_SEQ=$((RUN_SEQ + 1))
  RUN_ID="$$r$RUN_SEQ"
}

# probe_keepalive OUTFILE: one connection, one upload at a time, for 1 s: the round trip of an
# idle server (about 40 ms when the server leaves TCP_NODELAY off: Nagle meets delayed ACK).
probe_keepalive() {
  next_run_id
  env "${WRK_ENV[@]}" UPLOAD_RUN_ID="$RUN_ID" wrk -t1 -c1 -d1s --latency -s "$LUA" \
    "http://127.0.0.1:$PORT/v1/documents" >"$1" 2>&1 || say "the keep-alive probe failed (see $1); going on"
}

# children_cpu_s FILE: user+sys seconds of this shell's finished (waited-for) children, into FILE.
# Not in $(...): a subshell's `times` knows nothing of this shell's children.
children_cpu_s() {
  times >"$1.times"
  awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
    printf "%.3f\n", t }' "$1.times" >"$1"
}

WRK_CMD=(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$LUA")
# run_wrk PREFIX: the timed run against the server on $PORT: PREFIX.wrk.txt, and the machine's
# and the server's CPU around it (PREFIX.cpu-before/after.json; wrk's CPU seconds in WRK_CPU_S)
run_wrk() {
  local prefix="$1" rc=0
  next_run_id
  helper cpu "$SERVER_PID" >"$prefix.cpu-before.json"
  children_cpu_s "$OUT/.cpu0"
  # in the background, so that a TERM or INT to this script stops it at once (see cleanup)
  env "${WRK_ENV[@]}" UPLOAD_RUN_ID="$RUN_ID" "${WRK_CMD[@]}" "http://127.0.0.1:$PORT/v1/documents" \
    >"$prefix.wrk.txt" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  helper cpu "$SERVER_PID" >"$prefix.cpu-after.json"
  children_cpu_s "$OUT/.cpu1"
  WRK_CPU_S="$(awk 'NR == FNR { a = $1; next } { printf "%.3f", $1 - a }' "$OUT/.cpu0" "$OUT/.cpu1")"
  if ((rc != 0)); then
    cat "$prefix.wrk.txt" >&2
    die "wrk failed against 127.0.0.1:$PORT (status $rc, output above)"
  fi
}

accepted_now() {  # uploads.accepted from the server's /v1/stats now, or -1
  local n
  n="$(curl -s --max-time 5 "${CURL_AUTH[@]}" "http://127.0.0.1:$PORT/v1/stats" 2>/dev/null |
    grep -o '"accepted": *[0-9]*' | head -n1 | grep -o '[0-9]*$' || true)"
  echo "${n:--1}"
}

# wrk_until_accepted N CONNS CAP_S OUTFILE [CURVE]: uploads to sluice until N came back 2xx
# (upload.lua's UPLOAD_LIMIT stops each thread at its share and says so in a file) or its
# /v1/stats counts N more accepted, then wrk gets SIGINT and prints its report; or until CAP_S
# seconds passed. With CURVE, appends "accepted VmHWM VmRSS" (KiB) of the server every poll.
# Polls every 0.2 s with curl/grep/awk only, to take little CPU from the server.
wrk_until_accepted() {
  local n="$1" conns="$2" cap="$3" out="$4" curve="${5:-}" base now rc
  local done_file="$out.threads-done"
  : >"$done_file"
  base="$(accepted_now)"
  next_run_id
  env "${WRK_ENV[@]}" UPLOAD_RUN_ID="$RUN_ID" UPLOAD_LIMIT="$n" UPLOAD_DONE_FILE="$done_file" \
    wrk -t"$THREADS" -c"$conns" -d"${cap}s" -s "$LUA" "http://127.0.0.1:$PORT/v1/documents" \
    >"$out" 2>&1 &
  WRK_PID=$!
  while alive "$WRK_PID"; do
    sleep 0.2
    now="$(accepted_now)"
    if [[ -n "$curve" ]] && ((base >= 0 && now >= 0)); then
      awk -v n="$((now - base))" '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { print n, h, r }' \
        "/proc/$SERVER_PID/status" >>"$curve" 2>/dev/null || true
    fi
    if (($(wc -l <"$done_file") >= THREADS)) || ((base >= 0 && now >= base + n)); then
      kill -INT "$WRK_PID" 2>/dev/null || true
      break
    fi
  done
  rc=0
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  if ((rc != 0)); then
    cat "$out" >&2
    die "wrk failed against 127.0.0.1:$PORT (output above)"
  fi
}

# ---- machine and tools ----
M_NPROC="$(nproc)"
M_CPU="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)"
M_MEM_KIB="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
M_KERNEL="$(uname -r)"
M_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
WRK_VERSION="$(wrk -v 2>&1 | head -n1 | awk '{print $2}' || true)"
SLUICE_VERSION="$("$SLUICE" --version 2>/dev/null | head -n1 || true)"
TOOLS_JSON="$(WRK_VERSION="$WRK_VERSION" SLUICE_VERSION="$SLUICE_VERSION" "$PYFA" - <<'EOF'
import importlib.util, json, os, platform, sys
import fastapi, starlette, uvicorn
has = lambda m: importlib.util.find_spec(m) is not None
print(json.dumps({
    "wrk": os.environ["WRK_VERSION"], "sluice": os.environ["SLUICE_VERSION"] or None,
    "fastapi": fastapi.__version__, "starlette": starlette.__version__,
    "uvicorn": uvicorn.__version__, "python": platform.python_version(), "python_path": sys.executable,
    # what uvicorn's defaults (--http auto --loop auto) pick on this machine
    "uvicorn_http": "httptools" if has("httptools") else "h11",
    "uvicorn_loop": "uvloop" if has("uvloop") else "asyncio"}))
EOF
)"
BODY_BYTES=1016  # upload.lua: "bench-T-N.txt\n" (~16 bytes) + 1,000 bytes of text
say "machine: $M_NPROC cores, $M_CPU, $((M_MEM_KIB / 1024)) MiB, kernel $M_KERNEL, load $M_LOAD"
say "tools: $TOOLS_JSON"
if awk -v l="${M_LOAD%% *}" -v n="$M_NPROC" 'BEGIN { exit !(l > n / 4) }'; then
  say "warning: the machine is not idle (load $M_LOAD); the figures will be low"
fi

quote() {  # the words shell-quoted, space-separated, the checkout's path left out
  local s
  s="$(printf '%q ' "$@")"
  s="${s% }"
  printf '%s' "${s//$ROOT\//}"
}
SLUICE_CMD_TEXT="$(quote "$SLUICE" serve --listen 127.0.0.1:PORT --data DIR)"
FASTAPI_CMD_TEXT="$(quote env UPLOAD_DIR=DIR "$PYFA" -m uvicorn fastapi_upload:app --app-dir bench/serve \
  --host 127.0.0.1 --port PORT --no-access-log --log-level info)"
WRK_CMD_TEXT="$(quote "${WRK_CMD[@]}") http://127.0.0.1:PORT/v1/documents"

# ---- a, b, c: the timed runs, alternating ----
for ((r = 1; r <= REPEATS; r++)); do
  say "repeat $r/$REPEATS: sluice serve (backlog of $BACKLOG_DOCS uploads first)"
  start_sluice "r$r"
  probe_keepalive "$OUT/sluice-r$r.probe.txt"
  wrk_until_accepted "$BACKLOG_DOCS" 16 60 "$OUT/sluice-r$r.backlog.txt"
  get_stats "$OUT/sluice-r$r.stats-before.json"
  load="$(loadavg)"
  run_wrk "$OUT/sluice-r$r"
  get_stats "$OUT/sluice-r$r.stats-after.json"
  helper proc "$SERVER_PID" >"$OUT/sluice-r$r.proc.json"
  stop_server
  if ((!KEEP)); then rm -rf "$DATA"; fi
  p="$OUT/sluice-r$r"
  helper record sluice "$r" wrk="$p.wrk.txt" load="$load" probe="$p.probe.txt" \
    cpu_before="$p.cpu-before.json" cpu_after="$p.cpu-after.json" wrk_cpu_s="$WRK_CPU_S" \
    stats_before="$p.stats-before.json" stats_after="$p.stats-after.json" proc="$p.proc.json" >>"$RUNS"
  tail -n1 "$RUNS" | helper progress >&2

  kinds=("fastapi:1")
  if [[ "$FASTAPI_2W" != 0 ]]; then kinds+=("fastapi_2_workers:2"); fi
  for kw in "${kinds[@]}"; do
    kind="${kw%%:*}"
    workers="${kw##*:}"
    say "repeat $r/$REPEATS: FastAPI under uvicorn, $workers worker process(es)"
    start_fastapi "$kind-r$r" "$workers"
    probe_keepalive "$OUT/$kind-r$r.probe.txt"
    load="$(loadavg)"
    run_wrk "$OUT/$kind-r$r"
    stop_server
    if ((!KEEP)); then rm -rf "$WORK/$kind-r$r-uploads"; fi
    p="$OUT/$kind-r$r"
    helper record "$kind" "$r" wrk="$p.wrk.txt" load="$load" probe="$p.probe.txt" \
      cpu_before="$p.cpu-before.json" cpu_after="$p.cpu-after.json" wrk_cpu_s="$WRK_CPU_S" >>"$RUNS"
    tail -n1 "$RUNS" | helper progress >&2
  done
done

# ---- d: memory with MEM_UPLOADS queued ----
# measure_memory LABEL [EXTRA FLAGS]: a fresh server takes MEM_UPLOADS uploads; $WORK/memory-LABEL.json
measure_memory() {
  local label="$1" t0 t1
  shift
  local p="$OUT/mem-$label"
  say "memory ($label): $MEM_UPLOADS uploads into a fresh sluice serve $*"
  start_sluice "mem-$label" "$@"
  helper proc "$SERVER_PID" >"$p.proc-before.json"
  get_stats "$p.stats-before.json"
  t0="$(date +%s.%N)"
  wrk_until_accepted "$MEM_UPLOADS" "$CONNS" 120 "$p.wrk.txt" "$p.curve.txt"
  t1="$(date +%s.%N)"
  get_stats "$p.stats-after.json"
  helper proc "$SERVER_PID" >"$p.proc-after.json"
  stop_server
  if ((!KEEP)); then rm -rf "$DATA"; fi
  helper memory "$p.proc-before.json" "$p.proc-after.json" "$p.stats-before.json" \
    "$p.stats-after.json" "$p.wrk.txt" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
    "$MEM_UPLOADS" "$p.curve.txt" >"$WORK/memory-$label.json"
}
# with the in-process workers (the default): the stages index while the uploads come in
measure_memory with_workers
# --no-workers: nothing consumes doc_upload, so every upload stays queued (the upload path alone)
measure_memory no_workers --no-workers

# ---- e: the summary ----
export QUICK AUTH REPEATS DURATION BACKLOG_DOCS BODY_BYTES M_NPROC M_CPU M_MEM_KIB M_KERNEL M_LOAD \
  TOOLS_JSON SLUICE_CMD_TEXT FASTAPI_CMD_TEXT WRK_CMD_TEXT
helper summary "$RUNS" "$WORK/memory-with_workers.json" "$WORK/memory-no_workers.json"
