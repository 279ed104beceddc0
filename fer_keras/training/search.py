"""Hyper-parameter search with KerasTuner, each trial an ordinary training run through ``train``.

The objective is validation macro-F1 (maximised); a search never sees the test split. A search
space may set any tunable training option (``fer_keras.training.config.TUNABLE``) and is refused,
by name, for anything else. Each trial trains through ``fer_keras.training.loop.train`` into its
own run directory under ``--out/trials/``, so every option (schedules, EMA, distillation, early
stopping, ...) behaves exactly as in ``python -m fer_keras.train``, and an interrupted trial
resumes from its last finished epoch. Running the same command again continues the search
(``--max-trials`` may grow; other settings may not: ``search.json`` records them). With
``--mirror DIR`` the search's state (its record and KerasTuner's JSON files, a few kB per trial,
no checkpoints) is copied to DIR after every trial, and a search whose ``--out`` was lost (a
preempted machine, a fresh checkout) continues from there: finished trials are kept, the trial
that was running starts again.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras_tuner as kt

from fer_keras import runs
from fer_keras.data.loading import default_data_path
from fer_keras.errors import FerKerasError, first_line
from fer_keras.models.registry import builder_options
from fer_keras.runs import RunDir, atomic_write
from fer_keras.training.config import MONITOR, TUNERS, TrainConfig
from fer_keras.training.loop import train
from fer_keras.training.space import (
    check_model_options,
    check_space,
    define,
    load_space,
    start_values,
    trial_config,
)

OBJECTIVE = MONITOR

try:  # KerasTuner prints each failed trial's traceback while DEBUG is on (its default); the reason is one line
    from keras_tuner.src import config as _kt_config

    _kt_config.DEBUG = False
except ImportError:
    pass


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
        try:
            result = train(config, resume=bool(run.resume_state()))  # a retried trial continues where it stopped
        except (KeyboardInterrupt, kt.errors.FatalError):
            raise
        except Exception as err:  # noqa: BLE001 - any crash of one trial is that trial's failure, not the search's
            raise kt.errors.FailedTrialError(f"{type(err).__name__}: {first_line(err)}") from None
        problem = trial_problem(result)
        if problem:
            raise kt.errors.FailedTrialError(problem)
        return {OBJECTIVE: result.best_val_f1, "seconds": result.total_seconds}

    def on_trial_end(self, trial) -> None:
        if trial.message:  # KerasTuner keeps the whole traceback; the table and the log need the reason
            trial.message = failure_reason(trial.message)
            print(f"trial {trial.trial_id} failed: {trial.message}", file=sys.stderr, flush=True)
        super().on_trial_end(trial)

    def save_model(self, trial_id, model, step=0) -> None:
        """Each trial's run directory already holds its checkpoints."""

    def load_model(self, trial):
        import keras

        return keras.saving.load_model(self.trial_run_dir(trial.trial_id).file(runs.BEST))


def trial_problem(result) -> str:
    """Why a finished training run cannot be scored ("" if it can): a NaN loss or no validation score."""
    losses = result.history.get("loss", [])
    for epoch, loss in enumerate(losses):
        if not math.isfinite(loss):
            return f"training loss became {loss} in epoch {epoch + 1}"
    if result.best_val_f1 is None or not math.isfinite(result.best_val_f1):
        return "no validation score"
    return ""


class StartsFromRecipe:
    """An oracle whose first new configuration is ``start`` (a space's ``start`` values) when given:
    the search sets out from the current recipe and its table shows whether anything beats it. The
    random draws of the other trials are the same as without it."""

    def __init__(self, *args, start: dict | None = None, **kwargs):
        self.start = dict(start or {})
        super().__init__(*args, **kwargs)

    def _random_values(self):
        # KerasTuner records each trial's values as it creates it (and keeps them in its state), so
        # the start is proposed once, also across a resumed search
        if self.start and not self._duplicate(self.start):
            return dict(self.start)
        return super()._random_values()


class RandomOracle(StartsFromRecipe, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(StartsFromRecipe, kt.oracles.BayesianOptimizationOracle):
    pass


class MinEpochsHyperbandOracle(StartsFromRecipe, kt.oracles.HyperbandOracle):
    """KerasTuner's Hyperband whose smallest budget is ``min_epochs`` rather than one epoch: a
    one-epoch run of a from-scratch net on a cosine schedule with a warm-up epoch ranks nothing.

    The start also opens the bracket that trains at the largest budget from the outset, unless it
    already reached that budget by promotion. Short rounds can rank it under configurations that
    fall behind it later (a configuration without augmentation leads at 12 epochs and trails at
    36), and only a run at the largest budget tells whether anything in the table beats it."""

    def __init__(self, *args, min_epochs: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_epochs = min_epochs
        self._current_bracket = self._get_num_brackets() - 1
        self._brackets = []
        self._start_new_bracket()

    def _random_trial(self, trial_id, bracket):
        if bracket["bracket_num"] != 0 or not self.start or self._start_reached(self.max_epochs):
            return super()._random_trial(trial_id, bracket)
        bracket["rounds"][0].append({"past_id": None, "id": trial_id})
        budget = {"tuner/epochs": self.max_epochs, "tuner/initial_epoch": 0, "tuner/round": 0}
        return {"status": "RUNNING", "values": {**self.start, **budget, "tuner/bracket": self._current_bracket}}

    def _start_reached(self, epochs: int) -> bool:
        """Whether a trial of the start at ``epochs`` exists (finished, running or failed)."""
        return any(
            trial.hyperparameters.values.get("tuner/epochs") == epochs
            and all(trial.hyperparameters.values.get(name) == value for name, value in self.start.items())
            for trial in self.trials.values()
        )


def hyperband_plan(max_epochs: int, min_epochs: int, factor: int, iterations: int) -> list[tuple[int, int]]:
    """(trials, epochs each) of every round of every bracket KerasTuner's Hyperband will run."""
    oracle = MinEpochsHyperbandOracle(
        objective=kt.Objective(OBJECTIVE, "max"), max_epochs=max_epochs, factor=factor, min_epochs=min_epochs
    )
    rounds = []
    for bracket in reversed(range(oracle._get_num_brackets())):
        for round_num in range(bracket + 1):
            rounds.append((oracle._get_size(bracket, round_num), oracle._get_epochs(bracket, round_num)))
    return rounds * iterations


MAX_FAILED_IN_A_ROW = 3  # then the search stops: every trial failing says the setup, not the trials, is wrong


def make_tuner(spec: SearchSpec, base: TrainConfig, space: dict, out: Path):
    """A tuner of the spec's kind (checked by ``check_spec``) over ``space``; Hyperband spends at
    most ``spec.epochs`` on a trial."""
    objective = kt.Objective(OBJECTIVE, direction="max")
    common = dict(
        objective=objective,
        seed=spec.seed,
        max_consecutive_failed_trials=MAX_FAILED_IN_A_ROW,
        start=start_values(space),
    )
    if spec.tuner == "random":
        oracle = RandomOracle(max_trials=spec.max_trials, **common)
    elif spec.tuner == "bayesian":
        oracle = BayesianOracle(max_trials=spec.max_trials, **common)
    else:
        oracle = MinEpochsHyperbandOracle(
            max_epochs=spec.epochs,
            factor=spec.factor,
            hyperband_iterations=spec.iterations,
            min_epochs=spec.min_epochs,
            **common,
        )
    if spec.mirror:
        mirror_each_trial(oracle, out, Path(spec.mirror))
    # KerasTuner reloads a search only if this process's own tuner file exists, which a search
    # restored from its mirror after one trial, or a chief (it never writes one), lacks: without
    # it the oracle would start afresh and retrain the finished trials. The tuner's state is empty.
    tuner_file = out / PROJECT / f"{os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}.json"
    if (out / PROJECT / "oracle.json").exists() and not tuner_file.exists():
        atomic_write(tuner_file, "{}")
    # overwrite=False: the same command continues a search
    return TrainingRunTuner(oracle, base, space, out, directory=str(out), project_name=PROJECT, overwrite=False)


# --------------------------------------------------------------------------- a copy of the state elsewhere

PROJECT = "search"  # KerasTuner's folder inside --out: the oracle's and every trial's JSON


def state_files(out: Path) -> list[Path]:
    """A search's state, relative to its folder: the record and KerasTuner's JSON files."""
    files = [Path(SEARCH_FILE)] if (out / SEARCH_FILE).exists() else []
    return files + sorted(p.relative_to(out) for p in (out / PROJECT).rglob("*.json"))


def copy_state(source: Path, target: Path) -> int:
    """Copy a search's state files from ``source`` to ``target`` (each replaced whole, so a copy
    interrupted midway leaves every file either old or new); returns how many."""
    files = state_files(source)
    for name in files:
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (source / name).read_text())
    return len(files)


def mirror_each_trial(oracle: kt.Oracle, out: Path, mirror: Path) -> None:
    """After the oracle records a trial's end (the one process that owns it, also with workers),
    copy the state to ``mirror``."""
    end_trial = oracle.end_trial

    def end_and_mirror(trial):
        result = end_trial(trial)
        # KerasTuner saves its state before it drops the trial from the running ones, and a reload
        # retries every trial saved as running: saved again, a finished trial is not trained twice.
        oracle.save()
        copy_state(out, mirror)
        return result

    oracle.end_trial = end_and_mirror


def restore_from_mirror(out: Path, mirror: Path, record: dict) -> None:
    """Continue the search kept in ``mirror`` when ``out`` holds none; refuse a mirror of another search."""
    if not (mirror / SEARCH_FILE).exists():
        return
    check_same_search(mirror, record, write=False)
    if (out / SEARCH_FILE).exists():
        return
    copied = copy_state(mirror, out)
    trials = len(list((out / PROJECT).glob("trial_*/trial.json")))
    print(f"continuing the search kept in {mirror} ({trials} trials, {copied} files)", flush=True)


# --------------------------------------------------------------------------- continuing a search

SEARCH_FILE = "search.json"  # what a search directory was made for


def search_record(spec: SearchSpec, space: dict, data_hash: str) -> dict:
    """The settings a continued search must keep (``--max-trials`` may grow; workers may differ)."""
    record = {
        "model": spec.model,
        "data_hash": data_hash,
        "space": space,
        "tuner": spec.tuner,
        "epochs": spec.epochs,
        "limit": spec.limit,
        "seed": spec.seed,
    }
    if spec.tuner == "hyperband":
        record.update(min_epochs=spec.min_epochs, factor=spec.factor, iterations=spec.iterations)
    return record


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
        names.get(key, f"--{key.replace('_', '-')} (was {saved.get(key)!r}, now {value!r})")
        for key, value in record.items()
        if saved.get(key) != value
    ]
    if changed:
        raise FerKerasError(
            f"{out} holds a search made with other settings: {', '.join(changed)}; "
            "re-run its own command to continue it, or use a new --out"
        )


# --------------------------------------------------------------------------- results


def failure_reason(message: str | None) -> str:
    """The one-line reason at the end of a failed trial's traceback."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    for prefix in ("keras_tuner.src.errors.FailedTrialError: ", "FailedTrialError: "):
        if last.startswith(prefix):
            return last[len(prefix) :]
    return last


HYPERBAND_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")


def trials_table(tuner) -> list[dict]:
    """Every trial with its budget, hyper-parameters, score, status, time and (if failed) reason, best first."""
    rows = []
    trials = tuner.oracle.trials

    def bracket(values: dict) -> int:
        # KerasTuner stamps a promoted trial with the bracket current when it was made, which may
        # already be the next one; its bracket is its first round's
        parent = values.get("tuner/trial_id")
        return bracket(trials[parent].hyperparameters.values) if parent in trials else values["tuner/bracket"]

    for trial in trials.values():
        seconds = trial.metrics.get_last_value("seconds") if trial.metrics.exists("seconds") else None
        values = trial.hyperparameters.values
        row = {
            "trial": trial.trial_id,
            "status": str(trial.status),
            "val_macro_f1": trial.score if trial.score is not None and math.isfinite(trial.score) else None,
            "epochs": int(values.get("tuner/epochs", tuner.base.epochs)),
            "seconds": round(seconds, 1) if seconds is not None and math.isfinite(seconds) else None,
        }
        if "tuner/bracket" in values:
            row.update(bracket=bracket(values), round=values["tuner/round"], promoted_from=values.get("tuner/trial_id"))
        row.update({k: v for k, v in values.items() if k not in HYPERBAND_KEYS})
        row["reason"] = failure_reason(trial.message) if str(trial.status) == "FAILED" else ""
        rows.append(row)
    return sorted(rows, key=lambda r: (-(r["val_macro_f1"] if r["val_macro_f1"] is not None else -1), -r["epochs"]))


def best_row(completed: list[dict]) -> dict:
    """The best of the trials trained for the largest budget any of them reached. A short trial's
    score is not comparable with a long one's: a configuration can lead at 12 epochs and fall behind
    at 36 (one without augmentation overfits), so the best is never taken from a lower rung."""
    top = max(r["epochs"] for r in completed)
    return max((r for r in completed if r["epochs"] == top), key=lambda r: r["val_macro_f1"])


def write_results(tuner, out: Path) -> list[dict]:
    """``trials.csv`` / ``trials.md``, ``best_hyperparameters.json`` (the best trial at the largest
    budget any completed trial reached), ``hyperparameters.png`` and TensorBoard HParams logs."""
    import pandas as pd

    rows = trials_table(tuner)
    table = pd.DataFrame(rows)
    table.to_csv(out / "trials.csv", index=False)
    (out / "trials.md").write_text(_markdown(table) + "\n")
    completed = [r for r in rows if r["val_macro_f1"] is not None]
    if completed:
        best = best_row(completed)
        searched = list(tuner.space["hyperparameters"])
        (out / "best_hyperparameters.json").write_text(
            json.dumps(
                {
                    "trial": best["trial"],
                    "val_macro_f1": best["val_macro_f1"],
                    "epochs": best["epochs"],
                    **{k: best[k] for k in searched},
                },
                indent=2,
            )
            + "\n"
        )
        from fer_keras.reporting.search import plot_scores, write_hparams

        plot_scores(completed, searched, tuner.space["hyperparameters"], out / "hyperparameters.png")
        write_hparams(completed, searched, tuner.space["hyperparameters"], out / "hparams")
    return rows


def report_each_trial(tuner, out: Path) -> None:
    """Rewrite the trials table, best hyper-parameters and plots after every trial (in the process
    that owns the oracle), so a search of hours can be read, and its table committed, while it runs."""
    end_trial = tuner.oracle.end_trial

    def end_and_report(trial):
        result = end_trial(trial)
        try:
            write_results(tuner, out)
        except Exception as err:  # a table that cannot be written must not stop a search of hours
            print(f"warning: could not write the trials table in {out}: {first_line(err)}", file=sys.stderr, flush=True)
        return result

    tuner.oracle.end_trial = end_and_report


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
    tuner: str = "hyperband"
    max_trials: int = 0  # random, bayesian (default 8); hyperband's count follows from its budgets
    epochs: int = 27  # per trial; hyperband: the largest budget
    min_epochs: int = 3  # hyperband: the smallest budget
    factor: int = 3  # hyperband: a third of each round's trials go on, at three times the epochs
    iterations: int = 1  # hyperband: times the whole set of brackets runs
    limit: int = 0
    seed: int = 0
    train_best: bool = False
    best_epochs: int = 0  # default: epochs
    verbose: int = 2
    mirror: str = ""  # also keep the state here after every trial; continue from it if out is lost
    report_only: bool = False  # write the results of the search kept in out (or mirror); train nothing


@dataclass
class SearchResult:
    rows: list[dict]  # every trial, best first
    retrained: object | None = None  # the RunResult of --train-best

    @property
    def completed(self) -> list[dict]:
        return [r for r in self.rows if r["val_macro_f1"] is not None]

    @property
    def best(self) -> dict | None:
        """The trial ``best_hyperparameters.json`` and ``--train-best`` use (see ``best_row``)."""
        return best_row(self.completed) if self.completed else None


def check_spec(spec: SearchSpec) -> SearchSpec:
    """Budget options that fit the tuner, as a spec with the tuner's defaults filled in."""
    if spec.tuner not in TUNERS:
        raise FerKerasError(f"unknown --tuner {spec.tuner!r}; choose from {', '.join(TUNERS)}")
    if spec.epochs < 1:
        raise FerKerasError("--epochs must be at least 1")
    if spec.report_only and spec.train_best:
        raise FerKerasError("--report trains nothing: run --train-best without it")
    if spec.tuner == "hyperband":
        if spec.max_trials:
            raise FerKerasError(
                "--max-trials is for the random and bayesian tuners; hyperband's trials follow from "
                "--epochs, --min-epochs, --factor and --iterations"
            )
        if not 1 <= spec.min_epochs <= spec.epochs:
            raise FerKerasError(f"--min-epochs must be between 1 and --epochs ({spec.epochs})")
        if spec.factor < 2 or spec.iterations < 1:
            raise FerKerasError("--factor must be at least 2 and --iterations at least 1")
        return spec
    return replace(spec, max_trials=spec.max_trials or 8)


def describe_plan(spec: SearchSpec) -> str:
    """What a search will run, in trials and epochs."""
    if spec.tuner != "hyperband":
        return f"{spec.tuner} search: {spec.max_trials} trials of {spec.epochs} epochs"
    rounds = hyperband_plan(spec.epochs, spec.min_epochs, spec.factor, spec.iterations)
    trials, epochs = sum(n for n, _ in rounds), sum(n * e for n, e in rounds)
    steps = ", ".join(f"{n}x{e}" for n, e in rounds)
    return f"hyperband search: {trials} trials, {epochs} epochs in all (trials x epochs: {steps})"


def run_search(spec: SearchSpec) -> SearchResult:
    """Run (or continue) a search; the chief writes the trials table and, if asked, retrains the best."""
    spec = check_spec(spec)
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
    where = f"search space {spec.space}"
    check_space(space, base, where)
    check_model_options(space, spec.model, builder_options(spec.model), where)
    kept = [Path(d) / SEARCH_FILE for d in (out, spec.mirror) if d and (Path(d) / SEARCH_FILE).exists()]
    if spec.report_only and not kept:
        raise FerKerasError(f"no search to report in {out}" + (f" or {spec.mirror}" if spec.mirror else ""))
    if spec.report_only and not spec.data:
        data_hash = json.loads(kept[0].read_text())["data_hash"]  # a report without --data trusts the search's
    else:
        # fails here, before any folder is made, on bad data
        data_hash = runs.load_config_splits(asdict(base)).data_hash
    out.mkdir(parents=True, exist_ok=True)
    role = os.environ.get("KERASTUNER_TUNER_ID", "")
    record = search_record(spec, space, data_hash)
    if spec.mirror and not role.startswith("tuner"):  # the chief (or the only process) owns the state
        restore_from_mirror(out, Path(spec.mirror), record)
    check_same_search(out, record, write=not role.startswith("tuner"))
    tuner = make_tuner(spec, base, space, out)
    if spec.report_only:
        return SearchResult(write_results(tuner, out))
    if not role.startswith("tuner"):
        report_each_trial(tuner, out)
        print(describe_plan(spec), flush=True)
    try:
        tuner.search()
    except RuntimeError as err:
        if "consecutive failures" not in str(err):
            raise
        write_results(tuner, out)
        raise FerKerasError(
            f"{MAX_FAILED_IN_A_ROW} trials in a row failed, the last with: {failure_reason(str(err))} "
            f"(all reasons in {out / 'trials.md'}); the same command continues the search once fixed"
        ) from None
    if role.startswith("tuner"):
        return SearchResult([])  # workers only run trials; the chief owns the results
    result = SearchResult(write_results(tuner, out))
    if spec.train_best and result.completed:
        best = json.loads((out / "best_hyperparameters.json").read_text())
        settings = {**space.get("fixed", {}), **{k: best[k] for k in space["hyperparameters"]}}
        config = trial_config(base.replace(out=str(out / "best_run"), export=True), settings)
        best_run = RunDir(out / "best_run")
        resume = best_run.is_run and bool(best_run.resume_state())  # an interrupted retraining continues
        result.retrained = train(config.replace(epochs=spec.best_epochs or spec.epochs), resume=resume)
    return result
