"""Resolved configs that tests hand straight to loaders and cells."""


def digits_config(**overrides) -> dict:
    """The resolved `[datasets.digits]` table, as bench.suite.plan.dataset_config makes it."""
    return {"name": "digits", "kind": "digits", "seed": 0, "test_fraction": 0.25, "root": None,
            "download": False, "image_size": None, "channels": None, "limit_train": None,
            "limit_test": None} | overrides


DIGITS = digits_config()
