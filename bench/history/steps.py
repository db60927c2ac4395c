"""Where did a series move? A penalised piecewise-constant fit, then compare's rules and tests.

One series is one value per run (the median over seeds), in run order. Three stages:

1. **Fit** (asv's model: a piecewise-constant signal plus noise, the number of steps
   penalised). `ruptures.KernelCPD` with the linear kernel solves it exactly (PELT, least
   squares, in C). The series is scaled by a robust estimate of its run-to-run noise (the
   successive differences, the largest TRIM of them left out: steps and single outliers barely
   move it), and each step costs PENALTY_PER_LOG_RUN · ln(max(n, MIN_LOG_RUNS)) in those units,
   a BIC-like penalty. Calibrated by simulation (benchmarks/history_step_power.py): noise alone
   makes a step in 2% of 10-run series, 0.2% at 60 runs, none at 200; a step of 3 noise SDs at
   run 30 of 60 is found there (± 1) in 97% (tests/test_history.py asserts <= 5% false steps
   at several lengths, and a planted step on run folders).
2. **Outliers.** A level seen in one run only, with other runs on both sides, is an outlier
   run, not a step: it is set aside and the levels around it are compared with each other.
   The first run on its own is an outlier too (nothing before it to step from). The most recent
   run on its own is *pending*: an outlier and the start of a step look alike until the next
   run, so it is judged against the runs before it (step 3, worst-seed test) and reported as
   pending, never as a step.
3. **Judge**, with compare's rules (bench.compare.rules: direction, tolerance, alpha) and its
   statistics (bench.compare.stats), runs taking the place of seeds: the up to WINDOW runs on
   each side of a boundary are the two samples. Within the tolerance: not a step (the two
   levels are merged, smallest change first, and the neighbours judged again). Beyond it: a
   step, *beyond noise* when the margin t-test (or, without spread, the tolerance alone) says
   so, else *noisy*. Its direction says regression or improvement. A pending run is judged by
   the worst-seed test: worse than every one of the runs before it by more than the tolerance
   and more than their spread explains (calibrated to alpha). Runs are independent replicates
   here as seeds are in compare; the fit chose the boundary, so the t-test's p-value is
   optimistic for small steps: the penalty, not the test, is what keeps noise from stepping.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from bench.compare.rules import Rule
from bench.compare.stats import (
    DETERMINISTIC,
    IMPROVED,
    NOISY,
    REGRESSED,
    UNCHANGED,
    Judgement,
    by_tolerance,
    judge,
    worst_seed_test,
)

PENALTY_PER_LOG_RUN = 4.0  # in units of the noise variance (see the docstring)
WINDOW = 10  # runs on each side of a step that form its two samples
MIN_LOG_RUNS = 40  # shorter series are penalised as if 40 runs long (their noise estimate is rough)
MIN_RUNS = 4  # two runs on each side of a step; fewer: only the latest run is judged
TRIM = 0.2  # of the successive differences, left out of the noise estimate
RELATIVE_FLOOR = 1e-9  # of the series' scale: the smallest noise assumed (deterministic series)


@dataclass(frozen=True)
class StepFit:
    index: int  # position in the series of the first run at the new level
    before: float  # median of the runs before (up to WINDOW)
    after: float  # median of the runs after (up to WINDOW); the run's value when pending
    tolerance: float
    judgement: Judgement
    pending: bool = False  # the most recent run alone: an outlier or the start of a step

    @property
    def beyond_noise(self) -> bool:
        return self.judgement.verdict in (REGRESSED, IMPROVED)

    @property
    def regression(self) -> bool:
        return self.judgement.verdict == REGRESSED


@dataclass
class Fit:
    segments: list[np.ndarray]  # indices of the runs at each level (outliers and pending out)
    steps: list[StepFit] = field(default_factory=list)
    outliers: list[int] = field(default_factory=list)
    pending: StepFit | None = None

    def levels(self, y: np.ndarray) -> list[tuple[int, int, float]]:
        """(first index, last index, median) of each level, for charts."""
        return [(int(s[0]), int(s[-1]), float(np.median(y[s]))) for s in self.segments]


def detect_steps(y, rule: Rule) -> Fit:
    """Steps, outliers and a pending latest run in `y` (one value per run, in run order)."""
    y = np.asarray(y, float)
    higher = rule.direction == "higher"
    if len(y) == 0:
        return Fit([])
    segments, outliers = fit_levels(y)
    fit = Fit(segments, outliers=outliers)
    if len(y) >= 2:
        fit.pending = hold_out_latest(y, segments, rule, higher)
    fit.steps = merge_within_tolerance(y, fit.segments, rule, higher)
    return fit


def hold_out_latest(y: np.ndarray, segments: list[np.ndarray], rule: Rule,
                    higher: bool) -> StepFit | None:
    """Judge the most recent run against the runs before it at its level (or, when the fit set
    it apart, at the level before). Beyond tolerance and noise: it is taken out of the levels
    (in place) and returned as pending; otherwise it stays at the level it is closest to."""
    latest = len(y) - 1
    alone = len(segments[-1]) == 1
    base = segments[-2] if alone else segments[-1][:-1]
    pending = judge_latest(y, base, latest, rule, higher)
    if not pending.beyond_noise:
        if alone:
            segments[-2:] = [np.append(segments[-2], latest)]
        return None
    if alone:
        segments.pop()
    else:
        segments[-1] = segments[-1][:-1]
    return pending


def fit_levels(y: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """The levels of the fit (run indices of each) and the outlier runs: a level of one run
    with other runs on both sides (or the first run alone) is set aside and the rest refitted,
    so that the runs around an outlier are not split by it. The last run may stay alone."""
    keep, outliers = np.arange(len(y)), []
    while True:
        if len(keep) < MIN_RUNS:
            ends = [len(keep) - 1, len(keep)] if len(keep) >= 2 else [len(keep)]
        else:
            ends = fit_boundaries(y[keep])
        segments = [keep[a:b] for a, b in zip([0] + ends[:-1], ends)]
        alone = [s[0] for s in segments[:-1] if len(s) == 1]
        if not alone or len(keep) - len(alone) < 2:
            return segments, sorted(outliers)
        outliers += [int(i) for i in alone]
        keep = np.setdiff1d(keep, alone)


def fit_boundaries(y: np.ndarray) -> list[int]:
    """End indices (exclusive) of the levels of the penalised least-squares fit; the last is len(y)."""
    import ruptures

    scaled = (y - np.median(y)) / noise_scale(y)
    algo = ruptures.KernelCPD(kernel="linear", min_size=1, jump=1).fit(scaled.reshape(-1, 1))
    pen = PENALTY_PER_LOG_RUN * math.log(max(len(y), MIN_LOG_RUNS))
    return [int(b) for b in algo.predict(pen=pen)]


def noise_scale(y: np.ndarray) -> float:
    """Run-to-run noise SD from successive differences, the largest TRIM of them left out (a
    step moves one difference, an outlier two) and the rest scaled as a trimmed normal sample:
    robust like the MAD, and far steadier on short series."""
    d = np.sort(np.abs(np.diff(y)))
    keep = max(1, len(d) - math.ceil(TRIM * len(d)))
    sd = math.sqrt(float(np.mean(d[:keep] ** 2)) / _trimmed_variance(keep / len(d)) / 2)
    floor = RELATIVE_FLOOR * max(float(np.max(np.abs(y))), 1.0)
    return max(sd, floor)


@functools.lru_cache(maxsize=1024)
def _trimmed_variance(p: float) -> float:
    """E[X^2 | |X| <= q] for a standard normal X, with P(|X| <= q) = p."""
    if p >= 1:
        return 1.0
    q = stats.norm.ppf((1 + p) / 2)
    return 1 - 2 * q * stats.norm.pdf(q) / p


def merge_within_tolerance(y: np.ndarray, segments: list[np.ndarray], rule: Rule,
                           higher: bool) -> list[StepFit]:
    """Merge neighbouring levels that differ by no more than the tolerance (smallest change
    first; in place) and return the steps between the levels that remain."""
    steps = [judge_step(y, a, b, rule, higher) for a, b in zip(segments, segments[1:])]
    while True:
        within = [i for i, s in enumerate(steps) if s.judgement.verdict == UNCHANGED]
        if not within:
            return steps
        i = min(within, key=lambda k: abs(steps[k].after - steps[k].before)
                / max(steps[k].tolerance, 1e-300))
        segments[i:i + 2] = [np.concatenate(segments[i:i + 2])]
        del steps[i]
        for k in (i - 1, i):
            if 0 <= k < len(steps):
                steps[k] = judge_step(y, segments[k], segments[k + 1], rule, higher)


def judge_step(y: np.ndarray, left: np.ndarray, right: np.ndarray, rule: Rule,
               higher: bool) -> StepFit:
    before, after = y[left[-WINDOW:]], y[right[:WINDOW]]
    level = float(np.median(before))
    tolerance = rule.tolerance(level)
    j = judge(before, after, higher_is_better=higher, tolerance=tolerance, alpha=rule.alpha)
    return StepFit(int(right[0]), level, float(np.median(after)), tolerance, j)


def judge_latest(y: np.ndarray, last_level: np.ndarray, index: int, rule: Rule,
                 higher: bool) -> StepFit:
    """The most recent run against the up to WINDOW runs before it (compare's worst-seed test,
    runs as seeds): regressed / improved beyond tolerance and noise, noisy, or unchanged."""
    before = y[last_level[-WINDOW:]]
    level, value = float(np.median(before)), float(y[index])
    tolerance = rule.tolerance(level)
    delta = value - level
    if len(before) < 2 or np.ptp(before) == 0:
        j = by_tolerance(delta, tolerance, higher, DETERMINISTIC)
    else:
        worse = worst_seed_test(before, np.array([value]), higher, tolerance, rule.alpha)
        better = worst_seed_test(before, np.array([value]), not higher, tolerance, rule.alpha)
        if worse is not None or better is not None:
            found = worse or better
            j = Judgement(REGRESSED if worse else IMPROVED, found.test, delta, found.p_value)
        else:
            verdict = NOISY if abs(delta) > tolerance else UNCHANGED
            j = Judgement(verdict, "worst-seed", delta)
    return StepFit(index, level, value, tolerance, j, pending=True)
