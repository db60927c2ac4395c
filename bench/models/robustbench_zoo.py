"""RobustBench zoo models from a local folder: `[models.X] robustbench = {...}`.

The model is built and loaded by robustbench's own `robustbench.utils.load_model`, so its
checkpoint handling is RobustBench's exactly (the `state_dict` wrapper, the `module.` and
`model.` prefixes, the per-model exceptions), from RobustBench's layout:
MODEL_DIR/DATASET/THREAT_MODEL/NAME.pt. Two things differ, both enforced here:

- nothing is downloaded unless the suite says `download = true`: a missing file is a one-line
  error (bench validate reports it first, bench.suite.preflight), and models whose weights
  come from a hub (timm, torchvision) are refused;
- its `torch.load` runs with `weights_only=True`: while it loads, robustbench.utils sees a
  view of torch whose `load` forces it (robustbench 1.1.1 calls `torch.load(path,
  map_location=...)`), so a checkpoint that pickles code fails with one line.
"""

from __future__ import annotations

import pickle
import re
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator

from torch import nn

from bench.errors import UserError, one_line
from bench.identity import file_sha256
from bench.models.build import maybe_normalized
from bench.models.zoo_index import suggest
from bench.reference_extra import import_robustbench, installed_version
from bench.seeding import seeded
from bench.suite.cell_configs import RobustBenchSource


def load_zoo_model(source: RobustBenchSource, model_name: str
                   ) -> tuple[nn.Module, tuple[str, ...]]:
    """The zoo model with its weights from `source.checkpoint`, in eval mode, and a note
    saying which it is."""
    key = f"models.{model_name}.robustbench"
    import_robustbench(key)
    from robustbench import utils
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    dataset, threat = BenchmarkDataset(source.dataset), ThreatModel(source.threat_model)
    entries = model_dicts[dataset][threat]
    version = installed_version("robustbench")
    if source.name not in entries:
        raise UserError(f"{key}: robustbench {version} has no {source.dataset} "
                        f"{source.threat_model} model {source.name!r}"
                        f"{suggest(source.name, list(entries))}")
    _require_local_file(utils, entries[source.name], source, key)
    model_dir = Path(source.checkpoint).parents[2]  # .../DATASET/THREAT_MODEL/NAME.pt
    if Path(source.checkpoint) != model_dir / source.dataset / source.threat_model / \
            f"{source.name}.pt":
        raise ValueError(f"{source.checkpoint}: not RobustBench's path for {source.name!r}")
    with seeded(0), weights_only_loads(utils):  # initial weights drawn, then overwritten
        try:
            model = utils.load_model(source.name, model_dir=str(model_dir), dataset=dataset,
                                     threat_model=threat)
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise UserError(f"{key}: cannot load {source.checkpoint!r} with weights_only=True "
                            f"({_first_line(exc)})") from None
        except RuntimeError as exc:  # load_state_dict(strict=True) in _safe_load_state_dict
            raise UserError(f"{key}: {source.checkpoint!r} does not fit robustbench's "
                            f"architecture for {source.name!r} ({_mismatch(exc)})") from None
    _check_unchanged(source, key)
    note = f"robustbench {version} {source.dataset}/{source.threat_model}/{source.name}"
    return maybe_normalized(model, source.normalize).eval(), (note,)


def _require_local_file(utils: ModuleType, entry: dict, source: RobustBenchSource,
                        key: str) -> None:
    """The checkpoint is where RobustBench's layout puts it, or `download = true` lets
    robustbench fetch it (its own download_gdrive_new, what load_model calls)."""
    gdrive = entry.get("gdrive_id")
    hub_name = (f"{source.name.lower().replace('-', '_')}_{source.dataset}_"
                f"{source.threat_model.lower()}")
    if not gdrive or isinstance(gdrive, list) or utils.timm.is_model(hub_name) or \
            (source.dataset == "imagenet" and "Standard" in source.name):
        raise UserError(f"{key}: {source.name!r} is not a zoo model of one RobustBench "
                        "checkpoint file (an ensemble, or weights from timm's or torchvision's "
                        "hub); bench loads those only")
    path = Path(source.checkpoint)
    if path.is_file():
        return
    if not source.download:
        raise UserError(f"{key}: no checkpoint {str(path)!r}; RobustBench publishes it at "
                        f"https://drive.google.com/uc?id={gdrive}: save it as that file, or "
                        "set download = true")
    path.parent.mkdir(parents=True, exist_ok=True)
    utils.download_gdrive_new(gdrive, path)


def _check_unchanged(source: RobustBenchSource, key: str) -> None:
    if source.checkpoint_sha256 is not None and \
            file_sha256(source.checkpoint) != source.checkpoint_sha256:
        raise UserError(f"{key}: {source.checkpoint!r} changed after the suite was planned "
                        "(its sha256 differs); run the suite again")


class WeightsOnlyTorch:
    """torch as robustbench.utils sees it while bench loads a zoo model: the same module,
    except that `load` always passes weights_only=True."""

    def __init__(self, torch_module: ModuleType):
        self._torch = torch_module

    def __getattr__(self, name: str):
        return getattr(self._torch, name)

    def load(self, *args, **kwargs):
        return self._torch.load(*args, **{**kwargs, "weights_only": True})


@contextmanager
def weights_only_loads(utils: ModuleType) -> Iterator[None]:
    real = utils.torch
    utils.torch = WeightsOnlyTorch(real)
    try:
        yield
    finally:
        utils.torch = real


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return one_line(text.splitlines()[0]) if text else type(exc).__name__


def _mismatch(exc: RuntimeError) -> str:
    """load_state_dict's error in one line: "missing keys: 120 (block1.layer.0.bn1.weight,
    ...); unexpected keys: 62 (...)", or its first line when it says something else."""
    parts = []
    for line in str(exc).splitlines():
        label, _, keys = line.strip().partition(" in state_dict: ")
        names = re.findall(r'"([^"]+)"', keys)
        if names:
            more = f", ... {len(names) - 2} more" if len(names) > 2 else ""
            parts.append(f"{label.lower()}: {len(names)} ({', '.join(names[:2])}{more})")
        elif line.strip().startswith("size mismatch"):
            parts.append(line.strip())
    return one_line("; ".join(parts[:4]) if parts else _first_line(exc))
