"""The HTML report: self-contained, same sections as the Markdown, and it opens in a real browser.

The browser tests drive headless Chromium (Debian's `chromium` package) over the DevTools
protocol (tests/helpers/browser.py), with no Python package beyond the standard library. They
check that every <img> loaded (naturalWidth > 0), that nothing was logged as an error (console,
exceptions, CSP or network failures), that no request left the file (only data: and file: URLs)
and that a screenshot came out. Without Chromium they are skipped with the reason (the
`chromium` fixture, tests/conftest.py), except in CI, which installs Chromium or fails. The
same promise is also checked with no browser at all: every figure is an <img> with an inlined
image that the page's own CSP allows, and the page loads nothing else.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.display import format_number
from bench.report import build_sections, write_report
from bench.report.blocks import Figure, Section, Table, Text, Warning_
from bench.report.html import markdown_to_html, render_html
from bench.store.migrate import open_run
from tests.helpers.browser import PNG_MAGIC, open_in_chromium
from tests.helpers.page_resources import blocked_or_foreign, csp_allows, parse_page
from tests.helpers.runs import (
    edit_table,
    make_run,
    robustness_cells,
    synthetic_times,
    throughput_cells,
)

# -- runs to report on ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """A baseline and a candidate whose standard model lost 5 points of robust accuracy."""
    root = tmp_path_factory.mktemp("report_runs")
    rng = np.random.default_rng(0)
    times = {s: synthetic_times(rng, 10) for s in (0, 1, 2)}
    base = make_run(root / "base", robustness_cells() + throughput_cells(times))
    cand = make_run(root / "cand", robustness_cells() + throughput_cells(times))
    edit_table(cand, "robustness", lambda df: df.assign(
        robust_acc=df["robust_acc"].where(df["model"] != "cnn", df["robust_acc"] - 0.05)))
    return base, cand


def _checked_ok(result: dict) -> None:
    assert result["images"], "the page has no images"
    broken = [i for i in result["images"] if not i["complete"] or i["naturalWidth"] <= 0]
    assert not broken, f"images that did not load: {broken}"
    assert not result["errors"], f"errors in the browser: {result['errors']}"
    outside = [u for u in result["requests"] if not u.startswith(("data:", "file:"))]
    assert not outside, f"the report fetched from the network: {outside}"


def test_report_opens_in_chromium_with_all_images_and_no_errors(chromium, runs, tmp_path):
    base, cand = runs
    paths = write_report(cand, baseline=base)
    html_path = cand / "report.html"
    assert html_path in paths
    text = html_path.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert text.count('src="data:image/png;base64,') >= 1

    shot = tmp_path / "report.png"
    result = open_in_chromium(chromium, html_path, shot, tmp_path / "profile")
    _checked_ok(result)
    assert len(result["images"]) == text.count("<img ")
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_browser_check_catches_broken_images_and_console_errors(chromium, tmp_path):
    """The harness itself can fail: a broken image and a console error are both reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
                    '<script>console.error("boom from the page")</script></body></html>')
    result = open_in_chromium(chromium, page, tmp_path / "broken.png", tmp_path / "profile")
    assert any(i["naturalWidth"] == 0 for i in result["images"])
    assert any("boom from the page" in e for e in result["errors"])
    with pytest.raises(AssertionError):
        _checked_ok(result)


# -- the HTML itself (no browser needed) -------------------------------------------------------

def test_report_html_is_self_contained_and_matches_markdown_sections(runs):
    base, cand = runs
    write_report(cand, baseline=base)
    html_text = (cand / "report.html").read_text()
    md_text = (cand / "report.md").read_text()
    md_titles = re.findall(r"^## (.+)$", md_text, re.M)
    html_titles = re.findall(r"<h2>(.+?)</h2>", html_text)
    assert md_titles == html_titles
    assert "Comparison with baseline" in html_titles
    assert html_titles.index("Comparison with baseline") < html_titles.index("Provenance")
    # every figure that the Markdown links as a file is inlined in the HTML
    assert len(re.findall(r"!\[[^\]]*\]\(plots/", md_text)) == html_text.count("<img ")
    assert "Content-Security-Policy" in html_text and "default-src 'none'" in html_text


def assert_figures_show_and_nothing_else_loads(html_path: Path) -> int:
    """Every figure an <img> with an inlined image that the page's own CSP allows, and no
    other resource; returns the number of figures."""
    text = html_path.read_text()
    assert blocked_or_foreign(text) == []
    page = parse_page(text)
    assert all(r.tag == "img" for r in page.resources)
    return len(page.resources)


def test_every_figure_of_a_real_report_shows_under_its_csp_and_nothing_else_loads(tiny_run):
    """The report of a real `bench run` (tests/conftest.py:tiny_run), read as a browser would
    (tests/helpers/page_resources.py), with no browser: what CI's browser test sees, where a
    browser cannot run."""
    (run,) = [p for p in (tiny_run / "tiny").iterdir() if p.is_dir()]
    plots = sorted((run / "plots").glob("*.png"))
    assert plots  # the run made figures
    assert assert_figures_show_and_nothing_else_loads(run / "report.html") == len(plots)
    images = [r.url for r in parse_page((run / "report.html").read_text()).resources]
    inlined = {base64.b64decode(url.split(",", 1)[1]) for url in images}
    assert inlined == {p.read_bytes() for p in plots}  # each plot of the run, inlined


def test_the_figures_of_a_compare_report_show_too(runs):
    base, cand = runs
    write_report(cand, baseline=base)
    assert assert_figures_show_and_nothing_else_loads(cand / "report.html") >= 1


@pytest.mark.parametrize("change, reason", [
    (lambda t: t.replace("img-src data:", "img-src 'self'"), "blocks <img>"),
    (lambda t: t.replace("img-src data:; ", ""), "blocks <img>"),
    (lambda t: re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", t),
     "0 Content-Security-Policy"),
    (lambda t: t.replace("</head>", '<link rel="stylesheet" href="https://cdn.example/x.css">'
                                     "</head>"), "style-src resource from <link>"),
    (lambda t: t.replace("</style>", "body { background: url(bg.png) }</style>"),
     "img-src resource from <style>"),
    (lambda t: t.replace("<body>", '<body><img src="plots/robustness.png">'),
     "not an inlined image"),
    (lambda t: t.replace("<body>", "<body><script>1</script>"), "<script> elements"),
    (lambda t: t.replace("<body>", '<body><figure><p>no image</p></figure>'), "holds 0 <img>"),
], ids=["csp-img-self", "csp-no-img-src", "no-csp", "stylesheet", "css-url", "file-img",
        "script", "empty-figure"])
def test_the_check_trips_on_a_page_that_blocks_a_figure_or_loads_more(tiny_run, change, reason):
    (run,) = [p for p in (tiny_run / "tiny").iterdir() if p.is_dir()]
    text = (run / "report.html").read_text()
    changed = change(text)
    assert changed != text
    problems = blocked_or_foreign(changed)
    assert any(reason in p for p in problems), problems


def test_csp_source_matching_follows_the_spec():
    assert csp_allows("img-src data:", "img-src", "data:image/png;base64,AA")
    assert not csp_allows("default-src 'none'", "img-src", "data:image/png;base64,AA")
    assert csp_allows("default-src 'none'; img-src data:", "img-src", "data:image/png;base64,AA")
    assert not csp_allows("img-src *", "img-src", "data:image/png;base64,AA")  # * omits data:
    assert csp_allows("img-src *", "img-src", "https://example.org/a.png")
    assert csp_allows("img-src 'self'", "img-src", "a.png", page_url="file:///r/report.html")
    assert csp_allows("img-src *.example.org", "img-src", "https://a.example.org/x.png")
    assert not csp_allows("img-src *.example.org", "img-src", "https://example.net/x.png")
    assert csp_allows("script-src 'none'", "img-src", "https://x/y.png")  # no rule for images


def test_compare_section_highlights_the_regressed_rows(runs):
    base, cand = runs
    sections = build_sections(open_run(cand), base)
    (comp,) = [s for s in sections if s.title == "Comparison with baseline"]
    (table,) = [b for b in comp.blocks if isinstance(b, Table)]
    flagged = table.df[table.df["regressed"]]
    assert set(flagged["metric"]) == {"robust_acc"}
    assert all("model=cnn " in c for c in flagged["config"])
    html_text = render_html(sections)
    assert html_text.count('<tr class="highlight">') == len(flagged) == 2
    assert any(isinstance(b, Warning_) and "REGRESSED robust_acc" in b.message for b in comp.blocks)


def test_bench_report_cli_writes_both_reports(runs, capsys):
    from bench.cli import main

    base, cand = runs
    (cand / "report.html").unlink(missing_ok=True)
    assert main(["report", str(cand), "--baseline", str(base)]) == 0
    printed = capsys.readouterr().out.split()
    assert str(cand / "report.html") in printed and str(cand / "report.md") in printed
    assert "Comparison with baseline" in (cand / "report.html").read_text()
    assert main(["report", str(cand), "--baseline", str(cand / "nowhere")]) == 2


def test_no_compare_section_without_a_baseline(runs):
    _, cand = runs
    assert "Comparison with baseline" not in [s.title for s in build_sections(open_run(cand), None)]


def test_blocks_render_warnings_tables_and_figures():
    df = pd.DataFrame({"name": ["a", "b<c"], "value": [0.123456, 1234567.0], "tiny": [1e-6, np.nan],
                       "flag": [False, True]})
    png = b"\x89PNG\r\n\x1a\nfake"
    out = render_html([Section("S & T", [Text("# Title\n\n- **bold** and `code`"),
                                          Warning_("cell <x> failed"),
                                          Table(df, "cap", digits=3, highlight_column="flag"),
                                          Figure("fig", png, "a plot")])])
    assert "<h2>S &amp; T</h2>" in out and "<h1>Title</h1>" in out
    assert "<li><strong>bold</strong> and <code>code</code></li>" in out
    assert '<div class="warning" role="alert"><strong>Warning:</strong> cell &lt;x&gt; failed' in out
    assert "b&lt;c" in out and "0.123" in out and "0.123456" not in out and "1,234,567" in out
    assert "1e-06" in out and "–" in out
    assert out.count('<tr class="highlight">') == 1
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in out


def test_format_value_rounds_for_display_only():
    assert format_number(0.98765, 3) == "0.988"
    assert format_number(2.0, 1) == "2"
    assert format_number(12345678.9) == "12,345,679"
    assert format_number(190.57) == "191" and format_number(0.00012) == "0.00012"
    assert format_number(0.0) == "0"
    assert format_number(float("nan")) == "–" and format_number(None) == "–"
    assert format_number(np.float32(0.5), 2) == "0.5"
    assert format_number(7) == "7" and format_number(True) == "True"
    assert format_number(-0.05, 4, signed=True) == "-0.05"
    assert format_number(0.05, 4, signed=True) == "+0.05"
    assert markdown_to_html("plain *it*") == "<p>plain <em>it</em></p>"
