#!/usr/bin/env python3
"""check_eval.py: verifies bench/ingest/eval.jsonl against the installed corpus. Fails loudly.

Usage: bench/ingest/check_eval.py [--eval FILE] [--root DIR]... [--dump SUFFIX] [-q]

Each line of eval.jsonl is one JSON object:
  {"lang": "en"|"zh", "question": str, "expect": "<path suffix>", "answer_hint": str,
   "also": ["<path suffix>", ...]}          # "also" is optional: other files that answer it too
For every line the checker
  - validates the fields (types, lang, non-empty strings, no duplicate questions);
  - resolves "expect" (and each "also" suffix) to the corpus files whose path ends with it (plain
    string suffix, the same rule the benchmark's recall@5 applies to a hit's source), under the
    corpus roots (default: the three Debian packages' directories). A suffix that matches no file
    is an error;
  - extracts the text of every matched file (PDF: `pdftotext -enc UTF-8`; HTML: tags stripped,
    <script>/<style> dropped, entities decoded; anything else: read as UTF-8) and requires the
    answer_hint to occur in EACH matched file. Matching is on normalised text: Unicode NFKC
    (ligatures such as "ﬁ"), typographic quotes and dashes folded to ASCII, case folded, runs of
    whitespace collapsed to one space; a hint that contains CJK is also tried with all whitespace
    removed (pdftotext breaks Chinese lines anywhere). A hint split by a hyphenated line break in a
    PDF is tried with "-\\n" joined as well;
  - refuses a question that contains its answer_hint verbatim (the set is not a copy-paste test)
    and reports the share of the hint's words that appear in the question (lexical overlap).
Exit status 0 when every line passes, 1 otherwise (each failure printed on stderr), 2 on usage.
--dump SUFFIX prints the normalised text of the matching file(s) and exits (to write questions).
Python 3 standard library only; needs pdftotext (poppler-utils) for PDFs.
"""
import argparse
import functools
import html
import html.parser
import json
import os
import re
import subprocess
import sys
import unicodedata

DEFAULT_ROOTS = [
    "/usr/share/R/doc/manual",                 # r-doc-pdf
    "/usr/share/doc/python3.11/html",          # python3-doc (python3/html links here)
    "/usr/share/doc/debian-edu-doc-zh-cn",     # debian-edu-doc-zh-cn
]
TEXT_EXTS = (".pdf", ".html", ".htm", ".txt", ".md")
CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u00ad": "", "\u200b": "", "\ufeff": "", "\u00b6": " ",
})


class _Strip(html.parser.HTMLParser):
    SKIP = {"script", "style", "head", "title"}
    BLOCK = {"p", "div", "br", "li", "dt", "dd", "tr", "td", "th", "pre", "h1", "h2", "h3", "h4",
             "h5", "h6", "section", "table", "blockquote", "ul", "ol", "dl"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def raw_text(path):
    low = path.lower()
    if low.endswith(".pdf"):
        try:
            res = subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", path, "-"],
                                 capture_output=True, check=True)
        except FileNotFoundError:
            sys.exit("check_eval: pdftotext is missing (apt-get install poppler-utils)")
        return res.stdout.decode("utf-8", "replace")
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    if low.endswith((".html", ".htm", ".xhtml")):
        p = _Strip()
        p.feed(data)
        p.close()
        return html.unescape("".join(p.out))
    return data


def normalise(s):
    s = unicodedata.normalize("NFKC", s).translate(FOLD).casefold()
    return re.sub(r"\s+", " ", s).strip()


@functools.lru_cache(maxsize=None)
def texts(path):
    """(normalised, normalised with hyphenated line breaks joined, without any whitespace)."""
    raw = raw_text(path)
    norm = normalise(raw)
    dehy = normalise(re.sub(r"(\w)-\n\s*(\w)", r"\1\2", raw))
    return norm, dehy, re.sub(r"\s+", "", norm)


def contains(path, hint):
    norm, dehy, nows = texts(path)
    h = normalise(hint)
    if h in norm or h in dehy:
        return True
    return bool(CJK.search(h)) and re.sub(r"\s+", "", h) in nows


@functools.lru_cache(maxsize=None)
def corpus_files(roots):
    files = []
    for root in roots:
        for d, _, names in os.walk(root, followlinks=True):
            files.extend(os.path.join(d, n) for n in names if n.lower().endswith(TEXT_EXTS))
    return sorted(files)


def resolve(suffix, roots):
    # the same rule as recall@5 in the benchmark: a plain "path ends with suffix"
    return [f for f in corpus_files(roots) if f.endswith(suffix)]


def load(path):
    items, errors = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                errors.append(f"line {n}: not JSON: {e}")
                continue
            items.append((n, obj))
    return items, errors


def words(s):
    return re.findall(r"[a-z0-9_]+", normalise(s))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval", default=os.path.join(here, "eval.jsonl"))
    ap.add_argument("--root", action="append", help="corpus root (repeatable; default: the packages)")
    ap.add_argument("--dump", metavar="SUFFIX")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()
    roots = tuple(args.root or DEFAULT_ROOTS)
    missing = [r for r in roots if not os.path.isdir(r)]
    if missing:
        print("check_eval: corpus root(s) missing: " + ", ".join(missing) +
              " (install r-doc-pdf python3-doc debian-edu-doc-zh-cn)", file=sys.stderr)
        return 1
    if args.dump:
        for f in resolve(args.dump, roots):
            print(f"==== {f}")
            print(texts(f)[0])
        return 0

    res = check(args.eval, roots, verbose=not args.quiet)
    for e in res["errors"]:
        print("check_eval: FAIL " + e, file=sys.stderr)
    print(json.dumps({"eval": args.eval, "ok": res["ok"], "errors": len(res["errors"]),
                      "by_lang": res["by_lang"]}, ensure_ascii=False))
    if res["errors"]:
        print(f"check_eval: {len(res['errors'])} problem(s) in {args.eval}", file=sys.stderr)
        return 1
    return 0


def check(eval_path, roots=tuple(DEFAULT_ROOTS), verbose=False, only_files=None):
    """Verifies every line; returns {"ok", "errors": [str], "items": [dict], "by_lang", "checked",
    "skipped"}. With only_files (a list of paths), a question none of whose suffixes matches one
    of those files is skipped (neither checked nor returned): --quick runs on a corpus subset."""
    roots = tuple(roots)
    items, errors = load(eval_path)
    skipped = 0
    good, seen, counts, files_used = [], set(), {}, {}
    for n, obj in items:
        where = f"line {n}"
        if not isinstance(obj, dict):
            errors.append(f"{where}: not an object")
            continue
        lang, q, exp, hint = (obj.get(k) for k in ("lang", "question", "expect", "answer_hint"))
        also = obj.get("also", [])
        bad = [k for k, v in (("question", q), ("expect", exp), ("answer_hint", hint))
               if not isinstance(v, str) or not v.strip()]
        if lang not in ("en", "zh"):
            bad.append("lang")
        if not isinstance(also, list) or not all(isinstance(a, str) and a for a in also):
            bad.append("also")
        unknown = set(obj) - {"lang", "question", "expect", "answer_hint", "also"}
        if unknown:
            bad.append("unknown keys " + ",".join(sorted(unknown)))
        if bad:
            errors.append(f"{where}: bad or missing field(s): {', '.join(bad)}")
            continue
        if only_files is not None and not any(
                f.endswith(x) for f in only_files for x in [exp] + also):
            skipped += 1
            continue
        before = len(errors)
        if normalise(q) in seen:
            errors.append(f"{where}: duplicate question {q!r}")
        seen.add(normalise(q))
        if lang == "zh" and not CJK.search(q):
            errors.append(f"{where}: lang zh but the question has no Chinese: {q!r}")
        if normalise(hint) in normalise(q):
            errors.append(f"{where}: the question contains its answer_hint verbatim: {hint!r}")
        for suffix in [exp] + also:
            matched = resolve(suffix, roots)
            if not matched:
                errors.append(f"{where}: no corpus file ends with {suffix!r}")
                continue
            for f in matched:
                if not contains(f, hint):
                    errors.append(f"{where}: answer_hint {hint!r} NOT found in {f} (suffix {suffix!r})"
                                  f" for question {q!r}")
        counts[lang] = counts.get(lang, 0) + 1
        files_used.setdefault(lang, set()).add(exp)
        if len(errors) == before:
            good.append(dict(obj, line=n))
        if verbose:
            hw = set(words(hint))
            ov = len(hw & set(words(q))) / len(hw) if hw else 0.0
            tag = f"overlap {ov:.2f}  " if lang == "en" else ""
            print(f"  {'ok' if len(errors) == before else 'BAD'} {where} [{lang}] {tag}{exp}: {q}",
                  file=sys.stderr)
    by_lang = {lang: {"questions": counts[lang], "distinct_expected_files": len(files_used[lang])}
               for lang in sorted(counts)}
    return {"ok": not errors, "errors": errors, "items": good, "by_lang": by_lang,
            "checked": sum(counts.values()), "skipped": skipped}


if __name__ == "__main__":
    sys.exit(main())
