"""Suite checks for what needs the reference extra: `implementation = "reference"` and
RobustBench zoo models. Torch-free (installed package metadata and robustbench's source,
bench.models.zoo_index), so `bench validate` makes them; `bench run` makes them too.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import SuiteError, UserError
from bench.models.zoo_index import ZooEntry, suggest, zoo_index
from bench.reference_extra import (
    PINNED,
    extra_message,
    installed_version,
    missing_reference_packages,
    require_intact_robustbench,
)
from bench.suite.schema import RobustBenchModel, Suite
from bench.suite.tomlfile import find_line, key_path

# RobustBench's dataset -> the suite dataset kinds that hold its images (CIFAR-10 as the
# torchvision pickles or as an image folder; bench has no CIFAR-100 or ImageNet kind).
ZOO_DATA_KINDS = {"cifar10": ("cifar10", "imagefolder"), "cifar100": ("imagefolder",),
                  "imagenet": ("imagefolder",)}


def check_reference(suite: Suite, path: Path, text: str) -> None:
    """The extra is installed where a suite asks for it, and each zoo model exists in it."""
    missing = missing_reference_packages(("pyautoattack",))
    for i, rob in enumerate(suite.robustness):
        if rob.implementation == "reference" and missing:
            loc = ("robustness", i, "implementation")
            raise SuiteError(path, key_path(loc), extra_message('"reference"', missing),
                             find_line(text, loc))
    for name, model in suite.models.items():
        if model.robustbench is None:
            continue
        loc = ("models", name, "robustbench")

        def fail(message: str, where: tuple = loc) -> None:
            raise SuiteError(path, key_path(where), message, find_line(text, where))

        if missing_reference_packages():
            fail(extra_message("a robustbench model", missing_reference_packages()))
        try:
            require_intact_robustbench("a robustbench model")
        except UserError as exc:
            fail(str(exc))
        problem = zoo_problem(model.robustbench)
        if problem:
            fail(problem)
        kind = suite.datasets[model.dataset].kind if model.dataset in suite.datasets else None
        wanted = ZOO_DATA_KINDS[model.robustbench.dataset]
        if kind is not None and kind not in wanted:
            fail(f"a {model.robustbench.dataset} model evaluated on dataset {model.dataset!r} "
                 f"of kind {kind!r}; expected a dataset of kind {' or '.join(map(repr, wanted))}",
                 ("models", name, "dataset"))
    for i, tp in enumerate(suite.throughput):
        for j, name in enumerate(tp.models):
            if name in suite.models and suite.models[name].robustbench is not None:
                loc = ("throughput", i, "models", j)
                raise SuiteError(path, key_path(loc), f"{name!r} is a robustbench model; "
                                 "[[throughput]] times built-in and factory models only",
                                 find_line(text, loc))


def zoo_entry(zoo: RobustBenchModel) -> ZooEntry | None:
    """The zoo's entry for `zoo`, or None when it is unknown or the zoo cannot be read."""
    index = zoo_index()
    return None if index is None else index.get((zoo.dataset, zoo.threat_model), {}).get(zoo.name)


def zoo_problem(zoo: RobustBenchModel) -> str | None:
    """Why bench cannot load `zoo` from a local folder, or None (also when the installed
    robustbench's zoo cannot be read here: the cell then checks against robustbench itself)."""
    index = zoo_index()
    if index is None:
        return None
    entries = index.get((zoo.dataset, zoo.threat_model))
    version = installed_version("robustbench") or PINNED["robustbench"]
    if entries is None:
        have = sorted(t for d, t in index if d == zoo.dataset)
        return (f"robustbench {version} has no {zoo.dataset} {zoo.threat_model} models "
                f"(threat models: {', '.join(have)})")
    entry = entries.get(zoo.name)
    if entry is None:
        return (f"robustbench {version} has no {zoo.dataset} {zoo.threat_model} model "
                f"{zoo.name!r}{suggest(zoo.name, list(entries))}")
    if entry.kind == "ensemble":
        return (f"{zoo.name!r} is an ensemble of several RobustBench checkpoints; bench loads "
                "zoo models of one checkpoint file")
    if entry.kind == "hosted" or (zoo.dataset == "imagenet" and "Standard" in zoo.name):
        return (f"{zoo.name!r} has no RobustBench checkpoint file (its weights come from timm's "
                "or torchvision's hub); bench loads zoo models from RobustBench's files")
    return None
