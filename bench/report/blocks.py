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


def subplots(nrows: int, ncols: int, figsize: tuple[float, float]):
    """A matplotlib figure and its axes (always a 2-D array), imported at the first figure.

    matplotlib's object API rather than pyplot, as matplotlib advises for code that renders
    figures to files: no global figure registry to close them in, no GUI backend to choose
    (savefig renders PNG with Agg, headless, on Ray workers and CI alike), and none of
    pyplot's import and figure-manager cost on a report's path.
    """
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def figure_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()
