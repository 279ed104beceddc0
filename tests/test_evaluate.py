"""``python -m fer_keras.evaluate`` and ``compare``: metrics against scikit-learn, figures worth
looking at, Grad-CAM that depends on the input, one-line errors."""

from __future__ import annotations

import json
import re
import shutil

import cv2
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from fer_keras.evaluate import main
from fer_keras.inference.tta import tta_views
from fer_keras.models import available_models, build
from fer_keras.reporting.explain import grad_cam
from fer_keras.reporting.metrics import classification_metrics, expected_calibration_error

FIGURES = ("confusion_matrix.png", "reliability.png", "mistakes.png", "grad_cam.png", "tsne.png")


def test_metrics_agree_with_scikit_learn_on_a_fixed_set():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 500)
    logits = rng.normal(size=(500, 7)) + 2.0 * np.eye(7)[y_true] * rng.uniform(0, 1.5, (500, 1))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y_pred = probs.argmax(1)
    m = classification_metrics(y_true, probs)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    assert m["confusion_matrix"] == confusion_matrix(y_true, y_pred).tolist()
    top2 = np.mean([t in np.argsort(-p)[:2] for t, p in zip(y_true, probs)])
    assert m["top2_accuracy"] == pytest.approx(top2)
    assert m["per_class"]["happy"]["support"] == int((y_true == 3).sum())


def test_ece_of_a_calibrated_and_an_overconfident_model():
    y = np.array([0] * 80 + [1] * 20)
    calibrated = np.tile([0.8, 0.2, 0, 0, 0, 0, 0], (100, 1))
    assert expected_calibration_error(y, calibrated) == pytest.approx(0.0, abs=1e-9)
    overconfident = np.tile([0.99, 0.01, 0, 0, 0, 0, 0], (100, 1))
    assert expected_calibration_error(y, overconfident) == pytest.approx(0.19, abs=1e-6)


def _looks_like_a_figure(path) -> None:
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] >= 300 and image.shape[1] >= 300
    assert image.reshape(-1, 3).std(axis=0).max() > 20  # not a single colour
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50


@pytest.mark.slow
def test_evaluate_writes_metrics_figures_and_report(small_model_file, small_fer, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["--model", str(small_model_file), "--data", str(small_fer), "--out", str(out), "--tta", "flip"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"accuracy=\d\.\d{4} macro_f1=\d\.\d{4}", lines[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 84 and metrics["tta"] == "flip"
    assert lines[-1] == f"accuracy={metrics['accuracy']:.4f} macro_f1={metrics['macro_f1']:.4f}"
    for name in FIGURES:
        _looks_like_a_figure(out / name)
    report = (out / "report.md").read_text()
    assert "| macro_f1 |" in report and "grad_cam.png" in report


def test_val_split_follows_the_run_the_model_comes_from(small_model_file, tiny_fer, tmp_path):
    from fer_keras.data.loading import load_faces, make_splits
    from fer_keras.reporting.evaluation import evaluate
    from fer_keras.runs import val_split_of
    from fer_keras.training.config import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(small_model_file, run / "best.keras")
    (run / "config.json").write_text(TrainConfig(seed=1, val_fraction=0.2).to_json())
    assert val_split_of(run / "best.keras") == (1, 0.2)  # --seed 1 also seeded its split
    assert val_split_of(run, split_seed=0) == (0, 0.2)  # given values win
    (run / "config.json").write_text(TrainConfig(seed=1, split_seed=0, val_fraction=0.2).to_json())
    assert val_split_of(run) == (0, 0.2)
    assert val_split_of(small_model_file) == (0, 0.1)  # a model outside a run: training's defaults

    metrics = evaluate(run, tiny_fer, tmp_path / "eval", split="val", explain=False)
    assert metrics["val_split"] == {"seed": 0, "fraction": 0.2}
    assert metrics["n"] == len(make_splits(load_faces(tiny_fer), val_fraction=0.2, seed=0).val) == 9
    assert "0.2 of train, split seed 0" in (tmp_path / "eval" / "report.md").read_text()


def test_single_class_folder_and_tflite_model(small_model_file, small_fer, tmp_path, capsys):
    from fer_keras.inference.export import export

    tflite = export(small_model_file, "tflite", tmp_path / "m.tflite")
    folder = tmp_path / "folder"
    shutil.copytree(small_fer / "test", folder)
    assert main(["--model", str(tflite), "--data", str(folder), "--out", str(tmp_path / "e"), "--no-explain"]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["n"] == 84 and metrics["model_format"] == "tflite"


@pytest.mark.parametrize("name", available_models())
def test_grad_cam_depends_on_the_input(name, small_fer):
    from fer_keras.data.loading import load_faces

    model = build(name, width=0.5) if name == "mobilenetv2" else build(name)
    images = load_faces(small_fer / "test").images[[0, 30, 60]]
    maps = grad_cam(model, images)
    assert maps.shape == (3, 48, 48) and maps.min() >= 0 and maps.max() <= 1
    assert np.abs(maps[0] - maps[1]).mean() > 0.01 and np.abs(maps[1] - maps[2]).mean() > 0.01


def test_grad_cam_and_embeddings_see_through_the_flip_tta_wrapper(small_fer):
    from fer_keras.data.loading import load_faces
    from fer_keras.models.tta_layers import single_view, with_flip_tta
    from fer_keras.reporting.explain import embeddings

    model = build("mobilenetv2", width=0.5)
    wrapped = with_flip_tta(model)
    assert single_view(wrapped) is model and single_view(model) is model
    images = load_faces(small_fer / "test").images[[0, 30, 60]]
    np.testing.assert_allclose(grad_cam(wrapped, images), grad_cam(model, images), atol=1e-6)
    np.testing.assert_allclose(embeddings(wrapped, images), embeddings(model, images), atol=1e-6)


def test_tta_views():
    images = np.arange(2 * 48 * 48).reshape(2, 48, 48).astype(np.uint8)
    assert len(tta_views(images, "flip")) == 2 and len(tta_views(images, "crops")) == 10
    assert all(v.shape == images.shape for v in tta_views(images, "crops"))
    np.testing.assert_array_equal(tta_views(images, "crops")[0], images)  # the centre crop is the image


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    return err


def test_bad_input(small_model_file, small_fer, tmp_path, capsys):
    five = tmp_path / "five.keras"
    build("mobilenetv2", width=0.35, num_classes=5).save(five)
    assert "returns 5 values per face" in _error(["--model", str(five), "--data", str(small_fer)], capsys)
    unknown = tmp_path / "unknown"
    shutil.copytree(small_fer / "test", unknown)
    (unknown / "happy").rename(unknown / "joyful-ish")
    assert "unknown emotion class 'joyful-ish'" in _error(
        ["--model", str(small_model_file), "--data", str(unknown)], capsys
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no class or split folders" in _error(["--model", str(small_model_file), "--data", str(empty)], capsys)


def test_compare_prints_an_ablation_table(tmp_path, capsys):
    from fer_keras.compare import main as compare

    # b scores higher on test, a on validation: rows follow validation, the selection metric
    for name, acc, val_f1, teacher in (("a", 0.61, 0.66, "saved_models/t.keras"), ("b", 0.64, 0.60, "")):
        run = tmp_path / name
        run.mkdir()
        config = {"model": "mobilenetv2", "optimizer": "adamw", "epochs": 3, "model_options": {"width": 0.5}}
        config.update(teacher=teacher, teacher_tta="crops", distill_alpha=0.5, distill_temperature=1.0)
        config.update(mixup=0.2 if teacher else None, cutmix=None, ema=0.99 if teacher else 0.0, dedupe=False)
        config.update(erasing=None if teacher else 0.0)  # b turns its preset's erasing off
        (run / "config.json").write_text(json.dumps(config))
        per_class = {e: {"f1": acc - 0.1} for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")}
        (run / "metrics.json").write_text(
            json.dumps(
                {
                    "accuracy": acc,
                    "macro_f1": acc - 0.05,
                    "params": 123456,
                    "per_class": per_class,
                    "train_seconds": 600,
                    "best_val_f1": val_f1,
                }
            )
        )
    assert compare([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| run | model | params |") and "| val macro-F1 | test accuracy |" in lines[0]
    assert len(lines) == 4
    assert lines[2].startswith("| a | mobilenetv2 | 123,456 |") and "| 0.6600 | 0.6100 |" in lines[2]
    assert "teacher=t.keras (crops), alpha=0.5, T=1.0" in lines[2] and "| 10.0 |" in lines[2]
    assert "epochs=3, mixup=0.2, ema=0.99, width=0.5" in lines[2]  # options a run set, none it left off
    assert lines[3].startswith("| b |") and "teacher" not in lines[3] and "| 0.6000 | 0.6400 |" in lines[3]
    assert "mixup" not in lines[3] and "cutmix" not in lines[3] and "ema" not in lines[3] and "dedupe" not in lines[3]
    assert "erasing=0.0" in lines[3] and "erasing" not in lines[2]  # an override to 0 is shown, an unset one not
    assert compare([str(tmp_path / "missing")]) == 2
