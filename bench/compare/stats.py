"""Is a change real? It must be beyond the tolerance and, where noise was measured, beyond noise.

Per metric and configuration; the samples are one value per seed on each side.

1. **deterministic**: one sample a side, no spread within either run, or (paired by seed) the
   very same change in every seed. Nothing can be learnt about noise, and none was seen, so
   the tolerance alone decides: beyond it in the bad direction is *regressed*.
   Example: a user's checkpoint under FGSM gives the same accuracy on every run.
2. **run-to-run** (speed and memory): timing repeats inside one run are not independent
   evidence of a change between runs (they share the machine's state, the build, the
   thermal envelope). Each run gives one value, the median over its seeds, and a tolerance
   measured from run-to-run spread (see bench/compare/rules.py) decides.
3. Otherwise, n >= 2 seeds a side, with spread:
   a. **worst-seed** (accuracy and FID metrics): the candidate's worst seed is worse than the
      baseline's worst by more than the tolerance *and* by more than seed noise explains,
      k · SD(baseline seeds), where k is calibrated (Monte Carlo, normal seed values) so
      that noise alone trips this test with probability α/5. A single seed that blows up
      (FID [2.4, 2.5, 2.6] -> [2.4, 2.5, 40]) is caught here; the mean test may miss it.
   b. **mean**: Δ = mean(candidate) - mean(baseline). |Δ| <= tolerance: *unchanged*.
      Otherwise a one-sided margin t-test: is the change beyond the tolerance in the
      direction of Δ? Paired by seed when both runs have the same seeds ("paired-t"), Welch
      otherwise ("welch-t"); level 4α/5 where the worst-seed test also runs, else α.
      Significant and worse: *regressed*; significant and better: *improved*; else *noisy*.
   The two tests split α, so noise alone fails the gate with probability <= α.

Assumptions: seed values are independent and roughly normal around their mean. With 3 seeds
the t-test has 2 degrees of freedom: it flags a change only when it is large against the
seed-to-seed spread (the minimum detectable effect, `mde`, says how large). Why not a
bootstrap or a sign-flip test? With 3 paired seeds there are only 8 sign patterns: an exact
sign-flip test can never reach p < 0.125 (two-sided 0.25), and a bootstrap's p = 0 when all
three move the same way is an artefact of resampling 3 values, not evidence.
tests/test_compare_stats.py simulates the gate's false-alarm and detection rates.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_SAMPLES = 2  # per side; below this no spread can be measured
POWER = 0.8  # for the minimum detectable effect
WORST_SEED_SHARE = 0.2  # of alpha, spent on the worst-seed test (the mean test gets the rest)
CALIBRATION_DRAWS = 200_000
CALIBRATION_SEED = 0

IMPROVED, UNCHANGED, REGRESSED, NOISY = "improved", "unchanged", "regressed", "noisy"
UNGATED = "ungated"  # shown but not judged (e.g. throughput across different devices)
VERDICTS = (IMPROVED, UNCHANGED, REGRESSED, NOISY, UNGATED)
DETERMINISTIC, RUN_TO_RUN, TOLERANCE = "deterministic", "run-to-run", "tolerance"
PAIRED_T, WELCH_T, WORST_SEED = "paired-t", "welch-t", "worst-seed"


@dataclass(frozen=True)
class Judgement:
    verdict: str
    test: str  # which rule decided, see the module docstring
    delta: float  # candidate - baseline, of the central values the test used
    p_value: float | None = None  # one-sided, in the direction of the change
    mde: float | None = None  # smallest true shift this gate flags with POWER, at this n and spread


def judge(baseline, candidate, *, higher_is_better: bool, tolerance: float, alpha: float,
          paired: bool = False, worst_seed: bool = False, run_level: bool = False) -> Judgement:
    """Verdict for one metric. paired: baseline[i] and candidate[i] come from the same seed.
    worst_seed: also run the worst-seed test. run_level: one value per run (speed, memory)."""
    b, c = np.asarray(baseline, float), np.asarray(candidate, float)
    if run_level:
        return by_tolerance(float(np.median(c) - np.median(b)), tolerance, higher_is_better,
                            RUN_TO_RUN)
    paired = paired and len(b) == len(c)
    if is_deterministic(b, c, paired):
        return by_tolerance(float(np.mean(c) - np.mean(b)), tolerance, higher_is_better,
                            DETERMINISTIC)
    alpha_mean = alpha * (1 - WORST_SEED_SHARE) if worst_seed else alpha
    if worst_seed:
        worst = worst_seed_test(b, c, higher_is_better, tolerance, alpha * WORST_SEED_SHARE)
        if worst is not None:
            return worst
    return mean_test(b, c, higher_is_better, tolerance, alpha_mean, paired)


def is_deterministic(b: np.ndarray, c: np.ndarray, paired: bool) -> bool:
    if min(len(b), len(c)) < MIN_SAMPLES:
        return True
    if np.ptp(b) == 0 and np.ptp(c) == 0:
        return True
    return paired and np.ptp(c - b) == 0  # the same change in every seed: no noise in it


def by_tolerance(delta: float, tolerance: float, higher_is_better: bool, test: str) -> Judgement:
    if abs(delta) <= tolerance:
        return Judgement(UNCHANGED, test, delta, mde=tolerance)
    worse = (delta < 0) == higher_is_better
    return Judgement(REGRESSED if worse else IMPROVED, test, delta, mde=tolerance)


def mean_test(b: np.ndarray, c: np.ndarray, higher_is_better: bool, tolerance: float,
              alpha: float, paired: bool) -> Judgement:
    delta = float(np.mean(c) - np.mean(b))
    se, df = _paired_se(b, c) if paired else _welch_se(b, c)
    mde = tolerance + (stats.t.ppf(1 - alpha, df) + stats.t.ppf(POWER, df)) * se
    if abs(delta) <= tolerance:
        return Judgement(UNCHANGED, TOLERANCE, delta, mde=float(mde))
    # Margin test: H0 "the change is within the tolerance", against "beyond it" on Δ's side.
    margin = tolerance if delta > 0 else -tolerance
    t = (delta - margin) / se
    p = float(stats.t.sf(t, df) if delta > 0 else stats.t.cdf(t, df))
    test = PAIRED_T if paired else WELCH_T
    if p >= alpha:
        return Judgement(NOISY, test, delta, p, float(mde))
    worse = (delta < 0) == higher_is_better
    return Judgement(REGRESSED if worse else IMPROVED, test, delta, p, float(mde))


def _paired_se(b: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    d = c - b
    return float(np.std(d, ddof=1) / math.sqrt(len(d))), len(d) - 1


def _welch_se(b: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    vb, vc = np.var(b, ddof=1) / len(b), np.var(c, ddof=1) / len(c)
    se = math.sqrt(vb + vc)
    df = (vb + vc) ** 2 / (vb ** 2 / (len(b) - 1) + vc ** 2 / (len(c) - 1))
    return float(se), float(df)


def worst_seed_test(b: np.ndarray, c: np.ndarray, higher_is_better: bool, tolerance: float,
                    level: float) -> Judgement | None:
    """A regression judgement if the candidate's worst seed is beyond the baseline's worst by
    more than the tolerance and more than noise explains; None otherwise."""
    gap = float(np.min(b) - np.min(c)) if higher_is_better else float(np.max(c) - np.max(b))
    sd = float(np.std(b, ddof=1))
    k = worst_seed_threshold(len(b), len(c), level)
    if gap <= max(tolerance, k * sd):
        return None
    p = worst_seed_p(len(b), len(c), gap / sd) if sd > 0 else 0.0
    return Judgement(REGRESSED, WORST_SEED, gap if not higher_is_better else -gap, p)


@functools.lru_cache(maxsize=64)
def _null_worst_gaps(n_b: int, n_c: int) -> np.ndarray:
    """(min(B) - min(C)) / SD(B) for normal B, C under no change, sorted (seeded draws)."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    base = rng.standard_normal((CALIBRATION_DRAWS, n_b))
    cand = rng.standard_normal((CALIBRATION_DRAWS, n_c))
    return np.sort((base.min(1) - cand.min(1)) / base.std(1, ddof=1))


@functools.lru_cache(maxsize=256)
def worst_seed_threshold(n_b: int, n_c: int, level: float) -> float:
    """k such that noise alone puts the candidate's worst seed k baseline-SDs below the
    baseline's worst with probability `level`."""
    return float(np.quantile(_null_worst_gaps(n_b, n_c), 1 - level))


def worst_seed_p(n_b: int, n_c: int, standardized_gap: float) -> float:
    gaps = _null_worst_gaps(n_b, n_c)
    return float((len(gaps) - np.searchsorted(gaps, standardized_gap)) / len(gaps))
