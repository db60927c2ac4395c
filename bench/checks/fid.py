"""The FID checks of one evaluation, as `checks` rows: what the GAN cell runs on its final
samples and bench.api.fid on the samples it scores, with the same code.

- `fid_batch_size_invariance` (bench.checks.fid_batch): the first samples' FID at a second,
  smaller batch size.
- `fid_sample_count` (bench.checks.fid_count): the counts behind the FID and its floor.
- `samples_not_memorised` (bench.checks.memorisation): nearest reference images.
Without FID among the metrics there is nothing to check; without the reference's features
(reference statistics only) the memorisation check cannot run and is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bench import defaults
from bench.checks.fid_batch import batch_size_outcome, other_batch_size
from bench.checks.fid_count import sample_count_outcome
from bench.checks.memorisation import Memorisation, memorisation, memorisation_outcome
from bench.checks.verdict import Outcome, check_row
from bench.metrics.fidelity import RealFeatures, Scorer, sample_count_warning


@dataclass(frozen=True)
class FidChecks:
    outcomes: list[Outcome]
    memorisation: Memorisation | None  # None: no reference features to search


def fid_checks(scorer: Scorer, generated: dict, head: torch.Tensor, real: RealFeatures, *,
               fid: float, floor: float = math.nan, n_floor: int | None = None,
               sample: int = defaults.FID_CHECK_SAMPLES) -> FidChecks:
    """The checks of `generated` (features of every sample) against `real`; `head` holds the
    first samples as uint8 images (at least `sample` of them, or all), for the batch check."""
    if "fid" not in scorer.metrics:
        return FidChecks([], None)
    layer = scorer.fid_layer
    n = generated[layer].shape[0]
    head = head[:sample]
    k = head.shape[0]
    other = other_batch_size(scorer.batch_size, k)
    fid_other = scorer.fid(scorer.features(head, batch_size=other)[layer], real)
    outcomes = [batch_size_outcome(scorer.fid_at(generated, real, k), fid_other,
                                   min(scorer.batch_size, n), other, k, scorer.float64)]
    at_floor = scorer.fid_at(generated, real, n_floor) if n_floor else math.nan
    outcomes.append(sample_count_outcome(
        fid=fid, n=n, n_real=real.n, floor=floor, n_floor=n_floor, fid_at_floor_count=at_floor,
        small_warning=sample_count_warning(scorer.extractor, min(n, real.n))))
    found = None
    if real.features is not None:
        found = memorisation(generated[layer], real.features[layer], sample)
        outcomes.append(memorisation_outcome(found))
    return FidChecks(outcomes, found)


def fid_check_rows(checks: FidChecks, *, model: str, seed: int | None, dataset: str | None,
                   split: str | None, setting: str) -> list[dict]:
    """`checks` rows; `setting` says what was scored ("step=2500, extractor=bench-domain-…")."""
    return [check_row(o, model=model, seed=seed, dataset=dataset, split=split, setting=setting)
            for o in checks.outcomes]
