"""Reading TOML files (suites, compare rules) and pointing at a key in them.

Errors are one-line `SuiteError`s: `FILE: key.path (line N): message`. tomllib keeps no
positions, so `find_line` looks the key up in the text.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from bench.errors import SuiteError

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def read_toml(path: str | Path, what: str = "suite") -> tuple[str, dict]:
    """(text, parsed table) of the `what` file at `path`, or a one-line SuiteError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(path, "<file>", f"no such {what} file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise SuiteError(path, "<file>", f"cannot read the {what} file ({exc})") from None
    return text, parse_toml(text, path)


def parse_toml(text: str, path: str | Path) -> dict:
    """The parsed table of TOML `text` (from the file at `path`), or a one-line SuiteError."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise SuiteError(path, "<toml>", f"invalid TOML: {getattr(exc, 'msg', exc)}", line) from None


def key_path(loc: tuple) -> str:
    """("models", "cnn", "train", "lr") -> "models.cnn.train.lr"; list indices as [i].

    Keys that are not bare TOML keys are quoted, so odd characters never break the line.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
        out += f".{name}" if out else name
    return out or "<root>"


def find_line(text: str, loc: tuple) -> int | None:
    """Best-effort line of `loc` (e.g. ("models", "cnn", "train", "epochs")) in the TOML text.

    Look for the deepest `[table]` header we can find, then the first following key named
    like the next path element.
    """
    names = [p for p in loc if isinstance(p, str)]
    lines = text.splitlines()
    start, depth = 0, 0
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if not m:
            continue
        parts = [p.strip().strip('"\'') for p in m.group(1).split(".")]
        if parts == names[: len(parts)] and len(parts) > depth:
            start, depth = i, len(parts)
    for name in names[depth:]:
        key_re = re.compile(rf"(^|[{{,\s])[\"']?{re.escape(name)}[\"']?\s*=")
        for i in range(start, len(lines)):
            if i > start and _HEADER.match(lines[i]):
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
