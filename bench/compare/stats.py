"""Is a change real? It must be beyond the tolerance, and significantly so.

The rule, per metric and configuration (samples = one value per seed, or per timed repeat):

1. Δ = median(candidate) - median(baseline); tol = max(abs_tol, rel_tol·|median(baseline)|).
   If |Δ| <= tol the verdict is **unchanged** (test "tolerance").
2. Otherwise the test asks whether the candidate is significantly beyond the tolerance in
   the direction of Δ (a margin test: the baseline is shifted by tol before testing, so a
   real but small change that only looks bigger through sampling noise is not flagged):
   - at least MWU_MIN_SAMPLES samples per side: one-sided **Mann-Whitney U** (scipy) of the
     candidate against the shifted baseline; significant when p < alpha;
   - fewer: a seeded **bootstrap** (BOOTSTRAP_RESAMPLES resamples, fixed seed, so
     deterministic) of the median difference. When both sides have the same seeds the
     samples are paired and the statistic is the median of the per-seed differences (test
     "bootstrap-paired"); otherwise median(candidate*) - median(baseline*) ("bootstrap").
     p is the fraction of resampled statistics that are not beyond the tolerance
     (e.g. >= -tol for a drop); significant when p < alpha. So when every resampled
     difference is beyond the tolerance, p = 0 and the change is flagged.
   Significant and worse: **regressed**; significant and better: **improved**; not
   significant: **noisy**. With fewer than MIN_SAMPLES samples on a side nothing can be
   significant ("noisy", test "none").

Why paired for tiny samples: with 3 seeds per side, a shift that is the same in every seed
but smaller than the seed-to-seed spread would leave the unpaired bootstrap undecided (a
resampled median can pick a good seed on one side and a bad one on the other). Pairing by
seed cancels the seed-to-seed spread: every per-seed difference is the shift, so is every
resampled median, p = 0 and the shift is flagged. The price of tiny samples: with n paired
seeds and no real change, all differences land beyond the tolerance on the same side by
chance far more often than alpha (up to 2^-n each way), so below MWU_MIN_SAMPLES seeds the
tolerance, set above the seed-to-seed noise, is what keeps false alarms out; the bootstrap
only asks that the change be consistent across seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MWU_MIN_SAMPLES = 5  # per side, for the Mann-Whitney U test
MIN_SAMPLES = 2  # per side (or pairs); below this no test can say anything
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

IMPROVED, UNCHANGED, REGRESSED, NOISY = "improved", "unchanged", "regressed", "noisy"
UNGATED = "ungated"  # shown but not judged (e.g. throughput across different devices)
VERDICTS = (IMPROVED, UNCHANGED, REGRESSED, NOISY, UNGATED)


@dataclass(frozen=True)
class Judgement:
    verdict: str
    test: str  # "tolerance" | "mann-whitney-u" | "bootstrap" | "bootstrap-paired" | "none"
    p_value: float | None = None  # one-sided, in the direction of the change
    ci_low: float | None = None  # bootstrap: (1 - 2 alpha) interval of the statistic
    ci_high: float | None = None


def judge(baseline: np.ndarray, candidate: np.ndarray, *, higher_is_better: bool, tolerance: float,
          alpha: float, paired: bool = False) -> Judgement:
    """Verdict for one metric. With paired=True, baseline[i] and candidate[i] share a seed."""
    b, c = np.asarray(baseline, float), np.asarray(candidate, float)
    delta = float(np.median(c) - np.median(b))
    if abs(delta) <= tolerance:
        return Judgement(UNCHANGED, "tolerance")
    worse = (delta < 0) == higher_is_better
    if min(len(b), len(c)) < MIN_SAMPLES:
        return Judgement(NOISY, "none")
    margin = -tolerance if delta < 0 else tolerance  # test beyond this, not just beyond 0
    if min(len(b), len(c)) >= MWU_MIN_SAMPLES:
        p = mann_whitney_p(b + margin, c, candidate_smaller=delta < 0)
        test, ci = "mann-whitney-u", (None, None)
    elif paired and len(b) == len(c):
        diffs = bootstrap_paired_median_diff(b, c)
        p, ci, test = _bootstrap_p(diffs, margin), _ci(diffs, alpha), "bootstrap-paired"
    else:
        diffs = bootstrap_median_diff(b, c)
        p, ci, test = _bootstrap_p(diffs, margin), _ci(diffs, alpha), "bootstrap"
    if p >= alpha:
        return Judgement(NOISY, test, p, *ci)
    return Judgement(REGRESSED if worse else IMPROVED, test, p, *ci)


def mann_whitney_p(baseline: np.ndarray, candidate: np.ndarray, *, candidate_smaller: bool) -> float:
    """One-sided p that the candidate is stochastically smaller (or larger) than the baseline.

    Pass a baseline shifted by the tolerance to test "beyond the tolerance"."""
    alternative = "less" if candidate_smaller else "greater"
    return float(stats.mannwhitneyu(candidate, baseline, alternative=alternative).pvalue)


def bootstrap_median_diff(baseline: np.ndarray, candidate: np.ndarray,
                          resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """median(candidate*) - median(baseline*) over independent resamples of each side."""
    rng = np.random.default_rng(seed)
    b = baseline[rng.integers(0, len(baseline), (resamples, len(baseline)))]
    c = candidate[rng.integers(0, len(candidate), (resamples, len(candidate)))]
    return np.median(c, axis=1) - np.median(b, axis=1)


def bootstrap_paired_median_diff(baseline: np.ndarray, candidate: np.ndarray,
                                 resamples: int = BOOTSTRAP_RESAMPLES,
                                 seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """median(d*) over resamples of the per-seed differences d = candidate - baseline."""
    rng = np.random.default_rng(seed)
    d = candidate - baseline
    return np.median(d[rng.integers(0, len(d), (resamples, len(d)))], axis=1)


def _bootstrap_p(diffs: np.ndarray, margin: float) -> float:
    """Fraction of resampled statistics not beyond `margin` (-tol for a drop, +tol for a rise)."""
    return float(np.mean(diffs >= margin) if margin < 0 else np.mean(diffs <= margin))


def _ci(diffs: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return float(low), float(high)
