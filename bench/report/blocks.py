"""The pieces a report is made of, independent of the output format."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Text:
    markdown: str


@dataclass
class Warning_:
    message: str  # shown highlighted: a failed sanity check, a failed cell


@dataclass
class Table:
    df: pd.DataFrame
    caption: str = ""
    digits: int = 3  # significant digits shown (bench/display.py); tables keep full precision
    highlight_column: str | None = None  # rows whose value here is truthy are highlighted


@dataclass
class Figure:
    name: str  # file stem under plots/
    png: bytes
    caption: str = ""


@dataclass
class Chart:
    """A small inline SVG chart (no script, no fetch), for HTML pages (bench history)."""

    name: str  # the HTML element id
    svg: str
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)


def pyplot():
    """matplotlib.pyplot on the headless Agg backend, imported at the first figure: it costs
    ~0.4 s, which a report (or a command) without a figure does not pay."""
    import matplotlib

    matplotlib.use("Agg")  # reports render headless, also on Ray workers and CI
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
