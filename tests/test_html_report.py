"""The HTML report: self-contained, same sections as the Markdown, and it opens in a real browser.

The browser tests drive headless Chromium (Debian's `chromium` package) over the DevTools
protocol on a pipe (--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4), so they
need no Python package beyond the standard library. They check that every <img> loaded
(naturalWidth > 0), that nothing was logged as an error (console, exceptions, CSP or network
failures), that no request left the file (only data: and file: URLs) and that a screenshot
came out. Without Chromium they are skipped with the reason.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.display import format_number
from bench.report import build_sections, write_report
from bench.report.blocks import Figure, Section, Table, Text, Warning_
from bench.report.html import markdown_to_html, render_html
from bench.store.migrate import open_run
from tests.helpers.runs import (
    edit_table,
    make_run,
    robustness_cells,
    synthetic_times,
    throughput_cells,
)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# -- a minimal DevTools-protocol client over a pipe -------------------------------------------

class Browser:
    """Headless Chromium driven over --remote-debugging-pipe (fd 3: commands in, fd 4: out)."""

    def __init__(self, executable: str, profile_dir: Path, timeout: float = 60.0):
        self.timeout = timeout
        cmd_read, self._cmd_write = os.pipe()
        self._out_read, out_write = os.pipe()

        def to_fds_3_and_4():  # in the child, before exec
            a = fcntl.fcntl(cmd_read, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(out_write, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        profile_dir.mkdir(parents=True, exist_ok=True)
        self.log = profile_dir.parent / f"{profile_dir.name}-chromium.log"  # a file: never blocks
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}",
                 "--remote-debugging-pipe", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                close_fds=False, preexec_fn=to_fds_3_and_4)
        os.close(cmd_read)
        os.close(out_write)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_write, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self.events[i]
        while True:
            event = self._read_message()
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return event

    def _read_message(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._out_read], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"chromium did not answer within {self.timeout} s")
            chunk = os.read(self._out_read, 1 << 20)
            if not chunk:
                err = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chromium exited (code {self.proc.poll()}): {err}")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass  # already gone: killed below
        finally:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            os.close(self._cmd_write)
            os.close(self._out_read)


def open_in_chromium(executable: str, page: Path, screenshot: Path, profile_dir: Path) -> dict:
    """Load `page`, return {"images": [...], "errors": [...], "requests": [...]}; save a screenshot."""
    browser = Browser(executable, profile_dir)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                     session=session)
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", session)
        images = browser.send("Runtime.evaluate", {
            "expression": "JSON.stringify(Array.from(document.images).map(i => ({complete: "
                          "i.complete, naturalWidth: i.naturalWidth, src: i.src.slice(0, 40)})))",
            "returnByValue": True}, session=session)["result"]["value"]
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                            session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        errors, requests = [], []
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(f"console.{params['type']}: "
                              + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                errors.append(f"exception: {params['exceptionDetails'].get('text')} "
                              f"{params['exceptionDetails'].get('exception', {}).get('description', '')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                errors.append(f"network: {params.get('errorText')} {params.get('blockedReason', '')}")
            elif method == "Network.requestWillBeSent":
                requests.append(params["request"]["url"])
        return {"images": json.loads(images), "errors": errors, "requests": requests}
    finally:
        browser.close()


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("chromium not found: install Debian's chromium package "
                    "(apt-get update && apt-get install -y chromium)")
    return path


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
