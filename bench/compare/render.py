"""A Comparison as text, Markdown or JSON. Numbers are rounded here, for display only, by the
one policy of bench/display.py."""

from __future__ import annotations

import json
import math

import pandas as pd

from bench.compare.result import Comparison, MetricRow, config_text
from bench.compare.stats import REGRESSED
from bench.display import format_number
from bench.errors import UserError

COLUMNS = ["verdict", "metric", "config", "n", "baseline", "candidate", "Δ", "Δ%", "test", "p",
           "mde"]
FORMATS = ("text", "markdown", "json")
MAX_LISTED = 10  # cells listed per side in text and Markdown
COMPARE_DIGITS = 4  # significant digits: small changes between runs must stay visible


def render(c: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(json_safe(c.to_dict()), indent=1, sort_keys=True) + "\n"
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    table = display_frame(c)
    md = fmt == "markdown"
    lines = ["## bench compare" if md else "bench compare", ""]
    lines += bullets(header_lines(c), md)
    lines.append("")
    if not table.empty:
        lines += [markdown_table(table) if md else text_table(table), ""]
    lines += bullets(footer_lines(c), md)
    return "\n".join(lines).rstrip() + "\n"


def header_lines(c: Comparison) -> list[str]:
    (vb, vc) = c.schema_versions
    lines = [f"baseline: {c.baseline} (schema v{vb})", f"candidate: {c.candidate} (schema v{vc})",
             "verdicts: deterministic = one sample a side or no spread, the tolerance decides; "
             "noisy = beyond the tolerance but not beyond the measured noise; "
             "mde = the smallest change this gate would flag (80% power)",
             f"cells: {c.matched} in both runs, {len(c.only_baseline)} only in the baseline, "
             f"{len(c.only_candidate)} only in the candidate"]
    for side, cells in (("baseline", c.only_baseline), ("candidate", c.only_candidate)):
        lines += [f"only in the {side}: {i} ({label})" for i, label in cells[:MAX_LISTED]]
        if len(cells) > MAX_LISTED:
            lines.append(f"... and {len(cells) - MAX_LISTED} more only in the {side} "
                         "(all are in --format json)")
    lines += [f"machine: {n}" for n in c.machine_notes]
    lines += [f"note: {n}" for n in c.notes]
    if c.rule_sources:
        lines.append(f"rules: defaults overridden by {', '.join(c.rule_sources)}")
    return lines


def footer_lines(c: Comparison) -> list[str]:
    lines = [f"FAILED in the candidate (ok in the baseline): cell {f.cell_id} ({f.label}): {f.reason}"
             for f in c.failed]
    word = "missing (allowed by --allow-missing)" if c.allow_missing else "MISSING"
    missing = c.incompleteness
    lines += [f"{word}: {m}" for m in missing[:MAX_LISTED]]
    if len(missing) > MAX_LISTED:
        lines.append(f"... and {len(missing) - MAX_LISTED} more missing (all are in --format json)")
    if c.nothing_compared:
        lines.append("NOTHING COMPARED: no metric is in both runs, so nothing can be vouched for")
    lines += example_lines(c)
    for r in c.regressions:
        cells = ", ".join(f"{i} ({label})" for i, label in zip(r.cells, r.labels))
        lines.append(f"REGRESSED {r.metric} [{r.table} {r.config_text()}]: "
                     f"{fmt_number(r.baseline)} -> {fmt_number(r.candidate)} "
                     f"({r.test}{'' if r.p_value is None else f', p={fmt_p(r.p_value)}'}); cells: {cells}")
    counts = {}
    for r in c.rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no metrics compared"
    lines.append(f"result: {summary}; exit {c.exit_code}")
    return lines


def example_lines(c: Comparison) -> list[str]:
    """The evaluations whose examples moved, most examples lost first (not a verdict)."""
    moved = sorted((e for e in c.example_changes if e.lost or e.gained),
                   key=lambda e: (-e.lost, -e.gained))
    lines = [f"examples: {e.lost} of {e.n} lost, {e.gained} gained since the baseline "
             f"[{config_text(e.key)}]; lost: {', '.join(map(str, e.lost_examples[:MAX_LISTED]))}"
             f"{' ...' if e.lost > MAX_LISTED else ''}" for e in moved[:MAX_LISTED]]
    if len(moved) > MAX_LISTED:
        lines.append(f"... and {len(moved) - MAX_LISTED} more evaluations whose examples moved "
                     "(all are in --format json)")
    return lines


def display_frame(c: Comparison) -> pd.DataFrame:
    """The metric table with display strings (what text, Markdown and the report show)."""
    rows = [_display_row(r) for r in c.rows]
    return pd.DataFrame(rows, columns=COLUMNS)


def _display_row(r: MetricRow) -> dict:
    return {"verdict": r.verdict, "metric": r.metric, "config": f"{r.table} {r.config_text()}",
            "n": f"{r.n_baseline}/{r.n_candidate}", "baseline": fmt_number(r.baseline),
            "candidate": fmt_number(r.candidate), "Δ": fmt_number(r.delta, signed=True),
            "Δ%": "" if math.isnan(r.delta_pct) else f"{r.delta_pct:+.1f}%",
            "test": r.test, "p": fmt_p(r.p_value),
            "mde": "" if r.mde is None else fmt_number(r.mde)}


def fmt_number(x: float, signed: bool = False) -> str:
    return format_number(x, COMPARE_DIGITS, signed)


def fmt_p(p: float | None) -> str:
    if p is None:
        return ""
    return "<1e-4" if p < 1e-4 else f"{p:.3g}"


def bullets(lines: list[str], md: bool) -> list[str]:
    return [f"- {line}" if md else f"  {line}" for line in lines]


def text_table(df: pd.DataFrame) -> str:
    cells = [list(df.columns)] + [[str(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(df.columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)


def markdown_table(df: pd.DataFrame, bold: tuple[str, ...] = (REGRESSED,)) -> str:
    """A Markdown table; rows whose first cell is one of `bold` in bold."""
    out = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        vals = [str(v).replace("|", "\\|") for v in row]
        if row[0] in bold:
            vals = [f"**{v}**" if v else v for v in vals]
        out.append("| " + " | ".join(vals) + " |")
    return "\n".join(out)


def json_safe(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        return json_safe(value.item())
    return value
