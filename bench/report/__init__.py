"""Reports read a run folder's tables and manifest; they never run anything.

Each track contributes `Section`s (bench.report.sections.*); `markdown.py` and `html.py`
render the same sections, so the two reports never disagree.
"""

from __future__ import annotations

from pathlib import Path

from bench.report.blocks import Section
from bench.store.run_store import RunStore


def report_title(run_dir: Path) -> str:
    m = RunStore(run_dir).read_manifest()
    return f"{m['suite']['name']} — run {m['run_id']}"


def build_sections(run_dir: Path, baseline: Path | None = None) -> list[Section]:
    from bench.report.sections import SECTION_BUILDERS

    store = RunStore(run_dir)
    store.read_manifest()  # a clear error if this is not a run folder
    sections = []
    for builder in SECTION_BUILDERS:
        sections.extend(builder(store, baseline))
    return sections


def write_report(run_dir: str | Path, baseline: str | Path | None = None) -> list[Path]:
    """Write report.md (+ plots/) and report.html into the run folder; return their paths."""
    from bench.report.html import write_html
    from bench.report.markdown import write_markdown

    run_dir = Path(run_dir)
    sections = build_sections(run_dir, Path(baseline) if baseline else None)
    title = report_title(run_dir)
    return [write_markdown(run_dir, title, sections), write_html(run_dir, title, sections)]
