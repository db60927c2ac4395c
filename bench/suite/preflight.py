"""Checks that need the file system, run by `bench validate` and before `bench run` writes anything.

The schema checks what a suite says; preflight checks that what it points to exists
(datasets under their root, checkpoints, factories, weights files).
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import SuiteError, UserError
from bench.registry import import_target
from bench.suite.load import LoadedSuite
from bench.suite.plan import Cell, resolve_path
from bench.suite.tomlfile import find_line


def preflight(loaded: LoadedSuite, cells: list[Cell]) -> None:
    from bench.data import load_dataset

    suite, path, text = loaded.suite, loaded.path, loaded.text
    used = {c.config["dataset"]["name"]: c.config["dataset"] for c in cells if "dataset" in c.config}
    for cfg in used.values():
        try:
            load_dataset(cfg, "test")
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
    for name, m in suite.models.items():
        if m.factory is None:
            continue
        checkpoint = resolve_path(m.checkpoint, path.parent)
        if not Path(checkpoint).is_file():
            raise SuiteError(path, f"models.{name}.checkpoint",
                             f"no such file {checkpoint!r} (expected a state_dict saved with torch.save)",
                             find_line(text, ("models", name, "checkpoint")))
        try:
            import_target(m.factory)
        except UserError as exc:
            raise SuiteError(path, f"models.{name}.factory", str(exc),
                             find_line(text, ("models", name, "factory"))) from None
    weights = suite.suite.inception_weights
    if weights is not None:
        full = resolve_path(weights, path.parent)
        if not Path(full).is_file():
            raise SuiteError(path, "suite.inception_weights",
                             f"no such file {full!r} (expected torch-fidelity's "
                             "weights-inception-2015-12-05-6726825d.pth)",
                             find_line(text, ("suite", "inception_weights")))
