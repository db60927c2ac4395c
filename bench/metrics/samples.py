"""Images to score, from a user's sampler, Dataset or tensor, as checked uint8 batches.

The contract (bench.api.fid documents it for users): images are N×C×H×W tensors with C = 1
or 3, either uint8 in [0, 255] or floating point in [0, 1]. A sampler is a callable that,
given `n`, returns exactly `n` such images as one tensor; a Dataset returns one C×H×W image
per index (or a tuple whose first element is one, as torchvision datasets do; a PIL image
is converted as torchvision's `pil_to_tensor` does). Anything else stops with one
`SampleError` line that says what came and what is expected.

Float images become uint8 as a saved PNG would (x·255, rounded), so a score from memory
equals the score of the same samples written to disk and read back.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch.utils.data import Dataset, IterableDataset

from bench.metrics.fidelity import images_to_uint8

EXPECTED = "uint8 in [0, 255] or float in [0, 1], N×C×H×W with C = 1 or 3"
# Floats this far outside [0, 1] still round to 0 or 255: half a uint8 step.
RANGE_SLACK = 0.5 / 255

Source = Callable[[int], torch.Tensor] | Dataset | torch.Tensor


class SampleError(ValueError):
    """Generated images that cannot be scored: wrong type, shape, dtype, range or count."""


def sample_batches(source: Source, num_samples: int, batch_size: int, *, rgb: bool = False,
                   expect: tuple | None = None) -> Iterator[torch.Tensor]:
    """`num_samples` images of `source` as uint8 batches of `batch_size` (the last may be
    smaller), each checked; gray planes repeated to RGB when `rgb` (Inception). `expect`: the
    C×H×W of the reference images (after that repetition), which the images must match."""
    if num_samples < 2:
        raise SampleError(f"num_samples = {num_samples}: FID needs at least 2 samples")
    shape = None
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        batch = images_to_uint8(_batch(source, start, n), rgb)
        if shape is None:
            shape = tuple(batch.shape[1:])
            if expect is not None and shape != tuple(expect):
                raise SampleError(f"the samples are {_size(shape)} images, the reference's "
                                  f"{_size(expect)}: FID compares images of one size and "
                                  "channel count (resize the samples, or pick the reference "
                                  "that matches)")
        elif tuple(batch.shape[1:]) != shape:
            raise SampleError(f"images {start}-{start + n - 1} are "
                              f"{_size(batch.shape[1:])}, the earlier ones {_size(shape)}")
        yield batch


def gather(source: Dataset | torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """The images of `source` at `index` (all when None), checked, as uint8 N×C×H×W."""
    if index is None:
        index = torch.arange(len(source))
    if isinstance(source, torch.Tensor):
        picked = source[index]
        return torch.cat([images_to_uint8(checked(b, "the images tensor"))
                          for b in picked.split(1024)])
    if isinstance(source, IterableDataset) or not isinstance(source, Dataset):
        raise SampleError(f"cannot index a {type(source).__name__}: pass a map-style Dataset "
                          "or a tensor")
    items = [images_to_uint8(checked_item(source[int(i)], int(i))[None]) for i in index]
    shapes = {tuple(x.shape[1:]) for x in items}
    if len(shapes) > 1:
        raise SampleError(f"images of several sizes: {sorted(shapes)}")
    return torch.cat(items)


def check_count(source: Source, num_samples: int) -> None:
    """A Dataset or tensor must hold at least `num_samples` images (a sampler is checked as
    it is called)."""
    if isinstance(source, IterableDataset):
        raise SampleError("an IterableDataset cannot be indexed: pass a map-style Dataset "
                          "or a sampler")
    if isinstance(source, (Dataset, torch.Tensor)):
        have = len(source)
        if have < num_samples:
            kind = "tensor" if isinstance(source, torch.Tensor) else "Dataset"
            raise SampleError(f"the {kind} holds {have} images, fewer than num_samples = "
                              f"{num_samples}")


def _batch(source: Source, start: int, n: int) -> torch.Tensor:
    if isinstance(source, torch.Tensor):
        return checked(source[start:start + n], "the images tensor")
    if isinstance(source, Dataset):
        items = [checked_item(source[i], i) for i in range(start, start + n)]
        return torch.stack(items)
    if callable(source):
        out = checked(source(n), f"sampler({n})")
        if out.shape[0] != n:
            raise SampleError(f"sampler({n}) returned {out.shape[0]} images; a sampler must "
                              f"return exactly the n images asked for")
        return out
    raise SampleError(f"cannot draw images from a {type(source).__name__}: pass a sampler "
                      "(sampler(n) -> N×C×H×W tensor), a torch Dataset or a tensor")


def checked(x, what: str) -> torch.Tensor:
    """`x` if it is a batch of images as the contract says; else SampleError."""
    if not isinstance(x, torch.Tensor):
        raise SampleError(f"{what} returned a {type(x).__name__}; expected a torch.Tensor, "
                          f"{EXPECTED}")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        hint = ""
        if x.dim() == 4 and x.shape[-1] in (1, 3):
            hint = " (channels last? use x.permute(0, 3, 1, 2))"
        raise SampleError(f"{what}: shape {tuple(x.shape)}; expected N×C×H×W with C = 1 or 3"
                          + hint)
    check_values(x, what)
    return x


def checked_item(item, index: int) -> torch.Tensor:
    """One Dataset item as a C×H×W tensor (first element of a tuple; PIL converted)."""
    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    if not isinstance(item, torch.Tensor) and hasattr(item, "getbands"):  # a PIL image
        from torchvision.transforms.functional import pil_to_tensor

        item = pil_to_tensor(item)
    what = f"Dataset item {index}"
    if not isinstance(item, torch.Tensor):
        raise SampleError(f"{what} is a {type(item).__name__}; expected a torch.Tensor "
                          "C×H×W (or a tuple starting with one)")
    if item.dim() != 3:
        raise SampleError(f"{what}: shape {tuple(item.shape)}; expected C×H×W with C = 1 or 3")
    return checked(item.unsqueeze(0), what)[0]


def check_values(x: torch.Tensor, what: str) -> None:
    if x.dtype == torch.uint8:
        return
    if not x.is_floating_point():
        raise SampleError(f"{what}: dtype {x.dtype}; expected {EXPECTED}")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        raise SampleError(f"{what}: {int((~finite).sum())} values are NaN or infinite; "
                          f"expected {EXPECTED}")
    lo, hi = float(x.min()), float(x.max())
    if lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
        hint = " (a tanh output in [-1, 1] maps to [0, 1] with (x + 1) / 2)" if lo < 0 else ""
        hint = " (uint8-scaled floats: divide by 255)" if hi > 1.5 else hint
        raise SampleError(f"{what}: {x.dtype} values in [{lo:.4g}, {hi:.4g}]; expected "
                          f"{EXPECTED}{hint}")


def _size(shape) -> str:
    return "×".join(str(int(s)) for s in shape)
