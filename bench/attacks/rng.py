"""A forked, seeded global RNG: torchattacks draws its randomness from the global one."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def seeded_rng(seed: int, device: str | torch.device) -> Iterator[None]:
    """Fork the global RNG of the CPU and of `device`, then seed it."""
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
