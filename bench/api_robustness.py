"""Robustness of a model and examples held in memory: what `bench.api.evaluate_robustness` runs.

Not a second copy of the robustness cell: each attack is the suite's `[[robustness]]` section
validated by the suite schema (bench.suite.schema.RobustnessConfig), turned into the cell's
typed config by the plan's own function, attacked by the cell's own functions
(bench.cells.robustness.attack_loaded and summary_records) and tabled by the run's own
(bench.analysis.tables.build_tables). The only difference is where the model and the
examples come from: Python objects instead of a factory, a checkpoint and a dataset folder.
So the same model and examples through `bench run` and through this module give the same
numbers (tests/test_api_robustness.py), with the same torch thread count (default 1, as a
suite's `[suite] threads`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
import torch
from pydantic import ValidationError
from torch import nn

from bench import defaults, identity, provenance
from bench.attacks import attack_mode, output_classes
from bench.cells import RunEnv
from bench.cells.robustness import Target, attack_loaded, limited, summary_records
from bench.data import ImageData
from bench.fingerprint import state_dict_fingerprint
from bench.suite.cell_configs import MemoryData, MemorySource, RobustnessCellConfig
from bench.suite.plan import attack_params, model_check_key
from bench.suite.schema import RobustnessConfig

TABLES = ("robustness", "robustness_agg", "correctness", "examples", "worst_case", "checks",
          "shards")


def evaluate_robustness(model: nn.Module, data: Any, attacks: Sequence[str | Mapping] = ("fgsm",),
                        epsilons: Sequence[float | str] = (), *, limit: int | None = None,
                        seed: int = 0, batch_size: int = defaults.EVAL_BATCH_SIZE,
                        device: str = defaults.DEVICE, threads: int | str = defaults.THREADS,
                        model_name: str = "model", data_name: str = "data", split: str = "test",
                        data_seed: int = 0, checks: bool = True, progress: bool = False,
                        tables: bool = False) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Attack `model` on `data` with each of `attacks` at every ε of `epsilons`.

    model:    an nn.Module taking inputs in [0, 1] (normalise inside it, as in a suite).
    data:     (x, y) tensors, a map-style Dataset of (image, label), a DataLoader, or
              bench.data.ImageData; images as float in [0, 1] or uint8 in [0, 255], N×C×H×W.
    attacks:  names ("fgsm", "pgd", "autoattack", ...) or dicts of a `[[robustness]]`
              section's keys ({"attack": "pgd", "steps": 20, "norm": "l2", "epsilons": [...]})
              with the same defaults and the same validation as a suite.
    epsilons: the budgets of every attack that does not list its own ("8/255" works).
    limit, seed, batch_size, device, threads, split: as in a suite; `data_seed` is the seed of
    the `limit` subset (a suite's dataset `seed`). `checks`: the model-level sanity checks.

    Returns the `robustness` rows a suite run writes for this model (one per attack, setting
    and ε); with `tables=True`, every table a run writes for them: robustness,
    robustness_agg, correctness, examples (per example), worst_case, checks, shards.
    """
    sections = [section(spec, i, epsilons, batch_size, limit, model_name)
                for i, spec in enumerate(attacks)]
    env = RunEnv(device=provenance.resolve_device(device), cache_dir=_nowhere(),
                 artifacts_dir=_nowhere(), progress=progress,
                 threads=torch.get_num_threads() if threads == "all" else int(threads))
    examples = as_image_data(data, model, data_name, env.device)
    source = MemorySource(fingerprint=state_dict_fingerprint(model.state_dict()))
    records, checked = [], set()
    from bench.executors.execute import torch_threads

    with torch_threads(env.threads if env.device == "cpu" else None):
        for rob in sections:
            evaluated, subset = limited(examples, rob.limit, data_seed)
            config = RobustnessCellConfig(
                model=model_name, source=source, dataset=MemoryData(name=data_name, seed=data_seed),
                split=split, attack=rob.attack, attack_params=attack_params(rob),
                epsilons=list(rob.epsilons), batch_size=rob.batch_size, limit=rob.limit,
                seed=seed, model_checks=checks and model_check_key(model_name, seed, rob) not in checked,
                convergence=rob.convergence,
                implementation=rob.implementation)
            checked.add(model_check_key(model_name, seed, rob))
            records.append(evaluate_one(config, env, model, evaluated, subset))
    from bench.analysis.tables import build_tables

    out = build_tables({r.id: r for r in records})
    return {name: out[name] for name in TABLES if name in out} if tables else out["robustness"]


def evaluate_one(config: RobustnessCellConfig, env: RunEnv, model: nn.Module,
                 evaluated: ImageData, subset: dict):
    """One attack, exactly as an unsharded robustness cell runs it, as a journal record."""
    from bench.store.run_store import CellRecord

    own = attack_loaded(config, env, Target(model, (), config.source.fingerprint), evaluated,
                        subset)
    summary = summary_records(config, {}, env, own["example_blocks"], own["shards"],
                              loaded=(model, evaluated))
    cell = identity.cell_id("robustness", config.as_dict(), {})
    return CellRecord(id=cell, kind="robustness", label=f"{config.attack} {config.model}",
                      config=config.as_dict(), deps={}, status="ok", records=own | summary)


def section(spec: str | Mapping, index: int, epsilons: Sequence, batch_size: int,
            limit: int | None, model_name: str) -> RobustnessConfig:
    """One attack as a suite's `[[robustness]]` section, validated like one."""
    keys = {"attack": spec} if isinstance(spec, str) else dict(spec)
    keys = {"epsilons": list(epsilons), "batch_size": batch_size, "limit": limit, **keys}
    if keys.get("limit") is None:
        keys.pop("limit")
    if "models" in keys:
        raise ValueError(f"attacks[{index}]: 'models' is not an attack setting; the model is "
                         "the first argument")
    try:
        return RobustnessConfig(models=[model_name], **keys)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "attack"
        raise ValueError(f"attacks[{index}].{where}: {err['msg']}") from None


def as_image_data(data: Any, model: nn.Module, name: str, device: str) -> ImageData:
    """Examples as bench holds them: float N×C×H×W in [0, 1] and int64 labels (on the CPU;
    the attacks move each batch to `device`, where the model is)."""
    if isinstance(data, ImageData):
        return data
    x, y = _tensors(data)
    if x.dtype == torch.uint8:
        x = x.float() / 255
    if x.dim() == 3:  # N×H×W: one channel
        x = x.unsqueeze(1)
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"data: expected images N×C×H×W (float in [0, 1] or uint8), got "
                         f"{tuple(x.shape)} {x.dtype}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"data: {len(x)} images and {len(y)} labels")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError(f"data: pixel values must lie in [0, 1] (normalise inside the model), "
                         f"got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    x = x.detach().float().cpu().contiguous()
    with attack_mode(model, device):
        classes = output_classes(model, x, device)
    return ImageData(x, y.detach().long().cpu().reshape(-1), classes, name)


def _tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, torch.Tensor) for t in data):
        return data[0], data[1]
    if isinstance(data, torch.utils.data.DataLoader):
        batches = list(data)
        return (torch.cat([torch.as_tensor(b[0]) for b in batches]),
                torch.cat([torch.as_tensor(b[1]) for b in batches]))
    if isinstance(data, torch.utils.data.Dataset) or hasattr(data, "__getitem__"):
        items = [data[i] for i in range(len(data))]
        return (torch.stack([torch.as_tensor(x) for x, _ in items]),
                torch.as_tensor([int(y) for _, y in items]))
    raise ValueError(f"data: expected (x, y) tensors, a Dataset or a DataLoader, got "
                     f"{type(data).__name__}")


def _nowhere():
    """The cells write nothing for an in-memory evaluation: no cache, no artefacts."""
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "bench-api-unused"
