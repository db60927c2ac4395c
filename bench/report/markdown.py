"""Render report sections to report.md, with figures as PNG files under plots/."""

from __future__ import annotations

from pathlib import Path

from bench.display import format_number
from bench.report.blocks import Figure, Section, Table, Text, Warning_
from bench.store.atomic import atomic_write_bytes, atomic_write_text


def write_markdown(run_dir: Path, title: str, sections: list[Section]) -> Path:
    lines: list[str] = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += render_block(run_dir, block) + [""]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path


def render_block(run_dir: Path, block) -> list[str]:
    if isinstance(block, Text):
        return [block.markdown]
    if isinstance(block, Warning_):
        return [f"> **Warning:** {block.message}"]
    if isinstance(block, Table):
        out = [f"*{block.caption}*", ""] if block.caption else []
        return out + [markdown_table(block.df, block.digits)]
    if isinstance(block, Figure):
        atomic_write_bytes(run_dir / "plots" / f"{block.name}.png", block.png)
        return [f"![{block.caption or block.name}](plots/{block.name}.png)"]
    raise TypeError(f"unknown report block {type(block).__name__}")


def markdown_table(df, digits: int = 3) -> str:
    if df.empty:
        return "_(empty)_"
    cols = [str(c) for c in df.columns]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for values in df.itertuples(index=False):
        rows.append("| " + " | ".join(_cell(v, digits) for v in values) + " |")
    return "\n".join(rows)


def _cell(value, digits: int) -> str:
    return format_number(value, digits).replace("|", "\\|").replace("\n", " ")
