"""History as display tables and plain dicts, shared by text, Markdown, JSON and HTML.

Rounding happens here (via compare's fmt_number), for display only; JSON keeps full floats.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import pandas as pd

from bench.compare.render import fmt_number, fmt_p
from bench.history.result import History
from bench.history.series import Series
from bench.history.steps import StepFit

DISPLAY_RUNS = 10  # runs per series in text and Markdown (all of them in JSON and HTML)
STEP_COLUMNS = ["kind", "metric", "config", "device", "run", "commit", "before", "after", "Δ",
                "Δ%", "beyond noise", "test", "p"]
SERIES_COLUMNS = ["metric", "config", "device", "extractor", "runs", "latest", "steps",
                  "outliers", "pending"]
RUN_COLUMNS = ["run", "commit", "started", "median", "min", "max", "n", "mark"]


def step_kind(series: Series, step: StepFit) -> str:
    worse = (step.after < step.before) == (series.rule.direction == "higher")
    kind = "regression" if worse else "improvement"
    return f"pending {kind}" if step.pending else kind


def device_text(series: Series) -> str:
    return f"{series.device} ({series.device_name})"


def step_frame(pairs: list[tuple[Series, StepFit]]) -> pd.DataFrame:
    rows = []
    for s, step in pairs:
        run = s.runs[step.index]
        delta = step.after - step.before
        pct = 100 * delta / abs(step.before) if step.before else math.nan
        rows.append({"kind": step_kind(s, step), "metric": s.name, "config": s.config_text(),
                     "device": device_text(s), "run": run.run_id, "commit": run.short_commit,
                     "before": fmt_number(step.before), "after": fmt_number(step.after),
                     "Δ": fmt_number(delta, signed=True),
                     "Δ%": "" if math.isnan(pct) else f"{pct:+.1f}%",
                     "beyond noise": "yes" if step.beyond_noise else "no",
                     "test": step.judgement.test, "p": fmt_p(step.judgement.p_value)})
    return pd.DataFrame(rows, columns=STEP_COLUMNS)


def series_frame(history: History) -> pd.DataFrame:
    rows = [{"metric": s.name, "config": s.config_text(), "device": device_text(s),
             "extractor": s.extractor or "–", "runs": len(s.runs),
             "latest": fmt_number(float(s.median[-1])), "steps": len(s.steps),
             "outliers": len(s.fit.outliers), "pending": step_kind(s, s.fit.pending)
             if s.fit.pending else ""} for s in history.series]
    return pd.DataFrame(rows, columns=SERIES_COLUMNS)


def run_frame(series: Series, last: int | None = DISPLAY_RUNS) -> pd.DataFrame:
    """One row per run of the series (the last `last`, None: all), newest first."""
    marks = run_marks(series)
    first = 0 if last is None else max(0, len(series.runs) - last)
    rows = [{"run": r.run_id, "commit": r.short_commit, "started": r.started_utc[:19],
             "median": fmt_number(float(series.median[i])), "min": fmt_number(float(series.lo[i])),
             "max": fmt_number(float(series.hi[i])), "n": int(series.n[i]),
             "mark": marks.get(i, "")}
            for i, r in enumerate(series.runs) if i >= first]
    return pd.DataFrame(rows[::-1], columns=RUN_COLUMNS)


def run_marks(series: Series) -> dict[int, str]:
    marks = {i: "outlier" for i in series.fit.outliers}
    for step in series.steps + ([series.fit.pending] if series.fit.pending else []):
        noise = "beyond noise" if step.beyond_noise else "not beyond noise"
        marks[step.index] = (f"{step_kind(series, step)} {fmt_number(step.after - step.before, signed=True)}"
                             f" ({noise})")
    return marks


def rule_text(series: Series) -> str:
    r = series.rule
    tol = " or ".join(t for t in (f"±{fmt_number(r.abs_tol)}" if r.abs_tol else "",
                                  f"±{100 * r.rel_tol:g}%" if r.rel_tol else "") if t) or "0"
    return f"{r.direction} is better, tolerance {tol}, alpha {r.alpha:g}"


def step_dict(series: Series, step: StepFit) -> dict:
    run = series.runs[step.index]
    j = step.judgement
    return {"kind": step_kind(series, step), "run": run.run_id, "commit": run.commit,
            "dirty": run.dirty, "index": step.index, "before": step.before, "after": step.after,
            "delta": step.after - step.before, "tolerance": step.tolerance, "verdict": j.verdict,
            "beyond_noise": step.beyond_noise, "test": j.test, "p_value": j.p_value,
            "pending": step.pending}


def series_dict(s: Series) -> dict:
    return {"table": s.table, "metric": s.metric, "key": s.key, "data_fingerprint": s.data,
            "device": s.device, "device_name": s.device_name, "extractor": s.extractor,
            "rule": asdict(s.rule),
            "runs": [{"run": r.run_id, "commit": r.commit, "median": float(s.median[i]),
                      "min": float(s.lo[i]), "max": float(s.hi[i]), "n": int(s.n[i])}
                     for i, r in enumerate(s.runs)],
            "levels": [{"first": s.runs[a].run_id, "last": s.runs[b].run_id, "median": m}
                       for a, b, m in s.fit.levels(s.median)],
            "steps": [step_dict(s, step) for step in s.steps],
            "outliers": [s.runs[i].run_id for i in s.fit.outliers],
            "non_finite": s.non_finite,
            "pending": step_dict(s, s.fit.pending) if s.fit.pending else None}


def history_dict(h: History) -> dict:
    return {"suite_dir": h.suite_dir, "ordering": h.ordering,
            "runs": [asdict(r) for r in h.runs], "skipped": h.skipped, "notes": h.notes,
            "rule_sources": h.rule_sources, "series": [series_dict(s) for s in h.series],
            "failing": [{"metric": s.name, "key": s.key, "device": s.device} | step_dict(s, st)
                        for s, st in h.failing()],
            "fail_on_step": h.fail_on_step, "exit_code": h.exit_code}
