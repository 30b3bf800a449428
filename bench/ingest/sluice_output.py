"""sluice_output.py: the ONE place that reads what `sluice ingest` and `sluice search` print.

When sluice's output changes, adjust the key lists below; nothing else in the benchmark looks at
sluice's output.

`sluice ingest`, when stdout is not a terminal (or with `--progress json`), prints JSON progress
lines and a final JSON summary line. parse_ingest() reads them defensively:
  - the summary is the last JSON object on stdout that has a "documents"-like or "chunks"-like key
    (a "type": "summary" line is preferred when there is one);
  - per-document result lines (objects with a status of success/failed/skipped) are counted too,
    and their chunks, pages and per-stage timings summed, for whatever the summary lacks;
  - non-JSON lines are ignored.
If nothing usable is printed, count_index() falls back to the local index's SQLite files under
the data directory (any table with a chunk-like name).

`sluice search --json` prints one JSON object per hit per line (score, doc_id, source, page,
heading, chunk_id, text); parse_search() also picks up an in-process timing field when one is
printed (on a hit line, on a separate stats line, in a JSON line on stderr, or as the plain
"N hits in X ms" line sluice prints on stderr).
"""
import glob
import json
import os
import re
import sqlite3

# ---- key names (case-insensitive, matched against the last component of a nested key) ----
K_DOCS = ("documents", "docs", "files", "total_documents", "documents_total", "found", "total")
K_SUCCEEDED = ("succeeded", "success", "successes", "ok", "indexed")
K_FAILED = ("failed", "failures", "errors")
K_SKIPPED = ("skipped", "unchanged")
K_CHUNKS = ("chunks", "chunks_indexed", "total_chunks", "chunk_count", "chunks_total")
K_PAGES = ("pages", "total_pages", "page_count", "pages_total")
K_BYTES = ("bytes", "input_bytes", "input_size", "bytes_in", "total_bytes")
K_ELAPSED_S = ("elapsed_s", "seconds", "duration_s", "wall_s", "elapsed_seconds", "took_s")
K_ELAPSED_MS = ("elapsed_ms", "duration_ms", "wall_ms", "took_ms", "time_ms")
STATUS_KEYS = ("status", "result", "outcome")
STAGES = ("parse", "clean", "chunk", "embed", "index")
# in-process search timing
K_SEARCH_MS = ("took_ms", "elapsed_ms", "latency_ms", "search_ms", "query_ms", "time_ms",
               "duration_ms")
K_SEARCH_US = ("took_us", "elapsed_us", "latency_us", "search_us", "query_us")
K_SEARCH_S = ("took_s", "elapsed_s", "latency_s", "search_s", "seconds")
SEARCH_TEXT_TIMING = re.compile(r"\bhits? in ([0-9.]+) ?(ms|s|us|µs)\b")


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


def flatten(obj, prefix=""):
    flat = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (dict, list)):
                flat.update(flatten(v, key))
            else:
                flat[key] = v
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            flat.update(flatten(v, f"{prefix}[{i}]"))
    return flat


def _num(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    return None


def pick(flat, names, exclude=()):
    """The numeric value of the shallowest key whose last component is one of names (the earlier
    name in names wins at the same depth)."""
    best = None
    for key, v in flat.items():
        last = key.rsplit(".", 1)[-1].lower()
        if "[" in last or last not in names or _num(v) is None:
            continue
        if any(x in key.lower() for x in exclude):
            continue
        rank = (key.count("."), names.index(last))
        if best is None or rank < best[0]:
            best = (rank, v)
    return None if best is None else best[1]


def stage_seconds(flat):
    """Per-stage times found anywhere in a flattened object: {stage: seconds}."""
    out = {}
    for key, v in flat.items():
        if _num(v) is None:
            continue
        low = key.lower()
        for st in STAGES:
            if st not in low or "count" in low or "attempt" in low:
                continue
            parts = low.replace("[", ".").split(".")
            if not any(p.startswith(st) or p == st for p in parts):
                continue
            # the unit comes from the key itself ("parse_ms") or the nearest parent
            # ("timings_ms": {"parse": 12.5}, as a result notification prints it)
            secs = None
            for part in reversed(parts):
                if part.endswith("_ms") or part == "ms":
                    secs = v / 1e3
                elif part.endswith("_us") or part == "us":
                    secs = v / 1e6
                elif part.endswith("_s") or part in ("s", "seconds", "secs"):
                    secs = float(v)
                if secs is not None:
                    break
            if secs is None:
                continue
            out[st] = out.get(st, 0.0) + secs
            break
    return out


def _is_summary(obj):
    return any(str(obj.get(k, "")).lower() == "summary" for k in ("type", "event", "kind"))


def _is_progress(obj):
    return any(str(obj.get(k, "")).lower() == "progress" for k in ("type", "event", "kind"))


def _is_doc_result(obj):
    st = next((obj.get(k) for k in STATUS_KEYS if isinstance(obj.get(k), str)), None)
    return st is not None and st.lower() in ("success", "succeeded", "ok", "failed", "failure",
                                             "error", "skipped")


def parse_ingest(stdout_text, stderr_text=""):
    """Returns a dict: documents, succeeded, failed, skipped, chunks, pages, bytes, elapsed_s,
    stage_seconds ({stage: s}, summed over documents), summary (the raw summary object or None),
    doc_results (number of per-document lines seen), source ("summary", "doc_lines", "none")."""
    # the summary is on stdout; progress (and any per-document lines) may be on stderr
    objs = json_lines(stdout_text) + json_lines(stderr_text)
    summary = None
    for obj in reversed(json_lines(stdout_text)) if stdout_text.strip() else []:
        if _is_summary(obj):
            summary = obj
            break
    if summary is None:
        for obj in reversed(objs):
            if _is_summary(obj):
                summary = obj
                break
    if summary is None:
        for obj in reversed(objs):
            flat = flatten(obj)
            if _is_doc_result(obj) or _is_progress(obj):
                continue
            if pick(flat, K_DOCS + K_CHUNKS + K_SUCCEEDED) is not None:
                summary = obj
                break
    docs = [o for o in objs if _is_doc_result(o) and o is not summary]
    res = {"documents": None, "succeeded": None, "failed": None, "skipped": None, "chunks": None,
           "pages": None, "bytes": None, "elapsed_s": None, "stage_seconds": {},
           "summary": summary, "doc_results": len(docs), "source": "none"}
    if summary is not None:
        flat = flatten(summary)
        res["source"] = "summary"
        res["documents"] = pick(flat, K_DOCS, exclude=("stage", "timing"))
        res["succeeded"] = pick(flat, K_SUCCEEDED)
        res["failed"] = pick(flat, K_FAILED)
        res["skipped"] = pick(flat, K_SKIPPED)
        res["chunks"] = pick(flat, K_CHUNKS)
        res["pages"] = pick(flat, K_PAGES)
        res["bytes"] = pick(flat, K_BYTES)
        el = pick(flat, K_ELAPSED_S, exclude=STAGES)
        if el is None:
            ms = pick(flat, K_ELAPSED_MS, exclude=STAGES)
            el = None if ms is None else ms / 1e3
        res["elapsed_s"] = el
        res["stage_seconds"] = stage_seconds(flat)
    if docs:
        if res["source"] == "none":
            res["source"] = "doc_lines"
        counts = {"success": 0, "failed": 0, "skipped": 0}
        chunks = pages = 0
        have_chunks = have_pages = False
        stages = {}
        for o in docs:
            st = next(o.get(k) for k in STATUS_KEYS if isinstance(o.get(k), str)).lower()
            st = {"succeeded": "success", "ok": "success", "failure": "failed",
                  "error": "failed"}.get(st, st)
            counts[st] = counts.get(st, 0) + 1
            flat = flatten(o)
            c = pick(flat, K_CHUNKS)
            p = pick(flat, K_PAGES)
            if c is not None:
                chunks, have_chunks = chunks + c, True
            if p is not None:
                pages, have_pages = pages + p, True
            for k, v in stage_seconds(flat).items():
                stages[k] = stages.get(k, 0.0) + v
        fill = {"documents": len(docs), "succeeded": counts["success"], "failed": counts["failed"],
                "skipped": counts["skipped"], "chunks": chunks if have_chunks else None,
                "pages": pages if have_pages else None}
        for k, v in fill.items():
            if res[k] is None:
                res[k] = v
        if not res["stage_seconds"]:
            res["stage_seconds"] = stages
    res["stage_seconds"] = {k: round(v, 4) for k, v in res["stage_seconds"].items()}
    return res


def count_index(data_dir):
    """Fallback: counts chunks (and distinct documents) in the local index's SQLite files."""
    for path in sorted(glob.glob(os.path.join(data_dir, "**", "*"), recursive=True)):
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    continue
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except (OSError, sqlite3.Error):
            continue
        try:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")]
            for t in sorted(tables, key=lambda n: (n.lower() != "chunks", n)):
                if "chunk" not in t.lower() or "fts" in t.lower() or t.lower().endswith(
                        ("_data", "_idx", "_content", "_docsize", "_config")):
                    continue
                cols = [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')]
                n = con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]
                docs = None
                if "doc_id" in cols:
                    docs = con.execute(f'SELECT COUNT(DISTINCT doc_id) FROM "{t}"').fetchone()[0]
                return {"chunks": n, "documents": docs, "db": path, "table": t}
        except sqlite3.Error:
            continue
        finally:
            con.close()
    return None


def parse_search(stdout_text, stderr_text=""):
    """Returns (hits, in_process_ms or None). hits: list of dicts with at least source/text."""
    hits, timing = [], None
    for obj in json_lines(stdout_text):
        flat = flatten(obj)
        if "source" in obj or "chunk_id" in obj or "doc_id" in obj:
            hits.append(obj)
        t = _timing_ms(flat)
        if t is not None and timing is None:
            timing = t
    if timing is None:
        for obj in json_lines(stderr_text):
            t = _timing_ms(flatten(obj))
            if t is not None:
                timing = t
                break
    if timing is None:
        # plain text on stderr, as sluice prints it: "3 hits in 1.2 ms"
        m = SEARCH_TEXT_TIMING.search(stderr_text)
        if m:
            timing = float(m.group(1)) * {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3}[m.group(2)]
    return hits, timing


def _timing_ms(flat):
    v = pick(flat, K_SEARCH_MS)
    if v is not None:
        return float(v)
    v = pick(flat, K_SEARCH_US)
    if v is not None:
        return float(v) / 1e3
    v = pick(flat, K_SEARCH_S)
    return None if v is None else float(v) * 1e3


def source_of(hit):
    """A hit's source as a string (a path or URI), whatever shape it is printed in."""
    src = hit.get("source")
    if isinstance(src, dict):
        for k in ("path", "uri", "key", "url"):
            if isinstance(src.get(k), str):
                return src[k]
        return json.dumps(src, sort_keys=True)
    if isinstance(src, str):
        return src
    for k in ("path", "uri", "file"):
        if isinstance(hit.get(k), str):
            return hit[k]
    return ""
