"""Sample shards: a robustness cell's evaluated examples cut into runs of whole batches.

A shard is a unit of the executor (a "robustness-shard" cell): journaled when done, reused on
resume, run on any worker or Ray node. It holds whole attack batches, so each batch is
exactly a batch of the unsharded cell, seeded the same way (bench.attacks.sweep), and the
merged rows equal the unsharded ones example for example. Hence:

- `shard_size` is rounded up to a whole number of batches (1000 at batch 512: 1024);
- `shards = K` gives each shard ceil(batches / K) batches, so there may be fewer than K
  shards: never more shards than batches, and so never more than examples (a batch size
  of 1 gives one example per shard).

The number of evaluated examples comes from the dataset's files (bench.data.sizes), so the
plan, and `bench validate`, know every shard before anything runs.
"""

from __future__ import annotations

import math

from bench.suite.cell_configs import DatasetSpec


def example_count(dataset: DatasetSpec, split: str, limit: int | None) -> int:
    """How many examples a robustness cell evaluates: the split, or its `limit` subset."""
    from bench.data.sizes import count_examples

    n = count_examples(dataset, split)
    return n if limit is None else min(n, limit)


def shard_ranges(n: int, batch_size: int, *, shard_size: int | None = None,
                 shards: int | None = None) -> list[tuple[int, int]]:
    """[start, stop) positions of each shard of `n` examples (exactly one of the two keys)."""
    if (shard_size is None) == (shards is None):
        raise ValueError("give exactly one of shard_size and shards")
    batches = max(1, math.ceil(n / batch_size))
    per_shard = (math.ceil(shard_size / batch_size) if shard_size is not None
                 else math.ceil(batches / shards))
    step = per_shard * batch_size
    return [(start, min(start + step, n)) for start in range(0, n, step)]
