"""scikit-learn's bundled 8×8 handwritten digits: 1797 real images, no download needed."""

from __future__ import annotations

import functools

import numpy as np
import torch

from bench.data import ImageData
from bench.data.transforms import conform
from bench.errors import UserError
from bench.suite.cell_configs import DatasetSpec

NUM_CLASSES = 10


@functools.lru_cache(maxsize=8)
def _digits_split(seed: int, test_fraction: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (x, y), "test": (x, y)}: a stratified split, the same for the same arguments.

    x is float32 N×1×8×8 in [0, 1] (the raw values are 0..16), y int64. The arrays are
    read-only because the cache hands the same ones to every caller.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y
    )
    out = {}
    for split, idx in (("train", np.sort(train_idx)), ("test", np.sort(test_idx))):
        xs, ys = x[idx], y[idx]
        xs.flags.writeable = False
        ys.flags.writeable = False
        out[split] = (xs, ys)
    return out


def load_digits_data(cfg: DatasetSpec, split: str) -> ImageData:
    """`split` of the digits, split by the dataset's `seed` and `test_fraction`."""
    try:
        x, y = _digits_split(cfg.seed, cfg.test_fraction)[split]
    except ValueError as exc:  # a test_fraction leaving some class out of a split
        raise UserError(f"datasets.{cfg.name}.test_fraction: cannot split the 1797 digits "
                        f"with test_fraction = {cfg.test_fraction} (each split needs one "
                        f"image per class): {exc}") from None
    # torch.tensor copies, so callers get tensors they may modify without touching the cache.
    xt = conform(torch.tensor(x), cfg.image_size, cfg.channels)
    return ImageData(xt, torch.tensor(y), NUM_CLASSES, cfg.name)
