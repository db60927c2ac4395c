"""docs/robustbench.md: every ```toml suite on the page validates (`bench validate`), with the
files it points to made here in their real formats (CIFAR-10 pickles; a checkpoint file at
RobustBench's path, which validate does not read)."""

import re
from pathlib import Path

import pytest

from bench.cli import main
from bench.reference_extra import missing_reference_packages
from tests.helpers.formats import write_cifar10
from tests.helpers.suites import write_suite

PAGE = Path(__file__).resolve().parent.parent / "docs" / "robustbench.md"
SUITES = [b for b in re.findall(r"```toml\n(.*?)```", PAGE.read_text(), re.S) if "[suite]" in b]


def test_the_page_has_its_suites():
    assert len(SUITES) == 2


@pytest.mark.skipif(bool(missing_reference_packages()),
                    reason="the reference extra is not installed (pip install -e \".[reference]\")")
@pytest.mark.parametrize("text", SUITES, ids=["reference-digits", "robustbench-standard"])
def test_each_suite_on_the_page_validates(text, tmp_path, capsys):
    write_cifar10(tmp_path / "data", n_per_batch=4)
    checkpoint = tmp_path / "models" / "cifar10" / "Linf" / "Standard.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    assert main(["validate", str(write_suite(tmp_path, text))]) == 0, capsys.readouterr().err
