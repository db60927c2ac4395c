"""Read a suite file: TOML -> validated `Suite`, or a one-line `SuiteError`.

Every problem becomes `FILE: key.path (line N): expected ...` so that `bench validate`
and `bench run` report the same thing and exit 2.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bench.errors import SuiteError
from bench.registry import Registry
from bench.suite.reference_checks import check_reference
from bench.suite.rules import validate_rules
from bench.suite.schema import REFERENCES, Suite
from bench.suite.tomlfile import find_line, key_path, parse_toml, read_toml


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
    text, raw = read_toml(path, "suite")
    return validated(path, text, raw)


def load_suite_text(text: str, path: str | Path) -> LoadedSuite:
    """A suite given as text (bench.api.run_suite with a dict): validated exactly as a file
    at `path` would be; relative paths in it are relative to `path`'s folder."""
    path = Path(path)
    return validated(path, text, parse_toml(text, path))


def validated(path: Path, text: str, raw: dict) -> LoadedSuite:
    """The checked suite, or the first problem as a one-line SuiteError."""
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _written_loc(raw, err)
        raise SuiteError(path, key_path(loc), _describe(err), find_line(text, loc)) from None
    check_references(suite, path, text)
    check_registered_names(suite, path, text)
    check_feature_extractors(suite, path, text)
    check_reference(suite, path, text)
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
                    raise SuiteError(path, key_path(loc),
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
            raise SuiteError(path, key_path(loc), registry.unknown_message(name), find_line(text, loc))


def check_feature_extractors(suite: Suite, path: Path, text: str) -> None:
    """The Inception extractor needs its weights file (there is no download)."""
    if suite.suite.inception_weights is not None:
        return
    for name, gan in suite.gans.items():
        if gan.train and gan.feature_extractor == "inception":
            loc = ("gans", name, "feature_extractor")
            raise SuiteError(path, key_path(loc), "'inception' needs [suite] inception_weights "
                             "(torch-fidelity's Inception weights file); or use 'domain'",
                             find_line(text, loc))


def _written_loc(raw: dict, err: dict) -> tuple:
    """The error's location as the file writes it: pydantic adds the member's tag for union
    types (`suite.threads.constrained-int`), which is not a key of the file."""
    node, out = raw, []
    for part in err["loc"]:
        inside = isinstance(node, dict) and part in node or (
            isinstance(node, list) and isinstance(part, int) and part < len(node))
        if not inside:
            if err["type"] == "missing":
                out.append(part)
            break
        out.append(part)
        node = node[part]
    return tuple(out)


def _describe(err: dict) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see docs/suites.md for the keys)"
    if kind == "missing":
        return "required key is missing"
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    got = err.get("input")
    if kind not in ("value_error",) and got is not None and not isinstance(got, (dict, list)):
        return f"{msg[0].lower()}{msg[1:]}, got {got!r}"
    return msg[0].lower() + msg[1:]
