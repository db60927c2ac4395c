"""Host-device syncs inside the timed region of a throughput cell, caught.

On CUDA, torch's own detector: `torch.cuda.set_sync_debug_mode("error")` makes every
synchronising call (a read of a value, a blocking copy either way) raise. On the CPU there is
no device to wait for, so `HostReads` stands in for it: a dispatch mode that records every op
handing a tensor's value to the host (`.item()`, `int(t)`, `bool(t)`, `torch.equal`) or
whose output shape depends on the values (`nonzero`, `masked_select`, `unique`): on CUDA each
of these waits for the device. It cannot see copies (on the CPU every tensor is already on the
host), which the CUDA check covers.

`guard_timed_repeats(monkeypatch, guard)` wraps every call of the step that
`bench.throughput.timing.time_repeats` times in `guard()`; the cell's warm-up, FLOP count and
memory reads stay outside it, as they stay outside the timing.
"""

from __future__ import annotations

import contextlib
import traceback
from typing import Callable, ContextManager

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
READS = {aten._local_scalar_dense.default, aten.equal.default, aten.is_nonzero.default,
         aten.nonzero.default, aten.masked_select.default, aten._unique2.default,
         aten.unique_dim.default, aten.unique_consecutive.default}
# torch.optim keeps a non-capturable optimiser's step count on the host on every device:
# reading it is no device sync.
HOST_SIDE_FILES = ("torch/optim/",)


class HostReads(TorchDispatchMode):
    """Records (op name, the innermost non-torch frame) for every op in READS."""

    def __init__(self):
        super().__init__()
        self.reads: list[tuple[str, str]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in READS:
            stack = traceback.extract_stack()
            if not any(h in f.filename.replace("\\", "/") for f in stack for h in HOST_SIDE_FILES):
                caller = next((f"{f.filename}:{f.lineno}" for f in reversed(stack)
                               if "/torch/" not in f.filename and __file__ != f.filename), "?")
                self.reads.append((str(func), caller))
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def cuda_sync_errors():
    """Every synchronising CUDA call inside the block raises RuntimeError."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def guard_timed_repeats(monkeypatch, guard: Callable[[], ContextManager]) -> None:
    from bench.throughput import timing

    real = timing.time_repeats

    def time_repeats(fn, device, **kwargs):
        def guarded():
            with guard():
                return fn()
        return real(guarded, device, **kwargs)

    monkeypatch.setattr(timing, "time_repeats", time_repeats)


def throughput_suite_configs(precisions: tuple[str, ...], batch_size: int, repeats: int = 2):
    """The cells of suites/throughput.toml (every workload), one memory layout per precision
    (fp32 contiguous, the others channels_last), at `batch_size` with 1 warm-up step and
    `repeats` timed ones; a fixed peak so that the CPU peak is not measured."""
    from pathlib import Path

    from bench.suite.load import load_suite
    from bench.suite.plan import plan

    suite = Path(__file__).resolve().parents[2] / "suites" / "throughput.toml"
    configs = {}
    for cell in plan(load_suite(suite)):
        c = cell.config
        if c.precision in precisions and c.channels_last == (c.precision != "fp32"):
            c = c.model_copy(update={"batch_size": batch_size, "warmup": 1, "repeats": repeats,
                                     "peak_tflops": 1.0})
            configs[(c.workload, c.target.model_dump_json(), c.precision)] = c
    return list(configs.values())
