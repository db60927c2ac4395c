"""What a cell *is*: the one identity behind plan ids, compare grouping and every cache.

    cell_id(kind, config, deps)            the stable id of a planned cell
    group_id(kind, config, dep_groups)     the same without the seed: cells that differ only
                                           in their seed share it (compare pools them)
    artifact_key(kind, config, content)    a cache key for what a cell produces (trained weights,
                                           extractor weights, FID statistics)
    code_identity()                        bench's version and a hash of its source

Machine-local paths (a dataset root, a checkpoint or weights path, the results and cache dirs)
are not part of identity, so the same suite run in two folders or on two machines has the same
ids. What those paths point to is: a checkpoint's or weights file's sha256 is recorded in the
config at plan time, and a dataset's content fingerprint (bench.fingerprint) enters the cache
keys and the result rows when a cell loads it.

Pure Python on purpose (no torch): `bench validate` plans without importing torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

# Keys whose values are paths on this machine. Their content is identified separately.
MACHINE_LOCAL_KEYS = frozenset({"root", "checkpoint", "inception_weights", "results_dir",
                                "cache_dir"})
SEED_KEY = "seed"  # the top-level key that varies between the seeds of one cell
ID_LENGTH = 16
# Dependency roles of a merged robustness cell on its sample shards ("shard/00003"). Sharding
# is how a cell ran, not what it is: its rows equal the unsharded cell's, so its identity (and
# the id compare matches runs by) leaves these roles out.
SHARD_ROLE = "shard/"
# ...and on the cell that ran its model-level sanity checks beside the shards (the same rows
# an unsharded cell computes itself).
CHECKS_ROLE = "part/model-checks"
PART_ROLES = (SHARD_ROLE, CHECKS_ROLE)


def portable(value):
    """`value` without machine-local keys, at any depth."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items() if k not in MACHINE_LOCAL_KEYS}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    return value


def digest(payload, length: int = ID_LENGTH) -> str:
    """sha256 of the canonical JSON of `payload`, as `length` hex digits."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def cell_id(kind: str, config: dict, deps: dict[str, str]) -> str:
    return digest({"kind": kind, "config": portable(config), "deps": identity_deps(deps)})


def group_id(kind: str, config: dict, dep_groups: dict[str, str] | None = None) -> str:
    """The cell's identity with its seed left out, at every level: `dep_groups` maps each
    dependency role to that dependency's own group id (None: dependencies not known)."""
    config = {k: v for k, v in config.items() if k != SEED_KEY}
    return digest({"kind": kind, "config": portable(config),
                   "deps": identity_deps(dep_groups or {})})


def identity_deps(deps: dict) -> dict:
    """The dependencies that are part of a cell's identity: all but the parts a sharded cell
    ran in (its sample shards, its model checks)."""
    return {role: dep for role, dep in deps.items() if not role.startswith(PART_ROLES)}


def artifact_key(kind: str, config: dict, content: dict | None = None) -> str:
    """Cache key of what a cell produces: its portable config plus the content it consumed
    (e.g. {"data": fingerprint}). Code identity is kept apart (see cache folders)."""
    return digest({"kind": kind, "config": portable(config), "content": content or {}}, 32)


@functools.lru_cache(maxsize=1)
def code_identity() -> dict:
    """{"version", "source_sha256"}: bench's version and a hash of every .py file under bench/.

    Cached trained weights and automatic resume are keyed by it, so a run of changed code
    never silently reuses what other code produced."""
    from bench import __version__

    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return {"version": __version__, "source_sha256": h.hexdigest()}


def code_key(code: dict) -> str:
    """Short name of a code identity, for cache folders."""
    return digest(code)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
