"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
NUL-separated JSON on fds 3 and 4), with the standard library only. Used by the browser tests of
the HTML report and of the history page: they check that every <img> loaded, that nothing was
logged as an error (console, exceptions, CSP or network failures), that no request left the
file, and they take a screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

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


def open_in_chromium(executable: str, page: Path, screenshot: Path, profile_dir: Path,
                     evaluate: dict[str, str] | None = None) -> dict:
    """Load `page`, return {"images": [...], "errors": [...], "requests": [...], "values": {...}}
    (`values`: each JavaScript expression of `evaluate`, by name, evaluated to JSON); save a
    screenshot."""
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
        values = {name: json.loads(browser.send("Runtime.evaluate", {
            "expression": f"JSON.stringify({expr})", "returnByValue": True},
            session=session)["result"]["value"]) for name, expr in (evaluate or {}).items()}
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
        return {"images": json.loads(images), "errors": errors, "requests": requests,
                "values": values}
    finally:
        browser.close()
