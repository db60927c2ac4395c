"""From a model source (bench.suite.cell_configs) to an `nn.Module` that takes pixels in [0, 1].

- built-in: `TrainedSource` / `TrainedTarget` (arch, normalize);
- a user's own: `UserSource` / `UserTarget` (factory, checkpoint, checkpoint_sha256, normalize).

Normalization, when given, wraps the model (`Normalized`), so attacks always see pixels.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from bench.errors import UserError
from bench.models import MODELS
from bench.models.normalize import Normalized
from bench.registry import import_target
from bench.suite.schema import Normalization


def build_classifier(arch: str, normalize: Normalization | None,
                     data_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A freshly initialised built-in architecture (initialisation uses the global RNG:
    callers that need reproducibility seed it, see bench.seeding.seeded)."""
    channels, height, width = data_shape
    if normalize is not None and len(normalize.mean) not in (1, channels):
        raise UserError(f"normalize has {len(normalize.mean)} values but the images have "
                        f"{channels} channel(s); give 1 or {channels}")
    model = MODELS.get(arch)(channels, num_classes, (height, width))
    return maybe_normalized(model, normalize)


def load_user_model(source, model_name: str = "<model>") -> nn.Module:
    """Build the user's model with its factory, load its checkpoint strictly, eval mode."""
    return load_user_model_and_notes(source, model_name)[0]


def load_user_model_and_notes(source, model_name: str = "<model>"
                              ) -> tuple[nn.Module, tuple[str, ...]]:
    """`load_user_model`, plus what was done to the checkpoint to load it (see
    `unwrap_checkpoint`), for the rows and the manifest.

    `source` is a UserSource or UserTarget. Every problem the user can fix is a one-line
    `UserError` naming the suite key.
    """
    key = f"models.{model_name}"
    factory = import_target(source.factory)
    if not callable(factory):
        raise UserError(f"{key}.factory: {source.factory!r} is not callable")
    try:
        model = factory()
    except TypeError as exc:
        raise UserError(f"{key}.factory: calling {source.factory!r} with no arguments failed "
                        f"({exc}); expected a callable that takes none") from exc
    if not isinstance(model, nn.Module):
        raise UserError(f"{key}.factory: {source.factory!r} returned {type(model).__name__}, "
                        "expected a torch.nn.Module")
    state = load_state_dict_file(source.checkpoint, f"{key}.checkpoint", source.checkpoint_sha256)
    state, notes = unwrap_checkpoint(state)
    load_strict(model, state, f"{key}.checkpoint", f"the model from {source.factory!r}")
    return maybe_normalized(model, source.normalize).eval(), notes


# Where training scripts put the weights: Lightning and many repos ("state_dict"), the
# PyTorch "general checkpoint" recipe ("model_state_dict"), and others ("model").
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
DATA_PARALLEL_PREFIX = "module."


def unwrap_checkpoint(state: Mapping) -> tuple[dict, tuple[str, ...]]:
    """A state_dict as checkpoints come in the wild -> (plain state_dict, what was done).

    Unwraps `{"state_dict": {...}, "epoch": ...}`-style wrappers (WRAPPER_KEYS, nested ones
    too) and strips DataParallel's `module.` prefix when every key has it. A plain state_dict
    comes back unchanged with no notes (its values are tensors, never a dict).
    """
    notes: list[str] = []
    state = dict(state)
    for _ in range(len(WRAPPER_KEYS)):
        key = next((k for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if key is None:
            break
        others = sorted(str(k) for k in state if k != key)
        notes.append(f"unwrapped the checkpoint's {key!r} entry" + (
            f" (beside {_few(others)})" if others else ""))
        state = dict(state[key])
    if state and all(str(k).startswith(DATA_PARALLEL_PREFIX) for k in state):
        state = {k[len(DATA_PARALLEL_PREFIX):]: v for k, v in state.items()}
        notes.append(f"stripped DataParallel's {DATA_PARALLEL_PREFIX!r} prefix from "
                     f"{len(state)} keys")
    return state, tuple(notes)


def load_state_dict_file(path: str | Path, key: str, sha256: str | None = None) -> dict:
    """`torch.load(path, weights_only=True)`: tensors and plain containers only, never
    arbitrary pickled code."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{key}: no such file {str(path)!r}; expected a state_dict saved with "
                        "torch.save(model.state_dict(), path)") from None
    except OSError as exc:
        raise UserError(f"{key}: cannot read {str(path)!r} ({exc.strerror})") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(f"{key}: {str(path)!r} changed after the suite was planned "
                        "(its sha256 differs); run the suite again")
    try:
        # From the bytes already read, so the hash checked is the hash of what gets loaded.
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{key}: cannot load {str(path)!r} with weights_only=True ({first}); "
                        "expected a state_dict saved with torch.save(model.state_dict(), path)"
                        ) from None
    if not isinstance(state, Mapping):
        raise UserError(f"{key}: {str(path)!r} holds a {type(state).__name__}, expected a "
                        "state_dict (a dict of tensors)")
    return dict(state)


def load_strict(model: nn.Module, state: dict, key: str, what: str) -> None:
    """`load_state_dict(strict=True)`, with a one-line account of any mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape]
    problems = [f"{label}: {_few(items)}" for label, items in
                (("missing keys", missing), ("unexpected keys", unexpected),
                 ("shape mismatches (checkpoint vs model)", shapes)) if items]
    if problems:
        raise UserError(f"{key}: the state_dict does not match {what} ({'; '.join(problems)})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # e.g. a non-tensor value under a parameter's name
        raise UserError(f"{key}: the state_dict does not load into {what} "
                        f"({str(exc).strip().splitlines()[-1].strip()})") from None


def _few(items: list[str], limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def maybe_normalized(model: nn.Module, normalize: Normalization | None) -> nn.Module:
    if normalize is None:
        return model
    return Normalized(model, normalize.mean, normalize.std)
