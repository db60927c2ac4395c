"""Per-example correctness, stored compactly so worst cases can be recomputed later.

One row per (cell, ε) in a `correctness` table: the identity of what was evaluated (model,
checkpoint sha256, data fingerprint, seed, attack and its settings, ε; the cell adds them)
and two bit strings, `clean_correct` and `adv_correct`. Bit i is example i of the evaluated
subset, in the order the cell evaluated it (the seeded `limit` subset is sorted by dataset
index); together with `data_fingerprint` (the fingerprint of that very subset) it names the
example across cells and runs. `examples` marks which examples of the split as loaded
(`split_fingerprint`, `split_n` of them) the evaluated subset holds, so a `limit`ed subset's
rows can meet rows of the whole split (bench.metrics.worst_case.onto_subsets). Bits are packed little-endian (np.packbits) and base64-encoded:
a plain string is valid JSON for the cell journal and CSV as well as Parquet, and 10,000
examples take 1,668 characters.
"""

from __future__ import annotations

import base64

import numpy as np
import torch

from bench.store.schema import CORRECTNESS  # noqa: F401 (the table these rows go to)

BIT_COLUMNS = ("clean_correct", "adv_correct")


def pack_bits(mask: torch.Tensor | np.ndarray) -> str:
    """A bool vector -> base64 of its little-endian packed bits."""
    bits = torch.as_tensor(mask).cpu().numpy().astype(bool).reshape(-1)
    return base64.b64encode(np.packbits(bits, bitorder="little").tobytes()).decode("ascii")


def unpack_bits(text: str, n: int) -> np.ndarray:
    """The inverse of `pack_bits` for a vector of `n` examples."""
    raw = np.frombuffer(base64.b64decode(text, validate=True), dtype=np.uint8)
    if len(raw) != (n + 7) // 8:
        raise ValueError(f"{len(raw)} packed bytes cannot hold exactly {n} examples")
    return np.unpackbits(raw, count=n, bitorder="little").astype(bool)


def correctness_record(clean_correct: torch.Tensor, adv_correct: torch.Tensor) -> dict:
    """The stored columns for one (cell, ε): n and the two packed bit strings."""
    if len(clean_correct) != len(adv_correct):
        raise ValueError(f"{len(clean_correct)} clean vs {len(adv_correct)} attacked examples")
    return {"n": int(len(clean_correct)), "clean_correct": pack_bits(clean_correct),
            "adv_correct": pack_bits(adv_correct)}


def subset_record(indices: torch.Tensor | np.ndarray, split_n: int) -> dict:
    """The stored columns naming which of the split's `split_n` examples were evaluated
    (`indices`, ascending, as bench.data.seeded_indices draws them)."""
    mask = np.zeros(split_n, dtype=bool)
    mask[np.asarray(indices, dtype=np.int64)] = True
    return {"split_n": int(split_n), "examples": pack_bits(mask)}
