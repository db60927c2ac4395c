"""The history as one self-contained HTML page, rendered by the report's HTML renderer.

A summary (steps, pending runs, series), then one section per metric and device with a small
chart per series (bench.history.chart) and its latest runs. No script and no fetch: the
report's Content-Security-Policy applies.
"""

from __future__ import annotations

from bench.history.chart import series_svg
from bench.history.display import (
    device_text,
    rule_text,
    run_frame,
    series_frame,
    step_frame,
)
from bench.history.render import EXPLAIN, footer_lines, header_lines
from bench.history.result import History
from bench.history.series import Series
from bench.identity import digest
from bench.report.blocks import Chart, Section, Table, Text, Warning_
from bench.report.html import render_html


def render_page(h: History) -> str:
    title = f"bench history — {h.suite_dir}"
    return render_html([summary_section(h)] + metric_sections(h), title=title)


def summary_section(h: History) -> Section:
    blocks = [Text("\n".join(f"- {line}" for line in header_lines(h) if EXPLAIN not in line)),
              Text(f"*{EXPLAIN[0].upper() + EXPLAIN[1:]}.*")]
    blocks += [Warning_(line) for line in footer_lines(h)[:-1]]  # regressions at the latest run
    steps = step_frame(h.steps())
    blocks.append(Table(steps, f"Steps ({len(steps)})", highlight_column="_regression")
                  if steps.empty else _highlighted(steps, f"Steps ({len(steps)})"))
    pending = step_frame(h.pending())
    if not pending.empty:
        blocks.append(_highlighted(pending, "Pending: the latest run departs (the next run "
                                            "tells a step from an outlier)"))
    blocks.append(Table(series_frame(h), f"Series ({len(h.series)})"))
    blocks.append(Text(footer_lines(h)[-1]))
    return Section("Summary", blocks)


def _highlighted(frame, caption: str) -> Table:
    flags = frame["kind"].str.contains("regression") & (frame["beyond noise"] == "yes")
    return Table(frame.assign(regression=flags), caption, highlight_column="regression")


def metric_sections(h: History) -> list[Section]:
    sections: dict[str, list] = {}
    for s in h.series:
        title = f"{s.name} on {device_text(s)}"
        sections.setdefault(title, []).extend(series_blocks(s))
    return [Section(title, blocks) for title, blocks in sections.items()]


def series_blocks(s: Series) -> list:
    caption = (f"{s.config_text()}" + (f", extractor {s.extractor}" if s.extractor else "")
               + f": {len(s.runs)} runs, {len(s.steps)} steps; {rule_text(s)}")
    name = digest([s.name, s.key, s.data, s.device, s.device_name], 12)
    blocks: list = [Chart(name, series_svg(s, caption), caption)]
    if s.steps or s.fit.outliers or s.fit.pending:  # the runs behind what the chart marks
        runs = run_frame(s, None)
        runs = runs[runs["mark"] != ""]
        blocks.append(Table(runs, f"{s.config_text()}: marked runs"))
    return blocks
