"""Resolved, typed configs that tests hand straight to loaders and cells."""

from bench.suite.cell_configs import DatasetSpec


def digits_config(**overrides) -> DatasetSpec:
    """The resolved `[datasets.digits]` table, as bench.suite.plan.dataset_spec makes it."""
    return DatasetSpec(name="digits", kind="digits", **overrides)


def dataset_spec(**fields) -> DatasetSpec:
    return DatasetSpec(**fields)


DIGITS = digits_config()
