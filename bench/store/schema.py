"""The result schema: its version, every table's name and every column a record may hold.

Cells build their records with `row(TABLE, **values)`, which checks the columns against the
declaration below and puts them in its order, so a misspelt or forgotten column fails in the
test run instead of quietly becoming a new column. Floats are stored unrounded; only reports
round (bench/report/numbers.py).
"""

from bench.suite.attack_options import SETTING_KEYS

# v1: the cells table's key column was `id`; v2: it is `cell_id`, like every other table's;
# v3: the robustness table drops `zero_grad_frac` and `eval_mode` (no check read them);
# per-example records (`examples`) and sample shards (`shards`) are new tables;
# v4: robustness and correctness rows say which implementation ran the attack
# (`implementation`: "torchattacks" or "reference", a setting column).
# Readers of older runs migrate them in memory: bench/store/migrate.py.
SCHEMA_VERSION = 4

# Tables a run may hold (Parquet + CSV under tables/).
CELLS = "cells"  # one row per cell: cell_id, kind, label, status, reason, seconds
TRAINING = "training"  # per-epoch training history (incl. catastrophic-overfitting watch)
ROBUSTNESS = "robustness"  # one row per (model, attack and its settings, epsilon, seed)
ROBUSTNESS_AGG = "robustness_agg"  # mean / std / 95% CI over seeds, worst case included
CORRECTNESS = "correctness"  # per-example correctness of each robustness row, bit-packed
EXAMPLE_BLOCKS = "example_blocks"  # journal only: per-example arrays of a cell's examples
EXAMPLES = "examples"  # derived: one row per example, attack and ε (Parquet only)
SHARDS = "shards"  # one row per evaluating cell (a sample shard, or an unsharded cell)
WORST_CASE = "worst_case"  # derived: per-example worst case over attacks (model, seed, ε)
CHECKS = "checks"  # evaluation sanity checks (Carlini et al. 2019)
MODEL_CHECK_PART = "model_check_part"  # journal only: a sharded cell's model checks, its rows
EXTRACTORS = "extractors"  # domain feature extractors used for FID
GAN = "gan"  # one row per (gan, seed, step)
GAN_AGG = "gan_agg"
THROUGHPUT = "throughput"  # one row per throughput configuration and seed
THROUGHPUT_AGG = "throughput_agg"
ERRORS = "errors"  # the traceback of a cell that failed unexpectedly

# Tables written as Parquet alone: one row per example, attack and ε is too many for CSV.
PARQUET_ONLY = frozenset({EXAMPLES})

CELL_ID = "cell_id"  # added to every record row by the store
RAN_ALONE = "ran_alone"  # added to every throughput row by the executor: no other cell beside it
ADDED_BY_RUN = (CELL_ID, RAN_ALONE)  # declared columns that the cells themselves do not set

# The columns of each record table, in the order they are stored. Aggregate tables are derived
# (bench/analysis) and named after these: <value>_mean, _std, _ci_low, _ci_high, n_seeds.
COLUMNS: dict[str, tuple[str, ...]] = {
    CELLS: (CELL_ID, "kind", "label", "status", "reason", "started_utc", "finished_utc",
            "seconds", "attempts", "host"),
    TRAINING: ("model", "arch", "recipe", "dataset", "seed", "epsilon", "data_fingerprint",
               "weights_code_sha256", "epoch", "train_loss", "train_acc", "heldout_clean_acc",
               "heldout_pgd_acc", "catastrophic_overfit", "kept", "seconds"),
    # The attack's settings are columns (None where the attack has no such setting), so no
    # table, check, plot or compare pools two settings. `alpha` is the configured step (None:
    # 2.5·ε/steps), `alpha_used` the one that ran at this ε; `attack_params` is every resolved
    # setting as JSON.
    ROBUSTNESS: ("model", "dataset", "split", "attack", *SETTING_KEYS, "alpha_used", "limit",
                 "batch_size", "attack_params", "attack_repr", "epsilon", "seed",
                 "data_fingerprint", "checkpoint_sha256", "checkpoint_notes", "output_warning",
                 "n", "n_clean_correct", "clean_acc",
                 "robust_acc", "adv_acc", "acc_drop", "relative_drop", "attack_success_rate",
                 "clean_acc_binom_low", "clean_acc_binom_high", "robust_acc_binom_low",
                 "robust_acc_binom_high", "adv_acc_binom_low", "adv_acc_binom_high",
                 "attack_success_rate_binom_low", "attack_success_rate_binom_high",
                 "linf_mean", "linf_max", "linf_ok", "l2_mean", "l2_max", "within_epsilon",
                 "seconds", "images_per_s"),
    # bench/store/correctness.py: one row per robustness row. Bit i of `clean_correct` and
    # `adv_correct` is example i of the evaluated data (`data_fingerprint`, n examples);
    # `examples` marks which examples of the split as loaded (`split_fingerprint`, `split_n`)
    # those are, so rows of a `limit`ed subset meet rows of the whole split in the worst case.
    CORRECTNESS: ("model", "dataset", "split", "attack", *SETTING_KEYS, "limit", "batch_size",
                  "epsilon", "seed", "data_fingerprint", "checkpoint_sha256",
                  "split_fingerprint", "split_n", "examples", "n", "clean_correct",
                  "adv_correct"),
    # bench/store/examples.py: one row per (evaluating cell, ε) in the journal; `examples`,
    # the long table, is built from these rows (bench.analysis.tables).
    EXAMPLE_BLOCKS: ("model", "dataset", "split", "attack", *SETTING_KEYS, "limit",
                     "batch_size", "epsilon", "seed", "data_fingerprint", "checkpoint_sha256",
                     "start", "n", "attack_repr", "attack_params", "alpha_used", "index",
                     "label", "clean_pred", "adv_pred", "linf", "l2"),
    # One row per cell that attacked examples: a sample shard, or an unsharded cell (one
    # shard of all). `seconds` is its clean pass and attack; the whole evaluated subset
    # (`data_fingerprint`, of `split_n` examples of the split) is the same in every shard.
    SHARDS: ("model", "dataset", "split", "attack", *SETTING_KEYS, "limit", "batch_size",
             "seed", "data_fingerprint", "checkpoint_sha256", "split_fingerprint", "split_n",
             "examples", "shard", "shards", "start", "stop", "n", "n_epsilons", "seconds",
             "examples_per_s", "device", "device_name", "checkpoint_notes", "output_warning"),
    # bench.checks.verdict.check_row: one verdict of one sanity check. Model-level checks come
    # from the robustness cell (epsilon None: over the model, not one ε), paired checks over
    # per-example correctness and the size check from bench.analysis. `setting` is the attack's
    # settings as text ("steps=10"); `catches` what the check is there to catch. GAN cells add
    # the FID checks of their final samples (model: the GAN; setting: step and extractor).
    CHECKS: ("check", "model", "dataset", "split", "attack", "setting", "epsilon", "seed",
             "passed", "value", "p_value", "detail", "catches"),
    EXTRACTORS: ("name", "hash", "dataset", "test_accuracy", "feature_dim", "train_steps",
                 "data_fingerprint"),
    GAN: ("gan", "arch", "dataset", "seed", "step", "fid", "kid_mean", "kid_std", "isc_mean",
          "isc_std", "precision", "recall", "num_samples", "num_real_samples", "extractor",
          "extractor_hash", "real_floor_fid", "real_floor_num_samples", "fid_at_floor_count",
          "train_images_per_s", "seconds", "eval_seconds", "amp", "amp_skipped_steps", "note", "failure"),
    THROUGHPUT: ("workload", "target", "arch", "dataset", "batch_size", "precision",
                 "channels_last", "compile", "seed", "device", "device_name", "torch_version",
                 "cuda_version", "threads", "warmup", "repeats", "timing_method", "times_s",
                 "median_s", "q1_s", "q3_s", "iqr_s", "images_per_step", "images_per_s",
                 "flops_per_step", "achieved_tflops", "peak_tflops", "peak_source", "mfu",
                 "peak_memory_bytes", "memory_kind", "skipped", "skip_reason", RAN_ALONE),
    ERRORS: ("traceback",),
}


def row(table: str, **values) -> dict:
    """One record of `table`: every declared column, in the declared order."""
    columns = COLUMNS[table]
    missing = [c for c in columns if c not in values and c not in ADDED_BY_RUN]
    unknown = sorted(set(values) - set(columns))
    if missing or unknown:
        raise KeyError(f"{table} record: missing {missing}, undeclared {unknown} "
                       "(columns are declared in bench/store/schema.py)")
    return {c: values[c] for c in columns if c in values}
