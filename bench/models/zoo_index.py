"""RobustBench's model zoo as its source declares it, read without importing robustbench.

`bench validate` checks a suite's zoo models (the name, where its checkpoint goes, where
RobustBench publishes it) and stays torch-free: importing robustbench imports torch and
timm. So the zoo is read here from the installed distribution's own files, with `ast`:
robustbench 1.1.1 declares each (dataset, threat model) as a literal

    linf = OrderedDict([("Standard", {"model": ..., "gdrive_id": "1t98..."}), ...])
    cifar_10_models = OrderedDict([(ThreatModel.Linf, linf), ...])

in robustbench/model_zoo/{cifar10,cifar100,imagenet}.py. When that layout is not found (a
robustbench other than the pinned one), `zoo_index` returns None and the names are checked
when the cell builds the model, from robustbench's own `model_dicts`. A test holds this
index equal to `robustbench.model_zoo.model_dicts`.
"""

from __future__ import annotations

import ast
import difflib
import functools
from dataclasses import dataclass
from importlib import metadata
from typing import Literal

ZOO_FILES = {"cifar10": "cifar10.py", "cifar100": "cifar100.py", "imagenet": "imagenet.py"}
# Where RobustBench publishes a checkpoint: the Google Drive file that
# robustbench.utils.download_gdrive_new fetches with gdown.
GDRIVE_URL = "https://drive.google.com/uc?id={}"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    # "file": one checkpoint, NAME.pt; "ensemble": several (NAME.pt_m0.pt, ...);
    # "hosted": no file of RobustBench's (timm's hub, torchvision's weights)
    kind: Literal["file", "ensemble", "hosted"]
    gdrive_id: str | None = None

    @property
    def url(self) -> str | None:
        return GDRIVE_URL.format(self.gdrive_id) if self.gdrive_id else None


Index = dict[tuple[str, str], dict[str, ZooEntry]]


@functools.lru_cache(maxsize=1)
def zoo_index() -> Index | None:
    """(dataset, threat model) -> name -> entry, for the installed robustbench distribution;
    None when it is not installed or does not declare its zoo as read here."""
    try:
        dist = metadata.distribution("robustbench")
    except metadata.PackageNotFoundError:
        return None
    index: Index = {}
    for dataset, filename in ZOO_FILES.items():
        path = dist.locate_file(f"robustbench/model_zoo/{filename}")
        try:
            tree = ast.parse(open(path, encoding="utf-8").read())
        except (OSError, SyntaxError):
            return None
        tables = _threat_model_tables(tree)
        if not tables:
            return None
        index |= {(dataset, threat): entries for threat, entries in tables.items()}
    return index


def suggest(name: str, known: list[str]) -> str:
    """" (did you mean 'Standard'?)", or "" when nothing is close."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _threat_model_tables(tree: ast.Module) -> dict[str, dict[str, ZooEntry]]:
    """threat model -> entries, from the module's top-level OrderedDict literals."""
    literals: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            literals[node.targets[0].id] = node.value
    out = {}
    for value in literals.values():
        for key, item in _pairs(value):
            if isinstance(key, ast.Attribute) and isinstance(key.value, ast.Name) and \
                    key.value.id == "ThreatModel" and isinstance(item, ast.Name) and \
                    item.id in literals:
                out[key.attr] = _entries(literals[item.id])
    return out


def _pairs(value: ast.expr) -> list[tuple[ast.expr, ast.expr]]:
    """The (key, value) tuples of `OrderedDict([(k, v), ...])`."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "OrderedDict" and len(value.args) == 1
            and isinstance(value.args[0], (ast.List, ast.Tuple))):
        return []
    return [(e.elts[0], e.elts[1]) for e in value.args[0].elts
            if isinstance(e, ast.Tuple) and len(e.elts) == 2]


def _entries(value: ast.expr) -> dict[str, ZooEntry]:
    out = {}
    for key, spec in _pairs(value):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            out[key.value] = _entry(key.value, spec)
    return out


def _entry(name: str, spec: ast.expr) -> ZooEntry:
    gdrive = None
    if isinstance(spec, ast.Dict):
        gdrive = next((v for k, v in zip(spec.keys, spec.values)
                       if isinstance(k, ast.Constant) and k.value == "gdrive_id"), None)
    if isinstance(gdrive, ast.Constant) and isinstance(gdrive.value, str) and gdrive.value:
        return ZooEntry(name, "file", gdrive.value)
    if isinstance(gdrive, (ast.List, ast.Tuple)):
        return ZooEntry(name, "ensemble")
    return ZooEntry(name, "hosted")
