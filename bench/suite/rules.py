"""The metrics `bench compare` gates, and the validation of rules that name them.

A suite's `[compare]` table and a `--rules` file share this check, so `bench validate`
rejects what `bench compare` would. The rules themselves (defaults, tolerances, merging)
live in `bench.compare.rules`, which imports from here, never the other way round.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from pydantic import ValidationError

from bench.errors import SuiteError
from bench.store import schema as S
from bench.suite.schema import MetricRule
from bench.suite.tomlfile import find_line, key_path


@dataclass(frozen=True)
class MetricSpec:
    """Where a metric lives and how its samples are formed and judged (bench.compare.stats)."""

    table: str
    name: str
    # A speed/memory figure: gated on the same device only, one value per run (run-to-run).
    device_bound: bool = False
    per_cell: bool = False  # one value per cell (repeated on each row), e.g. clean accuracy
    worst_seed: bool = False  # also judge the worst seed (accuracy and FID metrics)


# What compare looks at, table by table. Other columns are diagnostics or derived figures.
METRICS: dict[str, list[MetricSpec]] = {
    S.ROBUSTNESS: [MetricSpec(S.ROBUSTNESS, "clean_acc", per_cell=True, worst_seed=True),
                   MetricSpec(S.ROBUSTNESS, "robust_acc", worst_seed=True),
                   MetricSpec(S.ROBUSTNESS, "adv_acc", worst_seed=True),
                   MetricSpec(S.ROBUSTNESS, "attack_success_rate", worst_seed=True),
                   MetricSpec(S.ROBUSTNESS, "images_per_s", device_bound=True, per_cell=True),
                   MetricSpec(S.ROBUSTNESS, "seconds", device_bound=True, per_cell=True)],
    S.GAN: [MetricSpec(S.GAN, m, worst_seed=True) for m in ("fid", "kid_mean")]
    + [MetricSpec(S.GAN, m) for m in ("isc_mean", "precision", "recall")]
    + [MetricSpec(S.GAN, "train_images_per_s", device_bound=True),
       MetricSpec(S.GAN, "seconds", device_bound=True)],
    S.THROUGHPUT: [MetricSpec(S.THROUGHPUT, "images_per_s", device_bound=True),
                   MetricSpec(S.THROUGHPUT, "peak_memory_bytes", device_bound=True)],
}
KNOWN_NAMES = sorted({s.name for specs in METRICS.values() for s in specs}
                     | {f"{s.table}.{s.name}" for specs in METRICS.values() for s in specs})


def validate_rules(raw: dict, source, text: str = "", prefix: tuple = ()) -> dict[str, MetricRule]:
    """{"metric" or "table.metric" -> MetricRule}; nested `[table.metric]` tables are flattened."""
    flat: dict[str, object] = {}
    for key, value in raw.items():
        if key in METRICS and isinstance(value, dict) and value and all(
                isinstance(v, dict) for v in value.values()):
            flat |= {f"{key}.{m}": v for m, v in value.items()}
        else:
            flat[key] = value
    out = {}
    for key, value in flat.items():
        loc = prefix + tuple(key.split("."))
        if key not in KNOWN_NAMES:
            hint = difflib.get_close_matches(key, KNOWN_NAMES, n=1)
            did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
            raise SuiteError(source, key_path(loc), f"unknown metric {key!r}{did_you_mean} "
                             f"(known: {', '.join(KNOWN_NAMES)})", find_line(text, loc))
        if not isinstance(value, dict):
            raise SuiteError(source, key_path(loc), "expected a table like "
                             "[metric] direction=\"higher\", rel_tol=0.05", find_line(text, loc))
        try:
            out[key] = MetricRule.model_validate(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = loc + tuple(str(p) for p in err["loc"])
            message = ("unknown key (expected direction, rel_tol, abs_tol or alpha)"
                       if err["type"] == "extra_forbidden" else err["msg"])
            raise SuiteError(source, key_path(where), message, find_line(text, where)) from None
    return out
