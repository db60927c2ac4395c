"""A model's checkpoint, or many: `checkpoint = "weights/*.pt"` is one model per file.

A user who saved every 5th epoch of a training run, or keeps a folder of checkpoints, puts
them all through the same attacks with one `[models.NAME]` entry. Each matching file becomes
a model named `NAME@<file stem>` ("mine@epoch_005"): stable (it depends on the file name
only, not on the order or the number of matches), and never equal to a model the suite
defines (suite names cannot hold "@"). Matches are ordered naturally (epoch_5 before
epoch_10). Paths are relative to the suite file, like every path in a suite.

Pure Python, no torch: `bench validate` expands the globs and reports, in one line with the
key and its line, a glob that matches nothing and two files that would get the same name.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import SuiteError
from bench.suite.tomlfile import find_line, key_path

GLOB_CHARACTERS = frozenset("*?[")
SEPARATOR = "@"  # between the suite's model name and the file's


@dataclass(frozen=True)
class Checkpoint:
    model: str  # the name rows carry: the suite's, or "<suite name>@<file stem>"
    path: str  # absolute


def is_glob(pattern: str) -> bool:
    return bool(GLOB_CHARACTERS & set(pattern))


def expand_checkpoints(model: str, pattern: str, base: Path, suite_file: Path,
                       text: str) -> list[Checkpoint]:
    """The checkpoint(s) of `[models.<model>]`: one, or one per file a glob matches."""
    full = resolve_path(pattern, base)
    if not is_glob(pattern):
        return [Checkpoint(model, full)]
    loc = ("models", model, "checkpoint")
    matches = sorted((p for p in glob.glob(full, recursive=True) if Path(p).is_file()),
                     key=natural_key)
    if not matches:
        raise SuiteError(suite_file, key_path(loc), f"the glob {pattern!r} matches no file "
                         f"(looked for {full!r})", find_line(text, loc))
    named: dict[str, str] = {}
    for path in matches:
        name = f"{model}{SEPARATOR}{file_label(path)}"
        if name in named:
            raise SuiteError(suite_file, key_path(loc), f"{named[name]!r} and {path!r} would "
                             f"both be named {name!r} (models are named after the file stem); "
                             "rename one, or narrow the glob", find_line(text, loc))
        named[name] = path
    return [Checkpoint(name, path) for name, path in named.items()]


def file_label(path: str) -> str:
    """The file stem, with characters a model name cannot hold replaced by "-"."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", Path(path).stem) or "-"


def natural_key(path: str) -> list:
    """"epoch_5" before "epoch_10": digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def resolve_path(path: str | None, base: Path) -> str | None:
    """Paths in a suite are relative to the suite file, as users expect."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())
