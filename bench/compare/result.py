"""What a comparison found: one row per metric and configuration, plus run-level notes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from bench.compare.examples import ExampleChange
from bench.compare.match import MissingGroup
from bench.compare.stats import REGRESSED


@dataclass
class MetricRow:
    table: str
    metric: str
    key: dict  # the configuration, e.g. {"model": "cnn", "attack": "fgsm", "epsilon": 0.1}
    cells: list[str]  # candidate cell ids behind the samples
    labels: list[str]  # their human labels
    n_baseline: int
    n_candidate: int
    baseline: float  # mean over seeds (median over seeds for run-to-run metrics)
    candidate: float
    direction: str  # which way is better: "higher" | "lower"
    tolerance: float
    verdict: str
    test: str  # which rule decided (bench.compare.stats)
    delta: float  # the change the test judged (worst-seed: between the worst seeds)
    p_value: float | None = None
    mde: float | None = None  # minimum detectable effect at this n, spread and alpha
    note: str = ""

    @property
    def delta_pct(self) -> float:
        return 100.0 * self.delta / abs(self.baseline) if self.baseline else math.nan

    def config_text(self) -> str:
        return config_text(self.key)

    def to_dict(self) -> dict:
        return asdict(self) | {"delta_pct": self.delta_pct}


@dataclass
class FailedCell:
    cell_id: str
    label: str
    reason: str | None


@dataclass
class Comparison:
    baseline: str
    candidate: str
    schema_versions: tuple[int, int]  # as recorded on disk (older ones are migrated on read)
    machine_notes: list[str]
    cross_device: bool
    throughput_gated: bool
    matched: int
    only_baseline: list[tuple[str, str]]  # (id, label)
    only_candidate: list[tuple[str, str]]
    failed: list[FailedCell]  # ok in the baseline, failed in the candidate
    rows: list[MetricRow]
    rule_sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # runs that did not finish every cell
    missing_groups: list[MissingGroup] = field(default_factory=list)  # baseline-only metrics
    allow_missing: bool = False  # the user accepts missing cells and metrics (--allow-missing)
    # Per evaluation, the examples robust on one side only (not a verdict: bench.compare.examples)
    example_changes: list[ExampleChange] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricRow]:
        return [r for r in self.rows if r.verdict == REGRESSED]

    @property
    def incompleteness(self) -> list[str]:
        """Why the candidate does not cover the baseline (fails the gate unless allowed)."""
        out = list(self.incomplete)
        out += [f"cell {i} ({label}) of the baseline is missing from the candidate"
                for i, label in self.only_baseline]
        out += [f"metric {g.table}.{g.metric} [{config_text(g.key)}] of the baseline has no "
                "candidate samples with the same configuration and data" for g in self.missing_groups]
        return out

    @property
    def nothing_compared(self) -> bool:
        return not self.rows

    @property
    def exit_code(self) -> int:
        if self.regressions or self.failed or self.nothing_compared:
            return 1
        return 1 if self.incompleteness and not self.allow_missing else 0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows"] = [r.to_dict() for r in self.rows]
        out["regressions"] = [{"metric": r.metric, "table": r.table, "config": r.key,
                               "cells": r.cells, "labels": r.labels} for r in self.regressions]
        out["incompleteness"] = self.incompleteness
        out["exit_code"] = self.exit_code
        return out


def config_text(key: dict) -> str:
    """A configuration for people: `model=cnn epsilon=0.1`."""
    return " ".join(f"{k}={_short(v)}" for k, v in key.items())


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_short(v)}" for k, v in value.items() if v is not None) + "}"
    return str(value)
