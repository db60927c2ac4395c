"""The verdict rule of `bench compare` (bench.compare.stats): tolerance, then significance."""

from __future__ import annotations

import numpy as np
import pytest

from bench.compare.stats import (
    MWU_MIN_SAMPLES,
    bootstrap_median_diff,
    bootstrap_paired_median_diff,
    judge,
)

BASE = np.array([0.80, 0.90, 0.95])  # seed-to-seed spread (0.15) larger than the shift below


def test_constant_shift_in_every_seed_is_flagged_with_three_seeds():
    cand = BASE - 0.05
    j = judge(BASE, cand, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=True)
    assert (j.verdict, j.test) == ("regressed", "bootstrap-paired")
    assert j.p_value == 0.0  # every resampled median of the per-seed differences is -0.05
    assert j.ci_low == pytest.approx(-0.05) and j.ci_high == pytest.approx(-0.05)


def test_the_same_shift_unpaired_is_not_significant():
    """Why pairing matters: unpaired resamples mix good and bad seeds, so the shift is lost."""
    j = judge(BASE, BASE - 0.05, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=False)
    assert (j.verdict, j.test) == ("noisy", "bootstrap")
    assert j.p_value > 0.05


def test_inconsistent_seeds_are_noisy_not_regressed():
    cand = BASE + np.array([-0.10, -0.10, +0.05])  # median change beyond tolerance, one seed better
    j = judge(BASE, cand, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=True)
    assert j.verdict == "noisy" and j.p_value == pytest.approx(7 / 27, abs=0.02)


def test_within_tolerance_is_unchanged_without_a_test():
    j = judge(BASE, BASE - 0.005, higher_is_better=True, tolerance=0.01, alpha=0.05, paired=True)
    assert (j.verdict, j.test, j.p_value) == ("unchanged", "tolerance", None)


@pytest.mark.parametrize("higher_is_better, shift, verdict", [
    (True, +0.05, "improved"), (True, -0.05, "regressed"),
    (False, +0.05, "regressed"), (False, -0.05, "improved"),
])
def test_direction_decides_good_and_bad(higher_is_better, shift, verdict):
    j = judge(BASE, BASE + shift, higher_is_better=higher_is_better, tolerance=0.01, alpha=0.05,
              paired=True)
    assert j.verdict == verdict


def test_mann_whitney_with_enough_samples_and_bootstrap_below():
    rng = np.random.default_rng(0)
    base = rng.normal(100, 5, MWU_MIN_SAMPLES)
    j = judge(base, base * 0.7, higher_is_better=True, tolerance=5.0, alpha=0.05)
    assert j.test == "mann-whitney-u" and j.verdict == "regressed" and j.p_value < 0.01
    j = judge(base[:-1], base[:-1] * 0.7, higher_is_better=True, tolerance=5.0, alpha=0.05)
    assert j.test == "bootstrap" and j.verdict == "regressed"


def test_one_sample_a_side_cannot_be_significant():
    j = judge(np.array([0.9]), np.array([0.5]), higher_is_better=True, tolerance=0.01, alpha=0.05)
    assert (j.verdict, j.test) == ("noisy", "none")


def test_bootstrap_is_seeded_and_deterministic():
    rng = np.random.default_rng(1)
    b, c = rng.normal(0, 1, 4), rng.normal(-1, 1, 4)
    np.testing.assert_array_equal(bootstrap_median_diff(b, c), bootstrap_median_diff(b, c))
    np.testing.assert_array_equal(bootstrap_paired_median_diff(b, c),
                                  bootstrap_paired_median_diff(b, c))
    j1 = judge(b, c, higher_is_better=True, tolerance=0.1, alpha=0.05)
    j2 = judge(b, c, higher_is_better=True, tolerance=0.1, alpha=0.05)
    assert j1 == j2


def test_false_alarm_rate_of_mann_whitney_under_pure_noise_is_about_alpha():
    rng = np.random.default_rng(2)
    flagged = 0
    for _ in range(200):
        b, c = rng.normal(100, 10, 30), rng.normal(100, 10, 30)
        flagged += judge(b, c, higher_is_better=True, tolerance=0.0, alpha=0.05).verdict == "regressed"
    assert flagged <= 20  # one-sided alpha 0.05 in the bad direction: ~5 of 200 expected
