"""Seeded randomness that leaves the caller's random state alone.

torch's default initialisers, torchattacks' random starts and spectral norm's vectors draw
from the global RNG. Every such draw in bench runs inside `seeded(seed, device)`: the global
RNG of the CPU (and of `device`, on CUDA) is forked, seeded, and restored afterwards, so the
draws are reproducible and nothing leaks to the caller or to the next cell.
"""

from __future__ import annotations

import hashlib
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


def block_seed(seed: int, start: int) -> int:
    """The seed of the block of examples that starts at position `start` of an evaluation.

    Attacks draw their random numbers block by block (a block is one attack batch), each
    block under its own seed from the suite seed and its first position. A block's result
    then depends on its own examples alone, never on which other blocks run in the same
    process: a sharded evaluation (bench.suite.plan, shards made of whole batches) equals the
    unsharded one example for example. A hash, so that (seed, start) pairs never collide as
    seed + start would.
    """
    digest = hashlib.sha256(f"bench-block {int(seed)} {int(start)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: torch.manual_seed's range
