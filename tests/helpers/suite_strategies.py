"""Hypothesis strategies for suite files: mutations of the shipped suites, and suites built
from the schema (`bench.suite.schema`) by walking its pydantic models' field types.

Built from the schema, new keys (added by anyone) are fuzzed without touching this file.
Two things are kept out on purpose, because validation would act on them rather than
check them: `download = true` (torchvision would try the network) and large valid image
sizes (preflight resizes the dataset; 4096x4096 digits take gigabytes). Paths never contain
`/` or `~` apart from a few fixed ones, so no generated `root` points outside the suite's
folder (an imagefolder root of `/` would be scanned).
"""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
import types
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

import annotated_types as at
from hypothesis import strategies as st
from pydantic import AfterValidator, BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from bench.gans import GANS
from bench.models import MODELS
from bench.suite import schema as S
from bench.suite.rules import KNOWN_NAMES
from tests.helpers.toml_write import dumps

SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"
SHIPPED_TEXT = {p.name: p.read_text() for p in sorted(SUITES_DIR.glob("*.toml"))}
SHIPPED = {name: tomllib.loads(text) for name, text in SHIPPED_TEXT.items()}

NAMES = ["digits", "cnn", "dcgan", "g", "a.b"]  # few, so references often resolve
NASTY_INTS = [-1, 0, 1, 2, 3, 2**31 - 1, 2**31, 2**32, 2**63 - 1, -(2**63), 10**20]
NASTY_FLOATS = [0.0, -0.0, 0.5, 1.0, 1.5, -0.1, 1e-300, 5e-324, 1e300, float("inf"),
                float("-inf"), float("nan"), 8 / 255]
NASTY_STRINGS = ["", " ", "\x00", "a\x00b", "ε", "8/255", "1/0", "0/0", "...", "1e400", "-1",
                 "a\nb", "\u2028", "x" * 300, "inf", "true", "[", "cuda:١"]
NASTY_PATHS = ["\x00", "a\x00b", "", " ", "~nosuchuser_bench_fuzz/x", "nowhere", "x" * 300,
               "x/" * 3000, "ε/ü", "a\nb", "./missing.pt"]
PATH_KEYS = {"root", "checkpoint", "inception_weights"}  # docs/suites.md: "Paths"
IMPORT_PATHS = ["zz_fuzz_missing:f", "zz_fuzz.mod:f", "json:loads", "json:no_such_attr",
                ".rel:x", "a..b:c", ":x", "x:", "json", "os.path:join"]


def _model_classes() -> list[type[BaseModel]]:
    found, todo = [], [S.Suite]
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            todo += [t for t in _leaf_types(field.annotation)
                     if isinstance(t, type) and issubclass(t, BaseModel)]
    return found


def _leaf_types(tp) -> list:
    args = get_args(tp)
    return [tp] if not args else [t for a in args for t in _leaf_types(a)]


MODELS_IN_SCHEMA = _model_classes()
FIELD_NAMES = sorted({n for m in MODELS_IN_SCHEMA for n in m.model_fields} - {"download"})
def _literal_values(tp) -> list:
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    return [v for a in get_args(tp) for v in _literal_values(a)]


LITERALS = sorted({str(v) for m in MODELS_IN_SCHEMA for f in m.model_fields.values()
                   for v in _literal_values(f.annotation)})

# -- any TOML value ------------------------------------------------------------------------

scalars = st.one_of(
    st.sampled_from(NASTY_INTS), st.integers(), st.sampled_from(NASTY_FLOATS), st.floats(),
    st.booleans(), st.sampled_from(NASTY_STRINGS + LITERALS + NAMES), st.text(max_size=12),
    st.datetimes(min_value=dt.datetime(1, 1, 1)), st.dates(), st.times(),
)
any_value = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(FIELD_NAMES + NAMES), inner, max_size=3)),
    max_leaves=6,
)


def _sometimes_wrong(strategy, clean: bool):
    """Mostly the field's own kind of value; now and then anything at all (never if clean)."""
    return strategy if clean else st.one_of(strategy, strategy, strategy, any_value)


# -- from the schema -------------------------------------------------------------------------

def _bounds(meta) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in meta:
        if isinstance(m, (at.Gt, at.Ge)):
            lo = m.gt if isinstance(m, at.Gt) else m.ge
        if isinstance(m, (at.Lt, at.Le)):
            hi = m.lt if isinstance(m, at.Lt) else m.le
    return lo, hi


def _flatten(meta) -> list:
    out = []
    for m in meta:
        out += _flatten(m.metadata) if isinstance(m, FieldInfo) else [m]
    return out


def _ints(meta, clean: bool):
    lo, hi = _bounds(meta)
    start = 0 if lo is None else int(lo) + 1
    valid = st.integers(start, start + 40 if hi is None else min(int(hi), start + 40))
    edges = [start - 2, start - 1, start] + ([] if hi is None else [int(hi), int(hi) + 1])
    return valid if clean else st.one_of(valid, st.sampled_from(edges + NASTY_INTS))


def _floats(meta, clean: bool):
    lo, hi = _bounds(meta)
    valid = st.floats(0.001, 0.9)  # inside every float field's bounds
    edges = [v for v in (lo, hi) if v is not None]
    return valid if clean else st.one_of(valid, st.sampled_from(edges + NASTY_FLOATS),
                                         st.floats(allow_nan=True, allow_infinity=True))


def _validator_funcs(meta) -> set[str]:
    return {m.func.__name__ for m in meta if isinstance(m, (BeforeValidator, AfterValidator))}


clean_epsilons = st.one_of(st.floats(0.0, 1.0), st.integers(0, 16).map(lambda k: f"{k}/255"))
epsilons = st.one_of(
    st.floats(0.0, 1.0), st.sampled_from(NASTY_FLOATS),
    st.builds(lambda a, b: f"{a}/{b}", st.integers(-1, 300), st.integers(-1, 300)),
    st.sampled_from(["8/255", " 2 / 255 ", "0.03", "1/0", "8/", "/255", "1e-3/1", "ε"]),
)
paths = st.one_of(st.sampled_from(NASTY_PATHS),
                  st.text(st.characters(blacklist_characters="/~\\", codec="utf-8"), max_size=20)
                  .map(lambda p: "p" + p))  # never "." or "..": they would name real folders
image_sizes = st.lists(st.one_of(st.integers(1, 16), st.sampled_from([0, -1, 4097, 2**31, 2**63])),
                       min_size=0, max_size=3)


def _field_overrides(clean: bool) -> dict[tuple[type, str], st.SearchStrategy]:
    names = st.sampled_from(NAMES)
    return {
        (S.ModelConfig, "arch"): st.sampled_from(MODELS.names() + ["nope", "small-cnn "]),
        (S.GanConfig, "arch"): st.sampled_from(GANS.names() + ["nope", "DCGAN"]),
        (S.ModelConfig, "factory"): st.sampled_from(IMPORT_PATHS),
        (S.DatasetConfig, "kind"): st.one_of(st.just("digits"), st.just("digits"),
                                             st.sampled_from(_literal_values(
                                                 S.DatasetConfig.model_fields["kind"].annotation))),
        (S.DatasetConfig, "download"): st.just(False),
        (S.DatasetConfig, "image_size"): st.lists(st.integers(1, 16), min_size=2, max_size=2)
        if clean else image_sizes,
        (S.ModelConfig, "dataset"): names,
        (S.GanConfig, "dataset"): names,
        (S.Suite, "compare"): st.dictionaries(
            st.sampled_from(KNOWN_NAMES + ["robustness", "bogus", "fid "]),
            st.deferred(lambda: model_dicts(S.MetricRule, clean)), max_size=2),
    }


def strategy_for(tp, meta=(), clean: bool = False) -> st.SearchStrategy:
    """Values for the type `tp`: of that type and near its bounds, sometimes not (if clean,
    only values inside its bounds)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return strategy_for(args[0], tuple(meta) + tuple(_flatten(args[1:])), clean)
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy_for(a, meta, clean) for a in args if a is not type(None)))
    if origin is Literal:
        return st.sampled_from(args)
    if origin is list:
        lo, hi = _bounds([at.Ge(m.min_length) for m in meta if isinstance(m, at.MinLen)]
                         + [at.Le(m.max_length) for m in meta if isinstance(m, at.MaxLen)])
        lo, hi = int(lo or 0), int(hi or 3)
        return st.lists(_sometimes_wrong(strategy_for(args[0], (), clean), clean),
                        min_size=lo if clean else max(0, lo - 1), max_size=hi if clean else hi + 1)
    if origin is dict:
        return st.dictionaries(st.sampled_from(NAMES), strategy_for(args[1], (), clean), max_size=3)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return model_dicts(tp, clean)
    funcs = _validator_funcs(meta)
    if "parse_epsilon" in funcs:
        return clean_epsilons if clean else epsilons
    if "_usable_path" in funcs:  # PathStr (PATH_KEYS, whatever their type says)
        return paths
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _ints(meta, clean)
    if tp is float:
        return _floats(meta, clean)
    if tp is str:
        return st.sampled_from(NAMES) if clean else st.one_of(
            st.sampled_from(NAMES + LITERALS), st.text(max_size=12))
    return any_value


@st.composite
def model_dicts(draw, model: type[BaseModel], clean: bool = False) -> dict:
    """A table for `model`: required keys usually present, optional ones sometimes, and now
    and then an unknown key. Clean tables have every required key, few optional ones, no
    unknown key and only in-bounds values, so that some whole suites are valid."""
    overrides = _field_overrides(clean)
    out = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            wanted = clean or draw(st.integers(0, 19)) > 0
        else:
            wanted = draw(st.integers(0, 5 if clean else 2)) == 0
        if wanted:
            strategy = (overrides[(model, name)] if (model, name) in overrides
                        else strategy_for(field.annotation, field.metadata, clean))
            out[name] = draw(_sometimes_wrong(strategy, clean))
    if not clean and draw(st.integers(0, 19)) == 0:
        out[draw(st.sampled_from(FIELD_NAMES + ["extra", "Name"]))] = draw(any_value)
    return _no_download(out)


def schema_suites() -> st.SearchStrategy[str]:
    """Suites built from the schema, a third of them clean (in-bounds values throughout)."""
    return st.sampled_from([True, False, False]).flatmap(lambda clean: model_dicts(S.Suite, clean)).map(dumps)


# -- by mutation of the shipped suites ---------------------------------------------------------

def _node_paths(node, prefix=()) -> list[tuple]:
    out = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out += _node_paths(value, prefix + (key,))
    return out


def _get(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def _tweak(draw, value):
    """A small, plausible edit of `value` (the kind of typo users make)."""
    if isinstance(value, bool):
        return draw(st.sampled_from([not value, int(value), str(value).lower()]))
    if isinstance(value, (int, float)):
        return draw(st.sampled_from([-value, value * 10**20, value + 1, float(value), 2**31,
                                     str(value), [value], value * 1e308 * 10]))
    if isinstance(value, str):
        return draw(st.sampled_from([value + "x", value.upper(), "", value + "\x00", [value],
                                     value[:-1], value + "/255", 0]))
    if isinstance(value, list):
        return draw(st.sampled_from([[], [value], value + value[:1], value[:1], [[]], {}]))
    return draw(st.sampled_from([[value], {}, "x"]))


def _model_at(path: tuple) -> type[BaseModel] | None:
    """The schema model of the table at `path` ("datasets", NAME) -> DatasetConfig, ..."""
    tables = {("suite",): S.SuiteMeta, ("datasets", str): S.DatasetConfig,
              ("models", str): S.ModelConfig, ("models", str, "train"): S.TrainConfig,
              ("robustness", int): S.RobustnessConfig, ("gans", str): S.GanConfig,
              ("throughput", int): S.ThroughputConfig, (): S.Suite}
    shape = tuple(p if i % 2 == 0 or p == "train" else type(p) for i, p in enumerate(path))
    return tables.get(shape)


def _value_for_key(name: str) -> st.SearchStrategy:
    """Values for a key named `name` wherever it lands: what the schema expects for a key of
    that name (paths for the path keys, as the README defines them), or anything."""
    if name in PATH_KEYS:
        return st.one_of(paths, any_value)
    for model in MODELS_IN_SCHEMA:
        if name in model.model_fields:
            field = model.model_fields[name]
            return st.one_of(strategy_for(field.annotation, field.metadata), any_value)
    return any_value


@st.composite
def _mutated_doc(draw) -> dict:
    doc = copy.deepcopy(draw(st.sampled_from(list(SHIPPED.values()))))
    for _ in range(draw(st.integers(1, 4))):
        paths = _node_paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(doc, path[:-1]), path[-1]
        op = draw(st.sampled_from(["delete", "replace", "tweak", "graft", "add_key"]))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(any_value)
        elif op == "tweak":
            parent[key] = _tweak(draw, parent[key])
        elif op == "graft":  # a value from elsewhere in the shipped suites, in the wrong place
            donor = draw(st.sampled_from(list(SHIPPED.values())))
            parent[key] = copy.deepcopy(_get(donor, draw(st.sampled_from(_node_paths(donor)))))
        else:  # a key of this table, or of another (`root` on digits, `steps` on FGSM, ...)
            at_path = path if isinstance(parent[key], dict) else path[:-1]
            table = _get(doc, at_path)
            if isinstance(table, dict):
                model = _model_at(at_path)
                own = sorted(set(model.model_fields) - {"download"}) if model else []
                name = draw(st.sampled_from(own or FIELD_NAMES) | st.sampled_from(FIELD_NAMES))
                table[name] = draw(_value_for_key(name))
    return _no_download(doc)


@st.composite
def _mutated_text(draw) -> str:
    """Character-level edits of a shipped suite's text: mostly invalid TOML, which exercises
    the TOML error path and `find_line`."""
    text = draw(st.sampled_from(list(SHIPPED_TEXT.values())))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 20)))
        insert = draw(st.one_of(st.just(""), st.text(max_size=4),
                                st.sampled_from(['"', "[", "]", "=", "\n", "#", ".", ",", "{",
                                                 "\\u0000", "1e309", "[[]]", "-1"] + FIELD_NAMES)))
        text = text[:i] + insert + text[j:]
    return text.replace("download", "dl")  # never `download = true` (see the module docstring)


def mutated_suites() -> st.SearchStrategy[str]:
    return st.one_of(_mutated_doc().map(dumps), _mutated_text())


def _no_download(node):
    """Turn any `download = true` off, at any depth (the network is not part of validation)."""
    if isinstance(node, dict):
        return {k: (False if k == "download" and v is True else _no_download(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_no_download(v) for v in node]
    return node
