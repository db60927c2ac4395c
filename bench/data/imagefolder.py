"""The user's own images, in torchvision's ImageFolder layout.

Two layouts are accepted:

- `<root>/train/<class>/<image>` and `<root>/test/<class>/<image>`: the split is given;
  class indices come from the sorted class folders under `train`.
- `<root>/<class>/<image>`: a stratified train/test split, seeded by `seed`, with
  `test_fraction` of each class in the test split.

Every image is converted to `channels` (3 = "RGB" by default, 1 = "L") and resized
(bilinear) to `image_size`, or to the size of the first training image when that is unset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes

from bench.data import ImageData
from bench.errors import DatasetNotFound, UserError
from bench.suite.cell_configs import DatasetSpec

_LAYOUT = "<root>/<class>/<image> or <root>/{train,test}/<class>/<image>"


class _Folder(ImageFolder):
    """ImageFolder with a given class list, so that train and test agree on class indices."""

    def __init__(self, root: Path, classes: Sequence[str], allow_empty: bool):
        self._given_classes = list(classes)
        super().__init__(str(root), allow_empty=allow_empty)

    def find_classes(self, directory):
        return self._given_classes, {c: i for i, c in enumerate(self._given_classes)}


def _classes(cfg: DatasetSpec, directory: Path) -> list[str]:
    try:
        return find_classes(directory)[0]
    except FileNotFoundError:
        raise DatasetNotFound(
            f"datasets.{cfg.name}.root: no class folders in '{directory}'; expected {_LAYOUT}"
        ) from None


def _folder(cfg: DatasetSpec, directory: Path, classes: list[str], allow_empty: bool) -> _Folder:
    try:
        return _Folder(directory, classes, allow_empty)
    except FileNotFoundError as exc:  # a class folder without a single image file
        raise DatasetNotFound(
            f"datasets.{cfg.name}.root: {' '.join(str(exc).split())} (in '{directory}'; "
            f"expected {_LAYOUT})"
        ) from None


def _split_samples(cfg: DatasetSpec, root: Path, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    """The (path, class index) samples of `split`, and the class names."""
    name = cfg.name
    has = {s: (root / s).is_dir() for s in ("train", "test")}
    if has["train"] and has["test"]:
        classes = _classes(cfg, root / "train")
        extra = sorted(set(_classes(cfg, root / "test")) - set(classes))
        if extra:
            raise UserError(
                f"datasets.{name}.root: classes {extra} are in '{root / 'test'}' "
                f"but not in '{root / 'train'}'"
            )
        samples = _folder(cfg, root / split, classes, allow_empty=split == "test").samples
        if not samples:
            raise DatasetNotFound(f"datasets.{name}.root: no images in '{root / split}'")
        return samples, classes
    if has["train"] or has["test"]:
        present, absent = ("train", "test") if has["train"] else ("test", "train")
        raise DatasetNotFound(
            f"datasets.{name}.root: '{root / present}' exists but '{root / absent}' does not; "
            f"expected {_LAYOUT}"
        )

    from sklearn.model_selection import train_test_split

    classes = _classes(cfg, root)
    samples = _folder(cfg, root, classes, allow_empty=False).samples
    targets = [target for _, target in samples]
    try:
        train_idx, test_idx = train_test_split(
            np.arange(len(samples)),
            test_size=cfg.test_fraction,
            random_state=cfg.seed,
            stratify=targets,
        )
    except ValueError as exc:  # too few images for a stratified split
        raise UserError(
            f"datasets.{name}: cannot split {len(samples)} images of {len(classes)} classes "
            f"with test_fraction = {cfg.test_fraction} (each class needs 2 or more images "
            f"and the test split one per class): {exc}"
        ) from None
    keep = np.sort(train_idx if split == "train" else test_idx)
    return [samples[i] for i in keep], classes


def _read(path: str, mode: str, size_hw: tuple[int, int]) -> np.ndarray:
    """One image as uint8 H×W (mode "L") or H×W×3 (mode "RGB")."""
    h, w = size_hw
    with Image.open(path) as img:
        img = img.convert(mode)
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def load_imagefolder(cfg: DatasetSpec, split: str) -> ImageData:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    name = cfg.name
    root = Path(cfg.root).expanduser()  # required by the schema for this kind
    if not root.is_dir():
        raise DatasetNotFound(
            f"datasets.{name}.root: '{root}' is not a directory; expected {_LAYOUT} "
            f"(image files: {', '.join(IMG_EXTENSIONS)})"
        )
    samples, classes = _split_samples(cfg, root, split)

    if cfg.image_size is not None:
        size_hw = tuple(cfg.image_size)
    else:  # the first training image sets the size, so that both splits agree
        first = _split_samples(cfg, root, "train")[0][0][0] if split == "test" else samples[0][0]
        with Image.open(first) as img:
            size_hw = (img.height, img.width)

    channels = cfg.channels or 3
    mode = {1: "L", 3: "RGB"}[channels]
    arrays = np.stack([_read(path, mode, size_hw) for path, _ in samples])
    x = torch.from_numpy(arrays)
    x = x.unsqueeze(1) if channels == 1 else x.permute(0, 3, 1, 2).contiguous()
    x = x.float().div_(255.0)
    y = torch.tensor([target for _, target in samples], dtype=torch.int64)
    return ImageData(x, y, len(classes), name)
