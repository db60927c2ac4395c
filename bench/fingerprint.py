"""Content fingerprints of tensors: what a dataset or a set of weights *is*, cheaply.

They complete bench.identity, which leaves machine-local paths out: two runs that load
different data, or evaluate with different extractor weights, get different fingerprints,
so caches are not reused across them and compare never pools their numbers.
"""

from __future__ import annotations

import hashlib

import torch

# Hash at most this many evenly spaced elements of the images (labels are hashed whole):
# a few MB however large the dataset, and any resized, re-split or re-normalised copy differs.
MAX_SAMPLED_ELEMENTS = 1 << 20
LENGTH = 16


def data_fingerprint(x: torch.Tensor, y: torch.Tensor | None = None) -> str:
    """16 hex digits from the shape, dtype, a strided sample of `x` and all of `y`."""
    h = hashlib.sha256(f"{tuple(x.shape)} {x.dtype}".encode())
    flat = x.detach().reshape(-1)
    step = max(1, flat.numel() // MAX_SAMPLED_ELEMENTS)
    h.update(_bytes(flat[::step]))
    if y is not None:
        h.update(f"{tuple(y.shape)} {y.dtype}".encode())
        h.update(_bytes(y.detach().reshape(-1)))
    return h.hexdigest()[:LENGTH]


def state_dict_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """16 hex digits from every tensor of a state_dict, in key order (not its pickle bytes,
    which depend on torch's serialisation format)."""
    h = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        h.update(f"{key} {tuple(value.shape)} {value.dtype}".encode())
        h.update(_bytes(value.detach().reshape(-1)))
    return h.hexdigest()[:LENGTH]


def _bytes(t: torch.Tensor) -> bytes:
    t = t.cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the raw 16-bit words
        t = t.view(torch.int16)
    return t.numpy().tobytes()
