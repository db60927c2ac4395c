"""The report's sanity-check sections (bench.report.sections.checks): a failed check is the
first thing in the report, and every check's verdict is shown per model with its meaning."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from bench.checks.verdict import CATCHES, Outcome, check_row
from bench.report import build_sections, write_report
from bench.report.blocks import Table, Warning_
from bench.report.sections.checks import ALERT_TITLE, TITLE, verdict_table
from bench.store import schema as S
from bench.store.migrate import open_run
from tests.helpers.runs import edit_table, make_run, robustness_cells


def verdicts(fail: set[tuple[str, str]] = frozenset()) -> pd.DataFrame:
    """A checks table as bench.checks builds it: two models, two seeds, several checks; the
    (check, model) pairs in `fail` fail on seed 1."""
    rows = []
    for model in ("cnn", "cnn-fgsm"):
        for seed in (0, 1):
            for check, attack, eps in (("deterministic_predictions", "fgsm", None),
                                       ("gradient_saturation", "fgsm", None),
                                       ("unbounded_epsilon", "pgd", 1.0),
                                       ("pgd_not_weaker_than_fgsm", "pgd", 0.1),
                                       ("pgd_not_weaker_than_fgsm", "pgd", 0.2)):
                bad = (check, model) in fail and seed == 1
                out = Outcome(check, not bad, 0.3 if bad else 0.0,
                              f"{model} seed {seed}: {'broken' if bad else 'fine'} at {eps}",
                              p_value=0.001 if bad else 0.9)
                rows.append(check_row(out, model=model, seed=seed, attack=attack,
                                      setting="steps=10" if attack == "pgd" else "",
                                      epsilon=eps))
    return pd.DataFrame(rows)


def test_verdict_table_one_row_per_check_and_model_failed_first():
    table = verdict_table(verdicts({("gradient_saturation", "cnn-fgsm"),
                                    ("pgd_not_weaker_than_fgsm", "cnn")}))
    assert list(table.columns) == ["check", "model", "verdict", "failed", "what it catches"]
    assert len(table) == 4 * 2
    assert list(table["check"]) == ["deterministic_predictions"] * 2 + [
        "gradient_saturation"] * 2 + ["unbounded_epsilon"] * 2 + ["pgd_not_weaker_than_fgsm"] * 2
    sat = table[table["check"] == "gradient_saturation"]
    assert list(sat["model"]) == ["cnn-fgsm", "cnn"]  # the failed one first
    assert list(sat["verdict"]) == ["FAILED", "passed"] and list(sat["failed"]) == ["1 of 2", ""]
    pgd = table[(table["check"] == "pgd_not_weaker_than_fgsm") & (table["model"] == "cnn")]
    assert pgd["failed"].item() == "2 of 4"  # both ε of seed 1, of two ε × two seeds
    assert all(table["what it catches"] == [CATCHES[c] for c in table["check"]])


def test_verdict_table_reads_older_checks_tables():
    """Tables of older runs have no catches, setting or p_value: meanings come from CATCHES."""
    old = pd.DataFrame([{"check": "eval_mode", "model": "m", "attack": "fgsm", "epsilon": None,
                         "seed": 0, "passed": True, "value": 0.0, "detail": "ok."},
                        {"check": "retired_check", "model": "m", "attack": "fgsm",
                         "epsilon": None, "seed": 0, "passed": False, "value": 1.0,
                         "detail": "bad."}])
    table = verdict_table(old)
    assert list(table["check"]) == ["eval_mode", "retired_check"]  # unknown checks last
    assert table["what it catches"].tolist() == [CATCHES["eval_mode"], ""]


@pytest.fixture()
def run_with(tmp_path):
    def make(checks: pd.DataFrame):
        run = make_run(tmp_path / "run", robustness_cells())
        edit_table(run, S.CHECKS, lambda _: checks)
        return run
    return make


def titles(run) -> list[str]:
    return [s.title for s in build_sections(open_run(run))]


def test_a_failed_check_is_the_first_section_of_the_report(run_with):
    run = run_with(verdicts({("unbounded_epsilon", "cnn-fgsm")}))
    sections = build_sections(open_run(run))
    assert sections[0].title == ALERT_TITLE
    (warning,) = [b for b in sections[0].blocks if isinstance(b, Warning_)]
    assert warning.message.startswith("unbounded_epsilon failed for cnn-fgsm (1×): "
                                      "cnn-fgsm seed 1: broken at 1.0.")
    assert CATCHES["unbounded_epsilon"] in warning.message
    names = [s.title for s in sections]
    assert names.index("Robustness") < names.index(TITLE)
    (full,) = [s for s in sections if s.title == TITLE]
    tables = [b for b in full.blocks if isinstance(b, Table)]
    assert [t.caption for t in tables] == ["Verdict per check and model", "Failed verdicts"]
    assert tables[0].highlight_column == "failed"
    assert tables[1].df[["model", "seed", "epsilon"]].values.tolist() == [["cnn-fgsm", 1, 1.0]]
    write_report(run)
    md = (run / "report.md").read_text()
    assert md.index("> **Warning:** unbounded_epsilon failed") < md.index("## Summary")
    html = (run / "report.html").read_text()
    assert re.findall(r"<h2>(.+?)</h2>", html)[0] == ALERT_TITLE
    assert 'class="highlight"' in html


def test_all_passed_adds_no_alert_and_says_so(run_with):
    run = run_with(verdicts())
    names = titles(run)
    assert ALERT_TITLE not in names and names[0] == "Summary" and TITLE in names
    (full,) = [s for s in build_sections(open_run(run)) if s.title == TITLE]
    assert any("all passed" in getattr(b, "markdown", "") for b in full.blocks)
    assert [b.caption for b in full.blocks if isinstance(b, Table)] == [
        "Verdict per check and model"]


def test_no_checks_table_no_check_sections(tmp_path):
    run = make_run(tmp_path / "run", robustness_cells())
    edit_table(run, S.CHECKS, lambda df: df.iloc[0:0])
    assert ALERT_TITLE not in titles(run) and TITLE not in titles(run)
