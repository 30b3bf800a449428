#!/usr/bin/env python3
"""ingest_bench.py: the measuring half of bench/run_ingest_bench.sh (see that script's header).

Prints one JSON object with every figure on stdout and a readable summary on stderr.
Python 3 standard library only. Reads sluice's output only through sluice_output.py.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import check_eval  # noqa: E402
import measure  # noqa: E402
import sluice_output  # noqa: E402

R_DIR = "/usr/share/R/doc/manual"             # r-doc-pdf (/usr/share/doc/r-doc-pdf/manual links here)
PY_DIR = "/usr/share/doc/python3.11/html"     # python3-doc (/usr/share/doc/python3/html links here)
ZH_DIR = "/usr/share/doc/debian-edu-doc-zh-cn"
ZH_FILES = ["debian-edu-bookworm-manual.html", "debian-edu-bookworm-manual.pdf",
            "debian-edu-bullseye-manual.html", "debian-edu-bullseye-manual.pdf"]
QUICK_PDFS = ["R-FAQ.pdf", "R-data.pdf", "R-intro.pdf", "R-lang.pdf"]
# More real manuals (`scripts/setup.sh --search-corpus`), ingested into the whole corpus's index so
# that search is measured where the targets are set: at 100k chunks (about 100.6k with all of these).
GROW_DIRS = ["/usr/share/doc/linux-doc-6.1/html", "/usr/share/doc/postgresql-doc-15",
             "/usr/share/doc/python-django-doc", "/usr/share/doc/sqlite3", "/usr/share/doc/python-pandas-doc",
             "/usr/share/doc/octave", "/usr/share/doc/maxima-doc", "/usr/share/doc/gnuplot"]
GROW_TARGET_CHUNKS = 100_000
QUICK_ZH = ["debian-edu-bookworm-manual.html", "debian-edu-bookworm-manual.pdf"]
MB = 1e6  # MB = 10^6 bytes; MiB = 2^20 bytes (RSS)


def log(msg):
    print(f"ingest_bench: {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", **kw)


# ---------------------------------------------------------------- machine and corpus
def machine_info(work):
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else None
    except OSError:
        pass
    mem_kib = None
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    except (OSError, AttributeError):
        pass
    disk = {}
    r = sh(["df", "-PT", work])
    if r.returncode == 0 and len(r.stdout.splitlines()) >= 2:
        f = r.stdout.splitlines()[1].split()
        disk = {"device": f[0], "filesystem": f[1], "size_gib": round(int(f[2]) / 2**20, 1),
                "available_gib": round(int(f[4]) / 2**20, 1), "mount": f[6]}
        r2 = sh(["lsblk", "-ndo", "MODEL,ROTA,TYPE", f[0]])
        if r2.returncode == 0 and r2.stdout.strip():
            disk["lsblk"] = r2.stdout.strip()
    return {"cpu_model": cpu, "cores": os.cpu_count(), "loadavg_start": _loadavg(), "ram_gib": round(mem_kib / 2**20, 1) if mem_kib else None,
            "kernel": platform.release(), "os": _os_release(), "data_dir": work, "disk": disk,
            "python": platform.python_version()}


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def _os_release():
    try:
        with open("/etc/os-release") as f:
            m = re.search(r'^PRETTY_NAME="?([^"\n]+)', f.read(), re.M)
            return m.group(1) if m else None
    except OSError:
        return None


_pages_cache = {}


def pdf_pages(path):
    if path not in _pages_cache:
        r = sh(["pdfinfo", path])
        m = re.search(r"^Pages:\s+(\d+)", r.stdout, re.M)
        _pages_cache[path] = int(m.group(1)) if m else 0
    return _pages_cache[path]


def part_stats(files):
    pdfs = [f for f in files if f.lower().endswith(".pdf")]
    size = sum(os.path.getsize(f) for f in files)
    return {"files": len(files), "bytes": size, "mb": round(size / MB, 2),
            "pdf_files": len(pdfs), "pages": sum(pdf_pages(f) for f in pdfs),
            "html_files": sum(f.lower().endswith((".html", ".htm")) for f in files)}


def build_corpus(quick, eval_items):
    pdf = sorted(os.path.join(R_DIR, f) for f in os.listdir(R_DIR) if f.endswith(".pdf"))
    html = []
    for d, _, names in os.walk(PY_DIR):
        html.extend(os.path.join(d, n) for n in names if n.endswith(".html"))
    html.sort()
    zh = [os.path.join(ZH_DIR, f) for f in ZH_FILES]
    if quick:
        pdf = [f for f in pdf if os.path.basename(f) in QUICK_PDFS]
        wanted = {it["expect"] for it in eval_items if it["lang"] == "en"}
        html = [f for f in html if "/tutorial/" in f or any(f.endswith(w) for w in wanted)]
        zh = [os.path.join(ZH_DIR, f) for f in QUICK_ZH]
    return {"pdf": pdf, "html": html, "zh": zh}


# ---------------------------------------------------------------- pdftotext
def pdftotext_runs(pdfs, repeats, procs):
    ver = sh(["pdftotext", "-v"])
    version = (ver.stderr or ver.stdout).splitlines()[0] if (ver.stderr or ver.stdout) else None
    pages = sum(pdf_pages(f) for f in pdfs)

    def one(f):
        t0 = time.perf_counter()
        r = subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", f, "-"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return f, time.perf_counter() - t0, r.returncode

    seq, par, per_file = [], [], {}
    for rep in range(repeats):
        log(f"pdftotext, 1 process, run {rep + 1}/{repeats} ({len(pdfs)} files, {pages} pages)")
        t0 = time.perf_counter()
        for f in pdfs:
            _, dt, rc = one(f)
            if rc != 0:
                raise RuntimeError(f"pdftotext failed on {f} (exit {rc})")
            per_file.setdefault(os.path.basename(f), []).append(dt)
        seq.append(time.perf_counter() - t0)
        log(f"  {seq[-1]:.1f} s = {pages / seq[-1]:.1f} pages/s")
        log(f"pdftotext, {procs} processes in parallel, run {rep + 1}/{repeats}")
        t0 = time.perf_counter()
        # largest files first so the parallel run is not held up by one late big file
        order = sorted(pdfs, key=pdf_pages, reverse=True)
        with concurrent.futures.ThreadPoolExecutor(procs) as ex:
            for f, dt, rc in ex.map(one, order):
                if rc != 0:
                    raise RuntimeError(f"pdftotext failed on {f} (exit {rc})")
        par.append(time.perf_counter() - t0)
        log(f"  {par[-1]:.1f} s = {pages / par[-1]:.1f} pages/s")
    s_med, p_med = statistics.median(seq), statistics.median(par)
    return {
        "version": version, "command": "pdftotext -q -enc UTF-8 FILE - >/dev/null", "files": len(pdfs),
        "pages": pages,
        "one_process": {"runs_s": [round(x, 3) for x in seq], "median_s": round(s_med, 3),
                        "pages_per_s": round(pages / s_med, 2)},
        "parallel": {"processes": procs, "runs_s": [round(x, 3) for x in par], "median_s": round(p_med, 3),
                     "pages_per_s": round(pages / p_med, 2),
                     "pages_per_s_per_core": round(pages / p_med / min(procs, os.cpu_count() or 1), 2)},
        "per_file_median_s": {k: round(statistics.median(v), 3) for k, v in per_file.items()},
    }


# ---------------------------------------------------------------- sluice
class Sluice:
    def __init__(self, binary, workers, extra):
        self.bin = binary
        self.workers = workers
        self.extra = list(extra)
        help_text = self._help("ingest")
        self.available = bool(help_text) and "not available yet" not in help_text.lower() \
            and "not yet available" not in help_text.lower()
        self.ingest_help = help_text
        self.search_help = self._help("search")
        self.search_available = bool(self.search_help) and "not available yet" not in self.search_help.lower() \
            and "not yet available" not in self.search_help.lower()
        v = sh([binary, "--version"])
        self.version = (v.stdout or v.stderr).strip().splitlines()[0] if (v.stdout or v.stderr).strip() else None

    def _help(self, cmd):
        r = sh([self.bin, cmd, "--help"])
        return (r.stdout or "") + (r.stderr or "")

    def _has(self, flag):
        return re.search(r"(^|[\s,])" + re.escape(flag) + r"\b", self.ingest_help) is not None

    def ingest_cmd(self, files, data):
        cmd = [self.bin, "ingest", *files, "--data", data]
        if self._has("--workers"):
            cmd += ["--workers", str(self.workers)]
        if self._has("--pool"):
            cmd += ["--pool", str(self.workers)]
        if self._has("--progress"):
            cmd += ["--progress", "json"]
        return cmd + self.extra

    def search_cmd(self, query, data, k, mode=None):
        cmd = [self.bin, "search", query, "--data", data, "-k", str(k), "--json"]
        return cmd + (["--mode", mode] if mode else [])

    @property
    def search_batch(self):
        """Whether `sluice search -` reads queries from stdin (its --help says so)."""
        return "reads one query per line from stdin" in self.search_help

    def search_batch_cmd(self, data, k):
        return [self.bin, "search", "-", "--data", data, "-k", str(k), "--json"]

    def search_modes(self):
        """The --mode values `sluice search --help` lists, e.g. hybrid, keyword, vector."""
        m = re.search(r"--mode\s+\S*\{([^}]*)\}", self.search_help)
        return [x.strip() for x in m.group(1).split(",")] if m else []


def run_ingest(sl, name, files, stats, data, outdir, timeout):
    if os.path.exists(data):
        shutil.rmtree(data)
    os.makedirs(outdir, exist_ok=True)
    cmd = sl.ingest_cmd(files, data)
    so, se = os.path.join(outdir, f"{name}.stdout"), os.path.join(outdir, f"{name}.stderr")
    m = measure.run(cmd, so, se, timeout=timeout)
    with open(so, encoding="utf-8", errors="replace") as f:
        out = f.read()
    with open(se, encoding="utf-8", errors="replace") as f:
        err = f.read()
    parsed = sluice_output.parse_ingest(out, err)
    counted = None
    if parsed["chunks"] is None or parsed["documents"] is None:
        counted = sluice_output.count_index(data)
        if counted:
            if parsed["chunks"] is None:
                parsed["chunks"] = counted["chunks"]
            if parsed["documents"] is None:
                parsed["documents"] = counted["documents"]
    wall = m["wall_s"]
    docs = parsed["documents"] if parsed["documents"] is not None else stats["files"]
    r = {
        "exit_status": m["exit_status"], "timed_out": m["timed_out"], "wall_s": wall,
        "cpu_s": m.get("cpu_s"), "user_s": m.get("user_s"), "sys_s": m.get("sys_s"),
        "max_rss_mib": round(m["max_rss_kib"] / 1024, 1) if "max_rss_kib" in m else None,
        "tree_peak_rss_mib": round(m["tree_peak_rss_kib"] / 1024, 1),
        "tree_peak_processes": m["tree_peak_processes"],
        "documents": parsed["documents"], "succeeded": parsed["succeeded"], "failed": parsed["failed"],
        "skipped": parsed["skipped"], "chunks": parsed["chunks"],
        "pages_reported": parsed["pages"], "stage_seconds": parsed["stage_seconds"],
        "counts_from": parsed["source"] if counted is None else f"{parsed['source']}+index_db",
        "docs_per_s": round(docs / wall, 2) if wall else None,
        "chunks_per_s": round(parsed["chunks"] / wall, 1) if parsed["chunks"] is not None and wall else None,
        "mb_per_s": round(stats["bytes"] / MB / wall, 3) if wall else None,
        # pages/s only for an all-PDF run (a mixed run's wall time is not spent on pages alone)
        "pages_per_s": round(stats["pages"] / wall, 2)
        if wall and stats["pages"] and stats["pdf_files"] == stats["files"] else None,
        "data_dir_mib": round(_du(data) / 2**20, 1),
    }
    if m["exit_status"] not in (0,):
        tail = err.strip().splitlines()[-3:]
        r["stderr_tail"] = tail
    per_doc = _per_doc(out)
    if per_doc:
        r["per_document"] = per_doc
    return r


def _du(path):
    total = 0
    for d, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(d, n)).st_size
            except OSError:
                pass
    return total


def _per_doc(out):
    """Per-document result lines (status, pages, chunks, stage seconds) keyed by file name."""
    res = {}
    for obj in sluice_output.json_lines(out):
        if not sluice_output._is_doc_result(obj):
            continue
        name = os.path.basename(sluice_output.source_of(obj)) or obj.get("doc_id", "?")
        flat = sluice_output.flatten(obj)
        res[name] = {"status": obj.get("status"), "pages": sluice_output.pick(flat, sluice_output.K_PAGES),
                     "chunks": sluice_output.pick(flat, sluice_output.K_CHUNKS),
                     "stage_seconds": {k: round(v, 3) for k, v in sluice_output.stage_seconds(flat).items()}}
    return res


def summarize_runs(runs):
    """Medians over repeats for the rate figures; max for memory."""
    def med(key):
        vals = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(vals), 3) if vals else None

    def mx(key):
        vals = [r[key] for r in runs if r.get(key) is not None]
        return max(vals) if vals else None
    s = {k: med(k) for k in ("wall_s", "cpu_s", "docs_per_s", "chunks_per_s", "mb_per_s", "pages_per_s",
                             "data_dir_mib")}
    s.update({"max_rss_mib_max": mx("max_rss_mib"), "tree_peak_rss_mib_max": mx("tree_peak_rss_mib"),
              "tree_peak_rss_mib_median": med("tree_peak_rss_mib")})
    last = runs[-1]
    for k in ("documents", "succeeded", "failed", "skipped", "chunks", "pages_reported", "counts_from"):
        s[k] = last.get(k)
    s["exit_statuses"] = [r["exit_status"] for r in runs]
    st = [r["stage_seconds"] for r in runs if r.get("stage_seconds")]
    if st:
        s["stage_seconds_median"] = {k: round(statistics.median([x.get(k, 0.0) for x in st]), 3) for k in st[-1]}
    return s


# ---------------------------------------------------------------- search and recall
def percentile(vals, p):
    if not vals:
        return None
    v = sorted(vals)
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def hint_in(text, hint):
    t, h = check_eval.normalise(text or ""), check_eval.normalise(hint)
    if h in t:
        return True
    return re.sub(r"\s+", "", h) in re.sub(r"\s+", "", t)


def run_search(sl, data, items, repeats, k, outdir, results_name="search_results.jsonl"):
    log(f"search: {len(items)} questions x {repeats} runs, -k {k}")
    startup = []
    for _ in range(10):
        t0 = time.perf_counter()
        subprocess.run([sl.bin, "--version"], capture_output=True)
        startup.append((time.perf_counter() - t0) * 1e3)
    # warm-up (page cache, index files): one untimed query
    subprocess.run(sl.search_cmd(items[0]["question"], data, k), capture_output=True)
    proc_ms, inproc_ms, per_q, errors = [], [], [], []
    for it in items:
        hits, first_err = None, None
        for rep in range(repeats):
            t0 = time.perf_counter()
            r = subprocess.run(sl.search_cmd(it["question"], data, k), capture_output=True)
            dt = (time.perf_counter() - t0) * 1e3
            out = r.stdout.decode("utf-8", "replace")
            err = r.stderr.decode("utf-8", "replace")
            if r.returncode != 0:
                first_err = first_err or f"exit {r.returncode}: {err.strip()[-300:]}"
                continue
            proc_ms.append(dt)
            h, t_in = sluice_output.parse_search(out, err)
            if t_in is not None:
                inproc_ms.append(t_in)
            if hits is None:
                hits = h
        if first_err:
            errors.append({"question": it["question"], "error": first_err})
        per_q.append((it, hits or []))
    with open(os.path.join(outdir, results_name), "w", encoding="utf-8") as f:
        for it, hits in per_q:
            f.write(json.dumps({"question": it["question"], "hits": hits}, ensure_ascii=False) + "\n")
    lat = {
        "queries": len(items), "runs_per_query": repeats, "k": k, "timed_runs": len(proc_ms),
        "failed_queries": errors[:5], "failed_query_count": len(errors),
        "process_ms": {"p50": _r(percentile(proc_ms, 50)), "p90": _r(percentile(proc_ms, 90)),
                       "p99": _r(percentile(proc_ms, 99)), "max": _r(max(proc_ms) if proc_ms else None),
                       "note": "wall time of one `sluice search ... --json` process, start to exit"},
        "startup_ms_p50": _r(percentile(startup, 50)),
        "startup_note": "`sluice --version` process wall time: the floor under process_ms",
        "in_process_ms": None,
    }
    if inproc_ms:
        lat["in_process_ms"] = {"p50": _r(percentile(inproc_ms, 50)), "p90": _r(percentile(inproc_ms, 90)),
                                "p99": _r(percentile(inproc_ms, 99)), "samples": len(inproc_ms),
                                "note": "the timing field sluice search printed"}
    return lat, per_q


def _r(x, nd=2):
    return None if x is None else round(x, nd)


def run_search_batch(sl, data, items, passes, k):
    """Every question through one `sluice search -` process (the index opened once), `passes`
    times: the per-query time of a long-running searcher, without process start and index load."""
    if not sl.search_batch:
        return None
    questions = "".join(it["question"].replace("\n", " ") + "\n" for it in items)
    ms = []
    for _ in range(passes):
        r = subprocess.run(sl.search_batch_cmd(data, k), input=questions.encode("utf-8"), capture_output=True)
        if r.returncode != 0:
            return {"error": f"exit {r.returncode}: {r.stderr.decode('utf-8', 'replace').strip()[-300:]}"}
        for obj in sluice_output.json_lines(r.stdout.decode("utf-8", "replace")):
            if isinstance(obj.get("ms"), (int, float)):
                ms.append(float(obj["ms"]))
    return {"p50": _r(percentile(ms, 50)), "p90": _r(percentile(ms, 90)), "p99": _r(percentile(ms, 99)),
            "samples": len(ms), "passes": passes,
            "note": "`sluice search -`: one process answers every question; the ms each answer reports"}


def grow_index(sl, data, outdir, timeout):
    """Ingests GROW_DIRS into the index at `data` (incrementally, next to what is there)."""
    dirs = [d for d in GROW_DIRS if os.path.isdir(d)]
    missing = [d for d in GROW_DIRS if not os.path.isdir(d)]
    cmd = sl.ingest_cmd(dirs, data) + ["--include", "*.html", "--include", "*.pdf"]
    so, se = os.path.join(outdir, "grow.stdout"), os.path.join(outdir, "grow.stderr")
    m = measure.run(cmd, so, se, timeout=timeout)
    with open(so, encoding="utf-8", errors="replace") as f:
        parsed = sluice_output.parse_ingest(f.read(), "")
    counted = sluice_output.count_index(data) or {}
    return {"dirs": dirs, "missing_dirs": missing, "exit_status": m["exit_status"], "wall_s": m["wall_s"],
            "documents_added": parsed["documents"], "failed": parsed["failed"],
            "chunks_added": parsed["chunks"], "index_chunks": counted.get("chunks"),
            "index_documents": counted.get("documents"),
            "tree_peak_rss_mib": round(m["tree_peak_rss_kib"] / 1024, 1)}


def recall(per_q, k):
    out, misses = {}, []
    for lang in ("en", "zh"):
        rows = [(it, hits) for it, hits in per_q if it["lang"] == lang]
        if not rows:
            continue
        n = len(rows)
        hit_any = hit_strict = hit_ans = 0
        rr = 0.0
        for it, hits in rows:
            top = hits[:k]
            suffixes = [it["expect"]] + it.get("also", [])
            srcs = [sluice_output.source_of(h) for h in top]
            ok = [any(s.endswith(x) for x in suffixes) for s in srcs]
            if any(ok):
                hit_any += 1
                rr += 1.0 / (ok.index(True) + 1)
            else:
                misses.append({"lang": lang, "question": it["question"], "expect": it["expect"],
                               "top_sources": [os.path.basename(s) for s in srcs]})
            if any(s.endswith(it["expect"]) for s in srcs):
                hit_strict += 1
            if any(o and hint_in(h.get("text", ""), it["answer_hint"]) for o, h in zip(ok, top)):
                hit_ans += 1
        out[lang] = {"questions": n, f"recall_at_{k}": round(hit_any / n, 3),
                     f"recall_at_{k}_expect_only": round(hit_strict / n, 3),
                     f"answer_at_{k}": round(hit_ans / n, 3), f"mrr_at_{k}": round(rr / n, 3)}
    return out, misses


# ---------------------------------------------------------------- targets and output
def target(name, what, measured, unit, ok, note=None):
    t = {"name": name, "target": what, "measured": measured, "unit": unit,
         "status": "not_measured" if measured is None else ("met" if ok(measured) else "missed")}
    if note:
        t["note"] = note
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--search-repeats", type=int)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--eval", default=os.path.join(HERE, "eval.jsonl"))
    ap.add_argument("--timeout", type=float, default=3600.0, help="per ingest run, seconds")
    ap.add_argument("--skip-pdftotext", action="store_true")
    ap.add_argument("--skip-100k", action="store_true",
                    help="do not grow the index to 100k chunks for the search figures (full runs do)")
    ap.add_argument("extra", nargs="*", help="extra flags for every `sluice ingest`")
    a = ap.parse_args()
    repeats = a.repeats or (1 if a.quick else 3)
    srep = a.search_repeats or (3 if a.quick else 20)
    k = 5
    notes, failures = [], []
    t_start = time.perf_counter()

    machine = machine_info(a.work)
    log(f"machine: {machine['cpu_model']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"load {machine['loadavg_start']}, "
        f"kernel {machine['kernel']}, data dir {a.work} on {machine['disk'].get('device')} "
        f"({machine['disk'].get('filesystem')}, {machine['disk'].get('available_gib')} GiB free)")

    # --quick checks only the questions its corpus subset can answer (the full check runs
    # pdftotext over the 2,415-page reference manual twice)
    only = None
    if a.quick:
        raw, _ = check_eval.load(a.eval)
        only = [f for fl in build_corpus(True, [o for _, o in raw if isinstance(o, dict) and
                                                "expect" in o and "lang" in o]).values() for f in fl]
    ev = check_eval.check(a.eval, only_files=only)
    log(f"eval: {ev['checked']} questions checked against the corpus ({ev['skipped']} outside this corpus): "
        + ("ok" if ev["ok"] else "FAILED"))
    if not ev["ok"]:
        for e in ev["errors"]:
            log("eval: FAIL " + e)
        failures.append(f"eval set {a.eval} failed its check ({len(ev['errors'])} problems)")
    corpus = build_corpus(a.quick, ev["items"])
    stats = {p: part_stats(f) for p, f in corpus.items()}
    all_files = corpus["pdf"] + corpus["html"] + corpus["zh"]
    stats["full"] = part_stats(all_files)
    for p in ("pdf", "html", "zh", "full"):
        s = stats[p]
        log(f"corpus {p}: {s['files']} files, {s['mb']} MB, {s['pages']} PDF pages")
    in_corpus = [it for it in ev["items"]
                 if any(f.endswith(x) for f in all_files for x in [it["expect"]] + it.get("also", []))]
    if ev["skipped"]:
        notes.append(f"{ev['skipped']} eval questions skipped: their files are not in this (quick) corpus")

    result = {"type": "summary", "quick": a.quick, "repeats": repeats, "workers": a.workers,
              "machine": machine, "corpus": {
                  "pdf": dict(stats["pdf"], root=R_DIR), "html": dict(stats["html"], root=PY_DIR),
                  "zh": dict(stats["zh"], root=ZH_DIR, files_list=[os.path.basename(f) for f in corpus["zh"]]),
                  "full": stats["full"]},
              "eval": {"file": a.eval, "check_ok": ev["ok"], "by_lang": ev["by_lang"],
                       "used": {l: sum(it["lang"] == l for it in in_corpus) for l in ("en", "zh")}}}

    # (a) pdftotext
    ptt = None
    if not a.skip_pdftotext:
        ptt = pdftotext_runs(corpus["pdf"], repeats, a.workers)
        result["pdftotext"] = ptt

    sl = Sluice(a.sluice, a.workers, a.extra)
    result["sluice"] = {"binary": a.sluice, "version": sl.version, "ingest_available": sl.available,
                        "search_available": sl.search_available,
                        "ingest_command_example": " ".join(sl.ingest_cmd(["FILE..."], "DATA")) if sl.available else None}
    ingest, search_lat, rec, misses = {}, None, None, []
    outdir = os.path.join(a.work, "out")
    os.makedirs(outdir, exist_ok=True)
    if not sl.available:
        failures.append("sluice ingest is not available in this build (its --help says so)")
    else:
        # (b) each part in a fresh data dir, REPEATS times
        for rep in range(repeats):
            for part in ("pdf", "html", "zh"):
                log(f"sluice ingest {part}: run {rep + 1}/{repeats} ({stats[part]['files']} files, "
                    f"{stats[part]['mb']} MB, {stats[part]['pages']} pages)")
                r = run_ingest(sl, f"{part}-{rep + 1}", corpus[part], stats[part],
                               os.path.join(a.work, f"data-{part}"), outdir, a.timeout)
                ingest.setdefault(part, []).append(r)
                log(f"  exit {r['exit_status']}, {r['wall_s']:.1f} s, docs {r['documents']} "
                    f"(failed {r['failed']}), chunks {r['chunks']}, "
                    f"peak RSS {r['tree_peak_rss_mib']} MiB (tree) / {r['max_rss_mib']} MiB (largest process)")
                if r["exit_status"] not in (0,):
                    failures.append(f"ingest {part} run {rep + 1} exited {r['exit_status']}: "
                                    f"{' | '.join(r.get('stderr_tail', []))}")
            shutil.rmtree(os.path.join(a.work, "data-pdf"), ignore_errors=True)
            shutil.rmtree(os.path.join(a.work, "data-html"), ignore_errors=True)
            shutil.rmtree(os.path.join(a.work, "data-zh"), ignore_errors=True)
        # the whole corpus in one data dir, once: its time, its peak RSS, and the index searched below
        log(f"sluice ingest full corpus ({stats['full']['files']} files, {stats['full']['mb']} MB)")
        full_dir = os.path.join(a.work, "data-full")
        r = run_ingest(sl, "full", all_files, stats["full"], full_dir, outdir, a.timeout * 3)
        ingest["full"] = [r]
        log(f"  exit {r['exit_status']}, {r['wall_s']:.1f} s, docs {r['documents']} (failed {r['failed']}), "
            f"chunks {r['chunks']}, peak RSS {r['tree_peak_rss_mib']} MiB")
        if r["exit_status"] not in (0,):
            failures.append(f"ingest full exited {r['exit_status']}: {' | '.join(r.get('stderr_tail', []))}")
        # (c) + (d)
        if not sl.search_available:
            failures.append("sluice search is not available in this build")
        elif in_corpus:
            search_lat, per_q = run_search(sl, full_dir, in_corpus, srep, k, outdir)
            rec, misses = recall(per_q, k)
            # the same questions through each retriever alone (--mode), when sluice has them
            by_mode = {}
            for mode in sl.search_modes():
                log(f"search --mode {mode}: {len(in_corpus)} questions")
                rows = []
                for it in in_corpus:
                    r = subprocess.run(sl.search_cmd(it["question"], full_dir, k, mode), capture_output=True)
                    rows.append((it, sluice_output.parse_search(r.stdout.decode("utf-8", "replace"))[0]))
                by_mode[mode] = recall(rows, k)[0]
            if by_mode:
                result["recall_by_mode"] = by_mode
            search_lat["batch_ms"] = run_search_batch(sl, full_dir, in_corpus, 3, k)
            search_lat["index_chunks"] = (sluice_output.count_index(full_dir) or {}).get("chunks")
            # (e) the same index grown with more manuals to 100k chunks, searched again
            if not a.quick and not a.skip_100k:
                log(f"growing the index with {len(GROW_DIRS)} more manuals toward {GROW_TARGET_CHUNKS} chunks")
                grow = grow_index(sl, full_dir, outdir, a.timeout * 3)
                log(f"  exit {grow['exit_status']}, {grow['wall_s']:.1f} s, +{grow['documents_added']} docs, "
                    f"index now {grow['index_chunks']} chunks")
                if grow["exit_status"] not in (0,):
                    failures.append(f"growing the index exited {grow['exit_status']}")
                if grow["missing_dirs"]:
                    notes.append(f"not installed (scripts/setup.sh --search-corpus): {grow['missing_dirs']}")
                lat_big, per_q_big = run_search(sl, full_dir, in_corpus, max(3, srep // 4), k, outdir,
                                                "search_results_100k.jsonl")
                lat_big["batch_ms"] = run_search_batch(sl, full_dir, in_corpus, 3, k)
                lat_big["index_chunks"] = grow["index_chunks"]
                lat_big["recall"] = recall(per_q_big, k)[0]
                result["search_grown"] = {"grow": grow, "search": lat_big}
    result["ingest"] = {p: {"median": summarize_runs(runs), "runs": runs} for p, runs in ingest.items()}

    # parse speed vs pdftotext
    pdf_cmp = None
    if ptt and "pdf" in ingest:
        runs = ingest["pdf"]
        pages = stats["pdf"]["pages"]
        cores = min(a.workers, os.cpu_count() or 1)
        e2e = statistics.median([pages / r["wall_s"] for r in runs if r["wall_s"]])
        parse_s = [r["stage_seconds"].get("parse") for r in runs if r["stage_seconds"].get("parse")]
        cpu_s = [r["cpu_s"] for r in runs if r.get("cpu_s")]
        pdf_cmp = {
            "pdftotext_pages_per_s_one_process": ptt["one_process"]["pages_per_s"],
            "pdftotext_pages_per_s_parallel": ptt["parallel"]["pages_per_s"],
            "sluice_ingest_pages_per_s": round(e2e, 2),
            "sluice_ingest_pages_per_s_per_core": round(e2e / cores, 2),
            "sluice_ingest_pages_per_cpu_s": round(statistics.median([pages / c for c in cpu_s]), 2) if cpu_s else None,
            "cores_used": cores,
            "ratio_raw_sluice_ingest_vs_pdftotext_parallel": round(e2e / ptt["parallel"]["pages_per_s"], 3),
            "ratio_per_core_sluice_ingest_vs_pdftotext": round(e2e / cores / ptt["one_process"]["pages_per_s"], 3),
        }
        if parse_s:
            pp = statistics.median([pages / s for s in parse_s])
            pdf_cmp["sluice_parse_stage_pages_per_s_per_core"] = round(pp, 2)
            pdf_cmp["ratio_per_core_sluice_parse_vs_pdftotext"] = round(pp / ptt["one_process"]["pages_per_s"], 3)
            pdf_cmp["basis"] = ("parse stage: pages / (sum over documents of the parse stage time); one "
                                "document is parsed by one process, so this is a per-core figure")
        else:
            pdf_cmp["basis"] = ("sluice printed no parse-stage timing: end-to-end ingest (parse + chunk + "
                                "embed + index) per core, a lower bound for parsing alone")
        result["pdf_parse_comparison"] = pdf_cmp
    result["search"] = search_lat
    result["recall"] = rec
    result["recall_misses"] = misses

    def med(part, key):
        return (result["ingest"].get(part) or {}).get("median", {}).get(key)
    ratio = None
    if pdf_cmp:
        ratio = pdf_cmp.get("ratio_per_core_sluice_parse_vs_pdftotext",
                            pdf_cmp["ratio_per_core_sluice_ingest_vs_pdftotext"])
    lat_basis, p50, p99 = "process", None, None
    lat_at = (result.get("search_grown") or {}).get("search") or search_lat
    if lat_at:
        if lat_at.get("in_process_ms"):
            lat_basis, p50, p99 = "in_process", lat_at["in_process_ms"]["p50"], lat_at["in_process_ms"]["p99"]
        else:
            p50, p99 = lat_at["process_ms"]["p50"], lat_at["process_ms"]["p99"]
        lat_basis += f" (one `sluice search` process per query) at {lat_at.get('index_chunks')} chunks"
    full_rss = med("full", "tree_peak_rss_mib_max")
    targets = [
        target("pdf_parse_vs_pdftotext_per_core", ">= 0.8", ratio, "ratio", lambda v: v >= 0.8,
               pdf_cmp["basis"] if pdf_cmp else None),
        target("e2e_pdf_pages_per_s", ">= 100", med("pdf", "pages_per_s"), "pages/s", lambda v: v >= 100,
               f"--workers {a.workers}"),
        target("e2e_html_mb_per_s", ">= 20", med("html", "mb_per_s"), "MB/s", lambda v: v >= 20,
               f"--workers {a.workers}; MB = 10^6 bytes of input HTML"),
        target("peak_rss_whole_corpus", "<= 500", full_rss, "MiB", lambda v: v <= 500,
               "sum over the sluice process tree (parse workers included), sampled every 50 ms"),
        target("search_p50", "<= 10", p50, "ms", lambda v: v <= 10, f"basis: {lat_basis}"),
        target("search_p99", "<= 50", p99, "ms", lambda v: v <= 50, f"basis: {lat_basis}"),
        target("recall_at_5_en", ">= 0.85", (rec or {}).get("en", {}).get("recall_at_5"), "ratio",
               lambda v: v >= 0.85),
        target("recall_at_5_zh", ">= 0.85", (rec or {}).get("zh", {}).get("recall_at_5"), "ratio",
               lambda v: v >= 0.85),
    ]
    result["targets"] = targets
    result["targets_met"] = sum(t["status"] == "met" for t in targets)
    result["targets_total"] = len(targets)
    result["failures"] = failures
    if a.quick:
        notes.append("--quick: smoke-test figures on a subset, too short to judge the targets")
    result["notes"] = notes
    result["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    machine["loadavg_end"] = _loadavg()
    busy = [x for x in (machine["loadavg_start"] or [])[:1] + (machine["loadavg_end"] or [])[:1]
            if x > 0.5 * (machine["cores"] or 1)]
    if busy:
        notes.append(f"the machine was busy (1-minute load average {busy} on {machine['cores']} cores): "
                     "figures are lower than on an idle machine")
    print(json.dumps(result, ensure_ascii=False, separators=(",", ":")))
    print_summary(result)
    return 1 if failures else 0


def print_summary(r):
    p = lambda s="": print(s, file=sys.stderr)  # noqa: E731
    m = r["machine"]
    p()
    p(f"== sluice ingest benchmark{' (--quick)' if r['quick'] else ''}: {r['repeats']} run(s), "
      f"--workers {r['workers']}")
    p(f"machine: {m['cpu_model']} | {m['cores']} cores | {m['ram_gib']} GiB | kernel {m['kernel']} | "
      f"disk {m['disk'].get('device')} {m['disk'].get('filesystem')}")
    c = r["corpus"]
    p(f"corpus : R PDFs {c['pdf']['files']} files {c['pdf']['pages']} pages {c['pdf']['mb']} MB | "
      f"Python HTML {c['html']['files']} files {c['html']['mb']} MB | "
      f"zh manual {c['zh']['files']} files ({c['zh']['pages']} PDF pages) {c['zh']['mb']} MB")
    if r.get("pdftotext"):
        t = r["pdftotext"]
        p(f"pdftotext: {t['one_process']['pages_per_s']} pages/s (1 process), "
          f"{t['parallel']['pages_per_s']} pages/s ({t['parallel']['processes']} processes)")
    for part in ("pdf", "html", "zh", "full"):
        s = (r["ingest"].get(part) or {}).get("median")
        if not s:
            continue
        extra = f"{s['pages_per_s']} pages/s, " if s.get("pages_per_s") else ""
        p(f"ingest {part:<4}: {s['wall_s']} s, {extra}{s['mb_per_s']} MB/s, {s['docs_per_s']} docs/s, "
          f"{s['chunks_per_s']} chunks/s, peak RSS {s['tree_peak_rss_mib_max']} MiB (tree), "
          f"docs {s['documents']} failed {s['failed']} chunks {s['chunks']}")
    pc = r.get("pdf_parse_comparison")
    if pc:
        p(f"pdf parse per core vs pdftotext: ingest {pc['ratio_per_core_sluice_ingest_vs_pdftotext']}"
          + (f", parse stage {pc['ratio_per_core_sluice_parse_vs_pdftotext']}"
             if "ratio_per_core_sluice_parse_vs_pdftotext" in pc else ""))
    s = r.get("search")
    if s:
        ip = s.get("in_process_ms")
        p(f"search : process p50 {s['process_ms']['p50']} ms p99 {s['process_ms']['p99']} ms "
          f"(startup {s['startup_ms_p50']} ms)" + (f"; in-process p50 {ip['p50']} p99 {ip['p99']} ms" if ip else ""))
    if s and s.get("batch_ms") and s["batch_ms"].get("p50") is not None:
        p(f"         one process, every question: p50 {s['batch_ms']['p50']} p99 {s['batch_ms']['p99']} ms "
          f"per query (index of {s.get('index_chunks')} chunks)")
    g = r.get("search_grown")
    if g:
        gs = g["search"]
        ip = gs.get("in_process_ms") or {}
        b = gs.get("batch_ms") or {}
        p(f"search at {g['grow']['index_chunks']} chunks (grown in {g['grow']['wall_s']:.0f} s): "
          f"in-process p50 {ip.get('p50')} p99 {ip.get('p99')} ms; one process p50 {b.get('p50')} "
          f"p99 {b.get('p99')} ms; process p50 {gs['process_ms']['p50']} ms")
        for lang, v in (gs.get("recall") or {}).items():
            p(f"  recall {lang} at that size: " + ", ".join(f"{k} {x}" for k, x in v.items()))
    for lang, v in (r.get("recall") or {}).items():
        p(f"recall {lang}: " + ", ".join(f"{k} {x}" for k, x in v.items()))
    for mode, v in (r.get("recall_by_mode") or {}).items():
        p(f"  --mode {mode:<7}: " + " | ".join(
            f"{lang} recall@5 {x.get('recall_at_5')} answer@5 {x.get('answer_at_5')}" for lang, x in v.items()))
    for t in r["targets"]:
        p(f"  {t['status']:>12}  {t['name']:<34} {t['target']:>8} {t['unit']:<8} measured {t['measured']}")
    for f in r["failures"]:
        p(f"  FAILURE: {f}")
    for n in r["notes"]:
        p(f"  note: {n}")


if __name__ == "__main__":
    sys.exit(main())
