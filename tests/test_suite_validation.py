"""Malformed suites: one line naming the file, the key (and line), exit 2, nothing written."""

import subprocess
import sys

import pytest

from bench.cli import main
from bench.errors import SuiteError
from bench.suite.load import load_suite
from bench.suite.plan import plan

GOOD = """
[suite]
name = "t"
seeds = [0, 1]

[datasets.digits]
kind = "digits"

[models.cnn]
arch = "small-cnn"
dataset = "digits"
train = { recipe = "standard", epochs = 1 }

[models.cnn-fgsm]
arch = "small-cnn"
dataset = "digits"
train = { recipe = "fgsm-rs", epsilon = 0.2, epochs = 1 }

[[robustness]]
models = ["cnn", "cnn-fgsm"]
attack = "fgsm"
epsilons = [0, "8/255", 0.1]
"""

# (name, edit to GOOD, expected key path in the message, expected words)
MALFORMED = [
    ("unknown top-level key", GOOD + "\n[extra]\nx = 1\n", "extra", "unknown key"),
    ("unknown suite key", GOOD.replace('name = "t"', 'name = "t"\nsedes = [1]'), "suite.sedes",
     "unknown key"),
    ("typo in train table", GOOD.replace("epochs = 1 }", "epoch = 1 }", 1), "models.cnn.train.epoch",
     "unknown key"),
    ("wrong type", GOOD.replace("epochs = 1 }", 'epochs = "ten" }', 1), "models.cnn.train.epochs",
     "integer"),
    ("epsilon above 1", GOOD.replace('[0, "8/255", 0.1]', "[0, 1.5]"), "robustness[0].epsilons",
     "[0, 1]"),
    ("negative epsilon", GOOD.replace('[0, "8/255", 0.1]', "[-0.1]"), "robustness[0].epsilons",
     "[0, 1]"),
    ("bad epsilon string", GOOD.replace('"8/255"', '"eight"'), "robustness[0].epsilons", "fraction"),
    ("undefined model", GOOD.replace('models = ["cnn", "cnn-fgsm"]', 'models = ["cnn", "resnet"]'),
     "robustness[0].models[1]", "resnet"),
    ("undefined dataset", GOOD.replace('dataset = "digits"', 'dataset = "mnist"', 1),
     "models.cnn.dataset", "mnist"),
    ("unknown arch", GOOD.replace('arch = "small-cnn"', 'arch = "smal-cnn"', 1), "models.cnn.arch",
     "did you mean 'small-cnn'"),
    ("unknown dataset kind", GOOD.replace('kind = "digits"', 'kind = "imagenet"'),
     "datasets.digits.kind", "digits"),
    ("missing suite name", GOOD.replace('name = "t"\n', ""), "suite.name", "missing"),
    ("adversarial recipe without epsilon", GOOD.replace("epsilon = 0.2, ", ""),
     "models.cnn-fgsm.train", "epsilon"),
    ("invalid TOML", GOOD.replace("[suite]", "[suite"), "<toml>", "invalid TOML"),
    ("bad device", GOOD.replace("seeds = [0, 1]", 'seeds = [0, 1]\ndevice = "gpu"'), "suite.device",
     "pattern"),
    ("duplicate seeds", GOOD.replace("seeds = [0, 1]", "seeds = [1, 1]"), "suite.seeds", "unique"),
    ("mnist without root", GOOD + '\n[datasets.m]\nkind = "mnist"\n', "datasets.m", "root"),
    ("unknown compare metric", GOOD + "\n[compare.robust_accc]\nrel_tol = 0.1\n", "compare.robust_accc",
     "did you mean 'robust_acc'"),
    ("bad compare rule", GOOD + "\n[compare.robust_acc]\nrel_tol = -1\n", "compare.robust_acc",
     "greater than or equal"),
    ("both arch and factory", GOOD.replace('arch = "small-cnn"\ndataset',
                                           'arch = "small-cnn"\nfactory = "x:y"\ndataset', 1),
     "models.cnn", "exactly one"),
]


@pytest.mark.parametrize("name,text,key,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_suite_is_one_clear_line(tmp_path, name, text, key, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert key in message, message
    assert words in message, message


def test_error_names_the_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace("epochs = 1 }", 'epochs = "ten" }', 1))
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    expected = next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                    if '"ten"' in line)
    assert err.value.line == expected


@pytest.mark.parametrize("name,text,key,words", MALFORMED[:12:3], ids=[m[0] for m in MALFORMED[:12:3]])
def test_cli_exits_2_without_traceback_or_output(tmp_path, capsys, name, text, key, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    results = tmp_path / "results"
    for argv in (["validate", str(path)], ["run", str(path), "--results-dir", str(results)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "Traceback" not in err and key in err
    assert not results.exists()


def test_missing_dataset_root_is_exit_2_and_writes_nothing(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD + f'\n[datasets.m]\nkind = "mnist"\nroot = "{tmp_path}/nowhere"\n'
                    '[models.lenet]\narch = "lenet"\ndataset = "m"\n'
                    '[[robustness]]\nmodels = ["lenet"]\nepsilons = [0.1]\n')
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "bench", "run", str(path), "--results-dir", str(results)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "datasets.m.root" in proc.stderr and "download" in proc.stderr
    assert not results.exists()


def test_valid_suite_validates(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_text(GOOD)
    assert main(["validate", str(path)]) == 0
    assert "ok (" in capsys.readouterr().out


def test_epsilon_fraction_strings_are_parsed(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(GOOD)
    suite = load_suite(path).suite
    assert suite.robustness[0].epsilons == [0.0, 8 / 255, 0.1]


def test_plan_is_cartesian_with_stable_ids(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(GOOD)
    cells = plan(load_suite(path))
    kinds = [c.kind for c in cells]
    assert kinds.count("train") == 4 and kinds.count("robustness") == 4  # 2 models x 2 seeds
    # dependencies come before dependants
    seen = set()
    for c in cells:
        assert set(c.deps.values()) <= seen
        seen.add(c.id)
    # ids are stable across loads and across folders (paths are not part of the id)
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "ok.toml").write_text(GOOD)
    assert [c.id for c in plan(load_suite(other / "ok.toml"))] == [c.id for c in cells]
    # ...and change when the config changes
    path.write_text(GOOD.replace("epochs = 1 }", "epochs = 2 }", 1))
    changed = plan(load_suite(path))
    assert len({c.id for c in changed} & {c.id for c in cells}) < len(cells)


def test_a_gan_with_train_false_is_only_timed(tmp_path):
    gan = '\n[gans.g]\narch = "dcgan"\ndataset = "digits"\n'
    timed = '\n[[throughput]]\ngans = ["g"]\nworkloads = ["gan-step"]\n'
    path = tmp_path / "gan.toml"
    path.write_text(GOOD + gan + timed)
    kinds = [c.kind for c in plan(load_suite(path))]
    assert kinds.count("gan") == 2 and kinds.count("extractor") == 1  # one per seed
    path.write_text(GOOD + gan + "train = false\n" + timed)
    cells = plan(load_suite(path))
    assert {c.kind for c in cells} == {"train", "robustness", "throughput"}
    assert [c.config["target"]["gan"] for c in cells if c.kind == "throughput"] == ["g", "g"]
