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

GAN = '\n[gans.g]\narch = "dcgan"\ndataset = "digits"\n'
TP = '\n[[throughput]]\nmodels = ["cnn"]\nworkloads = ["inference"]\n'

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
    # strict types, no inf/nan, bounded integers (issue 17)
    ("bool for a float", GOOD.replace("epochs = 1 }", "epochs = 1, lr = true }", 1),
     "models.cnn.train.lr", "valid number"),
    ("string for an int", GOOD.replace("epochs = 1 }", 'epochs = "1" }', 1),
     "models.cnn.train.epochs", "valid integer"),
    ("bool for an int", GOOD.replace("epochs = 1 }", "epochs = true }", 1),
     "models.cnn.train.epochs", "valid integer"),
    ("inf", GOOD.replace("epochs = 1 }", "epochs = 1, lr = inf }", 1), "models.cnn.train.lr",
     "finite"),
    ("nan", GOOD.replace("epochs = 1 }", "epochs = 1, weight_decay = nan }", 1),
     "models.cnn.train.weight_decay", "finite"),
    ("float overflowing to inf", GOOD.replace("epochs = 1 }", "epochs = 1, lr = 1e309 }", 1),
     "models.cnn.train.lr", "finite"),
    ("count beyond int32", GOOD.replace("epochs = 1 }", "epochs = 2147483648 }", 1),
     "models.cnn.train.epochs", "less than or equal to 2147483647"),
    ("negative seed", GOOD.replace("seeds = [0, 1]", "seeds = [-1]"), "suite.seeds[0]",
     "greater than or equal to 0"),
    ("seed beyond int32", GOOD.replace("seeds = [0, 1]", "seeds = [2147483648]"), "suite.seeds[0]",
     "less than or equal"),
    ("negative dataset seed", GOOD.replace('kind = "digits"', 'kind = "digits"\nseed = -3'),
     "datasets.digits.seed", "greater than or equal to 0"),
    ("bool channels", GOOD.replace('kind = "digits"', 'kind = "digits"\nchannels = true'),
     "datasets.digits.channels", "integer"),
    ("image too large", GOOD.replace('kind = "digits"', 'kind = "digits"\nimage_size = [8, 4097]'),
     "datasets.digits.image_size[1]", "4096"),
    ("threads zero", GOOD.replace("seeds = [0, 1]", "seeds = [0, 1]\nthreads = 0"), "suite.threads ",
     "greater than 0"),
    ("bad device digits", GOOD.replace("seeds = [0, 1]", 'seeds = [0, 1]\ndevice = "cuda:\u0661"'),
     "suite.device", "pattern"),
    ("list in epsilons", GOOD.replace('[0, "8/255", 0.1]', "[[]]"), "robustness[0].epsilons[0]",
     "fraction"),
    ("bool epsilon", GOOD.replace('[0, "8/255", 0.1]', "[true]"), "robustness[0].epsilons[0]",
     "fraction"),
    ("inf epsilon string", GOOD.replace('[0, "8/255", 0.1]', '["1e400"]'),
     "robustness[0].epsilons[0]", "finite"),
    ("train epsilon fraction above 1", GOOD.replace("epsilon = 0.2", 'epsilon = "300/255"'),
     "models.cnn-fgsm.train.epsilon", "[0, 1]"),
    ("train alpha zero", GOOD.replace("epsilon = 0.2", "epsilon = 0.2, alpha = 0"),
     "models.cnn-fgsm.train.alpha", "greater than 0"),
    ("throughput epsilon above 1", GOOD + TP.replace('["inference"]', '["fgsm"]')
     + 'epsilon = "9/4"\n', "throughput[0].epsilon", "[0, 1]"),
    # paths
    ("NUL in a path", GOOD.replace('kind = "digits"', 'kind = "imagefolder"\nroot = "a\\u0000"'),
     "datasets.digits.root", "NUL"),
    ("empty path", GOOD.replace('kind = "digits"', 'kind = "imagefolder"\nroot = ""'),
     "datasets.digits.root", "empty"),
    ("unknown ~user", GOOD.replace('kind = "digits"', 'kind = "imagefolder"\nroot = "~nosuchuser_b/x"'),
     "datasets.digits.root", "no such user"),
    ("relative factory import", GOOD.replace('arch = "small-cnn"\ndataset = "digits"\ntrain = { '
                                             'recipe = "standard", epochs = 1 }',
                                             'factory = ".nets:Net"\ncheckpoint = "w.pt"\n'
                                             'dataset = "digits"', 1),
     "models.cnn.factory", "pattern"),
    # closed sets and cross-section needs
    ("unknown feature_extractor", GOOD + GAN + 'feature_extractor = "ε"\n',
     "gans.g.feature_extractor", "'auto', 'domain' or 'inception'"),
    ("inception without weights", GOOD + GAN + 'feature_extractor = "inception"\n',
     "gans.g.feature_extractor", "inception_weights"),
    # keys the chosen kind, recipe, attack, workloads or train = false ignore
    ("root on digits", GOOD.replace('kind = "digits"', 'kind = "digits"\nroot = "data"'),
     "datasets.digits.root", "not used with kind = 'digits'"),
    ("download on digits", GOOD.replace('kind = "digits"', 'kind = "digits"\ndownload = false'),
     "datasets.digits.download", "not used with kind = 'digits'"),
    ("test_fraction on mnist", GOOD + '\n[datasets.m]\nkind = "mnist"\nroot = "m"\n'
     'test_fraction = 0.5\n', "datasets.m.test_fraction", "not used with kind = 'mnist'"),
    ("epsilon on a standard recipe", GOOD.replace('recipe = "standard", ', 'recipe = "standard", '
                                                  "epsilon = 0.1, "),
     "models.cnn.train.epsilon", "not used with recipe = 'standard'"),
    ("steps on fgsm-rs", GOOD.replace("epsilon = 0.2,", "epsilon = 0.2, steps = 3,"),
     "models.cnn-fgsm.train.steps", "not used with recipe = 'fgsm-rs'"),
    ("steps on an fgsm sweep", GOOD.replace('attack = "fgsm"', 'attack = "fgsm"\nsteps = 5'),
     "robustness[0].steps", "not used with attack = 'fgsm'"),
    ("checkpoint on a built-in arch", GOOD.replace('arch = "small-cnn"', 'arch = "small-cnn"\n'
                                                   'checkpoint = "w.pt"', 1),
     "models.cnn", "checkpoint is only used with factory"),
    ("training keys on an untrained GAN", GOOD + GAN + "train = false\nlr = 0.1\n", "gans.g",
     "lr: not used with train = false"),
    ("epsilon without attack workloads", GOOD + TP + "epsilon = 0.1\n", "throughput[0].epsilon",
     "not used with workloads"),
    ("models without model workloads", GOOD + GAN + TP.replace('["inference"]', '["gan-step"]'),
     "throughput[0]", "none is listed"),
    ("gans without gan workloads", GOOD + GAN + TP + 'gans = ["g"]\n', "throughput[0]",
     "none is listed"),
    # the GAN recipe keys
    ("one Adam beta", GOOD + GAN + "betas = [0.5]\n", "gans.g.betas", "at least 2"),
    ("Adam beta of 1", GOOD + GAN + "betas = [0.5, 1.0]\n", "gans.g.betas[1]", "less than 1"),
    ("EMA decay of 1", GOOD + GAN + "ema = 1.0\n", "gans.g.ema", "less than 1"),
    ("no critic updates", GOOD + GAN + "n_critic = 0\n", "gans.g.n_critic", "greater than 0"),
    ("negative divergence patience", GOOD + GAN + "divergence_patience = -1\n",
     "gans.g.divergence_patience", "greater than or equal to 0"),
    ("EMA on an untrained GAN", GOOD + GAN + "train = false\nema = 0.9\n", "gans.g",
     "ema: not used with train = false"),
    # compare rules are strict too (the same validation as `bench compare --rules`)
    ("bool compare tolerance", GOOD + "\n[compare.robust_acc]\nrel_tol = true\n",
     "compare.robust_acc.rel_tol", "valid number"),
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
    assert [c.config.target.gan for c in cells if c.kind == "throughput"] == ["g", "g"]


def test_every_epsilon_takes_fractions(tmp_path):
    """One ε type: robustness epsilons, train epsilon and alpha, throughput epsilon."""
    path = tmp_path / "eps.toml"
    path.write_text(GOOD.replace("epsilon = 0.2,", 'epsilon = "8/255", alpha = "2/255",')
                    + '\n[[throughput]]\nmodels = ["cnn"]\nworkloads = ["fgsm"]\nepsilon = "4/255"\n')
    suite = load_suite(path).suite
    assert suite.models["cnn-fgsm"].train.epsilon == 8 / 255
    assert suite.models["cnn-fgsm"].train.alpha == 2 / 255
    assert suite.throughput[0].epsilon == 4 / 255
    assert suite.robustness[0].epsilons == [0.0, 8 / 255, 0.1]


def test_the_epsilon_range_follows_the_norm(monkeypatch):
    """The range check reads the section's `norm` (declared before the ε fields), so a norm
    whose ε is not bounded by 1 (L2, in the norm's units) needs only a NORM_MAX entry."""
    from typing import Literal

    from pydantic import BaseModel, ValidationError

    from bench.suite import epsilon as E

    class Section(BaseModel):
        norm: Literal["linf", "l2"] = "linf"
        epsilons: list[E.Epsilon]

    monkeypatch.setitem(E.NORM_MAX, "l2", None)
    assert Section(norm="l2", epsilons=[2.5, "3/2"]).epsilons == [2.5, 1.5]
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        Section(epsilons=[2.5])
    with pytest.raises(ValidationError, match=">= 0"):
        Section(norm="l2", epsilons=[-0.5])


def test_the_shipped_throughput_suite_spells_epsilon_as_a_fraction():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "suites" / "throughput.toml"
    assert 'epsilon = "8/255"' in path.read_text()
    assert load_suite(path).suite.throughput[0].epsilon == 8 / 255


def test_compare_rules_may_use_inf_tolerances(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text(GOOD + "\n[compare.robust_acc]\nabs_tol = inf\n")
    load_suite(path)
    path.write_text(GOOD + "\n[compare.robust_acc]\nabs_tol = nan\n")
    with pytest.raises(SuiteError, match="compare.robust_acc.abs_tol"):
        load_suite(path)


def test_suite_validation_imports_nothing_from_compare():
    """compare imports from suite, never the other way round (no import circle)."""
    code = ("import sys, bench.suite.load, bench.suite.plan, bench.suite.preflight; "
            "print(sorted(m for m in sys.modules if m.startswith('bench.compare')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("key,edit", [
    ("models.cnn.checkpoint", ('arch = "small-cnn"\ndataset = "digits"\ntrain = { recipe = '
                               '"standard", epochs = 1 }', 'factory = "json:loads"\ncheckpoint = "'
                               + "x" * 300 + '"\ndataset = "digits"')),
    ("datasets.digits.root", ('kind = "digits"', 'kind = "mnist"\nroot = "' + "x" * 300 + '"')),
])
def test_a_path_too_long_for_the_file_system_is_a_suite_error(tmp_path, capsys, key, edit):
    path = tmp_path / "long.toml"
    path.write_text(GOOD.replace(*edit, 1))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and key in err and "too long" in err, err


def test_a_digits_split_that_leaves_out_a_class_is_a_user_error(tmp_path, capsys):
    path = tmp_path / "split.toml"
    path.write_text(GOOD.replace('kind = "digits"', 'kind = "digits"\ntest_fraction = 0.001'))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "datasets.digits.test_fraction" in err, err


def test_messages_quoting_odd_keys_stay_on_one_line(tmp_path, capsys):
    path = tmp_path / "keys.toml"
    path.write_text(GOOD.replace('[datasets.digits]', '[datasets.digits]\n"a\\nb\\u2028c" = 1'))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and 'datasets.digits."a\\nb\\u2028c"' in err, err
