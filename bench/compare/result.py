"""What a comparison found: one row per metric and configuration, plus run-level notes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

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
    baseline: float  # median over seeds (or repeats)
    candidate: float
    direction: str  # which way is better: "higher" | "lower"
    tolerance: float
    verdict: str
    test: str
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    note: str = ""

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline

    @property
    def delta_pct(self) -> float:
        return 100.0 * self.delta / abs(self.baseline) if self.baseline else math.nan

    def config_text(self) -> str:
        return " ".join(f"{k}={_short(v)}" for k, v in self.key.items())

    def to_dict(self) -> dict:
        return asdict(self) | {"delta": self.delta, "delta_pct": self.delta_pct}


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

    @property
    def regressions(self) -> list[MetricRow]:
        return [r for r in self.rows if r.verdict == REGRESSED]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions or self.failed else 0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["rows"] = [r.to_dict() for r in self.rows]
        out["regressions"] = [{"metric": r.metric, "table": r.table, "config": r.key,
                               "cells": r.cells, "labels": r.labels} for r in self.regressions]
        out["exit_code"] = self.exit_code
        return out


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_short(v)}" for k, v in value.items() if v is not None) + "}"
    return str(value)
