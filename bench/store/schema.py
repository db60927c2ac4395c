"""The result schema: its version, table names and the columns every reader relies on.

Floats are stored unrounded; only reports round.
"""

# v1: the cells table's key column was `id`; v2: it is `cell_id`, like every other table's.
# Readers of older runs migrate them in memory: bench/store/migrate.py.
SCHEMA_VERSION = 2

# Tables a run may hold (Parquet + CSV under tables/).
CELLS = "cells"  # one row per cell: cell_id, kind, label, status, reason, seconds
TRAINING = "training"  # per-epoch training history (incl. catastrophic-overfitting watch)
ROBUSTNESS = "robustness"  # one row per (model, attack, epsilon, seed)
ROBUSTNESS_AGG = "robustness_agg"  # mean / std / 95% CI over seeds
CHECKS = "checks"  # evaluation sanity checks (Carlini et al. 2019)
EXTRACTORS = "extractors"  # domain feature extractors used for FID
GAN = "gan"  # one row per (gan, seed, step)
GAN_AGG = "gan_agg"
THROUGHPUT = "throughput"  # one row per throughput configuration and seed
THROUGHPUT_AGG = "throughput_agg"

CELL_ID = "cell_id"  # added to every record row by the store
