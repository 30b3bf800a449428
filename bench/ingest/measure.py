"""measure.py: runs one command and measures it: wall time, CPU time, peak memory.

Peak memory is taken two ways, because `sluice ingest` runs its parsers in child processes
(`sluice __parse-worker`) and `/usr/bin/time -v` reports only the largest single process:
  - max_rss_kib: "Maximum resident set size" from `/usr/bin/time -v` (largest one process);
  - tree_peak_rss_kib: the peak of the SUM of the resident set sizes of the command and all of
    its descendants, sampled from /proc every `interval` seconds (misses spikes shorter than that).
Python 3 standard library only; Linux only (/proc).
"""
import os
import re
import subprocess
import time

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces or parentheses
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 1:
            kids.setdefault(int(rest[1]), []).append(int(name))
    return kids


def _rss_kib(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss_kib(root_pid, include_root=True):
    kids = _children_map()
    total, stack = (_rss_kib(root_pid) if include_root else 0), list(kids.get(root_pid, []))
    seen = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_kib(pid)
        stack.extend(kids.get(pid, []))
    return total, len(seen)


def _parse_time_v(text):
    out = {}
    pats = {
        "max_rss_kib": r"Maximum resident set size \(kbytes\):\s*(\d+)",
        "user_s": r"User time \(seconds\):\s*([\d.]+)",
        "sys_s": r"System time \(seconds\):\s*([\d.]+)",
        "cpu_percent": r"Percent of CPU this job got:\s*(\d+)%",
        "major_faults": r"Major \(requiring I/O\) page faults:\s*(\d+)",
        "fs_inputs": r"File system inputs:\s*(\d+)",
        "fs_outputs": r"File system outputs:\s*(\d+)",
    }
    for key, pat in pats.items():
        m = re.search(pat, text)
        if m:
            out[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    return out


def run(cmd, stdout_path, stderr_path, env=None, interval=0.05, timeout=None):
    """Runs cmd (a list) under /usr/bin/time -v; returns a dict of figures.
    stdout and stderr of the command go to the given files (stdout is a file, never a terminal).
    """
    time_path = stderr_path + ".time"
    full = ["/usr/bin/time", "-v", "-o", time_path] + list(cmd)
    peak, peak_procs = 0, 0
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        timed_out = False
        while True:
            try:
                proc.wait(timeout=interval)
                break
            except subprocess.TimeoutExpired:
                pass
            # /usr/bin/time itself is not counted: only the command and its descendants.
            rss, nproc = tree_rss_kib(proc.pid, include_root=False)
            if rss > peak:
                peak, peak_procs = rss, nproc
            if timeout is not None and time.perf_counter() - t0 > timeout:
                timed_out = True
                proc.kill()
                proc.wait()
                break
        wall = time.perf_counter() - t0
    res = {"cmd": list(cmd), "exit_status": proc.returncode, "wall_s": round(wall, 4),
           "tree_peak_rss_kib": peak, "tree_peak_processes": peak_procs, "timed_out": timed_out}
    try:
        with open(time_path, encoding="utf-8", errors="replace") as f:
            tv = f.read()
        res.update(_parse_time_v(tv))
        m = re.search(r"Command exited with non-zero status (\d+)", tv)
        if m:
            res["exit_status"] = int(m.group(1))
    except OSError:
        pass
    if "user_s" in res and "sys_s" in res:
        res["cpu_s"] = round(res["user_s"] + res["sys_s"], 3)
    return res
