"""Checks that need the file system, run by `bench validate` and before `bench run` writes anything.

The schema checks what a suite says; preflight checks that what it points to exists
(datasets under their root, checkpoints, factories, weights files). It reads file names and
Python source, never data or weights, and imports no torch: `bench validate` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.files import check_dataset_files
from bench.errors import SuiteError, UserError
from bench.registry import check_target
from bench.suite.checkpoints import expand_checkpoints, resolve_path
from bench.suite.load import LoadedSuite
from bench.suite.plan import Cell, zoo_checkpoint
from bench.suite.reference_checks import zoo_entry
from bench.suite.tomlfile import find_line, key_path


def preflight(loaded: LoadedSuite, cells: list[Cell]) -> None:
    suite, path, text = loaded.suite, loaded.path, loaded.text
    used = {c.config.dataset.name: c.config.dataset for c in cells}
    for cfg in used.values():
        try:
            check_dataset_files(cfg)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        except OSError as exc:  # e.g. a path too long for the file system
            loc = ("datasets", cfg.name, "root")
            raise SuiteError(path, key_path(loc), f"cannot read {cfg.root!r} ({exc.strerror or exc})",
                             find_line(text, loc)) from None
    for name, m in suite.models.items():
        if m.robustbench is not None and not m.download:
            _require_zoo_checkpoint(loaded, name, zoo_checkpoint(m, path.parent))
        if m.factory is None:
            continue
        for ckpt in expand_checkpoints(name, m.checkpoint, path.parent, path, text):
            _require_file(loaded, ("models", name, "checkpoint"), ckpt.path,
                          "a state_dict saved with torch.save")
        try:
            check_target(m.factory)
        except UserError as exc:
            raise SuiteError(path, f"models.{name}.factory", str(exc),
                             find_line(text, ("models", name, "factory"))) from None
    weights = suite.suite.inception_weights
    if weights is not None:
        _require_file(loaded, ("suite", "inception_weights"), resolve_path(weights, path.parent),
                      "torch-fidelity's weights-inception-2015-12-05-6726825d.pth")


def _require_file(loaded: LoadedSuite, loc: tuple, full: str, expected: str) -> None:
    try:
        problem = None if Path(full).is_file() else "no such file"
    except OSError as exc:  # e.g. a name too long for the file system
        problem = f"cannot read ({exc.strerror or exc})"
    if problem:
        raise SuiteError(loaded.path, key_path(loc), f"{problem}: {full!r} (expected {expected})",
                         find_line(loaded.text, loc))


def _require_zoo_checkpoint(loaded: LoadedSuite, name: str, full: str) -> None:
    """A zoo model's checkpoint must be in the model folder: bench downloads nothing unless
    the suite says `download = true`. The error says where RobustBench publishes it."""
    if Path(full).is_file():
        return
    zoo = loaded.suite.models[name].robustbench
    entry = zoo_entry(zoo)
    source = (f"RobustBench publishes it at {entry.url} (what robustbench.utils.load_model "
              f"downloads for {zoo.name!r})" if entry is not None and entry.url
              else f"RobustBench publishes it with its model zoo ({zoo.name!r})")
    loc = ("models", name, "robustbench")
    raise SuiteError(loaded.path, key_path(loc),
                     f"no checkpoint {full!r}; {source}: save it as that file, or set "
                     "download = true", find_line(loaded.text, loc))
