"""The small registries: duplicates refused, unknown names with a hint, lazy imports, and every
entry of every registry of the right kind."""

from __future__ import annotations

import pytest

from bench.attacks import ATTACKS
from bench.cells import CELL_KINDS
from bench.data import DATASETS
from bench.errors import UserError
from bench.executors import EXECUTORS
from bench.gans import GANS
from bench.models import MODELS
from bench.registry import Registry

REGISTRIES = {"attacks": ATTACKS, "cells": CELL_KINDS, "datasets": DATASETS,
              "executors": EXECUTORS, "gans": GANS, "models": MODELS}


class Base:
    pass


class Good(Base):
    pass


def test_duplicate_names_are_refused():
    reg = Registry("thing")
    reg.register("a", len)
    with pytest.raises(ValueError, match="'a' is already registered"):
        reg.register("a", len)


def test_unknown_names_get_a_hint_and_the_known_names():
    reg = Registry("thing")
    reg.register("small-cnn", len)
    with pytest.raises(UserError, match=r"unknown thing 'smal-cnn'; did you mean 'small-cnn'\? "
                                        r"\(known: small-cnn\)"):
        reg.get("smal-cnn")


def test_lazy_entries_are_imported_on_first_use_only():
    reg = Registry("thing")
    reg.register("json-dumps", "json:dumps")
    import json

    assert reg.get("json-dumps") is json.dumps


def test_the_base_class_is_checked_eagerly_and_lazily():
    reg = Registry("thing", base=Base)
    reg.register("good", Good)
    with pytest.raises(TypeError, match="not a subclass of .*Base"):
        reg.register("bad", dict)
    reg.register("lazy-bad", "collections:OrderedDict")
    with pytest.raises(TypeError, match="'lazy-bad'.*not a subclass"):
        reg.get("lazy-bad")
    functions = Registry("function")
    with pytest.raises(TypeError, match="not callable"):
        functions.register("x", 42)


@pytest.mark.parametrize("name", sorted(REGISTRIES))
def test_every_registered_entry_resolves_to_its_kind(name):
    registry = REGISTRIES[name]
    for entry in registry:
        registry.get(entry)  # raises if an entry is missing or of the wrong kind
