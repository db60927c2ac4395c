"""Cached artefacts (trained weights), keyed by what made them and by the code that made them.

    <cache>/<kind>/<artifact key>/<code key>.pt      the payload (written first)
    <cache>/<kind>/<artifact key>/<code key>.json    a sidecar: config, code, what the cell
                                                     recorded (written last: its presence
                                                     means the payload is complete)

The artifact key (bench.identity.artifact_key) covers the cell's portable config and the
content it consumed (e.g. the data fingerprint). The code key names the bench source that
made it: a run of changed code finds nothing and trains anew, unless the user asked to
reuse other code's artefacts (`bench run --reuse-other-code`, recorded in the manifest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.identity import code_key
from bench.store.atomic import atomic_write_bytes, atomic_write_text


@dataclass(frozen=True)
class CachedArtifact:
    payload: Path
    sidecar: dict  # as written by `store`; "code" says which code made it


def artifact_dir(cache_dir: Path, kind: str, key: str) -> Path:
    return Path(cache_dir) / kind / key


def lookup(cache_dir: Path, kind: str, key: str, code: dict,
           reuse_other_code: bool = False) -> CachedArtifact | None:
    """This code's artefact for `key`; with `reuse_other_code`, else the newest one of any code."""
    folder = artifact_dir(cache_dir, kind, key)
    own = _read(folder, code_key(code))
    if own is not None or not reuse_other_code or not folder.is_dir():
        return own
    sidecars = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in sidecars:
        found = _read(folder, path.stem)
        if found is not None:
            return found
    return None


def store(cache_dir: Path, kind: str, key: str, code: dict, payload: bytes,
          sidecar: dict) -> CachedArtifact:
    """Write the payload, then the sidecar (both atomically)."""
    folder = artifact_dir(cache_dir, kind, key)
    name = code_key(code)
    atomic_write_bytes(folder / f"{name}.pt", payload)
    record = sidecar | {"code": code}
    # allow_nan: e.g. the standard recipe's PGD accuracy is NaN and must read back as NaN.
    atomic_write_text(folder / f"{name}.json",
                      json.dumps(record, indent=1, sort_keys=True, allow_nan=True))
    return CachedArtifact(folder / f"{name}.pt", record)


def _read(folder: Path, name: str) -> CachedArtifact | None:
    payload, sidecar = folder / f"{name}.pt", folder / f"{name}.json"
    if not payload.exists():
        return None
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None  # the payload of an interrupted write: not complete
    except json.JSONDecodeError:
        return None  # unreadable (written by another version): make it anew
    if not isinstance(record, dict) or "code" not in record:
        return None
    return CachedArtifact(payload, record)
