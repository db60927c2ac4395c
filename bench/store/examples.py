"""Per-example records: for every evaluated example, attack and ε, what happened to it.

Two forms of the same records:

- in the journal, one `example_blocks` row per (evaluating cell, ε): the identity of what
  was evaluated (the robustness row's keys), `start` (the position of the block's first
  example among the cell's evaluated examples) and the per-example arrays, each packed
  (little-endian bytes, zlib, base64, behind its numpy dtype: "<i8:eJz..."). A sample shard
  writes the block of its own examples; an unsharded cell, one block of all of them.
  10,000 examples at 7 ε take about 1 MB of JSON.
- in the run's tables, `examples` (Parquet only: one row per example, attack and ε is too
  many for a CSV file), built from the blocks by bench.analysis: `example` (the index in
  the split as its loader reads it), `position`, `label`, `clean_pred`, `adv_pred`,
  `clean_correct`, `adv_correct`, `robust` (right clean and attacked, RobustBench's
  definition) and the perturbation's `linf` and `l2`, plus the per-example worst case
  over attacks as rows with attack "worst_case".
"""

from __future__ import annotations

import base64
import zlib
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from bench.store import schema as S

ARRAYS = ("index", "label", "clean_pred", "adv_pred", "linf", "l2")


def pack_array(values) -> str:
    """A 1-d array (or tensor) -> "<dtype>:<base64 of zlib of its little-endian bytes>"."""
    if hasattr(values, "detach"):  # a tensor, maybe on a GPU, maybe still in a graph
        values = values.detach().cpu().numpy()
    a = np.ascontiguousarray(np.asarray(values).reshape(-1))
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return f"{a.dtype.str}:{base64.b64encode(zlib.compress(a.tobytes(), 6)).decode('ascii')}"


def unpack_array(text: str) -> np.ndarray:
    dtype, _, data = text.partition(":")
    return np.frombuffer(zlib.decompress(base64.b64decode(data, validate=True)), dtype=dtype)


def block_row(ident: Mapping, *, epsilon: float, start: int, arrays: Mapping[str, object],
              attack_repr: str, attack_params: str, alpha_used) -> dict:
    """One `example_blocks` row: `arrays` holds ARRAYS, one value per example."""
    lengths = {len(arrays[k]) for k in ARRAYS}
    if len(lengths) != 1:
        raise ValueError(f"per-example arrays of different lengths: {sorted(lengths)}")
    return S.row(S.EXAMPLE_BLOCKS, **ident, epsilon=epsilon, start=int(start), n=lengths.pop(),
                 attack_repr=attack_repr, attack_params=attack_params, alpha_used=alpha_used,
                 **{k: pack_array(arrays[k]) for k in ARRAYS})


def merged_blocks(rows: Iterable[Mapping]) -> dict[float, dict]:
    """ε -> the arrays of every block at that ε, concatenated in `start` order, with the
    first block's attack_repr, attack_params and alpha_used. Blocks must tile their range."""
    by_eps: dict[float, list[Mapping]] = {}
    for r in rows:
        by_eps.setdefault(float(r["epsilon"]), []).append(r)
    merged = {}
    for eps, blocks in by_eps.items():
        blocks = sorted(blocks, key=lambda r: int(r["start"]))
        expected = 0
        for b in blocks:
            if int(b["start"]) != expected:
                raise ValueError(f"ε={eps:g}: the blocks leave a gap or overlap at position "
                                 f"{expected} (a block starts at {b['start']})")
            expected += int(b["n"])
        first = blocks[0]
        merged[eps] = {k: np.concatenate([unpack_array(b[k]) for b in blocks]) for k in ARRAYS}
        merged[eps] |= {k: first[k] for k in ("attack_repr", "attack_params", "alpha_used")}
    return merged


# The columns of a block row that name what was evaluated (everything but the arrays).
def identity_columns(blocks: pd.DataFrame) -> list[str]:
    drop = {*ARRAYS, "start", "n", "attack_repr", "attack_params", "alpha_used"}
    return [c for c in blocks.columns if c not in drop]


def examples_table(blocks: pd.DataFrame) -> pd.DataFrame:
    """The long `examples` table: one row per example of every block."""
    if blocks.empty:
        return pd.DataFrame()
    parts = []
    ident = identity_columns(blocks)
    for rec in blocks.to_dict("records"):
        arrays = {k: unpack_array(rec[k]) for k in ARRAYS}
        n = len(arrays["index"])
        label = arrays["label"].astype(np.int64)
        clean_pred = arrays["clean_pred"].astype(np.int64)
        adv_pred = arrays["adv_pred"].astype(np.int64)
        clean_correct, adv_correct = clean_pred == label, adv_pred == label
        # One constructor per block, the block's settings broadcast (a column set at a time
        # cost ~30 ms a run of 7 blocks, most of building the tables).
        parts.append(pd.DataFrame({
            **{c: [rec[c]] * n for c in ident},
            "example": arrays["index"].astype(np.int64),
            "position": np.arange(rec["start"], rec["start"] + n),
            "label": label, "clean_pred": clean_pred, "adv_pred": adv_pred,
            "clean_correct": clean_correct, "adv_correct": adv_correct,
            "robust": clean_correct & adv_correct,
            "linf": arrays["linf"].astype(np.float64), "l2": arrays["l2"].astype(np.float64)}))
    out = pd.concat(parts, ignore_index=True)
    return out[[*ident, *EXAMPLE_COLUMNS]].sort_values(
        [*[c for c in ("model", "seed", "attack", "epsilon") if c in ident], "position"],
        kind="stable", ignore_index=True)


EXAMPLE_COLUMNS = ["example", "position", "label", "clean_pred", "adv_pred", "clean_correct",
                   "adv_correct", "robust", "linf", "l2"]
