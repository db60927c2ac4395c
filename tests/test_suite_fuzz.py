"""Property: `bench validate` on any suite file either succeeds or fails with bench's one-line
user error (exit 2, one line on stderr, no traceback). Never anything else.

Suites come from two hypothesis strategies (tests/helpers/suite_strategies.py): mutations of
the shipped suites (of their parsed tables, and of their text), and tables built from the
schema's field types. The default run tries a bounded number of examples with a fixed seed
(the `fast` profile, tests/conftest.py); the slow profile tries thousands:

    python -m pytest tests/test_suite_fuzz.py --hypothesis-profile=slow --hypothesis-show-statistics

`CORPUS` (explicit `@example`s) holds the cases of issue 17 and kin that also failed before
the fix (a path too long for the file system, a digits split without every class), so every
run checks them whatever hypothesis generates. A failing example of the slow profile is
also saved in `.hypothesis/` (not in git): add it to CORPUS.
"""

from __future__ import annotations

import contextlib
import io
import tomllib
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from bench.cli import main
from tests.helpers.suite_strategies import SHIPPED, SHIPPED_TEXT, mutated_suites, schema_suites
from tests.helpers.toml_write import dumps

QUICK = SHIPPED_TEXT["quickstart.toml"]
THROUGHPUT = SHIPPED_TEXT["throughput.toml"]


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# The cases issue 17 lists: (name, suite text, key named in the one-line error).
ISSUE_17 = [
    ("list in epsilons", _edit(QUICK, "epsilons = [0.1, 0.2]", "epsilons = [[]]"),
     "robustness[1].epsilons[0]"),
    ("NUL in inception_weights", _edit(QUICK, 'device = "auto"', 'device = "auto"\n'
                                       'inception_weights = "\\u0000"'), "suite.inception_weights"),
    ("NUL in root", _edit(QUICK, 'kind = "digits"', 'kind = "imagefolder"\nroot = "a\\u0000b"'),
     "datasets.digits.root"),
    ("NUL in checkpoint", _edit(QUICK, 'arch = "small-cnn"', 'factory = "json:loads"\n'
                                'checkpoint = "w\\u0000.pt"'), "models.cnn.checkpoint"),
    ("unknown feature_extractor", QUICK + 'feature_extractor = "ε"\n',
     "gans.dcgan.feature_extractor"),
    ("bool lr", _edit(QUICK, "lr = 0.002, batch_size = 128 }", "lr = true }"),
     "models.cnn.train.lr"),
    ("inf lr", _edit(QUICK, "lr = 0.002, batch_size = 128 }", "lr = 1e309 }"),
     "models.cnn.train.lr"),
    ("root on digits", _edit(QUICK, 'kind = "digits"', 'kind = "digits"\nroot = "data"'),
     "datasets.digits.root"),
    ("negative seed", _edit(QUICK, "seeds = [0, 1, 2]", "seeds = [-1]"), "suite.seeds[0]"),
    ("huge steps", _edit(QUICK, "steps = 500", "steps = 100000000000000000000"), "gans.dcgan.steps"),
    ("huge num_samples", _edit(QUICK, "num_samples = 500", "num_samples = 100000000000000000000"),
     "gans.dcgan.num_samples"),
    ("huge repeats", _edit(THROUGHPUT, "repeats = 15", "repeats = 100000000000000000000"),
     "throughput[0].repeats"),
]


def validate(path: Path) -> tuple[int, str, str]:
    """`bench validate path` in this process: (exit code, stdout, stderr). Any exception
    other than the CLI's own handling propagates, and fails the property."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, out.getvalue(), err.getvalue()


def assert_clean_outcome(path: Path, text: str) -> int:
    path.write_text(text, encoding="utf-8")
    code, out, err = validate(path)
    if code == 0:
        assert out.startswith(f"{path}: ok (") and not err, (out, err)
    else:
        assert code == 2, (code, out, err)
        assert not out, out
        lines = err.splitlines()
        assert len(lines) == 1 and err.endswith("\n"), err
        assert lines[0].startswith("bench: error: ") and "Traceback" not in err, err
    return code


@pytest.fixture(scope="module")
def suite_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "suite.toml"


# Inputs every run checks, beyond those hypothesis generates: the issue's cases and their kin.
CORPUS = [
    QUICK,
    THROUGHPUT,
    _edit(QUICK, "[suite]", "[suite\n"),  # invalid TOML
    QUICK + '\n"a\\nb\\u2028" = 1\n',  # an unknown key that needs escaping
    _edit(THROUGHPUT, 'epsilon = "8/255"', 'epsilon = "9/4"'),
    _edit(QUICK, 'kind = "digits"', 'kind = "digits"\nimage_size = [8, 8000]'),
    _edit(QUICK, 'kind = "digits"', 'kind = "mnist"\nroot = "' + "x" * 300 + '"'),  # too long
    _edit(QUICK, 'kind = "digits"', 'kind = "digits"\ntest_fraction = 1e-300'),
    _edit(QUICK, 'kind = "digits"', 'kind = "imagefolder"\nroot = "~nosuchuser_bench/x"'),
    _edit(QUICK, 'arch = "small-cnn"', 'factory = ".rel:x"\ncheckpoint = "w.pt"'),
    _edit(QUICK, 'arch = "small-cnn"', 'factory = "json:loads"\ncheckpoint = "' + "x" * 300 + '"'),
] + [text for _, text, _ in ISSUE_17]


def with_corpus(test):
    for text in reversed(CORPUS):
        test = example(text=text)(test)
    return test


@given(text=mutated_suites())
@with_corpus
def test_mutated_shipped_suites_validate_or_fail_in_one_line(suite_path, text):
    event(f"exit {assert_clean_outcome(suite_path, text)}")


@given(text=schema_suites())
def test_suites_from_the_schema_validate_or_fail_in_one_line(suite_path, text):
    event(f"exit {assert_clean_outcome(suite_path, text)}")


@pytest.mark.parametrize("name,text,key", ISSUE_17, ids=[c[0] for c in ISSUE_17])
def test_issue_17_cases_are_one_line_errors(tmp_path, name, text, key):
    path = tmp_path / "s.toml"
    assert assert_clean_outcome(path, text) == 2
    _, _, err = validate(path)
    assert f"{path}: {key} " in err, err


def needs_files(doc: dict) -> bool:
    """A suite for the user's own downloads (a dataset root, a checkpoint): without them,
    validation is a clean exit 2; tests/test_shipped_suites.py gives it real-format fixtures."""
    return any("root" in d for d in doc.get("datasets", {}).values()) or \
        any("checkpoint" in m for m in doc.get("models", {}).values())


def test_the_shipped_suites_validate(tmp_path):
    for name, text in SHIPPED_TEXT.items():
        expected = 2 if needs_files(SHIPPED[name]) else 0
        assert assert_clean_outcome(tmp_path / name, text) == expected, name
    assert sum(not needs_files(doc) for doc in SHIPPED.values()) >= 3  # quickstart & co.


@given(doc=st.deferred(lambda: st.sampled_from(list(SHIPPED.values()))) | st.dictionaries(
    st.text(max_size=5), st.recursive(
        st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=5)),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                    max_size=3),
        max_leaves=8), max_size=4))
def test_the_fuzzers_toml_writer_round_trips(doc):
    assert _same(tomllib.loads(dumps(doc)), doc)


def _same(a, b) -> bool:
    """Equality where nan equals nan."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
