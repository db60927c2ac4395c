"""A binomial interval over examples for an accuracy measured on n examples.

The interval over seeds (bench.analysis.aggregate) says how much the number moves with
training and attack randomness; this one says how much it moves with the test sample. For
a user's checkpoint under FGSM, which ignores the seed, it is the only uncertainty there is.
scipy's `binomtest(k, n).proportion_ci` computes it; Wilson by default (good coverage near 0
and 1, where robust accuracies often sit), "exact" gives Clopper-Pearson.
"""

from __future__ import annotations

import math

from bench import defaults


def binomial_interval(successes: int, n: int, *, level: float = defaults.BINOMIAL_CI_LEVEL,
                      method: str = defaults.BINOMIAL_CI_METHOD) -> tuple[float, float]:
    """(low, high) for the proportion successes/n; (nan, nan) when n is 0."""
    if n == 0:
        return math.nan, math.nan
    from scipy.stats import binomtest  # ~0.5 s to import: only where an interval is computed

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method=method)
    return float(ci.low), float(ci.high)


def interval_columns(name: str, successes: int, n: int) -> dict[str, float]:
    """`{name}_binom_low`, `{name}_binom_high`: named apart from the aggregate table's
    `{name}_ci_low/high`, which are the interval over seeds."""
    low, high = binomial_interval(successes, n)
    return {f"{name}_binom_low": low, f"{name}_binom_high": high}
