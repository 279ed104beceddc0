"""Shipping a run: the three artefacts, the card's fields, and an in-graph TTA variant."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from fer_keras.contract import CROP_PAD, CROP_SIZE
from fer_keras.data.loading import load_faces, make_splits
from fer_keras.errors import FerKerasError
from fer_keras.inference.export import load_keras_model
from fer_keras.inference.predictor import load_predictor, predict
from fer_keras.model_card import main
from fer_keras.models.flops import macs_per_image
from fer_keras.reporting.metrics import classification_metrics
from fer_keras.reporting.model_card import ship, teacher_record, train_argv, train_command


@pytest.fixture(scope="module")
def run_dir(small_model_file, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    (run / "best.keras").write_bytes(small_model_file.read_bytes())
    config = {
        "model": "mobilenetv2",
        "model_options": {"width": 0.5, "depth": 0.34},
        "epochs": 3,
        "balance": "sqrt-weights",
    }
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps({"train_seconds": 90.0, "data_hash": "abc"}))
    return run


def test_ship_with_crops_tta_writes_agreeing_artefacts_and_a_card(run_dir, small_fer, tmp_path, capsys):
    out = tmp_path / "shipped"
    argv = ["--run", str(run_dir), "--name", "tiny", "--data", str(small_fer), "--out", str(out), "--tta", "crops"]
    assert main([*argv, "--latency-repeats", "30"]) == 0  # the default 300 costs ~20 s of a 10-view graph
    card = json.loads((out / "tiny.json").read_text())
    assert card["train_command"].startswith("python -m fer_keras.train --model mobilenetv2")
    assert "--balance sqrt-weights" in card["train_command"] and "--width 0.5" in card["train_command"]
    assert card["train_minutes"] == 1.5 and card["data_hash"] == "abc" and card["train_machine"]
    assert card["model_options"] == {"width": 0.5, "depth": 0.34}
    assert card["test_time_augmentation"].startswith("crops")
    network_macs = macs_per_image(load_keras_model(run_dir / "best.keras"))
    # ten passes of the network, the reflect padding (columns, then rows) and five mirrors
    size, padded = CROP_SIZE, CROP_SIZE + 2 * CROP_PAD
    fixed_macs = size * size * padded + padded * size * padded + 5 * size**3
    assert card["mflops_per_image"] == round(2 * (10 * network_macs + fixed_macs) / 1e6, 1)
    assert set(card["test"]["per_class_f1"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert {"single_view", "tta_flip"} <= set(card["test"]) and "tta_crops" not in card["test"]
    assert (out / card["confusion_matrix_image"]).exists()
    # The TTA choice is documented on the run's validation split (carved from train), not on test.
    val = make_splits(load_faces(small_fer)).val
    assert card["validation"]["n"] == len(val) > 0
    assert (
        card["data"] == f"{small_fer.name}: {560 - len(val)} training and {len(val)} validation images "
        "(validation carved from the training folder: 10%, split seed 0), 84 test images"
    )
    crops_val = classification_metrics(val.labels, predict(load_predictor(run_dir / "best.keras"), val.images, "crops"))
    assert card["validation"]["tta_crops"]["macro_f1"] == pytest.approx(crops_val["macro_f1"], abs=1e-4)
    assert set(card["validation"]) == {"n", "single_view", "tta_flip", "tta_crops"}
    assert set(card["validation"]["single_view"]) == {"accuracy", "macro_f1"}

    test = load_faces(small_fer / "test")
    crops = test.images[:16]
    outputs = {fmt: load_predictor(out / rel)(crops) for fmt, rel in card["files"].items()}
    for fmt, probs in outputs.items():
        np.testing.assert_allclose(probs, outputs["keras"], atol=1e-4, err_msg=fmt)
    # The shipped model is the run's checkpoint averaged over the crops TTA views.
    plain = load_predictor(run_dir / "best.keras")
    np.testing.assert_allclose(outputs["keras"], predict(plain, crops, "crops"), atol=1e-5)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("accuracy=")


def test_the_card_command_reproduces_the_run_config():
    import dataclasses

    from fer_keras.train import build_parser, config_from_args
    from fer_keras.training.config import MODEL_OPTIONS, TrainConfig

    # every model option a train flag can set (a new one must be added here to be covered)
    model_options = {
        "input_size": 72,
        "dropout": 0.3,
        "width": 0.75,
        "depth": 1.5,
        "stem_stride": 2,
        "stem": "small",
        "head_channels": 96,
        "fused_stages": 3,
        "fused_expansion": 6,
    }
    assert set(model_options) == set(MODEL_OPTIONS)

    config = TrainConfig(
        data="/data/fer2013",
        epochs=70,
        batch_size=128,
        optimizer="sgd",
        nesterov=False,
        learning_rate=0.01,
        augment="light",
        mixup=0.2,
        balance="sqrt-weights",
        split_seed=0,
        seed=1,
        dedupe=True,
        extra=["/data/rafdb", "/data/ckplus"],
        teacher="saved_models/teachers/t.keras",
        teacher_tta="crops",
        **model_options,
    )
    command = train_command(dataclasses.asdict(config))
    rebuilt = config_from_args(build_parser().parse_args(train_argv(command, config.data)))
    assert dataclasses.replace(rebuilt, verbose=config.verbose) == config
    assert train_argv(command, config.data, "runs/again")[-2:] == ["--out", "runs/again"]
    with pytest.raises(FerKerasError, match="must start with"):
        train_argv("python train.py --epochs 3", config.data)


def test_ship_rejects_an_unfinished_run(tmp_path, small_fer):
    with pytest.raises(FerKerasError, match="has no best.keras"):
        ship(tmp_path, "x", small_fer)


def test_a_distilled_run_records_its_teacher_and_never_overwrites_it(run_dir, small_fer, tmp_path, capsys):
    out = tmp_path / "shipped"
    (out / "tiny").mkdir(parents=True)
    teacher = out / "tiny.keras"
    teacher.write_bytes(b"the teacher")
    run = tmp_path / "distilled"
    shutil.copytree(run_dir, run)
    config = json.loads((run / "config.json").read_text()) | {"teacher": str(teacher), "teacher_tta": "crops"}
    (run / "config.json").write_text(json.dumps(config))
    assert main(["--run", str(run), "--name", "tiny", "--data", str(small_fer), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "would overwrite" in err
    assert teacher.read_bytes() == b"the teacher"  # refused before anything was written
    targets = [out / "tiny.keras", out / "tiny", out / "tiny.tflite"]
    with pytest.raises(FerKerasError, match="would overwrite"):  # a SavedModel teacher counts too
        teacher_record(config | {"teacher": str(out / "tiny")}, targets)
    kept = tmp_path / "teachers" / "v1.keras"
    kept.parent.mkdir()
    shutil.copy(teacher, kept)
    record = teacher_record(config | {"teacher": str(kept)}, targets)
    assert record["sha256"] == hashlib.sha256(b"the teacher").hexdigest() and record["tta"] == "crops"
    assert teacher_record({"model": "mobilenetv2"}, targets) is None


def test_float16_tflite_weights_halve_the_file_and_keep_the_outputs(run_dir, small_fer, tmp_path):
    """The large models ship their TFLite file with float16 weights (the wheel's 40 MB budget)."""
    out = tmp_path / "shipped"
    card = ship(run_dir, "half", small_fer, out, latency_repeats=1, tflite_weights="float16")
    assert card["tflite_weights"] == "float16"
    assert json.loads((out / "half.json").read_text())["tflite_weights"] == "float16"
    full = tmp_path / "full.tflite"
    from fer_keras.inference.export import export

    export(out / "half.keras", "tflite", full)
    assert (out / "half.tflite").stat().st_size < 0.6 * full.stat().st_size
    crops = load_faces(small_fer / "test").images[:16]
    np.testing.assert_allclose(load_predictor(out / "half.tflite")(crops), load_predictor(full)(crops), atol=2e-3)
    with pytest.raises(FerKerasError, match="--tflite-weights"):
        ship(run_dir, "x", small_fer, out, tflite_weights="int8")
