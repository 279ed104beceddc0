"""Hyper-parameter search with KerasTuner, each trial an ordinary training run through ``train``.

The objective is validation macro-F1 (maximised); a search never sees the test split. A search
space may set any tunable training option (``fer_keras.training.config.TUNABLE``) and is refused,
by name, for anything else. Each trial trains through ``fer_keras.training.loop.train`` into its
own run directory under ``--out/trials/``, so every option (schedules, EMA, distillation, early
stopping, ...) behaves exactly as in ``python -m fer_keras.train``, and an interrupted trial
resumes from its last finished epoch. Running the same command again continues the search
(``--max-trials`` may grow; other settings may not: ``search.json`` records them).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras_tuner as kt

from fer_keras import runs
from fer_keras.data.loading import default_data_path
from fer_keras.errors import FerKerasError
from fer_keras.runs import RunDir, atomic_write
from fer_keras.training.config import MONITOR, TUNERS, TrainConfig
from fer_keras.training.loop import train
from fer_keras.training.space import define, load_space, trial_config

OBJECTIVE = MONITOR


# --------------------------------------------------------------------------- search spaces


class SpaceHyperModel(kt.HyperModel):
    """Declares a search space's hyper-parameters; the trials themselves are training runs."""

    def __init__(self, space: dict):
        super().__init__(name="fer_keras", tunable=True)
        self.space = space

    def build(self, hp: kt.HyperParameters):
        define(hp, self.space)


class TrainingRunTuner(kt.Tuner):
    """A KerasTuner tuner whose trial is ``train(config)`` into ``OUT/trials/<trial id>/``.

    Hyperband's budget per trial (``tuner/epochs``) becomes the run's ``--epochs``."""

    def __init__(self, oracle: kt.Oracle, base: TrainConfig, space: dict, out: Path, **kwargs):
        super().__init__(oracle=oracle, hypermodel=SpaceHyperModel(space), **kwargs)
        self.base, self.space, self.out = base, space, out

    def trial_run_dir(self, trial_id: str) -> RunDir:
        return RunDir(self.out / "trials" / trial_id)

    def run_trial(self, trial, *args, **kwargs) -> dict:
        values = trial.hyperparameters.values
        config = trial_config(self.base, {**self.space.get("fixed", {}), **values})
        run = self.trial_run_dir(trial.trial_id)
        config = config.replace(epochs=int(values.get("tuner/epochs", config.epochs)), out=str(run.path))
        result = train(config, resume=bool(run.resume_state()))  # a retried trial continues where it stopped
        return {OBJECTIVE: result.best_val_f1, "seconds": result.total_seconds}

    def save_model(self, trial_id, model, step=0) -> None:
        """Each trial's run directory already holds its checkpoints."""

    def load_model(self, trial):
        import keras

        return keras.saving.load_model(self.trial_run_dir(trial.trial_id).file(runs.BEST))


def make_tuner(name: str, base: TrainConfig, space: dict, out: Path, max_trials: int, epochs: int, seed: int):
    """A tuner of the named kind over ``space``; Hyperband spends at most ``epochs`` on a trial."""
    if name not in TUNERS:
        raise FerKerasError(f"unknown --tuner {name!r}; choose from {', '.join(TUNERS)}")
    objective = kt.Objective(OBJECTIVE, direction="max")
    if name == "random":
        oracle = kt.oracles.RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
    elif name == "bayesian":
        oracle = kt.oracles.BayesianOptimizationOracle(objective=objective, max_trials=max_trials, seed=seed)
    else:
        oracle = kt.oracles.HyperbandOracle(
            objective=objective, max_epochs=epochs, factor=3, hyperband_iterations=1, seed=seed
        )
    # overwrite=False: the same command continues a search
    return TrainingRunTuner(oracle, base, space, out, directory=str(out), project_name="search", overwrite=False)


# --------------------------------------------------------------------------- continuing a search

SEARCH_FILE = "search.json"  # what a search directory was made for


def search_record(spec: SearchSpec, space: dict, data_hash: str) -> dict:
    """The settings a continued search must keep (``--max-trials`` may grow; workers may differ)."""
    return {
        "model": spec.model,
        "data_hash": data_hash,
        "space": space,
        "tuner": spec.tuner,
        "epochs": spec.epochs,
        "limit": spec.limit,
        "seed": spec.seed,
    }


def check_same_search(out: Path, record: dict, write: bool = True) -> None:
    """Refuse to continue a search in ``out`` with other settings: its trials would mix budgets,
    data or spaces in one table. The first run writes the record (workers only read it)."""
    path = out / SEARCH_FILE
    if not path.exists():
        if write:
            atomic_write(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        return
    saved = json.loads(path.read_text())
    names = {"data_hash": "--data (other images)", "space": "--space (other contents)"}
    changed = [
        names.get(key, f"--{key} (was {saved.get(key)!r}, now {value!r})")
        for key, value in record.items()
        if saved.get(key) != value
    ]
    if changed:
        raise FerKerasError(
            f"{out} holds a search made with other settings: {', '.join(changed)}; "
            "re-run its own command to continue it, or use a new --out"
        )


# --------------------------------------------------------------------------- results


def trials_table(tuner) -> list[dict]:
    """Every trial with its hyper-parameters, score, status and time, best first."""
    rows = []
    for trial in tuner.oracle.trials.values():
        seconds = trial.metrics.get_last_value("seconds") if trial.metrics.exists("seconds") else None
        rows.append(
            {
                "trial": trial.trial_id,
                "status": str(trial.status),
                "val_macro_f1": trial.score,
                "seconds": round(seconds, 1) if seconds is not None and not math.isnan(seconds) else None,
                **trial.hyperparameters.values,
            }
        )
    return sorted(rows, key=lambda r: -(r["val_macro_f1"] if r["val_macro_f1"] is not None else -1))


def write_results(tuner, out: Path) -> list[dict]:
    import pandas as pd

    rows = trials_table(tuner)
    table = pd.DataFrame(rows)
    table.to_csv(out / "trials.csv", index=False)
    (out / "trials.md").write_text(_markdown(table) + "\n")
    completed = [r for r in rows if r["val_macro_f1"] is not None]
    if completed:
        best = {k: v for k, v in completed[0].items() if k not in ("trial", "status", "seconds")}
        (out / "best_hyperparameters.json").write_text(json.dumps(best, indent=2) + "\n")
    return rows


def _markdown(table) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(cell(v) for v in row.tolist()) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- distributed launch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_workers(argv: list[str], workers: int) -> int:
    """Run a chief (the oracle) and ``workers`` workers on this machine, over loopback."""
    port = str(_free_port())
    child_argv = [a for a in argv if a not in ("--train-best",)]
    child_argv = _drop_option(child_argv, "--workers")
    base_env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
    cmd = [sys.executable, "-m", "fer_keras.tune", *child_argv]
    chief = subprocess.Popen(cmd, env={**base_env, "KERASTUNER_TUNER_ID": "chief"})
    time.sleep(3)  # let the oracle server start listening
    procs = [subprocess.Popen(cmd, env={**base_env, "KERASTUNER_TUNER_ID": f"tuner{i}"}) for i in range(workers)]
    codes = [p.wait() for p in procs]
    code = chief.wait()
    return max([code, *codes])


def _drop_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out


# --------------------------------------------------------------------------- entry points


@dataclass
class SearchSpec:
    """One search: what ``python -m fer_keras.tune`` was asked for."""

    space: str
    out: str
    model: str = "mobilenetv2"
    data: str = ""  # default: $FER_KERAS_DATA, else data/fer2013
    ferplus: str = ""  # FER+ votes: search an 8-class FER+ model
    tuner: str = "bayesian"
    max_trials: int = 8
    epochs: int = 5  # per trial; Hyperband's largest budget
    limit: int = 0
    seed: int = 0
    train_best: bool = False
    best_epochs: int = 0  # default: epochs
    verbose: int = 2


@dataclass
class SearchResult:
    rows: list[dict]  # every trial, best first
    retrained: object | None = None  # the RunResult of --train-best

    @property
    def completed(self) -> list[dict]:
        return [r for r in self.rows if r["val_macro_f1"] is not None]


def run_search(spec: SearchSpec) -> SearchResult:
    """Run (or continue) a search; the chief writes the trials table and, if asked, retrains the best."""
    if spec.tuner not in TUNERS:
        raise FerKerasError(f"unknown --tuner {spec.tuner!r}; choose from {', '.join(TUNERS)}")
    space = load_space(spec.space)
    if space.get("model", spec.model) != spec.model:
        raise FerKerasError(f"search space {spec.space} is for model {space['model']!r}, not {spec.model!r}")
    out = Path(spec.out)
    base = TrainConfig(
        model=spec.model,
        data=str(spec.data or default_data_path()),
        ferplus=spec.ferplus,
        epochs=spec.epochs,
        limit=spec.limit,
        seed=spec.seed,
        export=False,
        verbose=spec.verbose,
    )
    base.validate()
    trial_config(base, space.get("fixed", {})).validate()
    splits = runs.load_config_splits(asdict(base))  # fails here, before any folder is made, on bad data
    out.mkdir(parents=True, exist_ok=True)
    role = os.environ.get("KERASTUNER_TUNER_ID", "")
    check_same_search(out, search_record(spec, space, splits.data_hash), write=not role.startswith("tuner"))
    tuner = make_tuner(spec.tuner, base, space, out, spec.max_trials, spec.epochs, spec.seed)
    tuner.search()
    if role.startswith("tuner"):
        return SearchResult([])  # workers only run trials; the chief owns the results
    result = SearchResult(write_results(tuner, out))
    if spec.train_best and result.completed:
        best = json.loads((out / "best_hyperparameters.json").read_text())
        settings = {**space.get("fixed", {}), **{k: v for k, v in best.items() if k != "val_macro_f1"}}
        config = trial_config(base.replace(out=str(out / "best_run"), export=True), settings)
        result.retrained = train(config.replace(epochs=spec.best_epochs or spec.epochs))
    return result
