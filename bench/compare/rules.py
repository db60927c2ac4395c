"""Which metrics `bench compare` gates, their direction and tolerances: defaults in one place.

A rule says which way is better and how big a change must be before it counts:

    within tolerance  <=>  |candidate - baseline| <= max(abs_tol, rel_tol * |baseline|)

(a change within EITHER the absolute or the relative tolerance is "unchanged"), and `alpha`
is the significance level of the test across seeds or repeats (bench.compare.stats).

Overrides, later ones win field by field:
  1. DEFAULT_RULES below;
  2. the candidate suite's `[compare]` table (the suite text is kept in each run's manifest);
  3. a `--rules rules.toml` file with `[metric] direction=..., rel_tol=..., abs_tol=..., alpha=...`.
A key may name a metric everywhere (`[images_per_s]`) or in one table only
(`[throughput.images_per_s]`, or `[compare."throughput.images_per_s"]` in a suite).
Unknown metrics and unknown keys are rejected like in the suite file (exit 2).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from bench.errors import UserError
from bench.suite.rules import METRICS, MetricSpec, validate_rules  # noqa: F401 (compare's API)
from bench.suite.schema import MetricRule
from bench.suite.tomlfile import read_toml

DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Rule:
    direction: str  # "higher" | "lower": which way is better
    rel_tol: float = 0.0
    abs_tol: float = 0.0
    alpha: float = DEFAULT_ALPHA

    def tolerance(self, baseline: float) -> float:
        return max(self.abs_tol, self.rel_tol * abs(baseline))


# Defaults, by metric name ("table.metric" for one table only). Accuracies are fractions in [0, 1], so abs_tol=0.01 is one point.
DEFAULT_RULES: dict[str, Rule] = {
    "clean_acc": Rule("higher", abs_tol=0.01),
    "robust_acc": Rule("higher", abs_tol=0.01),
    "adv_acc": Rule("higher", abs_tol=0.01),
    "attack_success_rate": Rule("lower", abs_tol=0.01),
    "fid": Rule("lower", rel_tol=0.05),
    "kid_mean": Rule("lower", rel_tol=0.10, abs_tol=1e-3),
    "isc_mean": Rule("higher", rel_tol=0.05),
    "precision": Rule("higher", abs_tol=0.02),
    "recall": Rule("higher", abs_tol=0.02),
    # From the run-to-run spread measured on the development machine (a 2-core cloud VM,
    # nothing else running): 3 runs of suites/throughput.toml, 48 configurations, largest
    # difference per configuration median 18.5%, 95th percentile 47.5%, max 57.6%
    # (benchmarks/throughput_spread.py). Measure yours and set [compare.images_per_s].
    "images_per_s": Rule("higher", rel_tol=0.6),
    "train_images_per_s": Rule("higher", rel_tol=0.6),
    "seconds": Rule("lower", rel_tol=0.5),
    "peak_memory_bytes": Rule("lower", rel_tol=0.05),  # measured spread: max 3.0%, median 0.6%
    # Speed measured once per cell while evaluating or training (no warm-up, no repeats) is
    # far noisier than the throughput benchmark's, so only large changes count.
    "robustness.images_per_s": Rule("higher", rel_tol=0.5),
    "gan.train_images_per_s": Rule("higher", rel_tol=0.5),
}


@dataclass(frozen=True)
class RuleSet:
    """Resolved rules: plain metric names plus table-qualified overrides ("table.metric")."""

    overrides: dict[str, MetricRule]  # merged user overrides, by key as written
    sources: tuple[str, ...] = ()  # where overrides came from, for the output

    def rule_for(self, table: str, metric: str) -> Rule:
        rule = DEFAULT_RULES.get(f"{table}.{metric}", DEFAULT_RULES[metric])
        for key in (metric, f"{table}.{metric}"):
            if key in self.overrides:
                fields = self.overrides[key].model_dump(exclude_none=True)
                rule = replace(rule, **fields)
        return rule


def resolve_rules(suite_text: str | None, rules_path: Path | None,
                  suite_label: str = "suite [compare]") -> RuleSet:
    overrides: dict[str, MetricRule] = {}
    sources = []
    if suite_text:
        table = _suite_compare_table(suite_text, suite_label)
        if table:
            _merge(overrides, validate_rules(table, suite_label, suite_text, prefix=("compare",)))
            sources.append(suite_label)
    if rules_path is not None:
        _merge(overrides, load_rules_file(rules_path))
        sources.append(str(rules_path))
    return RuleSet(overrides, tuple(sources))


def load_rules_file(path: Path) -> dict[str, MetricRule]:
    text, raw = read_toml(path, "rules")
    return validate_rules(raw, path, text)


def _suite_compare_table(suite_text: str, label: str) -> dict:
    try:
        raw = tomllib.loads(suite_text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{label}: the suite text stored in the manifest is not valid TOML "
                        f"({exc})") from None
    table = raw.get("compare", {})
    if not isinstance(table, dict):
        raise UserError(f"{label}: [compare] must be a table of metric rules")
    return table


def _merge(into: dict[str, MetricRule], new: dict[str, MetricRule]) -> None:
    for key, rule in new.items():
        if key in into:
            rule = MetricRule(**(into[key].model_dump(exclude_none=True)
                                 | rule.model_dump(exclude_none=True)))
        into[key] = rule
