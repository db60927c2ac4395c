"""Mean, standard deviation and 95% confidence interval over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd


def aggregate_over_seeds(df: pd.DataFrame, by: list[str], values: list[str],
                         means: list[str] = ()) -> pd.DataFrame:
    """One row per `by` group with `<v>_mean`, `<v>_std`, `<v>_ci_low`, `<v>_ci_high` and n_seeds,
    and for each of `means` its mean over seeds under its own name.

    The CI is Student-t on the seed means (few seeds, unknown variance); with one seed it is NaN.
    """
    by = [c for c in by if c in df.columns]
    values = [v for v in values if v in df.columns]
    means = [m for m in means if m in df.columns]
    if df.empty or not values:
        return pd.DataFrame()
    rows = []
    for key, group in df.groupby(by, dropna=False, sort=True):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row["n_seeds"] = int(group["seed"].nunique()) if "seed" in group else len(group)
        for v in values:
            x = group[v].astype(float).dropna().to_numpy()
            mean = float(np.mean(x)) if len(x) else np.nan
            std = float(np.std(x, ddof=1)) if len(x) > 1 else np.nan
            half = float(t_975(len(x) - 1) * std / np.sqrt(len(x))) if len(x) > 1 else np.nan
            row |= {f"{v}_mean": mean, f"{v}_std": std, f"{v}_ci_low": mean - half,
                    f"{v}_ci_high": mean + half}
        row |= {m: float(group[m].astype(float).mean()) for m in means}
        rows.append(row)
    return pd.DataFrame(rows)


def t_975(dof: int) -> float:
    """Student's t 97.5% quantile. scipy is imported here, not at the top: a one-seed run
    never needs it, and importing scipy.stats costs about half a second."""
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))
