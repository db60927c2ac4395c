"""From journal entries to tidy tables: record tables plus aggregates and sanity checks."""

from __future__ import annotations

import pandas as pd

from bench.analysis.aggregate import aggregate_over_seeds
from bench.store import schema as S
from bench.store.run_store import CellRecord
from bench.suite.attack_options import SETTING_KEYS

ACCURACIES = ["clean_acc", "robust_acc", "adv_acc"]
# Each seed's binomial interval over its n examples, averaged over seeds beside the interval
# over seeds (for a user's checkpoint under FGSM, which ignores the seed, it is the only one).
BINOMIAL_MEANS = [f"{a}_binom_{side}" for a in ACCURACIES for side in ("low", "high")]
ROBUSTNESS_VALUES = [*ACCURACIES, "acc_drop", "relative_drop", "attack_success_rate",
                     "images_per_s"]
# What tells robustness rows apart besides the seed: the attack with every setting, and the
# data evaluated (two settings never pool). Not checkpoint_sha256: a trained model's weights
# differ from seed to seed by design, and within one run a model name is one source.
ROBUSTNESS_KEYS = ["model", "dataset", "split", "attack", *SETTING_KEYS, "limit", "batch_size",
                   "data_fingerprint", "n", "epsilon"]
# Worst-case rows (bench.metrics.worst_case) pool seeds over the same attacks only.
WORST_CASE_KEYS = ["model", "dataset", "split", "attack", "norm", "data_fingerprint", "n",
                   "attacks", "epsilon"]

AGGREGATES = {
    # table -> (aggregate table, group columns, value columns, columns averaged as they are)
    S.ROBUSTNESS: (S.ROBUSTNESS_AGG, ROBUSTNESS_KEYS, ROBUSTNESS_VALUES, BINOMIAL_MEANS),
    S.GAN: (S.GAN_AGG, ["gan", "arch", "dataset", "extractor", "num_samples", "step"],
            ["fid", "kid_mean", "isc_mean", "precision", "recall", "real_floor_fid",
             "fid_at_floor_count", "train_images_per_s"], []),
    S.THROUGHPUT: (S.THROUGHPUT_AGG, ["workload", "target", "batch_size", "precision",
                                      "channels_last", "compile", "device_name"],
                   ["images_per_s", "median_s", "achieved_tflops", "mfu", "peak_memory_bytes"],
                   []),
}


def build_tables(cells: dict[str, CellRecord]) -> dict[str, pd.DataFrame]:
    rows: dict[str, list[dict]] = {}
    for rec in cells.values():
        for table, records in rec.records.items():
            rows.setdefault(table, []).extend({S.CELL_ID: rec.id, **r} for r in records)
    rows.pop(S.MODEL_CHECK_PART, None)  # the merging cell's `checks` rows hold them
    tables = {name: declared_order(name, pd.DataFrame(r)) for name, r in sorted(rows.items())}
    tables[S.CELLS] = cells_table(cells)
    add_examples(tables)
    for table, (agg_name, by, values, means) in AGGREGATES.items():
        if table in tables:
            agg = aggregate_over_seeds(completed_rows(tables[table]), by, values, means)
            if not agg.empty:
                tables[agg_name] = agg
    if S.CORRECTNESS in tables:
        add_worst_case(tables)
    add_checks(tables)
    return tables


def declared_order(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Columns in the schema's order (the journal keeps records with sorted keys), the cell
    id first; columns the schema does not declare (an older run's) last."""
    declared = [c for c in (S.CELL_ID, *S.COLUMNS.get(name, ())) if c in df.columns]
    return df[declared + [c for c in df.columns if c not in declared]]


def add_examples(tables: dict[str, pd.DataFrame]) -> None:
    """The long `examples` table from the journal's per-example blocks (which are not a
    table of their own), with the per-example worst case over attacks; and where each shard
    ran, on the `shards` rows."""
    from bench.metrics.worst_case import onto_subsets, worst_case_examples
    from bench.store.examples import examples_table

    blocks = tables.pop(S.EXAMPLE_BLOCKS, None)
    if S.SHARDS in tables:
        host = tables[S.CELLS].set_index(S.CELL_ID)["host"]
        shards = tables[S.SHARDS].assign(host=tables[S.SHARDS][S.CELL_ID].map(host))
        tables[S.SHARDS] = shards.sort_values(["model", "seed", "attack", "shard"],
                                              kind="stable", ignore_index=True)
    if blocks is None or blocks.empty:
        return
    examples = examples_table(blocks)
    worst = worst_case_examples(onto_subsets(tables[S.CORRECTNESS])) \
        if S.CORRECTNESS in tables else pd.DataFrame()
    if not worst.empty:  # the example and its label, by its position in its evaluated subset
        where = examples[["data_fingerprint", "position", "example", "label"]].drop_duplicates(
            ["data_fingerprint", "position"])
        worst = worst.merge(where, on=["data_fingerprint", "position"], how="left")
        whole = [c for c in examples.columns if pd.api.types.is_integer_dtype(examples[c])]
        examples = pd.concat([examples, worst], ignore_index=True)
        # Worst-case rows have no attack settings or predictions: keep integers integers.
        examples = examples.astype({c: "Int64" for c in whole})
    tables[S.EXAMPLES] = examples


def add_checks(tables: dict[str, pd.DataFrame]) -> None:
    """The `checks` table: the cells' model-level verdicts, then the paired checks over the
    correctness rows, the size and logit-output checks over the robustness rows
    (bench.checks)."""
    from bench.checks.rows import logit_output_checks, size_checks
    from bench.checks.table import correctness_checks

    rows = correctness_checks(tables[S.CORRECTNESS]) if S.CORRECTNESS in tables else []
    if S.ROBUSTNESS in tables:
        rows += size_checks(tables[S.ROBUSTNESS]) + logit_output_checks(tables[S.ROBUSTNESS])
    parts = [t for t in (tables.get(S.CHECKS), pd.DataFrame(rows))
             if t is not None and not t.empty]
    if parts:  # the declared column order (journal entries come back with sorted keys)
        checks = pd.concat(parts, ignore_index=True)
        tables[S.CHECKS] = checks.reindex(columns=[S.CELL_ID, *S.COLUMNS[S.CHECKS]])


def add_worst_case(tables: dict[str, pd.DataFrame]) -> None:
    """The `worst_case` table (per model, seed, data and ε, over every attack run on those
    examples), and its mean over seeds as `attack = "worst_case"` rows of robustness_agg."""
    from bench.metrics.worst_case import onto_subsets, worst_case_table

    worst = worst_case_table(onto_subsets(tables[S.CORRECTNESS]))
    if worst.empty:
        return
    tables[S.WORST_CASE] = worst
    agg = aggregate_over_seeds(worst, WORST_CASE_KEYS, ROBUSTNESS_VALUES, BINOMIAL_MEANS)
    parts = [t for t in (tables.get(S.ROBUSTNESS_AGG), agg) if t is not None and not t.empty]
    tables[S.ROBUSTNESS_AGG] = pd.concat(parts, ignore_index=True)


def checkpoint_notes(tables: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    """What was done to load each user checkpoint (unwrapped, prefix stripped), by its suite
    key, from the robustness rows: for the manifest."""
    rob = tables.get(S.ROBUSTNESS)
    if rob is None or "checkpoint_notes" not in rob.columns:
        return {}
    noted = rob[rob["checkpoint_notes"].fillna("").astype(str) != ""]
    return {f"models.{model}.checkpoint": sorted(set(g["checkpoint_notes"]))
            for model, g in noted.groupby("model", sort=True)}


def completed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of cells that finished. A failed cell's rows stay in its table (marked in
    `failure`) but out of the means, which would otherwise mix curves cut short."""
    if "failure" not in df.columns:
        return df
    return df[df["failure"].fillna("").astype(str) == ""]


def cells_table(cells: dict[str, CellRecord]) -> pd.DataFrame:
    columns = S.COLUMNS[S.CELLS]
    rows = [S.row(S.CELLS, cell_id=r.id, **{c: getattr(r, c) for c in columns[1:]})
            for r in cells.values()]
    return pd.DataFrame(rows, columns=list(columns))
