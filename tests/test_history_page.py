"""The history page opens in headless Chromium: one drawn chart per series, steps, outliers and
the pending run marked, no errors, nothing fetched (tests/helpers/browser.py)."""

from __future__ import annotations

import numpy as np

from bench.cli import main
from bench.history import build_history
from tests.helpers.browser import PNG_MAGIC, open_in_chromium
from tests.helpers.runs import series_runs

CHARTS = ("Array.from(document.querySelectorAll('figure.chart svg')).map(s => {"
          " const r = s.getBoundingClientRect();"
          " return {w: r.width, h: r.height, marks: s.querySelectorAll('polyline').length}; })")
MARKS = ("({steps: document.querySelectorAll('svg g.step').length,"
         " outliers: document.querySelectorAll('svg circle.outlier').length,"
         " pending: document.querySelectorAll('svg polygon.pending').length,"
         " highlighted: document.querySelectorAll('tr.highlight').length})")


def test_history_page_opens_in_chromium_with_every_chart_drawn(chromium, tmp_path, capsys):
    rng = np.random.default_rng(1)
    step = 0.7 + rng.normal(0, 0.01, 24) - np.r_[np.zeros(12), np.full(12, 0.05)]
    outlier = 0.7 + rng.normal(0, 0.01, 24)
    outlier[8] += 0.2
    latest = 0.7 + rng.normal(0, 0.01, 24)
    latest[-1] -= 0.1
    series_runs(tmp_path / "suite", {"step": step, "outlier": outlier, "latest": latest},
                seed_spread=0.01)
    page = tmp_path / "history.html"
    assert main(["history", str(tmp_path / "suite"), "--format", "html", "-o", str(page)]) == 0
    capsys.readouterr()
    text = page.read_text()
    assert "<script" not in text and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "default-src 'none'" in text

    shot = tmp_path / "history.png"
    result = open_in_chromium(chromium, page, shot, tmp_path / "profile",
                              evaluate={"charts": CHARTS, "marks": MARKS})
    assert not result["errors"], result["errors"]
    assert not [u for u in result["requests"] if not u.startswith(("data:", "file:"))]
    charts = result["values"]["charts"]
    n_series = len(build_history(tmp_path / "suite", repo=None).series)
    assert len(charts) == n_series
    assert all(c["w"] > 100 and c["h"] > 50 and c["marks"] == 1 for c in charts), charts
    # one step (robust_acc of "step"), one outlier, one pending regression, each in the
    # summary tables too (steps and pending rows highlighted)
    assert result["values"]["marks"] == {"steps": 1, "outliers": 1, "pending": 1,
                                         "highlighted": 2}
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
