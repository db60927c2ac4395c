"""Seeded randomness that leaves the caller's random state alone.

torch's default initialisers, torchattacks' random starts and spectral norm's vectors draw
from the global RNG. Every such draw in bench runs inside `seeded(seed, device)`: the global
RNG of the CPU (and of `device`, on CUDA) is forked, seeded, and restored afterwards, so the
draws are reproducible and nothing leaks to the caller or to the next cell.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def seeded(seed: int, device: str | torch.device = "cpu") -> Iterator[None]:
    """Fork the global RNG of the CPU and of `device`, then seed it with `seed`."""
    dev = torch.device(device)
    if dev.type == "cpu":
        fork = torch.random.fork_rng(devices=[])
    else:
        index = dev.index
        if index is None:
            index = torch.cuda.current_device() if dev.type == "cuda" else 0
        fork = torch.random.fork_rng(devices=[index], device_type=dev.type)
    with fork:
        torch.manual_seed(seed)
        yield
