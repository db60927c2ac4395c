"""History as text, Markdown or JSON (the HTML page is bench.history.page, which uses the
header and footer lines from here)."""

from __future__ import annotations

import json

from bench.compare.render import bullets, json_safe, markdown_table, text_table
from bench.errors import UserError
from bench.history.display import (
    DISPLAY_RUNS,
    device_text,
    history_dict,
    rule_text,
    run_frame,
    series_frame,
    step_frame,
)
from bench.history.result import History

FORMATS = ("text", "markdown", "json")  # and "html", by bench.history.page
BOLD = ("regression", "pending regression")
EXPLAIN = ("a step is a change of level beyond the metric's tolerance (compare's rules), found "
           "by a penalised piecewise-constant fit over the runs; beyond noise: the runs on its "
           "two sides differ by more than the tolerance and than their spread explains; one "
           "run alone is an outlier, not a step; the latest run alone is pending until the next")


def render(h: History, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(json_safe(history_dict(h)), indent=1, sort_keys=True) + "\n"
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    md = fmt == "markdown"
    table = (lambda df: markdown_table(df, BOLD)) if md else text_table
    out = ["## bench history" if md else "bench history", ""]
    out += bullets(header_lines(h), md) + [""]
    for title, frame in (("Steps", step_frame(h.steps())),
                         ("Pending: the latest run departs", step_frame(h.pending())),
                         ("Series", series_frame(h))):
        if not frame.empty:
            out += [f"### {title}" if md else title.upper(), "", table(frame), ""]
    for s in h.series:
        title = f"{s.name} [{s.config_text()}] on {device_text(s)}"
        out += [f"#### {title}" if md else title]
        out += bullets([f"{rule_text(s)}; extractor {s.extractor or '–'}; {len(s.runs)} runs"
                         + (f" (the last {DISPLAY_RUNS} shown, newest first)"
                            if len(s.runs) > DISPLAY_RUNS else " (newest first)")], md)
        out += ["", table(run_frame(s)), ""]
    out += bullets(footer_lines(h), md)
    return "\n".join(out).rstrip() + "\n"


def header_lines(h: History) -> list[str]:
    first, last = h.runs[0], h.runs[-1]
    lines = [f"suite folder: {h.suite_dir}",
             f"runs: {len(h.runs)} complete, ordered {h.ordering}; from {first.run_id} "
             f"(commit {first.short_commit}) to {last.run_id} (commit {last.short_commit})",
             f"series: {len(h.series)}; {EXPLAIN}"]
    if h.skipped:
        lines.append(f"skipped {len(h.skipped)} runs that are not complete: "
                     + ", ".join(h.skipped[:10]) + (" ..." if len(h.skipped) > 10 else ""))
    lines += [f"note: {n}" for n in h.notes]
    if h.rule_sources:
        lines.append(f"rules: defaults overridden by {', '.join(h.rule_sources)}")
    return lines


def footer_lines(h: History) -> list[str]:
    word = "FAILING" if h.fail_on_step else "REGRESSED AT THE LATEST RUN"
    lines = [f"{word}: {s.name} [{s.config_text()}] on {device_text(s)}: the latest run "
             f"{s.runs[st.index].run_id} starts a regression beyond tolerance and noise"
             for s, st in h.failing()]
    regressions = sum(st.regression for _, st in h.steps())
    lines.append(f"result: {len(h.steps())} steps ({regressions} regressions beyond noise), "
                 f"{len(h.pending())} pending, "
                 f"{sum(len(s.fit.outliers) for s in h.series)} outlier runs; exit {h.exit_code}")
    return lines

