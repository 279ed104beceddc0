"""``python -m fer_keras.tune``: a small real search, resume after an interruption, Hyperband end to
end, a chief with two workers on loopback, failed trials recorded while the search goes on, and
one-line errors for bad tuners, budgets and search spaces."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fer_keras.training import search
from fer_keras.training.loop import RunResult
from fer_keras.training.search import TrainingRunTuner
from fer_keras.tune import main

SPACE = Path(__file__).resolve().parents[1] / "tuning" / "mobilenetv2.json"


def _argv(data, out, trials=2, extra=(), limit=256, space=SPACE, tuner=("--tuner", "random", "--epochs", "1")):
    trials = ["--max-trials", str(trials)] if "random" in tuner or "bayesian" in tuner else []
    return [
        "--model",
        "mobilenetv2",
        "--data",
        str(data),
        "--space",
        str(space),
        *tuner,
        *trials,
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


def test_a_lost_search_continues_from_its_mirror(small_fer, tmp_path, monkeypatch, capsys):
    out, mirror = tmp_path / "search", tmp_path / "kept" / "state"
    monkeypatch.setattr(search, "train", _fake_train([0.3, 0.5, 0.4]))
    assert main(_argv(small_fer, out, trials=2, limit=128, extra=["--mirror", str(mirror)])) == 0
    kept = sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file())
    assert "search.json" in kept and "search/oracle.json" in kept
    assert all(name.endswith(".json") for name in kept)  # no checkpoints, no event files
    assert len([n for n in kept if n.startswith("search/trial_")]) == 2

    # the machine is lost with --out; the same command (one more trial) continues from the mirror
    import shutil

    shutil.rmtree(out)
    capsys.readouterr()
    assert main(_argv(small_fer, out, trials=3, limit=128, extra=["--mirror", str(mirror)])) == 0
    assert "continuing the search kept in" in capsys.readouterr().out
    table = pd.read_csv(out / "trials.csv")
    assert sorted(table["val_macro_f1"]) == [0.3, 0.4, 0.5]  # the two kept, and only one new trial trained
    assert len(list(mirror.glob("search/trial_*/trial.json"))) == 3

    # a mirror of another search is refused by name, before anything is copied
    assert main(_argv(small_fer, tmp_path / "other", trials=3, limit=64, extra=["--mirror", str(mirror)])) == 2
    assert "--limit (was 128, now 64)" in capsys.readouterr().err
    assert not (tmp_path / "other" / "search.json").exists()


def test_a_search_lost_after_its_first_trial_continues_from_its_mirror(small_fer, tmp_path, monkeypatch):
    """KerasTuner writes its own tuner file only after the first trial's state is mirrored: the
    restored search must still reload, not start afresh and retrain trial 0."""
    out, mirror = tmp_path / "search", tmp_path / "state"
    monkeypatch.setattr(search, "train", _fake_train([0.3, 0.5]))  # a third training would fail a trial
    assert main(_argv(small_fer, out, trials=1, limit=128, extra=["--mirror", str(mirror)])) == 0
    import shutil

    shutil.rmtree(out)
    assert main(_argv(small_fer, out, trials=2, limit=128, extra=["--mirror", str(mirror)])) == 0
    table = pd.read_csv(out / "trials.csv")
    assert sorted(table["val_macro_f1"]) == [0.3, 0.5] and (table["status"] == "COMPLETED").all()


def test_a_hyperband_search_interrupted_and_lost_continues_from_its_mirror(small_fer, tmp_path, monkeypatch):
    """Ctrl-C in the third of five trials, then --out is lost: the two finished trials are kept,
    the interrupted one and the rest run, and the brackets (promotions) come out whole."""
    out, mirror = tmp_path / "hb", tmp_path / "state"
    monkeypatch.setattr(search, "train", _fake_train([0.3, 0.5, KeyboardInterrupt(), 0.4, 0.6, 0.2]))
    argv = _argv(small_fer, out, limit=128, tuner=("--epochs", "2", "--min-epochs", "1", "--factor", "2"))
    assert main([*argv, "--mirror", str(mirror)]) == 130
    import shutil

    shutil.rmtree(out)
    assert main([*argv, "--mirror", str(mirror)]) == 0  # a fourth extra call would fail a trial
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 5 and (table["status"] == "COMPLETED").all()
    assert sorted(table["val_macro_f1"]) == [0.2, 0.3, 0.4, 0.5, 0.6] and sorted(table["epochs"]) == [1, 1, 2, 2, 2]
    assert table["promoted_from"].notna().sum() == 1


def test_the_best_trial_is_the_best_at_the_largest_budget_not_a_short_trials_score(
    small_fer, tmp_path, monkeypatch, capsys
):
    """A configuration without augmentation can lead at a short budget and fall behind at the full
    one: the reported best, best_hyperparameters.json and --train-best all take the largest budget's."""
    out = tmp_path / "hb"
    # trials in order: 2 x 1 epoch (the first scores highest of all), its promotion, 2 x 2 epochs
    monkeypatch.setattr(search, "train", _fake_train([0.9, 0.3, 0.5, 0.4, 0.6]))
    hyperband = ("--epochs", "2", "--min-epochs", "1", "--factor", "2")
    assert main(_argv(small_fer, out, limit=128, tuner=hyperband)) == 0
    table = pd.read_csv(out / "trials.csv")
    assert table["val_macro_f1"].iloc[0] == 0.9 and table["epochs"].iloc[0] == 1  # the table: best score first
    top = table[table["val_macro_f1"] == 0.6]
    assert top["epochs"].item() == 2
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert best["val_macro_f1"] == 0.6 and best["epochs"] == 2 and int(best["trial"]) == top["trial"].item()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"trials=5 completed=5 best_val_macro_f1=0.6000 best_trial={best['trial']} at_epochs=2"


def test_a_search_in_progress_has_its_table_after_every_trial(small_fer, tmp_path, monkeypatch, capsys):
    """A search of hours is read (and its table committed) while it runs: the trials table, best
    hyper-parameters and plot follow every finished trial, not only the search's end; a table
    that cannot be written warns and the search goes on."""
    out = tmp_path / "search"
    monkeypatch.setattr(search, "train", _fake_train([0.3, 0.5, KeyboardInterrupt()]))
    assert main(_argv(small_fer, out, trials=3, limit=128)) == 130
    table = pd.read_csv(out / "trials.csv")
    assert sorted(table.loc[table["status"] == "COMPLETED", "val_macro_f1"]) == [0.3, 0.5]
    assert json.loads((out / "best_hyperparameters.json").read_text())["val_macro_f1"] == 0.5
    assert (out / "hyperparameters.png").exists()

    def broken(tuner, where):
        raise OSError("No space left on device\nmore")

    monkeypatch.setattr(search, "write_results", broken)
    monkeypatch.setattr(search, "train", _fake_train([0.4, 0.6]))
    capsys.readouterr()
    assert main(_argv(small_fer, out, trials=3, limit=128)) == 2  # the search's own final table fails too
    err = capsys.readouterr().err
    assert "warning: could not write the trials table" in err and "error: No space left on device" in err
    assert "Traceback" not in err


def test_report_writes_the_table_of_a_kept_search_and_trains_nothing(small_fer, tmp_path, monkeypatch, capsys):
    out, mirror = tmp_path / "search", tmp_path / "state"
    monkeypatch.setattr(search, "train", _fake_train([0.3, 0.5]))
    assert main(_argv(small_fer, out, trials=3, limit=128, extra=["--mirror", str(mirror)])) == 0  # the 3rd fails
    monkeypatch.setattr(search, "train", _fake_train([]))  # any training now fails the test's trial
    elsewhere = tmp_path / "report"
    capsys.readouterr()
    # with room for two more trials: a search would try them, a report does not
    assert main(_argv(small_fer, elsewhere, trials=5, limit=128, extra=["--mirror", str(mirror), "--report"])) == 0
    printed = capsys.readouterr().out
    assert "trials=3 completed=2 best_val_macro_f1=0.5000" in printed
    table = pd.read_csv(elsewhere / "trials.csv")
    assert sorted(table["val_macro_f1"].dropna()) == [0.3, 0.5] and (elsewhere / "hyperparameters.png").exists()
    # a report reads the kept search: it needs no data, not even the default path
    monkeypatch.delenv("FER_KERAS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    argv = _argv(small_fer, elsewhere, trials=5, limit=128, extra=["--report"])
    data_at = argv.index("--data")
    del argv[data_at : data_at + 2]
    assert main(argv) == 0, capsys.readouterr().err
    assert "trials=3 completed=2 best_val_macro_f1=0.5000" in capsys.readouterr().out

    for extra, message in (
        (["--report"], "no search to report in"),
        (["--report", "--train-best"], "--report trains nothing"),
        (["--report", "--workers", "2"], "--report trains nothing"),
    ):
        assert main(_argv(small_fer, tmp_path / "none", limit=128, extra=extra)) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "none").exists()


def _is_start(row, start) -> bool:
    return all(row[k] == pytest.approx(v) if isinstance(v, float) else row[k] == v for k, v in start.items())


@pytest.mark.parametrize(
    "tuner",
    [
        ("--tuner", "random", "--epochs", "1"),
        ("--tuner", "bayesian", "--epochs", "1"),
        ("--epochs", "2", "--min-epochs", "1", "--factor", "2"),
    ],
    ids=["random", "bayesian", "hyperband"],
)
def test_the_first_trial_is_the_spaces_start(tuner, small_fer, tmp_path, monkeypatch):
    """tuning/mobilenetv2.json starts from the shipped recipe: trial 0 trains it, the others are drawn."""
    start = json.loads(SPACE.read_text())["start"]
    monkeypatch.setattr(search, "train", _fake_train([0.3, 0.5, 0.4, 0.6, 0.2]))
    assert main(_argv(small_fer, tmp_path / "s", trials=3, limit=128, tuner=tuner)) == 0
    table = pd.read_csv(tmp_path / "s" / "trials.csv").sort_values("trial")
    first = table.iloc[0]
    assert first["trial"] == 0 and _is_start(first, start)
    drawn = table[table["promoted_from"].isna()] if "promoted_from" in table else table
    drawn = drawn[drawn["epochs"] == table["epochs"].min()]  # Hyperband also runs it at the largest budget
    assert sum(_is_start(row, start) for _, row in drawn.iterrows()) == 1


@pytest.mark.parametrize(
    "scores, start_rows",
    [
        # the start (trial 0) loses its first round: it opens the bracket at the largest budget
        ([0.3, 0.5, 0.4, 0.6, 0.2], {0: (1, ""), 3: (2, "")}),
        # the start wins its first round and is promoted: the last bracket draws two configurations
        ([0.5, 0.3, 0.4, 0.6, 0.2], {0: (1, ""), 2: (2, "0000")}),
    ],
    ids=["not-promoted", "promoted"],
)
def test_hyperband_trains_the_start_at_the_largest_budget_once(scores, start_rows, small_fer, tmp_path, monkeypatch):
    """Short rounds can rank the start under configurations that trail it later; a search whose
    start never reaches the largest budget cannot say whether anything beats it there."""
    start = json.loads(SPACE.read_text())["start"]
    monkeypatch.setattr(search, "train", _fake_train(scores))
    hyperband = ("--epochs", "2", "--min-epochs", "1", "--factor", "2")  # 2x1 -> 1x2, then 2x2
    assert main(_argv(small_fer, tmp_path / "s", limit=128, tuner=hyperband)) == 0
    table = pd.read_csv(tmp_path / "s" / "trials.csv", dtype={"promoted_from": str}).fillna("")
    rows = {row["trial"]: (row["epochs"], row["promoted_from"]) for _, row in table.iterrows() if _is_start(row, start)}
    assert len(table) == 5 and rows == start_rows


def test_a_continued_search_does_not_train_its_start_again(small_fer, tmp_path, monkeypatch):
    start = json.loads(SPACE.read_text())["start"]
    out, mirror = tmp_path / "s", tmp_path / "state"
    monkeypatch.setattr(search, "train", _fake_train([0.3, 0.5, 0.4]))
    assert main(_argv(small_fer, out, trials=1, limit=128, extra=["--mirror", str(mirror)])) == 0
    import shutil

    shutil.rmtree(out)  # continued from the mirror: the oracle's record of tried values comes back with it
    assert main(_argv(small_fer, out, trials=3, limit=128, extra=["--mirror", str(mirror)])) == 0
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 3 and [_is_start(row, start) for _, row in table.sort_values("trial").iterrows()] == [
        True,
        False,
        False,
    ]


@pytest.mark.slow
def test_chief_and_two_workers_run_every_trial_once(small_fer, tmp_path):
    out = tmp_path / "distributed"
    space = json.loads(SPACE.read_text())
    space["fixed"]["depth"] = 0.34  # one block per stage: three processes trace faster on two cores
    (tmp_path / "space.json").write_text(json.dumps(space))
    assert (
        main(
            _argv(
                small_fer,
                out,
                trials=3,
                extra=("--workers", "2", "--mirror", str(tmp_path / "state")),
                limit=128,
                space=tmp_path / "space.json",
            )
        )
        == 0
    )
    table = pd.read_csv(out / "trials.csv")
    assert sorted(table["trial"]) == [0, 1, 2] and (table["status"] == "COMPLETED").all()
    trials = [p for p in (out / "trials").iterdir() if p.is_dir()]
    assert len(trials) == 3 and all((p / "logs").is_dir() for p in trials)  # one run per trial: each ran once
    # the chief, which owns the oracle, kept the state of every trial as it ended
    kept = [json.loads(p.read_text()) for p in (tmp_path / "state").glob("search/trial_*/trial.json")]
    assert sorted(t["status"] for t in kept) == ["COMPLETED"] * 3
    assert json.loads((tmp_path / "state" / "search" / "oracle.json").read_text())["ongoing_trials"] == {}


def _with_start(**start) -> str:
    """A two-option space whose first trial is ``start``."""
    space = {
        "optimizer": {"type": "choice", "values": ["adamw", "sgd"]},
        "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"},
    }
    return json.dumps({"hyperparameters": space, "start": start})


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
        ('{"hyperparameters": {}, "fixd": {"dropout": 0.1}}', "unknown entry 'fixd'"),
        (
            _with_start(optimizer="sgd", learning_rate=1e-3, dropout=0.2),
            "'start' sets 'dropout', which the space does not",
        ),
        (_with_start(optimizer="sgd"), "'start' needs a value for 'learning_rate'"),
        (_with_start(optimizer="adam", learning_rate=1e-3), "'start' gives optimizer='adam', outside what the space"),
        (_with_start(optimizer="sgd", learning_rate=0.5), "'start' gives learning_rate=0.5, outside"),
        (
            '{"hyperparameters": {"head_epochs": {"type": "int", "min": 0, "max": 4}}, "start": {"head_epochs": 1.5}}',
            "'start' gives head_epochs=1.5, outside",
        ),
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


def _shallow_space(tmp_path, **fixed) -> Path:
    space = json.loads(SPACE.read_text())
    space["fixed"].update(depth=0.34, input_size=48, **fixed)  # one block per stage at 48x48: trials trace fast
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    return path


@pytest.mark.slow
def test_hyperband_runs_brackets_end_to_end(small_fer, tmp_path, capsys):
    """Hyperband (the default tuner) over a tiny subset: short trials, the best of them retrained
    at the larger budget, every trial a run of its own budget, and the plots written."""
    out = tmp_path / "hb"
    hyperband = ("--epochs", "2", "--min-epochs", "1", "--factor", "2")
    assert main(_argv(small_fer, out, limit=128, space=_shallow_space(tmp_path), tuner=hyperband)) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "trials.csv")
    # KerasTuner's brackets for max 2, min 1, factor 2: 2 trials x 1 epoch -> 1 x 2 epochs; 2 x 2 epochs
    assert "hyperband search: 5 trials, 8 epochs in all (trials x epochs: 2x1, 1x2, 2x2)" in printed
    assert len(table) == 5 and (table["status"] == "COMPLETED").all()
    assert sorted(table["epochs"]) == [1, 1, 2, 2, 2]
    promoted = table[table["promoted_from"].notna()]
    assert len(promoted) == 1 and promoted["epochs"].item() == 2
    parent = table[table["trial"] == int(promoted["promoted_from"].item())]
    assert parent["epochs"].item() == 1 and parent["optimizer"].item() == promoted["optimizer"].item()
    assert promoted["bracket"].item() == parent["bracket"].item() == 1 and promoted["round"].item() == 1
    runs = {int(p.name): p for p in (out / "trials").iterdir()}
    for _, row in table.iterrows():  # each trial trained its own budget from scratch
        assert len(pd.read_csv(runs[row["trial"]] / "history.csv")) == row["epochs"]
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert best["epochs"] == 2 and best["val_macro_f1"] == pytest.approx(
        table[table["epochs"] == 2]["val_macro_f1"].max()
    )
    assert (out / "hyperparameters.png").stat().st_size > 10_000
    assert len(list((out / "hparams").rglob("events.out.tfevents.*"))) == 6  # the experiment + one per trial


def _fake_train(outcomes):
    """``train`` replaced by canned outcomes in order: a float is a finished run's val macro-F1,
    an exception (or KeyboardInterrupt) is raised, "nan" is a run whose loss became NaN in its second epoch."""
    calls = iter(outcomes)

    def fake(config, resume=False):
        outcome = next(calls)
        if isinstance(outcome, BaseException):
            raise outcome
        losses = [1.9, float("nan")] if outcome == "nan" else [1.9, 1.7]
        score = 0.05 if outcome == "nan" else outcome
        return RunResult(Path(config.out), {"loss": losses}, None, score, 1.0, 1.0)

    return fake


def test_a_crashed_or_nan_trial_is_recorded_as_failed_and_the_search_goes_on(small_fer, tmp_path, monkeypatch):
    out = tmp_path / "s"
    monkeypatch.setattr(search, "train", _fake_train([0.3, RuntimeError("out of memory\nmore"), "nan", 0.4]))
    assert main(_argv(small_fer, out, trials=4, limit=128)) == 0
    table = pd.read_csv(out / "trials.csv", keep_default_na=False)
    assert list(table["status"]) == ["COMPLETED", "COMPLETED", "FAILED", "FAILED"]
    assert list(table["val_macro_f1"][:2]) == ["0.4", "0.3"]
    reasons = set(table["reason"][2:])
    assert reasons == {"RuntimeError: out of memory", "training loss became nan in epoch 2"}
    assert "training loss became nan in epoch 2" in (out / "trials.md").read_text()
    assert json.loads((out / "best_hyperparameters.json").read_text())["val_macro_f1"] == 0.4


def test_a_search_whose_trials_all_fail_stops_with_one_line(small_fer, tmp_path, monkeypatch, capsys):
    out = tmp_path / "s"
    monkeypatch.setattr(search, "train", _fake_train([ValueError("bad thing")] * 3))
    assert main(_argv(small_fer, out, trials=5, limit=128)) == 2
    *trials, last = capsys.readouterr().err.strip().splitlines()
    assert "3 trials in a row failed, the last with: ValueError: bad thing" in last
    assert [line.split(" ", 2)[2] for line in trials] == ["failed: ValueError: bad thing"] * 3  # one line each
    assert len(pd.read_csv(out / "trials.csv")) == 3


@pytest.mark.parametrize(
    "space,message",
    [
        ({"fixed": {"optimizer": "rmsprop"}}, "optimizer='rmsprop' cannot be trained: --optimizer must be one of"),
        (
            {"hyperparameters": {"label_smoothing": {"type": "float", "min": 0.5, "max": 1.0}}},
            "label_smoothing=1.0 cannot be trained: --label-smoothing must be in [0, 1)",
        ),
        (
            {"hyperparameters": {"momentum": {"type": "float", "min": 0.8, "max": 0.95}}},
            "'momentum' acts only with optimizer sgd, but the space lets optimizer be 'adamw'",
        ),
        (
            {
                "hyperparameters": {
                    "optimizer": {"type": "choice", "values": ["adam", "adamw"]},
                    "weight_decay": {"type": "float", "min": 1e-5, "max": 1e-3},
                }
            },
            "'weight_decay' acts only with optimizer adamw or sgd (adam has none), but the space lets optimizer be 'adam'",
        ),
        ({"fixed": {"distill_alpha": 0.3}}, "'distill_alpha' acts only with a teacher"),
        ({"fixed": {"stem": "small"}}, "'stem' is not an option of model 'mobilenetv2'"),
    ],
)
def test_a_space_option_no_trial_could_honour_is_refused_by_name(space, message, small_fer, tmp_path, capsys):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"hyperparameters": {}, **space}))
    assert main(_argv(small_fer, tmp_path / "o", space=path, limit=128)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "o" / "trials.csv").exists()


def test_a_search_continued_with_other_budgets_is_refused_by_flag_name(tmp_path):
    from fer_keras.training.search import check_same_search

    record = {"tuner": "hyperband", "epochs": 18, "min_epochs": 2, "factor": 3}
    check_same_search(tmp_path, record)
    with pytest.raises(Exception, match=r"--epochs \(was 18, now 27\), --min-epochs \(was 2, now 6\)"):
        check_same_search(tmp_path, {**record, "epochs": 27, "min_epochs": 6})


@pytest.mark.parametrize(
    "flags,message",
    [
        (("--max-trials", "5"), "--max-trials is for the random and bayesian tuners"),
        (("--epochs", "6", "--min-epochs", "9"), "--min-epochs must be between 1 and --epochs (6)"),
        (("--factor", "1"), "--factor must be at least 2"),
    ],
)
def test_hyperband_budget_errors(flags, message, small_fer, tmp_path, capsys):
    assert main(_argv(small_fer, tmp_path / "o", tuner=flags, limit=128)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_resnet18_and_vgg16_spaces_are_accepted():
    from fer_keras.models.registry import builder_options
    from fer_keras.training.config import TrainConfig
    from fer_keras.training.space import check_model_options, check_space, load_space

    for name in ("resnet18", "vgg16", "mobilenetv2"):
        space = load_space(SPACE.with_name(f"{name}.json"))
        check_space(space, TrainConfig(model=name))
        check_model_options(space, name, builder_options(name))


def test_the_command_the_api_and_searchspec_agree_on_every_default():
    """The CLI and ``fer_keras.tune_model`` state their defaults themselves (neither may import
    KerasTuner before it is needed); they must be SearchSpec's."""
    import dataclasses
    import inspect

    import fer_keras
    from fer_keras.tune import build_parser

    spec = {f.name: f.default for f in dataclasses.fields(search.SearchSpec) if f.default is not dataclasses.MISSING}
    cli = vars(build_parser().parse_args(["--space", "s.json", "--out", "o"]))
    api = {k: p.default for k, p in inspect.signature(fer_keras.tune_model).parameters.items()}
    names = ("tuner", "max_trials", "epochs", "min_epochs", "factor", "iterations", "limit", "seed", "best_epochs")
    for name in (*names, "report_only"):
        assert cli[name] == spec[name] and api[name] == spec[name], name
    assert search.describe_plan(search.SearchSpec(space="s", out="o")).startswith("hyperband search: 30 trials")
