"""Read a suite file: TOML -> validated `Suite`, or a one-line `SuiteError`.

Every problem becomes `FILE: key.path (line N): expected ...` so that `bench validate`
and `bench run` report the same thing and exit 2.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bench.errors import SuiteError
from bench.registry import Registry
from bench.suite.schema import REFERENCES, Suite


@dataclass(frozen=True)
class LoadedSuite:
    suite: Suite
    path: Path
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_suite(path: str | Path) -> LoadedSuite:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(path, "<file>", "no such suite file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(path, "<file>", f"cannot read the suite file ({exc})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise SuiteError(path, "<toml>", f"invalid TOML: {exc.msg if hasattr(exc, 'msg') else exc}",
                         line) from None
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key_path(err["loc"])
        raise SuiteError(path, key, _describe(err), find_line(text, err["loc"])) from None
    check_references(suite, path, text)
    check_registered_names(suite, path, text)
    from bench.compare.rules import validate_rules

    validate_rules(raw.get("compare", {}), path, text, prefix=("compare",))
    return LoadedSuite(suite, path, text)


def check_references(suite: Suite, path: Path, text: str) -> None:
    """Every name a section mentions must be defined in the section it points to."""
    for section, field, target in REFERENCES:
        defined = getattr(suite, target)
        entries = getattr(suite, section)
        items = entries.items() if isinstance(entries, dict) else enumerate(entries)
        for key, entry in items:
            value = getattr(entry, field)
            for i, name in enumerate(value if isinstance(value, list) else [value]):
                if name not in defined:
                    loc = (section, key, field) + ((i,) if isinstance(value, list) else ())
                    known = ", ".join(sorted(defined)) or "none defined"
                    raise SuiteError(path, _key_path(loc),
                                     f"expected the name of a [{target}] entry, got {name!r} "
                                     f"(defined: {known})", find_line(text, loc))


def check_registered_names(suite: Suite, path: Path, text: str) -> None:
    """Architectures and GANs are open registries, so they are checked here, not in the schema."""
    from bench.gans import GANS
    from bench.models import MODELS

    checks: list[tuple[tuple, str, Registry]] = []
    checks += [(("models", n, "arch"), m.arch, MODELS) for n, m in suite.models.items() if m.arch]
    checks += [(("gans", n, "arch"), g.arch, GANS) for n, g in suite.gans.items()]
    for loc, name, registry in checks:
        if name not in registry:
            raise SuiteError(path, _key_path(loc), registry.unknown_message(name), find_line(text, loc))


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _describe(err: dict) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see suites/README.md for the keys)"
    if kind == "missing":
        return "required key is missing"
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    got = err.get("input")
    if kind not in ("value_error",) and got is not None and not isinstance(got, (dict, list)):
        return f"{msg[0].lower()}{msg[1:]}, got {got!r}"
    return msg[0].lower() + msg[1:]


def find_line(text: str, loc: tuple) -> int | None:
    """Best-effort line of `loc` (e.g. ("models", "cnn", "train", "epochs")) in the TOML text.

    tomllib keeps no positions, so look for the deepest `[table]` header we can find, then the
    first following key named like the next path element.
    """
    names = [p for p in loc if isinstance(p, str)]
    lines = text.splitlines()
    header_re = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    start, depth = 0, 0
    for i, line in enumerate(lines):
        m = header_re.match(line)
        if not m:
            continue
        parts = [p.strip().strip('"\'') for p in m.group(1).split(".")]
        if parts == names[: len(parts)] and len(parts) > depth:
            start, depth = i, len(parts)
    for name in names[depth:]:
        key_re = re.compile(rf"(^|[{{,\s])[\"']?{re.escape(name)}[\"']?\s*=")
        for i in range(start, len(lines)):
            if i > start and header_re.match(lines[i]):
                break
            if key_re.search(lines[i]):
                start = i
                break
        else:
            break
    return start + 1 if (depth or names) and start < len(lines) and text else None


def _line_from_message(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None
