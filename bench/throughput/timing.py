"""Time a step function: warm up, then time every repeat; summarise as median and IQR.

The clock is a function of the device alone (`timing_method`): CUDA events on a CUDA device,
`time.perf_counter` on the CPU (with a device synchronisation for other accelerators). Inputs
must already be on the device: whatever `fn` does is what gets timed.

On CUDA, each repeat is bracketed by a pair of events recorded back to back on the current
stream, and the host waits only once, after the last repeat, so the measured time is the
stream's time per step in steady state (what a training loop sees), not launch latency plus
an idle GPU. On the CPU the garbage collector is paused while timing (as `timeit` does).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch

TimingMethod = Literal["cuda-event", "perf-counter"]


def timing_method(device: str | torch.device) -> TimingMethod:
    """CUDA events on a CUDA device, `time.perf_counter` everywhere else."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"cannot time on {dev}: CUDA is not available")
        return "cuda-event"
    return "perf-counter"


def time_repeats(
    fn: Callable[[], object],
    device: str | torch.device,
    *,
    warmup: int,
    repeats: int,
    event_factory: Callable[..., object] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds taken by each of `repeats` calls of `fn`, after `warmup` untimed calls.

    `event_factory` (default `torch.cuda.Event`) makes the CUDA events; `clock` is the CPU clock.
    Both are parameters so that tests can check which one is used without a GPU.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be non-negative, got {warmup}")
    if timing_method(device) == "cuda-event":
        return _time_cuda_events(fn, warmup, repeats, event_factory or torch.cuda.Event)
    return _time_perf_counter(fn, warmup, repeats, clock, _synchronizer(torch.device(device)))


def _time_cuda_events(fn, warmup: int, repeats: int, event_factory) -> list[float]:
    for _ in range(warmup):
        fn()
    drained = event_factory()
    drained.record()
    drained.synchronize()  # warm-up work (compilation, allocator growth) is finished
    starts = [event_factory(enable_timing=True) for _ in range(repeats)]
    ends = [event_factory(enable_timing=True) for _ in range(repeats)]
    for start, end in zip(starts, ends):
        start.record()
        fn()
        end.record()
    ends[-1].synchronize()
    return [start.elapsed_time(end) / 1e3 for start, end in zip(starts, ends)]  # ms -> s


def _time_perf_counter(fn, warmup: int, repeats: int, clock, sync) -> list[float]:
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()
    times = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = clock()
            fn()
            if sync is not None:
                sync()
            times.append(clock() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def _synchronizer(device: torch.device) -> Callable[[], None] | None:
    """What makes host time honest on an asynchronous non-CUDA device (MPS, XPU)."""
    if device.type == "cpu":
        return None
    module = getattr(torch, device.type, None)
    sync = getattr(module, "synchronize", None)
    if sync is None:
        raise RuntimeError(f"do not know how to synchronise device type {device.type!r}")
    return sync


@dataclass(frozen=True)
class TimingStats:
    median_s: float
    q1_s: float
    q3_s: float
    iqr_s: float
    min_s: float
    max_s: float
    n: int


def summarize(times: list[float]) -> TimingStats:
    """Median and quartiles (linear interpolation, numpy's default) of the repeats."""
    if not times:
        raise ValueError("no timings to summarise")
    x = np.asarray(times, dtype=float)
    q1, median, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
    return TimingStats(median, q1, q3, q3 - q1, float(x.min()), float(x.max()), len(x))
