"""`bench export robustbench` on its own (no extra needed): RobustBench's spellings of ε and
accuracies, and one clear line for a run it cannot export. The card of a real run is checked
in tests/test_reference_crosscheck.py."""

import pytest

from bench.cli import main
from bench.export.robustbench import eps_text, percent
from tests.helpers.runs import make_run, robustness_cells


@pytest.mark.parametrize("eps, norm, text", [(8 / 255, "linf", "8/255"), (4 / 255, "linf", "4/255"),
                                             (0.5, "l2", "0.5"), (0.3, "linf", "0.3"),
                                             (0.0, "linf", "0")])
def test_epsilon_is_spelt_as_robustbench_cards_spell_it(eps, norm, text):
    assert eps_text(eps, norm) == text


def test_accuracies_are_percent_strings_rounded_as_robustbench_update_json_rounds():
    assert percent(0.94783) == "94.78" and percent(0.0) == "0.0" and percent(0.5953) == "59.53"


def test_a_run_without_autoattack_rows_is_one_line_and_exit_2(tmp_path, capsys):
    folder = make_run(tmp_path / "run", robustness_cells())
    assert main(["export", "robustbench", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no AutoAttack rows" in err
    assert not (folder / "export").exists()


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["export", "robustbench", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err
