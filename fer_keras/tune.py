"""Hyper-parameter search with KerasTuner over the same training code as ``fer_keras.train``.

    python -m fer_keras.tune --model mobilenetv2 --space tuning/mobilenetv2.json --tuner bayesian \\
        --max-trials 8 --epochs 5 --out tuning/runs/mnv2 [--workers 2] [--train-best]

The objective is validation macro-F1 (maximised); the search never sees the test split. Running
the same command again continues the search (finished trials are kept; an interrupted one is
retried; ``--max-trials`` may grow, other settings may not: ``search.json`` records them).
Results: ``trials.csv`` / ``trials.md`` (sorted by score) and ``best_hyperparameters.json`` in
``--out``; TensorBoard logs per trial under ``--out/tensorboard``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt

from fer_keras.data import augment_config, class_weights, eval_dataset, load_splits, train_dataset
from fer_keras.data.loading import default_data_path
from fer_keras.errors import FerKerasError, cli_main, first_line
from fer_keras.train import MODEL_OPTIONS, TrainConfig, atomic_write, build_model, compile_model, train

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVE = "val_f1"
CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


# --------------------------------------------------------------------------- search spaces


def load_space(path: str | Path) -> dict:
    """Read and validate a search-space file (JSON; YAML if PyYAML is installed)."""
    path = Path(path)
    if not path.exists():
        raise FerKerasError(f"search space {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise FerKerasError("YAML search spaces need PyYAML (pip install pyyaml); or use JSON") from None
            space = yaml.safe_load(text)
        else:
            space = json.loads(text)
    except (ValueError, Exception) as err:  # noqa: BLE001 - json and yaml raise different types
        if isinstance(err, FerKerasError):
            raise
        raise FerKerasError(f"malformed search space {path}: {first_line(err)}") from None
    if not isinstance(space, dict) or not isinstance(space.get("hyperparameters"), dict):
        raise FerKerasError(f"search space {path} needs a 'hyperparameters' mapping")
    for name, spec in space["hyperparameters"].items():
        _check_spec(path, name, spec)
    for name in space.get("fixed", {}):
        if name not in CONFIG_FIELDS and name not in MODEL_OPTIONS:
            raise FerKerasError(f"search space {path}: unknown fixed setting {name!r}")
    return space


def _check_spec(path: Path, name: str, spec: dict) -> None:
    where = f"search space {path}, {name!r}"
    if name not in CONFIG_FIELDS and name not in MODEL_OPTIONS:
        raise FerKerasError(f"{where}: not a training setting or model option")
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "choice":
        if not spec.get("values"):
            raise FerKerasError(f"{where}: a choice needs a non-empty 'values' list")
    elif kind in ("float", "int"):
        if "min" not in spec or "max" not in spec:
            raise FerKerasError(f"{where}: a {kind} range needs 'min' and 'max'")
        if not spec["min"] < spec["max"]:
            raise FerKerasError(f"{where}: empty range, min {spec['min']} must be below max {spec['max']}")
        if spec.get("sampling") == "log" and spec["min"] <= 0:
            raise FerKerasError(f"{where}: log sampling needs min > 0")
    else:
        raise FerKerasError(f"{where}: 'type' must be choice, float or int")


def define(hp: kt.HyperParameters, space: dict) -> dict:
    """Ask KerasTuner for this trial's value of every searched setting."""
    values = {}
    for name, spec in space["hyperparameters"].items():
        if spec["type"] == "choice":
            values[name] = hp.Choice(name, spec["values"])
        elif spec["type"] == "float":
            values[name] = hp.Float(
                name, spec["min"], spec["max"], step=spec.get("step"), sampling=spec.get("sampling", "linear")
            )
        else:
            values[name] = hp.Int(
                name, spec["min"], spec["max"], step=spec.get("step", 1), sampling=spec.get("sampling", "linear")
            )
    return values


def trial_config(base: TrainConfig, settings: dict) -> TrainConfig:
    """The base config with fixed and searched settings applied."""
    config = dataclasses.replace(base, model_options=dict(base.model_options))
    for name, value in settings.items():
        if name in MODEL_OPTIONS:
            config.model_options[name] = value
        else:
            setattr(config, name, value)
    return config


# --------------------------------------------------------------------------- the hypermodel


class _Seconds(keras.callbacks.Callback):
    """Adds the trial's elapsed seconds to the epoch logs, so KerasTuner records it as a metric."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.start


class FerHyperModel(kt.HyperModel):
    """Builds and fits a fer_keras model with the same functions ``fer_keras.train`` uses."""

    def __init__(self, base: TrainConfig, space: dict, splits):
        super().__init__(name=base.model, tunable=True)
        self.base, self.space, self.splits = base, space, splits
        self.steps = len(splits.train) // min(base.batch_size, len(splits.train))

    def _config(self, hp: kt.HyperParameters) -> TrainConfig:
        return trial_config(trial_config(self.base, self.space.get("fixed", {})), define(hp, self.space))

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        config = self._config(hp)
        model = build_model(config)
        compile_model(model, config, self.steps)
        return model

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, callbacks=None, **kwargs):
        config = self._config(hp)
        augment = augment_config(config.augment, erasing=config.erasing, mixup=config.mixup, cutmix=config.cutmix)
        steps = len(self.splits.train) // min(config.batch_size, len(self.splits.train))
        epochs = kwargs.get("epochs", config.epochs)  # Hyperband sets its own budget per trial
        initial_epoch = kwargs.get("initial_epoch", 0)
        train_ds, _ = train_dataset(
            self.splits.train, config.batch_size, config.seed, augment, config.balance, initial_epoch, epochs
        )
        return model.fit(
            train_ds,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            validation_data=eval_dataset(self.splits.val),
            class_weight=class_weights(self.splits.train.labels, config.balance),
            callbacks=[_Seconds(), *(callbacks or [])],
            shuffle=False,
            verbose=config.verbose,
        )


def make_tuner(name: str, hypermodel: FerHyperModel, out: Path, max_trials: int, epochs: int, seed: int):
    if name not in TUNERS:
        raise FerKerasError(f"unknown --tuner {name!r}; choose from {', '.join(TUNERS)}")
    common = dict(
        hypermodel=hypermodel,
        objective=kt.Objective(OBJECTIVE, direction="max"),
        directory=str(out),
        project_name="search",
        overwrite=False,  # the same command continues a search
        seed=seed,
    )
    if name == "random":
        return kt.RandomSearch(max_trials=max_trials, **common)
    if name == "bayesian":
        return kt.BayesianOptimization(max_trials=max_trials, **common)
    return kt.Hyperband(max_epochs=epochs, factor=3, hyperband_iterations=1, **common)


# --------------------------------------------------------------------------- continuing a search

SEARCH_FILE = "search.json"  # what a search directory was made for


def search_record(args: argparse.Namespace, space: dict, data_hash: str) -> dict:
    """The settings a continued search must keep (``--max-trials`` may grow; workers may differ)."""
    return {
        "model": args.model,
        "data_hash": data_hash,
        "space": space,
        "tuner": args.tuner,
        "epochs": args.epochs,
        "limit": args.limit,
        "seed": args.seed,
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


def search(args: argparse.Namespace) -> int:
    space = load_space(args.space)
    if space.get("model", args.model) != args.model:
        raise FerKerasError(f"search space {args.space} is for model {space['model']!r}, not {args.model!r}")
    out = Path(args.out)
    base = TrainConfig(
        model=args.model,
        data=str(args.data or default_data_path()),
        epochs=args.epochs,
        limit=args.limit,
        seed=args.seed,
        export=False,
        verbose=0 if args.quiet else 2,
    )
    base.validate()
    splits = load_splits(base.data, seed=base.seed, limit=base.limit or None)
    out.mkdir(parents=True, exist_ok=True)  # only once the data loads: bad input leaves no empty search
    role = os.environ.get("KERASTUNER_TUNER_ID", "")
    check_same_search(out, search_record(args, space, splits.data_hash), write=not role.startswith("tuner"))
    hypermodel = FerHyperModel(base, space, splits)
    tuner = make_tuner(args.tuner, hypermodel, out, args.max_trials, args.epochs, args.seed)
    tuner.search(callbacks=[keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False, profile_batch=0)])
    if role.startswith("tuner"):
        return 0  # workers only run trials; the chief owns the results
    rows = write_results(tuner, out)
    print((out / "trials.md").read_text())
    done = [r for r in rows if r["val_macro_f1"] is not None]
    print(
        f"trials={len(rows)} completed={len(done)} best_val_macro_f1={done[0]['val_macro_f1']:.4f}"
        if done
        else f"trials={len(rows)} completed=0"
    )
    if args.train_best and done:
        best = json.loads((out / "best_hyperparameters.json").read_text())
        settings = {**space.get("fixed", {}), **{k: v for k, v in best.items() if k != "val_macro_f1"}}
        config = trial_config(dataclasses.replace(base, out=str(out / "best_run"), export=True), settings)
        config.epochs = args.best_epochs or args.epochs
        result = train(config)
        print(
            f"best configuration retrained: {result.run_dir} test accuracy="
            f"{result.test_metrics['accuracy']:.4f} macro_f1={result.test_metrics['macro_f1']:.4f}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fer_keras.tune", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="mobilenetv2")
    p.add_argument("--data", default=None)
    p.add_argument("--space", required=True, help="search space file (tuning/NAME.json)")
    p.add_argument("--tuner", default="bayesian", help=f"one of {', '.join(TUNERS)}")
    p.add_argument("--max-trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=5, help="epochs per trial (max epochs for hyperband)")
    p.add_argument("--limit", type=int, default=0, help="search on a stratified subset of N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="search directory (re-run to continue)")
    p.add_argument("--workers", type=int, default=0, help="run a chief and N workers on this machine")
    p.add_argument("--train-best", action="store_true", help="retrain the best configuration into a run directory")
    p.add_argument("--best-epochs", type=int, default=0, help="epochs for --train-best (default: --epochs)")
    p.add_argument("--quiet", action="store_true")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.tuner not in TUNERS:
        raise FerKerasError(f"unknown --tuner {args.tuner!r}; choose from {', '.join(TUNERS)}")
    load_space(args.space)  # fail before starting processes
    if args.workers:
        code = launch_workers(argv, args.workers)
        if code == 0 and args.train_best:
            return search(args)  # the finished search reloads; this only writes results and retrains
        return code
    return search(args)


if __name__ == "__main__":
    raise SystemExit(main())
