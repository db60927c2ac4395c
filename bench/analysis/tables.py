"""From journal entries to tidy tables: record tables plus aggregates and sanity checks."""

from __future__ import annotations

import pandas as pd

from bench.analysis.aggregate import aggregate_over_seeds
from bench.store import schema as S
from bench.store.run_store import CellRecord

AGGREGATES = {
    # table -> (aggregate table, group columns, value columns)
    S.ROBUSTNESS: (S.ROBUSTNESS_AGG, ["model", "dataset", "split", "attack", "epsilon"],
                   ["clean_acc", "robust_acc", "acc_drop", "relative_drop", "attack_success_rate",
                    "images_per_s"]),
    S.GAN: (S.GAN_AGG, ["gan", "arch", "dataset", "extractor", "num_samples", "step"],
            ["fid", "kid_mean", "isc_mean", "precision", "recall", "real_floor_fid",
             "train_images_per_s"]),
    S.THROUGHPUT: (S.THROUGHPUT_AGG, ["workload", "target", "batch_size", "precision",
                                      "channels_last", "compile", "device_name"],
                   ["images_per_s", "median_s", "achieved_tflops", "mfu", "peak_memory_bytes"]),
}


def build_tables(cells: dict[str, CellRecord]) -> dict[str, pd.DataFrame]:
    rows: dict[str, list[dict]] = {}
    for rec in cells.values():
        for table, records in rec.records.items():
            rows.setdefault(table, []).extend({S.CELL_ID: rec.id, **r} for r in records)
    tables = {name: pd.DataFrame(r) for name, r in sorted(rows.items())}
    tables[S.CELLS] = cells_table(cells)
    for table, (agg_name, by, values) in AGGREGATES.items():
        if table in tables:
            agg = aggregate_over_seeds(tables[table], by, values)
            if not agg.empty:
                tables[agg_name] = agg
    if S.ROBUSTNESS in tables:
        from bench.metrics.robustness import sanity_checks

        tables[S.CHECKS] = pd.DataFrame(sanity_checks(tables[S.ROBUSTNESS]))
    return tables


def cells_table(cells: dict[str, CellRecord]) -> pd.DataFrame:
    columns = S.COLUMNS[S.CELLS]
    rows = [S.row(S.CELLS, cell_id=r.id, **{c: getattr(r, c) for c in columns[1:]})
            for r in cells.values()]
    return pd.DataFrame(rows, columns=list(columns))
