"""Run `python -m monitor.cli ...` with a thread inside it that writes, every few seconds,
where its memory is: one JSON line per sample, for benchmarks/soak.py --memwatch.

What a sample holds (all read inside the monitor process, the soak's other processes apart):
- rss_kb: /proc/self/statm;
- malloc: glibc's mallinfo2() summed over every arena: `arena` (heap bytes obtained from the
  kernel, not mmapped), `mmap` (large blocks mmapped apart), `used` (allocated), `free` (held
  by the allocator, not returned: fragmentation when it grows while `used` does not);
- pymalloc: Python's small-object allocator (_PyObject_DebugMallocStats): arenas of 1 MiB
  held now, and bytes in allocated blocks (-1 under tracemalloc, which hooks the allocator);
- sqlite_kb: sqlite3_memory_used() of the libsqlite3 that Python's sqlite3 module uses (every
  connection's page cache and statements);
- gc_objects and the types whose counts changed most since the baseline, the first sample
  after --from seconds (containers the collector tracks; start-up objects frozen by the
  monitor are not among them);
- gc: per generation, collections since the start and the longest pause one took (ms);
- threads: threads of the process;
- with --trace N: tracemalloc on from the start (N frames); from the baseline on, each sample
  lists the tracebacks whose live allocations grew most since the baseline.

    python benchmarks/memwatch.py OUT.jsonl 30 [--trace 8] --from 300 -- -v run -c ...
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import re
import runpy
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from typing import Any

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.mallinfo2.restype = _MallInfo2
_libc.fopen.restype = ctypes.c_void_p
_libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libc.fclose.argtypes = [ctypes.c_void_p]
_sqlite = ctypes.CDLL("libsqlite3.so.0")  # the copy _sqlite3 links (ldd ... _sqlite3*.so)
_sqlite.sqlite3_memory_used.restype = ctypes.c_int64
_debug_stats = ctypes.pythonapi._PyObject_DebugMallocStats
_debug_stats.argtypes = [ctypes.c_void_p]


def malloc_kb() -> dict[str, int]:
    m = _libc.mallinfo2()
    return {"arena": m.arena // 1024, "mmap": m.hblkhd // 1024, "used": m.uordblks // 1024,
            "free": m.fordblks // 1024}


def pymalloc() -> dict[str, int]:
    """Arenas held and bytes in allocated blocks, parsed from _PyObject_DebugMallocStats."""
    with tempfile.NamedTemporaryFile("r") as out:
        fp = _libc.fopen(out.name.encode(), b"w")
        _debug_stats(fp)
        _libc.fclose(fp)
        text = out.read()

    def number(label: str) -> int:
        m = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
        return int(m.group(1).replace(",", "")) if m else -1

    return {"arenas": number("# arenas allocated current"),
            "allocated_kb": number("bytes in allocated blocks") // 1024}


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB


class Pauses:
    """Collections per generation and the longest pause of each, from gc.callbacks."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.max_ms = [0.0, 0.0, 0.0]
        self._start = 0.0
        gc.callbacks.append(self.on_gc)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        g = info["generation"]
        self.count[g] += 1
        self.max_ms[g] = max(self.max_ms[g], (time.perf_counter() - self._start) * 1000)

    def sample(self) -> dict[str, list[float]]:
        return {"collections": list(self.count), "max_pause_ms": [round(x, 2) for x in self.max_ms]}


def type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def watch(path: str, every_s: float, from_s: float, pauses: Pauses) -> None:
    t0 = time.perf_counter()
    base_types: Counter[str] | None = None
    base: tracemalloc.Snapshot | None = None
    with open(path, "a", buffering=1) as out:
        while True:
            time.sleep(every_s)
            warm = time.perf_counter() - t0 >= from_s
            types = type_counts()
            if base_types is None and warm:
                base_types = types
            was = base_types or types
            changed = {k: types[k] - was[k] for k in set(types) | set(was)}
            top = sorted(changed.items(), key=lambda kv: -abs(kv[1]))[:12]
            sample: dict[str, Any] = {
                "t_s": round(time.perf_counter() - t0, 1), "rss_kb": rss_kb(),
                "malloc": malloc_kb(), "pymalloc": pymalloc(),
                "sqlite_kb": _sqlite.sqlite3_memory_used() // 1024,
                "gc_objects": sum(types.values()), "types_changed": dict(top),
                "gc": pauses.sample(), "threads": threading.active_count(),
            }
            if tracemalloc.is_tracing() and warm:
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)])
                if base is None:
                    base = snap
                sample["traced_kb"] = tracemalloc.get_traced_memory()[0] // 1024
                sample["grew"] = [
                    [f"{d.traceback[0].filename.rsplit('/', 2)[-1]}:{d.traceback[0].lineno}",
                     d.size_diff // 1024, d.count_diff,
                     " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"
                                for f in list(d.traceback)[1:6])]
                    for d in snap.compare_to(base, "traceback")[:10]]
            out.write(json.dumps(sample) + "\n")


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="JSON lines are appended here")
    p.add_argument("every_s", type=float, help="seconds between samples")
    p.add_argument("--trace", type=int, default=0, metavar="N",
                   help="tracemalloc with N frames (slower; off by default)")
    p.add_argument("--from", dest="from_s", type=float, default=0.0, metavar="S",
                   help="the baseline: the first sample after S seconds (the warm-up)")
    args = p.parse_args(argv[:split])
    if args.trace:
        tracemalloc.start(args.trace)
    threading.Thread(target=watch, args=(args.out, args.every_s, args.from_s, Pauses()),
                     name="memwatch", daemon=True).start()
    sys.argv = ["monitor.cli", *argv[split + 1:]]
    runpy.run_module("monitor.cli.__main__", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
