"""Distillation by soft targets: softening, target mixing, the pipeline pairing each image with its
own target, and a real run with the shipped model as teacher (probabilities cached for --resume)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_keras.contract import NUM_CLASSES
from fer_keras.data.loading import load_splits
from fer_keras.data.pipeline import train_dataset
from fer_keras.inference.predictor import load_predictor, predict
from fer_keras.train import main
from fer_keras.training.distill import PROBS_FILE, cached_teacher_probs, soft_targets, soften

SHIPPED_KERAS = Path(__file__).resolve().parents[1] / "saved_models" / "mobilenetv2.keras"


def test_soften_keeps_the_ranking_and_spreads_the_mass():
    probs = np.array([[0.7, 0.2, 0.05, 0.02, 0.01, 0.01, 0.01], [0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1]], np.float32)
    np.testing.assert_allclose(soften(probs, 1.0), probs, atol=1e-6)
    soft = soften(probs, 4.0)
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)
    assert (soft.argmax(1) == probs.argmax(1)).all()
    assert (soft.max(1) < probs.max(1)).all()
    sharp = soften(probs, 0.5)
    assert (sharp.max(1) > probs.max(1)).all()


def test_soft_targets_mix_labels_and_teacher():
    labels = np.array([0, 3, 6])
    teacher = np.full((3, NUM_CLASSES), 1 / NUM_CLASSES, np.float32)
    teacher[:, 5] += 0.5
    teacher /= teacher.sum(1, keepdims=True)
    targets = soft_targets(labels, teacher, 0.5)
    np.testing.assert_allclose(targets.sum(1), 1.0, atol=1e-6)
    assert (targets.argmax(1) == labels).all()  # alpha <= 0.5: the true label stays on top
    np.testing.assert_allclose(targets[0, 5], 0.5 * teacher[0, 5])
    np.testing.assert_allclose(targets[0, 0], 0.5 + 0.5 * teacher[0, 0])


@pytest.mark.smoke
def test_pipeline_pairs_every_image_with_its_own_target(small_fer):
    train = load_splits(small_fer, seed=0).train
    n = len(train)
    # a distinct target row per image, so a batch row names the image it must carry
    targets = np.full((n, NUM_CLASSES), 0.0, np.float32)
    targets[:, 0] = np.arange(n) / n
    targets[:, 1] = 1.0 - targets[:, 0]
    ds, steps = train_dataset(train, 64, seed=3, epochs=1, targets=targets)
    seen = 0
    for x, y in ds:
        index = np.rint(y.numpy()[:, 0] * n).astype(int)
        np.testing.assert_array_equal(x.numpy()[..., 0], train.images[index].astype(np.float32))
        seen += len(index)
    assert seen == steps * 64


@pytest.mark.slow
def test_training_with_the_shipped_model_as_teacher(small_fer, tmp_path):
    out = tmp_path / "student"
    argv = ["--data", str(small_fer), "--limit", "256", "--epochs", "1", "--batch-size", "32"]
    argv += ["--width", "0.5", "--depth", "0.34", "--augment", "light", "--no-export", "--quiet", "--out", str(out)]
    argv += ["--teacher", str(SHIPPED_KERAS), "--teacher-tta", "flip", "--distill-temperature", "2"]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["teacher"] == str(SHIPPED_KERAS) and config["teacher_tta"] == "flip"

    train = load_splits(small_fer, seed=0, limit=256).train
    cached = np.load(out / PROBS_FILE, allow_pickle=False)
    expected = soften(predict(load_predictor(SHIPPED_KERAS), train.images, "flip"), 2.0)
    np.testing.assert_allclose(cached, expected, atol=1e-5)
    # the shipped model saw these training images: it must mostly agree with their labels
    agreement = float((cached.argmax(1) == train.labels).mean())
    assert agreement > 0.6

    # a resumed run reuses the cached probabilities instead of asking the teacher again
    again = cached_teacher_probs(out, tmp_path / "no-such-teacher.keras", train.images, "flip", 2.0)
    np.testing.assert_array_equal(again, cached)


def test_bad_distillation_options_are_one_line(small_fer, tmp_path, capsys):
    base = ["--data", str(small_fer), "--limit", "64", "--quiet", "--out", str(tmp_path / "r")]

    def error(extra):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("error: ")
        return err

    assert "does not exist" in error(["--teacher", str(tmp_path / "missing.keras")])
    assert not (tmp_path / "r").exists()
    weighted = ["--teacher", str(SHIPPED_KERAS), "--balance", "sqrt-weights", "--distill-alpha", "0.8"]
    assert "--distill-alpha above 0.5" in error(weighted)
    assert "--distill-temperature must be positive" in error(
        ["--teacher", str(SHIPPED_KERAS), "--distill-temperature", "0"]
    )
