"""Render report sections to one self-contained report.html.

Same sections as report.md (bench.report.markdown), so the two never disagree. Figures are
inlined as base64 data URIs, the CSS is inline, and a Content-Security-Policy forbids any
network fetch or script: the file can be mailed, archived or opened offline as it is.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import pandas as pd

from bench.display import format_number
from bench.report.blocks import Chart, Figure, Section, Table, Text, Warning_
from bench.store.atomic import atomic_write_text

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430;
       max-width: 1200px; margin: 2em auto; padding: 0 1.5em; }
h1, h2, h3 { line-height: 1.25; }
h2 { border-bottom: 1px solid #d8dde6; padding-bottom: .25em; margin-top: 2em; }
code { background: #f1f3f7; padding: .05em .3em; border-radius: 3px; font-size: 90%; }
.warning { background: #fff4e5; border-left: 5px solid #e67700; padding: .6em 1em;
           margin: .8em 0; border-radius: 3px; }
.warning strong { color: #b35c00; }
.table-wrap { overflow-x: auto; margin: .8em 0 1.2em; }
table { border-collapse: collapse; font-size: 13px; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
th, td { border: 1px solid #d8dde6; padding: .25em .6em; white-space: nowrap; }
th { background: #eef1f6; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #f8f9fb; }
tbody tr.highlight, tbody tr.highlight:nth-child(even) { background: #ffe3e3; font-weight: 600; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ec; }
figcaption { font-size: 13px; color: #5a6472; }
figure.chart { display: inline-block; vertical-align: top; margin: .4em 1.2em .8em 0;
               max-width: 360px; }
figure.chart svg { display: block; border: 1px solid #e3e6ec; background: #fff; }
.empty { color: #5a6472; font-style: italic; }
"""


def write_html(run_dir: Path, title: str, sections: list[Section]) -> Path:
    path = Path(run_dir) / "report.html"
    atomic_write_text(path, render_html(sections, title=title))
    return path


def render_html(sections: list[Section], title: str = "bench report") -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f'<section>\n<h2>{html.escape(section.title)}</h2>')
        body.extend(render_block(block) for block in section.blocks)
        body.append("</section>")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
    ]) + "\n"


def render_block(block) -> str:
    if isinstance(block, Text):
        return markdown_to_html(block.markdown)
    if isinstance(block, Warning_):
        return (f'<div class="warning" role="alert"><strong>Warning:</strong> '
                f"{_inline(block.message)}</div>")
    if isinstance(block, Table):
        return table_html(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        alt = html.escape(block.caption or block.name, quote=True)
        caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
        return (f'<figure id="fig-{html.escape(block.name, quote=True)}">'
                f'<img src="data:image/png;base64,{data}" alt="{alt}">{caption}</figure>')
    if isinstance(block, Chart):
        caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
        return (f'<figure class="chart" id="chart-{html.escape(block.name, quote=True)}">'
                f"{block.svg}{caption}</figure>")
    raise TypeError(f"unknown report block {type(block).__name__}")


def table_html(block: Table) -> str:
    df = block.df
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    if df.empty:
        return f'<div class="table-wrap">{caption}<p class="empty">(empty)</p></div>'
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in df.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    flags = (df[block.highlight_column].map(_truthy).tolist()
             if block.highlight_column in df.columns else [False] * len(df))
    for values, flag in zip(df.itertuples(index=False), flags):
        cells = "".join(
            f'<td class="num">{format_number(v, block.digits)}</td>' if num
            else f"<td>{html.escape(format_number(v, block.digits))}</td>"
            for v, num in zip(values, numeric))
        rows.append(f'<tr class="highlight">{cells}</tr>' if flag else f"<tr>{cells}</tr>")
    return (f'<div class="table-wrap"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _truthy(value) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


# -- a small Markdown subset: the one Text blocks use ------------------------------------------
# headings (#), bullet lists (- or *), paragraphs, **bold**, *italic*, `code`, [text](url).

def markdown_to_html(text: str) -> str:
    out, para, items = [], [], []

    def flush() -> None:
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        bullet = re.match(r"^[-*]\s+(.*)$", stripped)
        if not stripped:
            flush()
        elif heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif bullet:
            if para:
                flush()
            items.append(bullet.group(1))
        elif items:
            items[-1] += " " + stripped
        else:
            para.append(stripped)
    flush()
    return "\n".join(out)


def _inline(text: str) -> str:
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        s = html.escape(part, quote=False)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
        s = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+|#[^)\s]*)\)",
                   lambda m: f'<a href="{html.escape(m.group(2), quote=True)}">{m.group(1)}</a>', s)
        out.append(s)
    return "".join(out)
