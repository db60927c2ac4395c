"""Reports read a run folder's tables and manifest; they never run anything.

They read through `bench.store.migrate.open_run`, the reader `bench compare` uses too, so a
run of an older schema is migrated in memory and reported like a current one.

Each track contributes `Section`s (bench.report.sections.*); `markdown.py` and `html.py`
render the same sections, so the two reports never disagree.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.blocks import Section
from bench.store.migrate import RunView, open_run


def report_title(run: RunView) -> str:
    m = run.manifest
    return f"{m['suite']['name']} — run {m.get('run_id', run.dir.name)}"


def build_sections(run: RunView, baseline: Path | None = None) -> list[Section]:
    from bench.report.sections import SECTION_BUILDERS

    sections = []
    for builder in SECTION_BUILDERS:
        sections.extend(builder(run, baseline))
    return sections


def write_report(run_dir: str | Path, baseline: str | Path | None = None,
                 tables: dict[str, pd.DataFrame] | None = None) -> list[Path]:
    """Write report.md (+ plots/) and report.html into the run folder; return their paths.
    `tables`: the run's tables as just written (see open_run), to save reading them back."""
    from bench.report.html import write_html
    from bench.report.markdown import write_markdown

    run_dir = Path(run_dir)
    run = open_run(run_dir, tables)  # a clear error if this is not a run folder
    sections = build_sections(run, Path(baseline) if baseline else None)
    title = report_title(run)
    return [write_markdown(run_dir, title, sections), write_html(run_dir, title, sections)]
