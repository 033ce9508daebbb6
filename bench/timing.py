"""Timing helpers shared by the benchmarks (each bench/*.py runs as a script, so this module
sits beside them on sys.path)."""

import statistics
import time

import numpy as np


def median_time(fn, repeats: int) -> float:
    """Median wall time of fn() over `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def latencies(decide, n: int, warmup: int) -> np.ndarray:
    """Seconds per call of decide(i) for i in 0..n-1, after `warmup` untimed calls."""
    for i in range(warmup):
        decide(i)
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        decide(i)
        out[i] = time.perf_counter() - t0
    return out
