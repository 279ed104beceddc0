"""Ensembles in one graph: the file's output is the mean of its members' outputs on real crops, it
loads with safe_mode on and exports to TFLite like any shipped model, and bad members or paths are
one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from fer_keras.data.loading import load_splits
from fer_keras.ensemble import main
from fer_keras.inference.ensemble import build_ensemble
from fer_keras.inference.export import export
from fer_keras.inference.predictor import load_predictor, predict
from fer_keras.models.average import average_models

SHIPPED_KERAS = Path(__file__).resolve().parents[1] / "saved_models" / "mobilenetv2.keras"
SHIPPED_FERPLUS = SHIPPED_KERAS.with_name("mobilenetv2_ferplus.keras")


@pytest.mark.smoke
def test_ensemble_file_averages_its_members_on_real_crops(small_fer, small_model_file, tmp_path):
    crops = load_splits(small_fer, seed=0).test.images[:64]
    out = build_ensemble([SHIPPED_KERAS, small_model_file], tmp_path / "ens.keras")
    members = [predict(load_predictor(path), crops) for path in (SHIPPED_KERAS, small_model_file)]
    assert np.abs(members[0] - members[1]).max() > 0.05  # the members disagree, so the mean is informative
    ensemble = predict(load_predictor(out), crops)  # .keras loads with safe_mode on
    np.testing.assert_allclose(ensemble, (members[0] + members[1]) / 2, atol=1e-5)
    np.testing.assert_allclose(ensemble.sum(1), 1.0, atol=1e-5)


def test_the_same_model_twice_gives_its_own_output(small_fer, tmp_path):
    crops = load_splits(small_fer, seed=0).test.images[:16].astype(np.float32)[..., None]
    shipped = keras.saving.load_model(SHIPPED_KERAS)
    twice = average_models([shipped, keras.saving.load_model(SHIPPED_KERAS)])
    np.testing.assert_allclose(twice.predict(crops, verbose=0), shipped.predict(crops, verbose=0), atol=1e-5)


def test_cli_scores_members_and_ensemble_on_validation(small_fer, small_model_file, tmp_path, capsys):
    out = tmp_path / "teachers" / "ens.keras"
    assert main([str(SHIPPED_KERAS), str(small_model_file), "--out", str(out), "--data", str(small_fer)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote {out}" and out.is_file()
    assert [line.split(": val ")[0] for line in lines[1:]] == [str(SHIPPED_KERAS), str(small_model_file), str(out)]
    assert all("accuracy=" in line and "macro_f1=" in line for line in lines[1:])


def test_ensemble_exports_to_tflite_with_the_same_outputs(small_fer, small_model_file, tmp_path):
    crops = load_splits(small_fer, seed=0).test.images[:32]
    keras_file = build_ensemble([SHIPPED_KERAS, small_model_file], tmp_path / "ens.keras")
    tflite_file = export(keras_file, "tflite", tmp_path / "ens.tflite")
    np.testing.assert_allclose(load_predictor(tflite_file)(crops), load_predictor(keras_file)(crops), atol=1e-4)


def test_fer_plus_models_ensemble_and_are_scored_on_fer_plus_labels(
    small_fer, ferplus_votes, small_ferplus_file, tmp_path, capsys
):
    from fer_keras.contract import FERPLUS_EMOTIONS
    from fer_keras.reporting.metrics import classification_metrics, summary_line
    from fer_keras.runs import select_split

    out = tmp_path / "ens8.keras"
    argv = [str(SHIPPED_FERPLUS), str(small_ferplus_file), "--out", str(out)]
    assert main([*argv, "--data", str(small_fer), "--ferplus", str(ferplus_votes)]) == 0
    lines = capsys.readouterr().out.splitlines()
    crops = load_splits(small_fer, seed=0).test.images[:32]
    members = [predict(load_predictor(path), crops) for path in (SHIPPED_FERPLUS, small_ferplus_file)]
    ensemble = predict(load_predictor(out), crops)
    assert ensemble.shape == (32, 8)
    np.testing.assert_allclose(ensemble, (members[0] + members[1]) / 2, atol=1e-5)
    # Scored on FER+ majorities of the validation split, as `evaluate --ferplus` would score it.
    faces = select_split(small_fer, "val", SHIPPED_FERPLUS, ferplus=ferplus_votes)
    assert faces.classes == FERPLUS_EMOTIONS
    expected = summary_line(
        classification_metrics(faces.labels, predict(load_predictor(SHIPPED_FERPLUS), faces.images))
    )
    assert lines[1] == f"{SHIPPED_FERPLUS}: val {expected}"


def test_bad_ensembles_are_one_line_errors(small_model_file, small_ferplus_file, tmp_path, capsys):
    wrong_input = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    wrong_input.save(tmp_path / "wrong.keras")
    own = shutil.copy(small_model_file, tmp_path / "own.keras")  # a file the test may lose, not the shared fixture
    cases = {
        "needs two or more models": [str(small_model_file), "--out", str(tmp_path / "a.keras")],
        "must end in .keras": [str(small_model_file), str(small_model_file), "--out", str(tmp_path / "a.h5")],
        "is one of the members": [str(small_model_file), str(own), "--out", str(own)],
        "ensemble members take": [
            str(small_model_file),
            str(tmp_path / "wrong.keras"),
            "--out",
            str(tmp_path / "b.keras"),
        ],
        "does not exist": [str(small_model_file), str(tmp_path / "missing.keras"), "--out", str(tmp_path / "c.keras")],
        "must share a class list": [str(small_model_file), str(small_ferplus_file), "--out", str(tmp_path / "d.keras")],
        "give --data too": [str(small_model_file), str(own), "--out", str(tmp_path / "e.keras"), "--ferplus", "v.csv"],
    }
    for message, argv in cases.items():
        assert main(argv) == 2, message
        err = capsys.readouterr().err.strip()
        assert message in err.lower() and "\n" not in err and "Traceback" not in err, (message, err)
    assert not any(
        (tmp_path / name).exists() for name in ("a.keras", "a.h5", "b.keras", "c.keras", "d.keras", "e.keras")
    )
