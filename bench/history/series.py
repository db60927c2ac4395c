"""Points -> series: one per metric, sample group and device, in run order, with its steps.

A series never mixes devices (the run's device and device name) or feature extractors (part
of the GAN key columns) or data (the data fingerprint is a key column): each is a series of
its own, and says which it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.compare.result import config_text
from bench.compare.rules import Rule, RuleSet
from bench.history.runs import RunInfo
from bench.history.steps import Fit, StepFit, detect_steps

SERIES_COLUMNS = ["table", "metric", "device", "device_name", "identity"]


@dataclass
class Series:
    table: str
    metric: str
    key: dict  # readable configuration, e.g. {"model": "cnn", "attack": "fgsm", "epsilon": 0.1}
    data: str  # the data fingerprint, "" when the table has none
    device: str
    device_name: str
    rule: Rule
    runs: list[RunInfo]  # the runs that have this series, in order
    median: np.ndarray  # per run: median over seeds (or repeats)
    lo: np.ndarray  # per run: smallest and largest sample
    hi: np.ndarray
    n: np.ndarray  # per run: number of samples
    fit: Fit = field(default_factory=lambda: Fit([]))
    non_finite: list[str] = field(default_factory=list)  # runs left out: median inf or nan

    @property
    def extractor(self) -> str | None:
        return self.key.get("extractor")

    @property
    def name(self) -> str:
        return f"{self.table}.{self.metric}"

    @property
    def steps(self) -> list[StepFit]:
        return self.fit.steps

    def config_text(self) -> str:
        return config_text(self.key)


def build_series(points: pd.DataFrame, runs: list[RunInfo], ruleset: RuleSet,
                 metrics: set[str] | None = None) -> list[Series]:
    """Series of the points of `runs` (in that order), for `metrics` ("metric" or
    "table.metric"; None: all), each with its steps detected."""
    position = {r.run_id: i for i, r in enumerate(runs)}
    points = points[points["run"].isin(position)]
    if metrics:
        qualified = points["table"] + "." + points["metric"]
        points = points[points["metric"].isin(metrics) | qualified.isin(metrics)]
    points = points.assign(_pos=points["run"].map(position)).sort_values("_pos", kind="stable")
    out = []
    for (table, metric, device, device_name, _), g in points.groupby(SERIES_COLUMNS, sort=True):
        finite = np.isfinite(g["median"].to_numpy(float))
        left_out = [runs[i].run_id for i in g["_pos"][~finite]]
        g = g[finite]
        if g.empty:
            continue
        first = g.iloc[0]
        s = Series(table, metric, json.loads(first["key"]), str(first["data"]), device,
                   device_name, ruleset.rule_for(table, metric),
                   [runs[i] for i in g["_pos"]], g["median"].to_numpy(float),
                   g["lo"].to_numpy(float), g["hi"].to_numpy(float), g["n"].to_numpy(int))
        s.fit, s.non_finite = detect_steps(s.median, s.rule), left_out
        out.append(s)
    return sorted(out, key=_order)


def _order(s: Series) -> tuple:
    """Table, metric, device, then the configuration with numbers in numeric order."""
    key = [(k, (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)))
           for k, v in s.key.items()]
    return (s.table, s.metric, s.device, s.device_name, key, s.data)

