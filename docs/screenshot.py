"""Regenerate docs/quickstart-report.png, the README's picture of a real quickstart report.

It runs `bench run suites/quickstart.toml` into a temporary results folder (so nothing cached
is reused and nothing is left in results/), opens the run's report.html in headless Chromium
and keeps the top of the page, reduced to a small palette PNG:

    python docs/screenshot.py                      # ~3 min on 2 CPU cores, plus the browser
    python docs/screenshot.py --run-dir RUN_DIR    # the report of a run you already have

Needs Chromium (`apt-get install -y chromium`) and Pillow (installed with matplotlib).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "quickstart-report.png"
# The flags tests/helpers/browser.py uses for headless Chromium on this kind of machine.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]
WINDOW = (1200, 1500)  # CSS pixels of the page kept: the summary, the first tables and a plot
MAX_BYTES = 200_000


def run_quickstart(results_dir: Path) -> Path:
    """The run folder of a fresh `bench run suites/quickstart.toml` under `results_dir`."""
    subprocess.run([sys.executable, "-m", "bench", "run", str(REPO / "suites" / "quickstart.toml"),
                    "--results-dir", str(results_dir), "--no-progress"], check=True, cwd=REPO)
    (run_dir,) = (results_dir / "quickstart").iterdir()
    return run_dir


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("docs/screenshot.py: no Chromium found; apt-get install -y chromium")


def screenshot(page: Path, png: Path, profile: Path) -> None:
    width, height = WINDOW
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--window-size={width},{height}", f"--screenshot={png}",
                    page.resolve().as_uri()], check=True, capture_output=True, timeout=120)


def shrink(png: Path, out: Path) -> int:
    """`png` as a 64-colour palette image (reports are flat colours and text); its size."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
        small.save(out, optimize=True)
    return out.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="a finished quickstart run (default: run one)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-screenshot-") as tmp:
        tmp = Path(tmp)
        run_dir = args.run_dir or run_quickstart(tmp / "results")
        raw = tmp / "raw.png"
        screenshot(run_dir / "report.html", raw, tmp / "profile")
        size = shrink(raw, args.output)
    print(f"{args.output}: {size:,} bytes from {run_dir / 'report.html'}")
    if size > MAX_BYTES:
        print(f"over {MAX_BYTES:,} bytes: lower WINDOW or the palette", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
