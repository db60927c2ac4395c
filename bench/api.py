"""bench from Python: what a notebook or a training script calls (docs/api.md).

    evaluate_robustness(model, data, attacks, epsilons, ...) -> pandas.DataFrame
        the robustness rows of an nn.Module on in-memory examples (bench/api_robustness.py)
    fid(sampler, reference, num_samples=..., ...) -> dict
        FID, KID, IS, precision/recall and the FID checks of any sampler (bench/api_fid.py)
    run_suite(path_or_dict, ...) -> Run
        `bench run` on a suite file, or a suite given as a dict; the run's tables as DataFrames

Each runs the code `bench run` runs (no second copy of a cell), with the same defaults
(bench/defaults.py), so the same inputs give the same numbers either way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from bench import defaults
from bench.api_fid import SampleError, domain_extractor, fid, inception_extractor, save_reference
from bench.api_robustness import evaluate_robustness

__all__ = ["Run", "SampleError", "domain_extractor", "evaluate_robustness", "fid",
           "inception_extractor", "run_suite", "save_reference"]


@dataclass
class Run:
    """A finished (or interrupted) run: its folder, outcome and tables."""

    dir: Path
    status: str  # complete | failed | interrupted
    ok: int  # cells that succeeded
    failed: int

    @property
    def exit_code(self) -> int:
        return {"complete": 0, "failed": 1, "interrupted": 130}[self.status]

    @functools.cached_property
    def _view(self):
        from bench.store.migrate import open_run

        return open_run(self.dir)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the run (robustness, robustness_agg, examples, checks, gan, ...)."""
        return dict(self._view.tables)

    def table(self, name: str) -> pd.DataFrame:
        """One table; empty when the run has none of that name."""
        return self._view.table(name)

    @property
    def manifest(self) -> dict:
        return self._view.manifest

    @property
    def report(self) -> Path | None:
        path = self.dir / "report.html"
        return path if path.exists() else None


def run_suite(suite: str | Path | Mapping[str, Any], *,
              results_dir: str | Path = defaults.RESULTS_DIR, base_dir: str | Path | None = None,
              run_id: str | None = None, resume: bool = True, executor: str | None = None,
              workers: int | None = None, device: str | None = None,
              cache_dir: str | Path | None = None, progress: bool = False,
              report: bool = True) -> Run:
    """`bench run` from Python. `suite` is a suite file, or the same tables as a dict
    ({"suite": {"name": ...}, "datasets": {...}, "robustness": [...]}): validated exactly as
    a file, with its relative paths relative to `base_dir` (default: the current folder).
    Bad input raises bench.errors.UserError with the one line `bench` would print."""
    from bench.runner import run_suite as run

    loaded = suite if isinstance(suite, (str, Path)) else _from_dict(suite, base_dir)
    options = {} if workers is None else {"workers": workers}
    outcome = run(loaded, results_dir=results_dir, run_id=run_id, resume=resume,
                  executor=executor, executor_options=options, device=device,
                  cache_dir=cache_dir, progress=progress, report=report)
    return Run(outcome.run_dir, outcome.status, outcome.ok, outcome.failed)


def _from_dict(suite: Mapping[str, Any], base_dir: str | Path | None):
    """The dict as a suite text (kept in the run's manifest like a file's) at a path in
    `base_dir` that is never written."""
    import tomli_w

    from bench.errors import UserError
    from bench.suite.load import load_suite_text

    try:
        text = tomli_w.dumps(dict(suite))
    except TypeError as exc:
        raise UserError(f"suite: cannot be written as TOML ({exc})") from None
    name = str((suite.get("suite") or {}).get("name", "suite"))
    return load_suite_text(text, Path(base_dir or Path.cwd()).resolve() / f"{name}.toml")
