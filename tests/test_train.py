"""``python -m fer_keras.train``: every model trains one epoch on a 192-image real subset and
leaves a complete run directory; interruption + --resume equals an uninterrupted seeded run."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from fer_keras.data.pipeline import eval_dataset
from fer_keras.models import available_models
from fer_keras.models.head import backbone_groups
from fer_keras.runs import load_config_splits
from fer_keras.train import main
from fer_keras.training.callbacks import bn_calibration
from fer_keras.training.config import TrainConfig
from fer_keras.training.loop import train

RUN_FILES = ("config.json", "history.csv", "best.keras", "last.keras", "state.json", "metrics.json", "logs")


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.smoke) if n == "mobilenetv2" else n for n in available_models()]
)
def test_one_epoch_on_192_images_makes_a_run_directory(name, small_fer, tmp_path, capsys):
    out = tmp_path / name
    code = main(
        [
            "--model",
            name,
            "--data",
            str(small_fer),
            "--limit",
            "192",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    for item in RUN_FILES:
        assert (out / item).exists(), item
    assert (out / "saved_model" / "saved_model.pb").exists()
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 1 and {"val_f1", "val_accuracy", "loss"} <= set(history.columns)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 192 // 4 and len(metrics["confusion_matrix"]) == 7
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == name and config["limit"] == 192
    last = capsys.readouterr().out.strip().splitlines()[-1]
    # --limit also cut the test split: the line says so
    assert (
        last
        == f"test (a --limit subset of 48 images) accuracy={metrics['accuracy']:.4f} macro_f1={metrics['macro_f1']:.4f}"
    )


class InterruptAt(keras.callbacks.Callback):
    """Simulates Ctrl-C in the middle of an epoch."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


def _config(data, out, **kw) -> TrainConfig:
    base = dict(
        model="mobilenetv2",
        data=str(data),
        out=str(out),
        epochs=2,
        batch_size=32,
        limit=192,
        seed=5,
        augment="strong",
        deterministic=True,
        export=False,
        verbose=0,
        width=0.5,
        depth=0.34,  # one block per stage: tracing is most of these runs' time
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_interrupted_then_resumed_equals_uninterrupted(small_fer, tmp_path):
    straight = train(_config(small_fer, tmp_path / "straight"))

    with pytest.raises(KeyboardInterrupt):
        train(_config(small_fer, tmp_path / "resumed"), extra_callbacks=[InterruptAt(epoch=1, batch=2)])
    state = json.loads((tmp_path / "resumed" / "state.json").read_text())
    assert state["epoch"] == 1  # epoch 0 finished and saved; epoch 1 was cut short
    resumed = train(_config(small_fer, tmp_path / "resumed"), resume=True)

    assert resumed.history["epoch"] == [0, 1]
    np.testing.assert_allclose(resumed.history["val_f1"], straight.history["val_f1"], atol=1e-6)
    a = keras.saving.load_model(tmp_path / "straight" / "last.keras")
    b = keras.saving.load_model(tmp_path / "resumed" / "last.keras")
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), atol=1e-6, err_msg=wa.path)
    assert resumed.test_metrics["accuracy"] == pytest.approx(straight.test_metrics["accuracy"])
    # the reported time covers the epoch trained before the interruption too
    assert resumed.total_seconds > resumed.seconds + state["train_seconds"] - 1.0
    assert resumed.test_metrics["train_seconds"] == resumed.total_seconds


@pytest.mark.slow
def test_a_run_resumes_under_another_precision_where_it_was(small_fer, tmp_path):
    """--precision may change on resume (bfloat16 units on one machine, none on the next): the
    checkpoint is rebuilt under the new policy with its weights and optimizer state; what the run
    ships computes in float32 whatever it trained in."""
    from fer_keras.inference.export import export
    from fer_keras.inference.predictor import load_predictor
    from fer_keras.models.dtype import is_mixed, layer_policies
    from fer_keras.training.loop import under_current_policy

    run = tmp_path / "run"
    try:
        train(_config(small_fer, run, epochs=1, precision="float32"))
        first = keras.saving.load_model(run / "last.keras")
        assert under_current_policy(first, _config(small_fer, run), 7, 192 // 32, 1) is first  # nothing to change
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        loaded = keras.saving.load_model(run / "last.keras")
        assert not all(p == "mixed_bfloat16" for p in layer_policies(loaded)[1:])  # loading alone falls short
        rebuilt = under_current_policy(loaded, _config(small_fer, run), 7, 192 // 32, 1)
        policies = layer_policies(rebuilt)
        assert policies.count("mixed_bfloat16") > 0.9 * len(policies)  # all but the float32 head and input
        assert int(rebuilt.optimizer.iterations) == int(first.optimizer.iterations)
        for a, b in zip(rebuilt.weights + rebuilt.optimizer.variables, first.weights + first.optimizer.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
        resumed = train(_config(small_fer, run, epochs=2, precision="mixed_bfloat16"), resume=True)
        last = keras.saving.load_model(run / "last.keras")
        assert resumed.history["epoch"] == [0, 1] and json.loads((run / "config.json").read_text())["precision"] == (
            "mixed_bfloat16"
        )
        assert is_mixed(last) and not is_mixed(first)
        assert layer_policies(last) == policies  # the run trained on under the new policy
        steps = 192 // 32
        assert int(first.optimizer.iterations) == steps and int(last.optimizer.iterations) == 2 * steps
        assert not np.allclose(first.get_weights()[1], last.get_weights()[1])  # it trained on
        back = train(_config(small_fer, run, epochs=3, precision="float32"), resume=True)
        assert back.history["epoch"] == [0, 1, 2] and not is_mixed(keras.saving.load_model(run / "last.keras"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    crops = load_config_splits(_config(small_fer, run)).test.images[:8]
    mixed_file = tmp_path / "mixed.keras"
    last.save(mixed_file)  # the checkpoint of epoch 2, saved under mixed_bfloat16
    scored = load_predictor(mixed_file)
    assert not is_mixed(scored.model)
    np.testing.assert_allclose(scored(crops), np.asarray(last(crops[..., None].astype("float32"))), atol=0.05)
    tflite = export(mixed_file, "tflite", tmp_path / "mixed.tflite")
    np.testing.assert_allclose(load_predictor(tflite)(crops), scored(crops), atol=1e-4)


@pytest.mark.slow
def test_a_lost_run_folder_is_rebuilt_from_its_snapshot_and_trains_on(small_fer, tmp_path, capsys):
    """--snapshot keeps a float16 copy after every epoch; --resume rebuilds a lost --out from it,
    with the learning-rate schedule where it was, and trains the remaining epochs."""
    import shutil

    from fer_keras.train import main as train_main

    snapshot, run = tmp_path / "snapshot", tmp_path / "run"
    first = train(_config(small_fer, run, epochs=2, snapshot=str(snapshot)))
    files = sorted(p.name for p in snapshot.iterdir())
    assert files == [
        "best.weights.npz",
        "config.json",
        "history.csv",
        "last.weights.npz",
        "snapshot.json",
        "state.json",
    ]
    last = keras.saving.load_model(run / "last.keras")
    params = sum(int(np.prod(w.shape)) for w in last.weights)
    assert (snapshot / "last.weights.npz").stat().st_size < 2.2 * params + 50_000  # float16
    steps = json.loads((snapshot / "snapshot.json").read_text())["iterations"]
    assert steps == int(last.optimizer.iterations.numpy()) > 0

    shutil.rmtree(run)  # the machine was lost; the snapshot was committed
    argv = ["--resume", "--out", str(run), "--snapshot", str(snapshot), "--epochs", "3", "--quiet"]
    assert train_main([*argv, "--data", str(small_fer)]) == 0
    out = capsys.readouterr().out
    assert f"restored {run} from the snapshot {snapshot} at epoch 2" in out
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(history["val_f1"][:2], first.history["val_f1"], atol=1e-6)
    resumed = keras.saving.load_model(run / "last.keras")
    assert int(resumed.optimizer.iterations.numpy()) == steps + steps // 2  # the schedule went on
    assert json.loads((snapshot / "state.json").read_text())["epoch"] == 3  # and the snapshot with it


@pytest.mark.slow
def test_validation_and_checkpoints_use_batchnorm_statistics_recomputed_for_the_weights(small_fer, tmp_path):
    """With --bn-calibration (on by default) the BatchNorm statistics a checkpoint holds are those of
    its own weights on fixed training images, and the logged validation score is that model's score;
    with 0 they are Keras's moving averages, which trail the weights. Training is the same either way."""
    calibrated = train(_config(small_fer, tmp_path / "on"))
    moving = train(_config(small_fer, tmp_path / "off", bn_calibration=0))
    np.testing.assert_allclose(calibrated.history["loss"], moving.history["loss"], rtol=1e-5)  # same training

    splits = load_config_splits(_config(small_fer, tmp_path / "on"))
    last = keras.saving.load_model(tmp_path / "on" / "last.keras")
    again = keras.saving.load_model(tmp_path / "on" / "last.keras")
    assert bn_calibration(_config(small_fer, tmp_path / "on"), splits.train.images)(again) == 6  # 192 // 32 batches
    for saved, recomputed in zip(last.non_trainable_weights, again.non_trainable_weights):
        np.testing.assert_allclose(saved.numpy(), recomputed.numpy(), rtol=1e-4, atol=1e-5, err_msg=saved.path)
    scores = last.evaluate(eval_dataset(splits.val), return_dict=True, verbose=0)
    assert scores["f1"] == pytest.approx(calibrated.history["val_f1"][-1], abs=1e-6)

    off = keras.saving.load_model(tmp_path / "off" / "last.keras")
    stats = [w for w in off.non_trainable_weights if "moving_mean" in w.path]
    assert stats and not all(
        np.allclose(a.numpy(), b.numpy(), atol=1e-3)
        for a, b in zip(stats, [w for w in last.non_trainable_weights if "moving_mean" in w.path])
    )


class RecordWeights(keras.callbacks.Callback):
    """The trainable weights after every training step."""

    def __init__(self):
        super().__init__()
        self.steps: list[list[np.ndarray]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([w.numpy() for w in self.model.trainable_weights])


@pytest.mark.slow
def test_ema_is_what_validation_and_checkpoints_see_and_resumes_exactly(small_fer, tmp_path):
    momentum = 0.8
    recorder = RecordWeights()
    straight = train(_config(small_fer, tmp_path / "straight", ema=momentum), extra_callbacks=[recorder])
    average = recorder.steps[0]  # Keras starts the average at the first step's weights
    for step in recorder.steps[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, step)]
    last = keras.saving.load_model(tmp_path / "straight" / "last.keras")
    for saved, expected in zip(last.trainable_weights, average):
        np.testing.assert_allclose(saved.numpy(), expected, atol=1e-5, err_msg=saved.path)
    assert not np.allclose(last.trainable_weights[0].numpy(), recorder.steps[-1][0], atol=1e-4)
    # its BatchNorm statistics were recomputed for the average, not left from the training weights
    splits = load_config_splits(_config(small_fer, tmp_path / "straight"))
    recalibrated = keras.saving.load_model(tmp_path / "straight" / "last.keras")
    assert bn_calibration(_config(small_fer, tmp_path / "x", ema=momentum), splits.train.images)(recalibrated) > 0
    for saved, again in zip(last.non_trainable_weights, recalibrated.non_trainable_weights):
        np.testing.assert_allclose(saved.numpy(), again.numpy(), rtol=1e-4, atol=1e-5, err_msg=saved.path)
    # the logged validation score is the averaged weights' score
    scores = last.evaluate(eval_dataset(splits.val), return_dict=True, verbose=0)
    assert scores["f1"] == pytest.approx(straight.history["val_f1"][-1], abs=1e-6)

    with pytest.raises(KeyboardInterrupt):
        train(_config(small_fer, tmp_path / "resumed", ema=momentum), extra_callbacks=[InterruptAt(epoch=1, batch=2)])
    resumed = train(_config(small_fer, tmp_path / "resumed", ema=momentum), resume=True)
    np.testing.assert_allclose(resumed.history["val_f1"], straight.history["val_f1"], atol=1e-6)
    again = keras.saving.load_model(tmp_path / "resumed" / "last.keras")
    for wa, wb in zip(last.weights, again.weights):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), atol=1e-6, err_msg=wa.path)


def test_final_line_gives_the_whole_runs_time_and_this_calls_share_of_it(tmp_path):
    from fer_keras.train import run_minutes
    from fer_keras.training.loop import RunResult

    def result(seconds, total):
        return RunResult(tmp_path, {}, None, 0.5, seconds, total)

    assert run_minutes(result(2352.0, 2352.0)) == "39.2 min"
    assert run_minutes(result(2352.0, 4473.6)) == "74.6 min in all, 39.2 min of it in this call"


@pytest.mark.slow
def test_staged_fine_tuning_and_class_balancing_run(small_fer, tmp_path):
    result = train(
        _config(
            small_fer,
            tmp_path / "staged",
            epochs=2,
            head_epochs=1,
            unfreeze_blocks=2,
            balance="weights",
            augment="light",
            deterministic=False,
            width=None,
            depth=None,
            schedule="plateau",
            optimizer="sgd",
        )
    )
    assert result.history["epoch"] == [0, 1]
    model = keras.saving.load_model(tmp_path / "staged" / "last.keras")
    backbone = model.get_layer("backbone")
    trainable = {layer.name.split("_")[0] for layer in backbone.layers if layer.trainable_weights}
    assert trainable == set(backbone_groups(backbone)[-2:]) == {"block11", "top"}


def _error_of(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ")
    return err


def test_bad_input_is_one_line(tmp_path, small_fer, capsys):
    assert "--model: invalid choice: 'resnet50'" in _error_of(["--model", "resnet50", "--data", str(small_fer)], capsys)
    for option, value, message in [
        ("--warmup-epochs", "-1", "--warmup-epochs must be 0 or more"),
        ("--limit", "-5", "--limit must be 0 (all images) or more"),
        ("--val-fraction", "1.5", "--val-fraction must be between 0 and 1"),
        ("--ema", "1", "--ema must be 0 (off) or a momentum in (0, 1)"),
        ("--bn-calibration", "-1", "--bn-calibration must be 0 (off) or a number of batches"),
    ]:
        assert message in _error_of(["--data", str(small_fer), option, value, "--out", str(tmp_path / "v")], capsys)
    assert "download FER2013" in _error_of(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "r")], capsys)
    assert not (tmp_path / "r").exists()  # no half-made run directory to trip over later
    keras.utils.set_random_seed(0)
    from fer_keras.models import build

    build("mobilenetv2", width=0.5).save_weights(tmp_path / "w.weights.h5")
    err = _error_of(
        [
            "--data",
            str(small_fer),
            "--limit",
            "64",
            "--weights",
            str(tmp_path / "w.weights.h5"),
            "--out",
            str(tmp_path / "r2"),
            "--quiet",
        ],
        capsys,
    )
    assert "does not fit model mobilenetv2" in err
    assert not (tmp_path / "r2").exists()
    assert "not a run directory" in _error_of(["--resume", "--out", str(tmp_path / "nothing")], capsys)


def test_resume_keeps_the_saved_options_and_takes_only_epochs(tmp_path, capsys):
    from fer_keras.train import build_parser, config_from_args

    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(data="faces", out=str(run), epochs=70, batch_size=128, augment="light")
    (run / "config.json").write_text(saved.to_json())

    def resumed(*argv):
        return config_from_args(build_parser().parse_args(["--resume", "--out", str(run), *argv]))

    # without --epochs the run keeps its 70, not the default 30 (which would stop it early)
    assert resumed().epochs == 70
    assert resumed("--epochs", "80").epochs == 80
    assert resumed("--quiet").verbose == 0
    assert resumed("--batch-size", "128", "--data", "faces") == dataclasses.replace(saved, verbose=resumed().verbose)
    err = _error_of(["--resume", "--out", str(run), "--batch-size", "32", "--augment", "strong"], capsys)
    assert "--batch-size (saved 128, given 32)" in err and "--augment (saved 'light', given 'strong')" in err
    assert "only --epochs (and --precision) may change" in err
    assert resumed("--precision", "mixed_bfloat16").precision == "mixed_bfloat16"


def test_help_shows_real_defaults_only():
    from fer_keras.train import build_parser

    text = " ".join(build_parser().format_help().split())  # argparse wraps lines
    assert "(default: None)" not in text and "(default: )" not in text and "(default: False)" not in text
    assert "--lr LEARNING_RATE peak learning rate (default: 0.002)" in text
    assert "epochs to train; --resume keeps the saved run's unless given (default: 30)" in text


def test_split_seed_fixes_the_validation_images_while_seed_varies(small_fer):
    from fer_keras.runs import load_config_splits
    from fer_keras.train import build_parser, config_from_args

    def val_names(argv):
        config = config_from_args(build_parser().parse_args(["--data", str(small_fer), *argv]))
        return sorted(load_config_splits(config).val.names)

    seed0, seed1 = val_names(["--seed", "0"]), val_names(["--seed", "1"])
    assert seed0 != seed1  # by default --seed also draws the split (the shipped runs did)
    assert val_names(["--seed", "1", "--split-seed", "0"]) == seed0
    assert val_names(["--seed", "0", "--split-seed", "1"]) == seed1


def test_sigterm_is_a_clean_interrupt_held_back_while_a_checkpoint_is_written():
    import os
    import signal

    from fer_keras.training.callbacks import Interrupts

    with pytest.raises(KeyboardInterrupt), Interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        tf.constant(0)  # give the handler a bytecode boundary to run at

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    written = []
    with pytest.raises(KeyboardInterrupt), Interrupts() as interrupts:
        with interrupts.hold():
            os.kill(os.getpid(), signal.SIGTERM)
            tf.constant(0)
            written.append("state.json")  # still reached: the signal waits for the block to end
        written.append("never")
    assert written == ["state.json"]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # handlers put back


def test_resume_drops_history_rows_of_an_unfinished_epoch(tmp_path):
    from fer_keras.training.callbacks import drop_unfinished_history

    history = tmp_path / "history.csv"
    history.write_bytes(b"epoch,loss,val_f1\r\n0,1.9,0.2\r\n1,1.7,0.3\r\n2,1.6,0.35\r\n")  # as CSVLogger writes
    drop_unfinished_history(history, 2)  # state.json says two epochs finished; epoch 2 is repeated
    assert history.read_bytes() == b"epoch,loss,val_f1\r\n0,1.9,0.2\r\n1,1.7,0.3\r\n"
    drop_unfinished_history(history, 2)
    assert history.read_bytes() == b"epoch,loss,val_f1\r\n0,1.9,0.2\r\n1,1.7,0.3\r\n"
    drop_unfinished_history(tmp_path / "none.csv", 0)  # a run that never logged: nothing to do
    for stopped_early in (b"", b"epoch,loss,val_f1\r\n", b"epoch,loss,val_f1\r\n0,1.9,0.2\r\n1,1.7"):
        history.write_bytes(stopped_early)  # stopped in the first epoch, or while a row was written
        drop_unfinished_history(history, 1)
        assert history.read_bytes() == (b"epoch,loss,val_f1\r\n0,1.9,0.2\r\n" if b"0,1.9" in stopped_early else b"")


@pytest.mark.slow
def test_a_run_stopped_before_its_first_epoch_ended_resumes(small_fer, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(_config(small_fer, tmp_path / "run"), extra_callbacks=[InterruptAt(epoch=0, batch=2)])
    assert not (tmp_path / "run" / "state.json").exists()  # no epoch finished
    resumed = train(_config(small_fer, tmp_path / "run"), resume=True)
    assert resumed.history["epoch"] == [0, 1]
    header, *rows = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert header.startswith("epoch,") and [row.split(",")[0] for row in rows] == ["0", "1"]


def _drive_patience(run_dir, epochs, val_f1, counters=None):
    """Feed val macro-F1 values to a plateau + early-stopping run's callbacks, as ``fit`` would;
    return the epoch it stopped at (or None) and the learning rate it ended with."""
    from fer_keras.training.callbacks import ResumeCheckpoint, make_callbacks

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    config = TrainConfig(schedule="plateau", early_stopping=3)
    callbacks = make_callbacks(config, run_dir, None, resuming=False, seconds=0.0, counters=counters)
    driven = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping | keras.callbacks.ReduceLROnPlateau)]
    driven.append(callbacks[-1])
    assert len(driven) == 3 and isinstance(driven[-1], ResumeCheckpoint)
    for callback in driven:
        callback.set_model(model)
        callback.on_train_begin()
    for epoch in epochs:
        for callback in driven:
            callback.on_epoch_end(epoch, {"val_f1": val_f1[epoch]})
        if model.stop_training:
            return epoch, float(model.optimizer.learning_rate)
    return None, float(model.optimizer.learning_rate)


def test_patience_counters_survive_a_resume(tmp_path):
    # best at epoch 4, then three epochs without gain: the plateau halves the rate and early
    # stopping ends the run at epoch 7. An interrupt after epoch 5 must not reset their counting.
    val_f1 = [0.30, 0.35, 0.34, 0.33, 0.36, 0.35, 0.34, 0.33, 0.32]
    (tmp_path / "straight").mkdir()
    assert _drive_patience(tmp_path / "straight", range(9), val_f1) == (7, pytest.approx(0.05))

    (tmp_path / "resumed").mkdir()
    assert _drive_patience(tmp_path / "resumed", range(6), val_f1) == (None, pytest.approx(0.1))
    state = json.loads((tmp_path / "resumed" / "state.json").read_text())
    assert state["counters"]["EarlyStopping"] == {"wait": 1, "best": pytest.approx(0.36), "best_epoch": 4}
    resumed = _drive_patience(tmp_path / "resumed", range(6, 9), val_f1, counters=state["counters"])
    assert resumed == (7, pytest.approx(0.05))  # the resumed run's own rate starts at 0.1 here: halved once
    # without the saved counters, epoch 6 would look like a new best and the run would go on
    assert _drive_patience(tmp_path / "resumed", range(6, 9), val_f1) == (None, pytest.approx(0.1))


class ScriptedF1(keras.callbacks.Callback):
    """Replaces each epoch's val macro-F1 with a scripted value before the other callbacks see it."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_f1"] = self.values[epoch]


@pytest.mark.slow
def test_resume_of_an_early_stopped_run_trains_on_only_when_given_more_epochs(small_fer, tmp_path, monkeypatch, capsys):
    import fer_keras.training.loop as train_module

    make_callbacks = train_module.make_callbacks
    scripted = ScriptedF1([0.30, 0.20, 0.25, 0.40])
    monkeypatch.setattr(train_module, "make_callbacks", lambda *a, **kw: [scripted, *make_callbacks(*a, **kw)])
    run = tmp_path / "stopped"
    config = _config(small_fer, run, epochs=4, limit=64, early_stopping=1, deterministic=False)

    assert train(config).history["epoch"] == [0, 1]  # no gain in epoch 1: patience 1 ends the run
    assert json.loads((run / "state.json").read_text())["stopped_early"] is True
    capsys.readouterr()
    again = train(config, resume=True)
    assert again.history["epoch"] == [0, 1]  # a finished run is not trained on, as if it had been interrupted
    assert "early stopping ended this run at epoch 2 of 4: nothing to resume" in capsys.readouterr().out
    assert again.test_metrics is not None and again.best_val_f1 == pytest.approx(0.30)

    # more epochs train on, with the patience counter kept: epoch 2 brings no gain either
    longer = train(dataclasses.replace(config, epochs=5), resume=True)
    assert longer.history["epoch"] == [0, 1, 2]
    assert json.loads((run / "state.json").read_text())["stopped_early"] is True


@pytest.mark.slow
def test_mirrored_strategy_trains_with_the_weight_average(small_fer, tmp_path):
    result = train(
        _config(
            small_fer, tmp_path / "mirrored", epochs=1, limit=128, distribute="mirrored", deterministic=False, ema=0.9
        )
    )
    assert result.history["epoch"] == [0] and (tmp_path / "mirrored" / "best.keras").exists()
