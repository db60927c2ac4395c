"""`samples_not_memorised`: generated samples that are near-copies of a training image.

For each checked generated sample, its nearest reference image in the extractor's feature space
(the FID layer), and the distance to it divided by the real data's own spacing: the median
distance from a reference image to its nearest *other* reference image. A fresh real image
sits at about one spacing from its nearest training image, a copy at about zero. A GAN that
memorises its training set turns out copies; FID cannot see that (copies of the training set
score an excellent FID against it).

The reference is what the generated images are searched against: the training images when the
reference is the training split (the GAN cells' reference: up to `num_samples` train images,
so a larger train split is searched in part, and the detail says how many images were).
Thresholds (bench.defaults, measured on digits under the domain extractor, FID_COPY_RATIO):
a sample closer than FID_COPY_RATIO spacings is a near-copy; the check fails when near-copies
exceed FID_COPY_SHARE of the checked samples beyond the share of reference images that are
near-copies of another reference image (duplicates in the data itself).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench import defaults
from bench.checks.verdict import Outcome

CHECK = "samples_not_memorised"


@dataclass(frozen=True)
class Memorisation:
    ratio: torch.Tensor  # per checked sample: nearest-reference distance / spacing
    nearest: torch.Tensor  # per checked sample: index of its nearest reference image
    spacing: float  # median nearest-other distance among the reference images
    real_copy_share: float  # share of reference images within FID_COPY_RATIO of another
    n_reference: int

    def copy_share(self, ratio: float = defaults.FID_COPY_RATIO) -> float:
        return float((self.ratio < ratio).float().mean())


def nearest(queries: torch.Tensor, keys: torch.Tensor, *, skip_self: bool = False,
            chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each query's nearest key, in float64; with `skip_self`, queries
    are keys[:len(queries)] and a query does not match itself."""
    keys = keys.double()
    dists, idxs = [], []
    for start in range(0, queries.shape[0], chunk):
        d = torch.cdist(queries[start:start + chunk].double(), keys)
        if skip_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + start] = float("inf")
        dist, idx = d.min(dim=1)
        dists.append(dist)
        idxs.append(idx)
    return torch.cat(dists), torch.cat(idxs)


def memorisation(generated: torch.Tensor, reference: torch.Tensor,
                 sample: int = defaults.FID_CHECK_SAMPLES,
                 ratio: float = defaults.FID_COPY_RATIO) -> Memorisation:
    """Nearest reference image of the first `sample` generated feature rows, and the spacing
    of the reference from its first `sample` rows (each against all the others)."""
    if reference.shape[0] < 2:
        raise ValueError("the memorisation check needs at least 2 reference images")
    own, _ = nearest(reference[:sample], reference, skip_self=True)
    spacing = float(own.median())
    dist, idx = nearest(generated[:sample], reference)
    scale = spacing if spacing > 0 else float("inf")  # all duplicates: every sample is far
    return Memorisation(dist / scale, idx, spacing, float((own / scale < ratio).float().mean()),
                        reference.shape[0])


def memorisation_outcome(m: Memorisation, ratio: float = defaults.FID_COPY_RATIO,
                         share: float = defaults.FID_COPY_SHARE) -> Outcome:
    copies = m.copy_share(ratio)
    allowed = m.real_copy_share + share
    seen = (f"{copies:.1%} of {len(m.ratio)} samples lie within {ratio:.2g}× the real data's "
            f"spacing ({m.spacing:.3g}) of one of {m.n_reference} reference images "
            f"(median {float(m.ratio.median()):.2f}×; {m.real_copy_share:.1%} of the reference "
            f"images are that close to another); allowed {allowed:.1%}")
    if copies <= allowed:
        return Outcome(CHECK, True, copies, seen)
    return Outcome(CHECK, False, copies, (
        f"{seen}: the generator reproduces training images (memorisation); its FID against "
        "the training set flatters it"))
