"""Small timing helpers shared by the benchmarks (machines here are noisy: interleave, take min)."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Smallest wall time of `repeats` calls, in seconds, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def interleaved(fns: dict[str, Callable[[], object]], repeats: int = 5) -> dict[str, float]:
    """Best time of each function, measured in alternation so load changes hit all alike."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def peak_rss_mib(code: str) -> float:
    """Peak resident memory (MiB) of a fresh Python process running `code`."""
    # VmHWM belongs to the process image; ru_maxrss would inherit the parent's peak over exec.
    wrapper = code + (
        "\nhwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]"
        "\nprint('PEAK', hwm[0].split()[1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper], capture_output=True, text=True, check=True
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("PEAK")][-1]
    return int(line.split()[1]) / 1024.0


def self_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[str(h) for h in headers]] + [
        [f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows
    ]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
