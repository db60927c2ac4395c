"""`bench export robustbench RUN`: one RobustBench model card per evaluated model.

RobustBench keeps one JSON per model at model_info/DATASET/THREAT_MODEL/NAME.json; its
leaderboard (robustbench/leaderboard/template.py) reads them as plain dicts. The fields are
those of `robustbench.utils.ModelInfo` (robustbench 1.1.1), written as its `update_json`
writes them: accuracies as percent strings rounded to 2 decimals (`str(round(acc * 100,
2))`), `eps` as the leaderboard's cards spell it ("8/255" for L∞, "0.5" for L2). Fields bench
cannot know (the paper's link, authors, venue, its reported number, extra training data) are
null, to be filled in by hand before a submission. bench adds what the card does not hold:
the threat model, the number of examples, bench's version, code identity and commit, and
the evaluation's settings with unrounded accuracies (`"bench"`).

The AutoAttack accuracy is that of `attack = "autoattack"`, `version = "standard"` (the
leaderboard's), over the run's seeds: the reference implementation's when the run has it,
else torchattacks' (its `footnote` says so, as it says when the steps are not the
original's 100, the whole test split was not evaluated, or seeds were averaged).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.errors import UserError
from bench.store import schema as S
from bench.store.atomic import atomic_write_text
from bench.store.migrate import RunView
from bench.suite.attack_options import DEFAULT_IMPLEMENTATION

THREAT_MODELS = {"linf": "Linf", "l2": "L2"}  # bench's norm -> RobustBench's folder name
ORIGINAL_STEPS = 100  # the original AutoAttack's iterations, RobustBench's protocol
# Cards' fields in ModelInfo's order (corruption fields left out: these are Lp evaluations).
CARD_FIELDS = ("link", "name", "authors", "additional_data", "number_forward_passes",
               "dataset", "venue", "architecture", "eps", "clean_acc", "reported",
               "autoattack_acc", "footnote")


@dataclass(frozen=True)
class Evaluated:
    """What one model is, as the run's journal says: names a card needs."""

    dataset: str  # RobustBench's name: the zoo's, else the suite dataset's kind
    architecture: str | None
    zoo_name: str | None


def export_robustbench(run: RunView, output: Path) -> list[Path]:
    rows = _autoattack_rows(run)
    if rows.empty:
        raise UserError(f"{run.dir}: no AutoAttack rows (attack = \"autoattack\", version = "
                        "\"standard\") to export; RobustBench ranks models by AutoAttack")
    models = _evaluated_models(run)
    written = []
    keys = ["model", "norm", "epsilon"]
    per_model = rows.groupby(["model", "norm"])["epsilon"].nunique()
    for (model, norm, eps), group in rows.groupby(keys, sort=True):
        chosen = _preferred(group)
        card = model_card(chosen, models.get(model), run)
        name = model if per_model[(model, norm)] == 1 else f"{model}_eps-{_eps_file(eps, norm)}"
        path = output / "model_info" / card["dataset"] / THREAT_MODELS[norm] / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(card, indent=2) + "\n")
        written.append(path)
    return written


def model_card(rows: pd.DataFrame, evaluated: Evaluated | None, run: RunView) -> dict:
    """The card of one model at one ε: `rows` are one setting's rows, one per seed."""
    first = rows.iloc[0]
    norm, eps = str(first["norm"]), float(first["epsilon"])
    clean, robust = float(rows["clean_acc"].mean()), float(rows["robust_acc"].mean())
    dataset = evaluated.dataset if evaluated else str(first["dataset"])
    card = dict.fromkeys(CARD_FIELDS)
    card |= {"name": str(first["model"]), "dataset": dataset,
             "architecture": evaluated.architecture if evaluated else None,
             "eps": eps_text(eps, norm), "clean_acc": percent(clean),
             "autoattack_acc": percent(robust), "footnote": footnote(rows)}
    code, git = run.manifest.get("code", {}), run.manifest.get("provenance", {}).get("git", {})
    card["threat_model"] = THREAT_MODELS[norm]
    card["n_examples"] = int(first["n"])
    card["bench"] = {
        "version": code.get("version", run.manifest.get("bench_version")),
        "source_sha256": code.get("source_sha256"), "commit": git.get("commit"),
        "dirty": git.get("dirty"), "run_id": run.manifest.get("run_id", run.dir.name),
        "evaluation": {
            "attack": "autoattack", "implementation": _implementation(first),
            "version": str(first["version"]), "steps": int(first["steps"]), "epsilon": eps,
            "seeds": sorted(int(s) for s in rows["seed"]), "clean_acc": clean,
            "autoattack_acc": robust, "data_fingerprint": str(first["data_fingerprint"]),
            "checkpoint_sha256": sorted(set(rows["checkpoint_sha256"].astype(str))),
            "robustbench_model": evaluated.zoo_name if evaluated else None},
    }
    return card


def percent(accuracy: float) -> str:
    """robustbench.utils.update_json's spelling: 0.94783 -> "94.78"."""
    return str(round(accuracy * 100, 2))


def eps_text(eps: float, norm: str) -> str:
    """"8/255" for an L∞ ε that is a whole number of 255ths, as RobustBench writes it; else
    the number ("0.5")."""
    steps = round(eps * 255)
    if norm == "linf" and steps > 0 and abs(steps / 255 - eps) < 1e-9:
        return f"{steps}/255"
    return f"{eps:g}"


def footnote(rows: pd.DataFrame) -> str | None:
    """How this evaluation differs from RobustBench's protocol, if it does."""
    first = rows.iloc[0]
    notes = []
    if _implementation(first) != "reference":
        notes.append("AutoAttack by torchattacks' reimplementation, not the original code "
                     "(implementation = \"reference\" runs it)")
    if int(first["steps"]) != ORIGINAL_STEPS:
        notes.append(f"{int(first['steps'])} steps per gradient attack (the original runs "
                     f"{ORIGINAL_STEPS})")
    if not pd.isna(first.get("limit")):
        notes.append(f"on {int(first['n'])} examples of the {first['split']} split")
    if len(rows) > 1:
        notes.append(f"mean over {len(rows)} seeds")
    return "bench: " + "; ".join(notes) if notes else None  # ModelInfo's default: none


def _autoattack_rows(run: RunView) -> pd.DataFrame:
    rob = run.table(S.ROBUSTNESS)
    if rob.empty or not {"attack", "version", "norm"} <= set(rob.columns):
        return pd.DataFrame()
    rob = rob[(rob["attack"] == "autoattack") & (rob["version"] == "standard")]
    return rob[rob["norm"].isin(list(THREAT_MODELS))]


def _preferred(group: pd.DataFrame) -> pd.DataFrame:
    """The rows of one setting: the reference implementation's first, then the most steps,
    then the whole split over a subset."""
    settings = group.assign(_ref=[_implementation(r) == "reference" for _, r in group.iterrows()])
    order = settings.sort_values(["_ref", "steps", "n"], ascending=False, kind="stable")
    best = order.iloc[0]
    same = (order["_ref"] == best["_ref"]) & (order["steps"] == best["steps"]) & \
        (order["n"] == best["n"]) & (order["data_fingerprint"] == best["data_fingerprint"])
    return order[same].drop(columns="_ref")


def _implementation(row: pd.Series) -> str:
    value = row.get("implementation")
    return DEFAULT_IMPLEMENTATION if value is None or pd.isna(value) else str(value)


def _evaluated_models(run: RunView) -> dict[str, Evaluated]:
    """model -> what the journal's robustness cells say it is."""
    out = {}
    for record in run.journal.values():
        config = record.config
        if record.kind != "robustness" or "source" not in config:
            continue
        source = config["source"]
        zoo = source.get("name") if "threat_model" in source else None
        dataset = source["dataset"] if zoo else config["dataset"].get("kind", "")
        out[config["model"]] = Evaluated(dataset, source.get("arch") or source.get("factory")
                                         or zoo, zoo)
    return out


def _eps_file(eps: float, norm: str) -> str:
    return eps_text(eps, norm).replace("/", "_")
