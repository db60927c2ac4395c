"""The `reference` extra: the original AutoAttack code (`pyautoattack`) and RobustBench.

Two jobs, one place:

- torch-free checks that the extra is installed (`missing_reference_packages`), for
  `bench validate`, which reads installed package metadata and imports nothing;
- the imports themselves (`import_pyautoattack`, `import_robustbench`). robustbench 1.1.1
  still says `from autoattack import AutoAttack`, the package's old import name: the module
  `pyautoattack` (and its `state` submodule) is aliased as `autoattack` in `sys.modules`
  here, and nowhere else, before robustbench is first imported.

torchattacks 3.5.1's wheel ships a vendored copy of an old `robustbench` package, with no
distribution metadata of its own: `import robustbench` then finds files that torchattacks
installed. bench uses robustbench only when its own distribution (1.1.1) is installed, and
says so when only the vendored copy is there.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import sys
import warnings
from importlib import metadata
from pathlib import Path
from types import ModuleType

from bench.errors import UserError

EXTRA = 'pip install -e ".[reference]"'  # or `pip install "bench[reference]"` from an index
# distribution name -> the version bench was written and tested against (pyproject pins it)
PINNED = {"pyautoattack": "0.2.0", "robustbench": "1.1.1"}


def installed_version(dist: str) -> str | None:
    """The installed distribution's version, or None. torchattacks' vendored robustbench has
    no metadata, so it reads as not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def missing_reference_packages(needed: tuple[str, ...] = tuple(PINNED)) -> list[str]:
    """The distributions of the extra among `needed` that are not installed (torch-free)."""
    return [dist for dist in needed if installed_version(dist) is None]


def extra_message(what: str, missing: list[str]) -> str:
    """"<what> needs the reference extra (not installed: robustbench); install it with ..."."""
    return (f"{what} needs bench's reference extra (not installed: {', '.join(missing)}); "
            f"install it with {EXTRA}")


def import_pyautoattack(submodule: str = "", what: str = "implementation = \"reference\""
                        ) -> ModuleType:
    """The original AutoAttack package (or its `submodule`, e.g. "autopgd_base"), or a
    one-line UserError naming the extra."""
    missing = missing_reference_packages(("pyautoattack",))
    if missing:
        raise UserError(extra_message(what, missing))
    return importlib.import_module("pyautoattack" + (f".{submodule}" if submodule else ""))


def import_robustbench(what: str = "a robustbench model") -> ModuleType:
    """robustbench 1.1.1 (its `model_zoo` and `utils`), with `autoattack` aliased first."""
    missing = missing_reference_packages()
    if missing:
        vendored = "robustbench" in missing and _vendored_copy_present()
        hint = (" (the `robustbench` folder that torchattacks ships is an old vendored copy, "
                "not the package)") if vendored else ""
        raise UserError(extra_message(what, missing) + hint)
    require_intact_robustbench(what)
    alias_autoattack()
    try:
        # robustbench imports pkg_resources and timm's and torch.jit's deprecated names:
        # warnings about robustbench's code, not about the user's suite.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            module = importlib.import_module("robustbench")
            importlib.import_module("robustbench.model_zoo")
            importlib.import_module("robustbench.utils")
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
        raise UserError(f"{what}: robustbench {PINNED['robustbench']} imports pkg_resources, "
                        "which setuptools 81 removed; install it with pip install "
                        "\"setuptools<81\" (the reference extra pins it)") from None
    return module


# Files that both robustbench's wheel and torchattacks' vendored copy install.
SHARED_FILES = ("robustbench/__init__.py", "robustbench/utils.py")


def overwritten_files(dist: metadata.Distribution, paths: tuple[str, ...] = SHARED_FILES
                      ) -> list[str]:
    """Files of `dist` whose content is no longer what its RECORD says: torchattacks,
    installed after robustbench, writes its vendored copy over robustbench's files."""
    out = []
    for record in dist.files or []:
        if str(record) not in paths or record.hash is None:
            continue
        try:
            data = Path(dist.locate_file(record)).read_bytes()
        except OSError:
            out.append(str(record))
            continue
        digest = base64.urlsafe_b64encode(hashlib.new(record.hash.mode, data).digest())
        if digest.rstrip(b"=").decode() != record.hash.value:
            out.append(str(record))
    return out


def require_intact_robustbench(what: str) -> None:
    """A one-line UserError when robustbench's files are torchattacks' vendored ones."""
    changed = overwritten_files(metadata.distribution("robustbench"))
    if changed:
        raise UserError(f"{what}: robustbench's {', '.join(changed)} differ from what "
                        f"robustbench {installed_version('robustbench')} installed (torchattacks "
                        "ships an old copy of robustbench and was installed after it); "
                        f"reinstall it: pip install --force-reinstall --no-deps "
                        f"robustbench=={PINNED['robustbench']}")


def alias_autoattack() -> None:
    """`autoattack` and `autoattack.state` -> pyautoattack's modules, unless a real
    `autoattack` is already imported."""
    pyautoattack = importlib.import_module("pyautoattack")
    state = importlib.import_module("pyautoattack.state")
    sys.modules.setdefault("autoattack", pyautoattack)
    sys.modules.setdefault("autoattack.state", state)


def _vendored_copy_present() -> bool:
    import importlib.util

    return importlib.util.find_spec("robustbench") is not None
