"""Small named registries for datasets, models, attacks, GANs and cell kinds.

Modelled on lm-evaluation-harness' registry: duplicate names are an error, unknown names
get a "did you mean" hint, entries may be lazy "module:attr" strings so heavy imports
happen only when an entry is used, and every entry is checked against the registry's base
class (or for being callable) when it is registered or first resolved.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.machinery
import importlib.util
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, TypeVar

from bench.errors import UserError
from bench.interrupts import import_held_back

T = TypeVar("T")


def _split_target(target: str) -> tuple[str, str]:
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise UserError(f"{target!r}: expected an import path like 'my_pkg.nets:LeNet'")
    return module_name, attr


def import_target(target: str) -> Any:
    """Resolve "package.module:attr" (or "package.module.attr") to the object."""
    module_name, attr = _split_target(target)
    try:  # cells' modules bring torchvision, torchattacks...: see import_held_back
        module = import_held_back(module_name)
    except ImportError as exc:
        raise UserError(f"{target!r}: cannot import module {module_name!r} ({exc})") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UserError(f"{target!r}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def check_target(target: str) -> None:
    """What import_target would refuse, found without running any code: the module's source
    file is located on sys.path and read, and its top level must define or import the first
    part of `attr`. So `bench validate` checks a factory without importing torch."""
    module_name, attr = _split_target(target)
    spec, path = None, None
    parts = module_name.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        # The top level through every finder (editable installs too), without importing it;
        # a submodule in its parent's folders, without importing the parent.
        spec = (importlib.util.find_spec(name) if i == 0
                else importlib.machinery.PathFinder.find_spec(name, path))
        if spec is None:
            raise UserError(f"{target!r}: cannot import module {module_name!r} "
                            f"(No module named {name!r})")
        path = spec.submodule_search_locations
    origin = spec.origin if spec else None
    if not origin or not origin.endswith(".py"):
        return  # a compiled or namespace module: only importing it can tell
    names = _top_level_names(Path(origin).read_text(encoding="utf-8", errors="replace"))
    if "*" not in names and attr.split(".")[0] not in names:
        raise UserError(f"{target!r}: module {module_name!r} has no attribute {attr!r}")


def _top_level_names(source: str) -> set[str]:
    """Names a module's top level binds; "*" when it may bind any (star import, __getattr__)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {"*"}  # importing it will report the error in full
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:  # assignments, also inside if/try at the top level
            names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                         and isinstance(n.ctx, ast.Store))
    return names | {"*"} if "__getattr__" in names else names


class Registry(Generic[T]):
    """Named entries of one kind. `base` (a class, or a lazy "module:Class") is what every
    entry must be: a subclass of it, or, for a function registry, None and callables only."""

    def __init__(self, kind: str, base: type | str | None = None):
        self.kind = kind
        self.base = base
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | T:
        """`REG.register("x", fn)`, `REG.register("x", "pkg.mod:fn")` or `@REG.register("x")`."""
        if obj is None:
            def decorator(fn: T) -> T:
                self._add(name, fn)
                return fn
            return decorator
        self._add(name, obj)
        return obj

    def _add(self, name: str, obj: T | str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if not isinstance(obj, str):
            self._check(name, obj)
        self._entries[name] = obj

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UserError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = import_target(entry)
            self._check(name, entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def _check(self, name: str, entry) -> None:
        """An entry of the wrong kind is a programming error, reported by its name."""
        base = import_target(self.base) if isinstance(self.base, str) else self.base
        if base is None:
            if not callable(entry):
                raise TypeError(f"{self.kind} {name!r}: {entry!r} is not callable")
        elif not (isinstance(entry, type) and issubclass(entry, base)):
            raise TypeError(f"{self.kind} {name!r}: {entry!r} is not a subclass of "
                            f"{base.__module__}.{base.__qualname__}")

    def unknown_message(self, name: str) -> str:
        hint = difflib.get_close_matches(name, self.names(), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"unknown {self.kind} {name!r}{suggestion} (known: {', '.join(self.names())})"

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
