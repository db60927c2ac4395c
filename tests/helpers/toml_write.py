"""A small TOML writer for generated suites (tomllib only reads).

Tables of tables become `[a.b]` headers and lists of tables `[[a]]`, as people write suites
(so `find_line` sees headers); anything deeper is written inline. `tests/test_suite_fuzz.py`
checks that `tomllib.loads(dumps(d)) == d` for generated documents.
"""

from __future__ import annotations

import datetime as dt
import math
import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def dumps(doc: dict) -> str:
    lines: list[str] = []
    _table(doc, (), lines, header=None)
    return "\n".join(lines) + "\n"


def _table(table: dict, path: tuple, lines: list[str], header: str | None) -> None:
    if header is not None:
        lines.append(header)
    nested = []
    for key, value in table.items():
        if _is_table(value) and value:
            nested.append((key, value))
        elif _is_table_list(value) and len(path) < 2:
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        sub = path + (key,)
        name = ".".join(_key(k) for k in sub)
        if isinstance(value, dict):
            _table(value, sub, lines, f"[{name}]")
        else:
            for item in value:
                _table(item, sub, lines, f"[[{name}]]")


def _is_table(value) -> bool:
    return isinstance(value, dict)


def _is_table_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")
