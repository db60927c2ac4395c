"""The verdict rule of `bench compare` (bench.compare.stats), and a simulation of the gate.

The simulation is the evidence for the design: under noise alone the gate must say
"regressed" at most alpha (5%) of the time per metric, for 3 and 5 seeds, whatever the noise
is against the tolerance; `benchmarks/compare_gate_power.py` prints the detection rates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.compare.rules import DEFAULT_RULES
from bench.compare.stats import judge, worst_seed_p, worst_seed_threshold

BASE = np.array([0.80, 0.90, 0.95])  # seed-to-seed spread (0.15) larger than the shifts below


def test_a_deterministic_metric_is_decided_by_the_tolerance_alone():
    """One seed of a user's checkpoint under FGSM: robust accuracy x0.8 must fail."""
    j = judge([0.60], [0.48], higher_is_better=True, tolerance=0.01, alpha=0.05)
    assert (j.verdict, j.test, j.p_value) == ("regressed", "deterministic", None)
    assert j.delta == pytest.approx(-0.12) and j.mde == 0.01
    j = judge([0.60], [0.595], higher_is_better=True, tolerance=0.01, alpha=0.05)
    assert (j.verdict, j.test) == ("unchanged", "deterministic")


def test_no_spread_in_either_run_is_deterministic_too():
    j = judge([0.5, 0.5, 0.5], [0.45, 0.45, 0.45], higher_is_better=True, tolerance=0.01,
              alpha=0.05)
    assert (j.verdict, j.test) == ("regressed", "deterministic")


def test_the_same_change_in_every_paired_seed_is_deterministic():
    j = judge(BASE, BASE - 0.05, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=True)
    assert (j.verdict, j.test) == ("regressed", "deterministic")


def test_three_seeds_moving_the_same_way_get_an_honest_p_value():
    """A bootstrap over 3 paired seeds said p = 0; the paired t-test gives a real p."""
    cand = BASE + np.array([-0.06, -0.05, -0.07])
    j = judge(BASE, cand, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=True)
    assert (j.verdict, j.test) == ("regressed", "paired-t")
    d = cand - BASE
    t = (d.mean() + 0.01) / (d.std(ddof=1) / math.sqrt(3))
    from scipy import stats
    assert j.p_value == pytest.approx(stats.t.cdf(t, 2)) and 0 < j.p_value < 0.04


def test_unpaired_seeds_use_welch():
    cand = np.array([0.70, 0.60, 0.65])
    j = judge(BASE, cand, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=False)
    assert j.test == "welch-t" and j.verdict == "regressed" and j.p_value < 0.05


def test_inconsistent_seeds_are_noisy_not_regressed():
    cand = BASE + np.array([-0.10, -0.10, +0.05])
    j = judge(BASE, cand, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=True)
    assert (j.verdict, j.test) == ("noisy", "paired-t") and j.p_value > 0.04
    assert j.mde > abs(j.delta)  # the gate says it could not have caught a change this small


def test_within_tolerance_is_unchanged():
    j = judge(BASE, BASE + np.array([-0.004, 0.002, -0.006]), higher_is_better=True,
              tolerance=0.01, alpha=0.05, paired=True)
    assert (j.verdict, j.test, j.p_value) == ("unchanged", "tolerance", None)


@pytest.mark.parametrize("higher_is_better, shift, verdict", [
    (True, +0.05, "improved"), (True, -0.05, "regressed"),
    (False, +0.05, "regressed"), (False, -0.05, "improved"),
])
def test_direction_decides_good_and_bad(higher_is_better, shift, verdict):
    cand = BASE + shift + np.array([0.001, -0.001, 0.0])
    j = judge(BASE, cand, higher_is_better=higher_is_better, tolerance=0.01, alpha=0.05,
              paired=True)
    assert j.verdict == verdict


def test_one_seed_that_blows_up_is_a_regression():
    """FID [2.4, 2.5, 2.6] -> [2.4, 2.5, 40]: the median is unchanged, the worst seed is not."""
    base, cand = np.array([2.4, 2.5, 2.6]), np.array([2.4, 2.5, 40.0])
    j = judge(base, cand, higher_is_better=False, tolerance=0.05 * 2.5, alpha=0.05, paired=True,
              worst_seed=True)
    assert (j.verdict, j.test) == ("regressed", "worst-seed")
    assert j.delta == pytest.approx(37.4) and j.p_value < 0.01
    # Without the worst-seed test the mean test cannot tell (one huge value, wide spread).
    j = judge(base, cand, higher_is_better=False, tolerance=0.125, alpha=0.05, paired=True)
    assert j.verdict == "noisy"


def test_a_worst_seed_within_seed_noise_is_not_flagged():
    base, cand = np.array([0.70, 0.80, 0.90]), np.array([0.66, 0.80, 0.90])
    j = judge(base, cand, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=True,
              worst_seed=True)
    assert j.test != "worst-seed"


def test_run_level_metrics_are_judged_by_the_tolerance_on_medians():
    j = judge([100.0, 101, 99], [80.0, 81, 79], higher_is_better=True, tolerance=10.0,
              alpha=0.05, run_level=True)
    assert (j.verdict, j.test, j.delta) == ("regressed", "run-to-run", -20.0)
    j = judge([100.0], [95.0], higher_is_better=True, tolerance=10.0, alpha=0.05, run_level=True)
    assert (j.verdict, j.test) == ("unchanged", "run-to-run")


def test_worst_seed_threshold_is_calibrated():
    rng = np.random.default_rng(7)
    k = worst_seed_threshold(3, 3, 0.01)
    b, c = rng.standard_normal((50_000, 3)), rng.standard_normal((50_000, 3))
    rate = np.mean(b.min(1) - c.min(1) > k * b.std(1, ddof=1))
    assert rate == pytest.approx(0.01, abs=0.003)
    assert worst_seed_p(3, 3, k) == pytest.approx(0.01, abs=1e-3)


# -- the simulation: false alarms under noise, detection of real shifts ---------------------------

# (metric, baseline value, noise SDs as multiples of the tolerance)
SIMULATED = [("robust_acc", 0.6), ("fid", 10.0), ("precision", 0.7)]
NOISE_OVER_TOL = (0.25, 1.0, 4.0)


def simulate(metric: str, center: float, n: int, noise_over_tol: float, shift_over_tol: float,
             trials: int, shared: float = 0.0, seed: int = 0) -> float:
    """Rate of "regressed" verdicts when the candidate is worse by shift_over_tol tolerances.

    Seed values are normal with SD noise_over_tol * tolerance; `shared` is the share of that
    variance a seed keeps across the two runs (0: independent runs, the hardest case for the
    worst-seed test). Both runs have the same seeds, so the gate pairs them."""
    spec = DEFAULT_RULES[metric]
    tol = spec.tolerance(center)
    higher = spec.direction == "higher"
    sd = noise_over_tol * tol
    rng = np.random.default_rng(seed)
    common = rng.normal(0, sd * math.sqrt(shared), (trials, n))
    b = center + common + rng.normal(0, sd * math.sqrt(1 - shared), (trials, n))
    c = center + common + rng.normal(0, sd * math.sqrt(1 - shared), (trials, n))
    c += (-1 if higher else 1) * shift_over_tol * tol
    worst = metric in ("robust_acc", "fid")
    flagged = sum(judge(b[i], c[i], higher_is_better=higher, tolerance=tol, alpha=spec.alpha,
                        paired=True, worst_seed=worst).verdict == "regressed"
                  for i in range(trials))
    return flagged / trials


@pytest.mark.parametrize("n", [3, 5])
def test_false_regressions_under_noise_alone_stay_within_alpha(n):
    trials = 600
    bound = 0.05 + 1.96 * math.sqrt(0.05 * 0.95 / trials)  # not significantly above 5%
    rates = {}
    for metric, center in SIMULATED:
        for ratio in NOISE_OVER_TOL:
            for shared in (0.0, 0.5):
                rates[(metric, ratio, shared)] = simulate(metric, center, n, ratio, 0.0, trials,
                                                          shared, seed=n)
    worst = max(rates, key=rates.get)
    assert rates[worst] <= bound, (worst, rates[worst])


def test_large_real_shifts_are_caught():
    """4 tolerances of shift with seed noise of half a tolerance: caught nearly always; 2
    tolerances: often (the full table: python benchmarks/compare_gate_power.py)."""
    for n in (3, 5):
        assert simulate("robust_acc", 0.6, n, 0.5, 4.0, 200, seed=1) >= 0.95
        assert simulate("robust_acc", 0.6, n, 0.5, 2.0, 200, seed=1) >= 0.3
