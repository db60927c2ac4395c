"""`fid_sample_count`: FID and its real-data floor measured on the same number of samples.

FID is biased upward by a finite sample (the covariance estimate's error adds to it; Chong &
Forsyth 2020, "Effectively unbiased FID"), more the fewer the samples, so an FID compares only
with FIDs at the same count, the real-data floor included: the floor (real held-out images
against the same reference) is measured on at most as many held-out images as the split has.
The check reports the counts; it fails when the floor was measured at another count than
the FID, or when Inception FID runs on fewer samples than its 2048 features (rank-deficient
covariances), and gives the generated side's FID at the floor's count beside the floor.
"""

from __future__ import annotations

import math

from bench.checks.verdict import Outcome

CHECK = "fid_sample_count"


def sample_count_outcome(*, fid: float, n: int, n_real: int, floor: float, n_floor: int | None,
                         fid_at_floor_count: float, small_warning: str = "") -> Outcome:
    """`n` generated samples against `n_real` reference images; `floor` (NaN when no held-out
    real images were at hand) on `n_floor` of them; `small_warning` from
    bench.metrics.fidelity.sample_count_warning."""
    seen = f"FID {fid:.4g} on {n} generated samples against {n_real} reference images"
    problems = [small_warning] if small_warning else []
    if n_floor is None or math.isnan(floor):
        seen += "; no real-data floor (no held-out real images)"
    elif n_floor == n:
        seen += f"; real-data floor {floor:.4g} on {n_floor} held-out images, the same count"
    else:
        seen += (f"; real-data floor {floor:.4g} on {n_floor} held-out images; at "
                 f"{n_floor} samples each: FID {fid_at_floor_count:.4g}, floor {floor:.4g}")
        problems.append(f"the floor uses {n_floor} samples and the FID {n}: FID is biased by "
                        "the sample count, so the two are not comparable as they stand; "
                        "compare the same-count pair")
    if not problems:
        return Outcome(CHECK, True, n, seen)
    return Outcome(CHECK, False, n, f"{seen}: {'; '.join(problems)}")
