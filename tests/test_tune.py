"""``python -m fer_keras.tune``: a small real search, resume after an interruption, a chief with
two workers on loopback, and one-line errors for bad tuners and search spaces."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fer_keras.training.search import TrainingRunTuner
from fer_keras.tune import main

SPACE = Path(__file__).resolve().parents[1] / "tuning" / "mobilenetv2.json"


def _argv(data, out, trials=2, extra=(), limit=256, space=SPACE):
    return [
        "--model",
        "mobilenetv2",
        "--data",
        str(data),
        "--space",
        str(space),
        "--tuner",
        "random",
        "--max-trials",
        str(trials),
        "--epochs",
        "1",
        "--limit",
        str(limit),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


@pytest.mark.slow
def test_search_writes_sorted_trials_and_best_and_resumes(small_fer, tmp_path, capsys, monkeypatch):
    out = tmp_path / "search"
    original_run_trial = TrainingRunTuner.run_trial
    calls = {"n": 0}

    def interrupted_second_trial(self, trial, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C during trial 2
        return original_run_trial(self, trial, *args, **kwargs)

    monkeypatch.setattr(TrainingRunTuner, "run_trial", interrupted_second_trial)
    assert main(_argv(small_fer, out)) == 130
    first = json.loads(next(out.glob("search/trial_*/trial.json")).read_text())
    assert first["status"] == "COMPLETED"

    monkeypatch.setattr(TrainingRunTuner, "run_trial", original_run_trial)
    assert main(_argv(small_fer, out)) == 0  # the same command continues
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 2 and (table["status"] == "COMPLETED").all()
    assert list(table["val_macro_f1"]) == sorted(table["val_macro_f1"], reverse=True)
    kept = table[table["trial"] == int(first["trial_id"])]["val_macro_f1"].item()
    assert kept == pytest.approx(first["score"])  # the finished trial was kept, not re-run
    assert {"optimizer", "learning_rate", "weight_decay", "dropout", "width", "seconds"} <= set(table.columns)
    assert (table["seconds"] > 0).all()
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert best["val_macro_f1"] == pytest.approx(table["val_macro_f1"].max())
    assert (out / "trials.md").read_text().startswith("| trial | status | val_macro_f1 |")
    # each trial is an ordinary training run with the trial's hyper-parameters
    trial_dirs = {int(p.name): p for p in (out / "trials").iterdir()}
    assert sorted(trial_dirs) == sorted(table["trial"])
    for _, row in table.iterrows():
        config = json.loads((trial_dirs[int(row["trial"])] / "config.json").read_text())
        assert config["optimizer"] == row["optimizer"] and config["learning_rate"] == pytest.approx(
            row["learning_rate"]
        )
        assert config["epochs"] == 1 and config["limit"] == 256
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("trials=2 completed=2 best_val_macro_f1=")

    # continuing with another budget would mix trials of different budgets in one table
    assert main(_argv(small_fer, out, trials=3, extra=["--seed", "3"], limit=128)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--limit (was 256, now 128), --seed (was 0, now 3)" in err
    assert len(pd.read_csv(out / "trials.csv")) == 2  # nothing ran


@pytest.mark.slow
def test_chief_and_two_workers_run_every_trial_once(small_fer, tmp_path):
    out = tmp_path / "distributed"
    space = json.loads(SPACE.read_text())
    space["fixed"]["depth"] = 0.34  # one block per stage: three processes trace faster on two cores
    (tmp_path / "space.json").write_text(json.dumps(space))
    assert (
        main(_argv(small_fer, out, trials=3, extra=("--workers", "2"), limit=128, space=tmp_path / "space.json")) == 0
    )
    table = pd.read_csv(out / "trials.csv")
    assert sorted(table["trial"]) == [0, 1, 2] and (table["status"] == "COMPLETED").all()
    trials = [p for p in (out / "trials").iterdir() if p.is_dir()]
    assert len(trials) == 3 and all((p / "logs").is_dir() for p in trials)  # one run per trial: each ran once


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "malformed search space"),
        ('{"hyperparameters": {"learning_rate": {"type": "float", "min": 0.1, "max": 0.01}}}', "empty range"),
        ('{"hyperparameters": {"optimizer": {"type": "choice", "values": []}}}', "non-empty 'values'"),
        ('{"hyperparameters": {"colour": {"type": "choice", "values": [1]}}}', "'colour' is not a training option"),
        ('{"hyperparameters": {"epochs": {"type": "int", "min": 1, "max": 5}}}', "'epochs' is not searchable"),
        ('{"fixed": {"data": "x"}, "hyperparameters": {}}', "'data' is not searchable"),
        ('{"fixed": {}}', "needs a 'hyperparameters' mapping"),
    ],
)
def test_bad_search_space(content, message, tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text(content)
    assert main(["--space", str(space), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_unknown_tuner(tmp_path, capsys):
    assert main(["--space", str(SPACE), "--tuner", "grid", "--out", str(tmp_path / "o")]) == 2
    assert "invalid choice: 'grid'" in capsys.readouterr().err


def test_missing_data_is_one_line_and_leaves_no_search_directory(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["--space", str(SPACE), "--data", str(tmp_path / "none"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "download FER2013" in err and "\n" not in err
    assert not out.exists()


def test_every_tunable_option_reaches_the_trial_config(tmp_path):
    """A space may set schedules, EMA, distillation and early stopping: they reach the run's config."""
    from fer_keras.training.config import TUNABLE, TrainConfig
    from fer_keras.training.space import load_space, trial_config

    space = tmp_path / "space.json"
    fixed = {"schedule": "plateau", "ema": 0.99, "teacher": "t.keras", "early_stopping": 3}
    space.write_text(
        json.dumps({"fixed": fixed, "hyperparameters": {"dropout": {"type": "float", "min": 0, "max": 0.5}}})
    )
    loaded = load_space(space)
    config = trial_config(TrainConfig(), {**loaded["fixed"], "dropout": 0.25, "tuner/epochs": 4})
    assert (config.schedule, config.ema, config.teacher, config.early_stopping) == ("plateau", 0.99, "t.keras", 3)
    assert config.model_options == {"dropout": 0.25}
    assert set(fixed) <= TUNABLE and "epochs" not in TUNABLE and "data" not in TUNABLE
