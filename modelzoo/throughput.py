"""Throughput and latency figures from timestamps, the same way for every backend."""
from __future__ import annotations

import numpy as np


def bench_figures(stamps: list[float], latencies_s: list[float], batch_size: int,
                  warmup: int, in_flight: int = 1) -> dict[str, float]:
    """Steady-state images/s and per-batch latency percentiles.

    `stamps`: the start time, then the time each batch finished, in order. Throughput is the
    images completed after the first `warmup` results over the wall time from the warm-up's
    last result to the last one; never a rate from the gap between two results, which is near
    zero when a session finishes several batches together. Nor from a window shorter than the
    timed batches' own run times allow with `in_flight` of them running at once: with a few
    timed batches, all of them may finish together with the last warm-up one.
    """
    done = len(stamps) - 1 - warmup
    if done < 1:
        raise ValueError("no timed results after the warm-up")
    wall = max(stamps[-1] - stamps[warmup], sum(latencies_s[warmup:]) / in_flight)
    timed = np.asarray(latencies_s[warmup:] or latencies_s) * 1000
    p50, p90, p99 = (float(np.percentile(timed, q)) for q in (50, 90, 99))
    return {"fps": done * batch_size / wall, "wall_s": wall, "batches": done, "in_flight": in_flight,
            "latency_ms_p50": p50, "latency_ms_p90": p90, "latency_ms_p99": p99}
