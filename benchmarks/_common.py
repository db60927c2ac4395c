"""Shared pieces of the side-by-side benchmarks: alternating timing, ratios, machine, data.

Every benchmark times its contenders in one process, alternating (round r runs them in an
order rotated by r), so that a change in the machine's load hits all of them alike. Ratios
are reported two ways: the ratio of the medians, and the median (with quartiles) of the
per-round ratios, which pairs measurements taken seconds apart.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Callable

import numpy as np
import torch


def alternate(contenders: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
              progress: bool = True, sync: Callable[[], object] | None = None,
              stop: Callable[[], bool] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each contender over `rounds` rounds, after `warmup` untimed rounds.
    `sync` (e.g. torch.cuda.synchronize) runs after each call, inside its time: on an
    asynchronous device a call's work is done only then. `stop`, asked before every round,
    ends the timing early by returning True (the rounds done so far are returned)."""
    return alternate_clocks(contenders, rounds, warmup, progress, sync=sync, stop=stop)["wall"]


def alternate_clocks(contenders: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
                     progress: bool = True, clocks: dict[str, Callable[[], float]] | None = None,
                     sync: Callable[[], object] | None = None,
                     stop: Callable[[], bool] | None = None
                     ) -> dict[str, dict[str, list[float]]]:
    """`alternate`, read on several clocks at once: {clock: {contender: seconds per call}}.
    By default wall time (perf_counter) only; `time.process_time` adds this process's CPU
    time, which other processes' load disturbs far less on a shared machine."""
    clocks = clocks or {"wall": time.perf_counter}
    sync = sync or (lambda: None)
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
            sync()
    times = {c: {name: [] for name in names} for c in clocks}
    for r in range(rounds):
        if stop is not None and stop():
            break
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            start = {c: clock() for c, clock in clocks.items()}
            contenders[name]()
            sync()
            for c, clock in clocks.items():
                times[c][name].append(clock() - start[c])
        if progress:
            done = ", ".join(f"{n} {times[next(iter(clocks))][n][-1]:.3f}s" for n in names)
            print(f"  round {r + 1}/{rounds}: {done}", flush=True)
    return times


def quartiles(x) -> tuple[float, float, float]:
    q1, med, q3 = np.percentile(np.asarray(x, float), [25, 50, 75])
    return float(q1), float(med), float(q3)


def ratio_summary(slow: list[float], fast: list[float]) -> dict[str, float]:
    """slow/fast as the ratio of medians and as the median of per-round ratios (with IQR)."""
    per_round = np.asarray(slow, float) / np.asarray(fast, float)
    q1, med, q3 = quartiles(per_round)
    return {"ratio_of_medians": float(np.median(slow) / np.median(fast)),
            "median_ratio": med, "ratio_q1": q1, "ratio_q3": q3}


def describe_times(name: str, times: list[float], scale: float = 1.0, unit: str = "s") -> str:
    q1, med, q3 = quartiles(np.asarray(times) * scale)
    return f"{name:<44s} median {med:9.4f} {unit}  IQR [{q1:.4f}, {q3:.4f}]  (n={len(times)})"


def machine_lines() -> list[str]:
    from bench.provenance import cpu_name

    return [
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {platform.platform()}",
        f"torch {torch.__version__} (CUDA {torch.version.cuda}), {torch.get_num_threads()} torch "
        f"threads; load average now {fmt_load()}",
    ]


def fmt_load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1/5/15 min)"


def upsampled_digits(n: int, size: int = 28, split: str = "test", seed: int = 0,
                     max_shift: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` MNIST-sized images (1×size×size in [0, 1]) made from scikit-learn's 8×8 digits.

    No MNIST download is possible here, so: the real 8×8 digits of `split` (bench's digits
    split), upsampled bilinearly to size×size, cycled to `n` images, each shifted by a random
    whole number of pixels in [-max_shift, max_shift] on both axes (zero padding) so that the
    copies differ. Deterministic for a given seed.
    """
    import torch.nn.functional as F

    from bench.data import load_dataset
    from bench.suite.cell_configs import DatasetSpec

    data = load_dataset(DatasetSpec(name="digits", kind="digits"), split)
    base = F.interpolate(data.x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.arange(n) % len(data.y)
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen)
    padded = F.pad(base, (max_shift,) * 4)
    x = torch.empty(n, 1, size, size)
    for i in range(n):
        dy, dx = (max_shift + shifts[i]).tolist()
        x[i] = padded[idx[i], :, dy:dy + size, dx:dx + size]
    return x.contiguous(), data.y[idx].clone()


def train_briefly(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 2,
                  batch_size: int = 128, lr: float = 2e-3, seed: int = 0) -> torch.nn.Module:
    """A few epochs of Adam on (x, y): enough for a clearly non-random classifier."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()
