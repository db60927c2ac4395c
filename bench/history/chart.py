"""One small inline SVG chart per series: the runs' medians with their min-max band, the fitted
levels, steps (red: regression, green: improvement; dashed when not beyond noise), outlier
runs (hollow circles) and a pending latest run (a triangle). Plain SVG, no script: it renders
under the report's Content-Security-Policy, and each mark has a <title> to hover."""

from __future__ import annotations

import html

import numpy as np

from bench.compare.render import fmt_number
from bench.history.display import step_kind
from bench.history.series import Series

WIDTH, HEIGHT = 360, 130
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 8, 22  # margins for the axis labels
COLORS = {"regression": "#c92a2a", "improvement": "#2b8a3e", "median": "#1c4f82",
          "band": "#a5c8ec", "level": "#495057", "outlier": "#e67700", "axis": "#868e96"}


def series_svg(s: Series, title: str) -> str:
    n = len(s.runs)
    lo, hi = float(np.min(s.lo)), float(np.max(s.hi))
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.01, 1e-12)
    lo, hi = lo - pad, hi + pad

    def x(i: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (hi - v) / (hi - lo)

    parts = [_axes(s, lo, hi, y)]
    band = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.hi)]
    band += [f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(s.lo)))]
    parts.append(f'<polygon points="{" ".join(band)}" fill="{COLORS["band"]}" '
                 'fill-opacity="0.6" stroke="none"/>')
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.median))
    parts.append(f'<polyline points="{line}" fill="none" stroke="{COLORS["median"]}" '
                 'stroke-width="1.3"/>')
    for a, b, level in s.fit.levels(s.median):
        parts.append(f'<line x1="{x(a):.1f}" x2="{x(b):.1f}" y1="{y(level):.1f}" '
                     f'y2="{y(level):.1f}" stroke="{COLORS["level"]}" stroke-width="1.6" '
                     f'stroke-dasharray="5,2"><title>level {fmt_number(level)}</title></line>')
    parts += [_step(s, step, x, y) for step in s.steps]
    parts += [_outlier(s, i, x, y) for i in s.fit.outliers]
    if s.fit.pending is not None:
        parts.append(_pending(s, x, y))
    label = html.escape(title, quote=True)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" '
            f'font-family="sans-serif" font-size="10">{"".join(parts)}</svg>')


def _axes(s: Series, lo: float, hi: float, y) -> str:
    c = COLORS["axis"]
    first, last = html.escape(s.runs[0].run_id), html.escape(s.runs[-1].run_id)
    return (f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="{c}"/>'
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="{c}"/>'
            f'<text x="{LEFT - 4}" y="{y(hi) + 9:.1f}" text-anchor="end" fill="{c}">'
            f'{fmt_number(hi)}</text>'
            f'<text x="{LEFT - 4}" y="{y(lo):.1f}" text-anchor="end" fill="{c}">'
            f'{fmt_number(lo)}</text>'
            f'<text x="{LEFT}" y="{HEIGHT - 6}" fill="{c}">{first}</text>'
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end" fill="{c}">{last}</text>')


def _step(s: Series, step, x, y) -> str:
    kind = step_kind(s, step)
    color = COLORS["regression" if "regression" in kind else "improvement"]
    dash = "" if step.beyond_noise else ' stroke-dasharray="3,3"'
    xs = x(step.index - 0.5)
    tip = html.escape(f"{kind} at {s.runs[step.index].run_id} "
                      f"(commit {s.runs[step.index].short_commit}): {fmt_number(step.before)} -> "
                      f"{fmt_number(step.after)}"
                      + ("" if step.beyond_noise else ", not beyond noise"))
    return (f'<g class="step"><line x1="{xs:.1f}" x2="{xs:.1f}" y1="{TOP}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="{color}" stroke-width="2"{dash}/>'
            f'<circle cx="{x(step.index):.1f}" cy="{y(step.after):.1f}" r="3.5" fill="{color}"/>'
            f"<title>{tip}</title></g>")


def _outlier(s: Series, i: int, x, y) -> str:
    tip = html.escape(f"outlier run {s.runs[i].run_id}: {fmt_number(float(s.median[i]))}")
    return (f'<circle class="outlier" cx="{x(i):.1f}" cy="{y(float(s.median[i])):.1f}" r="4" '
            f'fill="none" stroke="{COLORS["outlier"]}" stroke-width="1.6"><title>{tip}</title>'
            "</circle>")


def _pending(s: Series, x, y) -> str:
    step = s.fit.pending
    kind = step_kind(s, step)
    color = COLORS["regression" if "regression" in kind else "improvement"]
    cx, cy = x(step.index), y(step.after)
    tip = html.escape(f"{kind}: the latest run {s.runs[step.index].run_id} departs "
                      f"({fmt_number(step.before)} -> {fmt_number(step.after)})")
    return (f'<polygon class="pending" points="{cx:.1f},{cy - 6:.1f} {cx - 5:.1f},{cy + 4:.1f} '
            f'{cx + 5:.1f},{cy + 4:.1f}" fill="{color}"><title>{tip}</title></polygon>')
