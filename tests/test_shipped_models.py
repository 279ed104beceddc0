"""The models in saved_models/: every artefact loads, they agree with each other on real crops,
their card's test figures reproduce, and clear examples get plausible top-2 predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_keras.contract import EMOTIONS
from fer_keras.data.loading import load_faces
from fer_keras.inference.predictor import load_predictor, predict, shipped_model
from fer_keras.reporting.metrics import classification_metrics

SAVED = Path(__file__).resolve().parents[1] / "saved_models"
CARDS = sorted(SAVED.glob("*.json"))


def test_the_default_model_is_shipped():
    assert shipped_model() == SAVED / "mobilenetv2"
    assert (shipped_model() / "saved_model.pb").exists()
    assert (SAVED / "mobilenetv2.json") in CARDS


@pytest.fixture(scope="module")
def test_faces(fer_root):
    return load_faces(fer_root / "test")


def card_test_faces(card: dict, fer_root, ferplus_votes):
    """The test split a card was scored on: FER2013 labels, or FER+ majorities for a FER+ model."""
    return load_faces(fer_root / "test", ferplus=ferplus_votes if len(card["classes"]) == 8 else None)


@pytest.mark.smoke
@pytest.mark.parametrize("card_path", CARDS, ids=[c.stem for c in CARDS])
def test_artefacts_agree_on_real_crops(card_path, test_faces):
    card = json.loads(card_path.read_text())
    crops = test_faces.images[:: len(test_faces) // 64][:64]
    predictors = {fmt: load_predictor(SAVED / rel) for fmt, rel in card["files"].items()}
    assert {p.classes for p in predictors.values()} == {tuple(card["classes"])}
    outputs = {fmt: p(crops) for fmt, p in predictors.items()}
    reference = outputs["keras"]
    assert reference.shape == (64, len(card["classes"])) and np.allclose(reference.sum(1), 1, atol=1e-4)
    for fmt, probs in outputs.items():
        # a float16 .tflite (the large models) rounds its weights: 1e-4 does not hold, 2e-3 does
        half = fmt == "tflite" and card.get("tflite_weights") == "float16"
        np.testing.assert_allclose(probs, reference, atol=2e-3 if half else 1e-4, err_msg=fmt)


@pytest.mark.parametrize("card_path", CARDS, ids=[c.stem for c in CARDS])
def test_card_figures_reproduce_on_the_test_split(card_path, fer_root, ferplus_votes):
    card = json.loads(card_path.read_text())
    if card["architecture"] == "mobilenetv2":
        assert card["parameters"] < 500_000
    test_faces = card_test_faces(card, fer_root, ferplus_votes)
    probs = predict(load_predictor(SAVED / card["files"]["savedmodel"]), test_faces.images)
    metrics = classification_metrics(test_faces.labels, probs)
    assert metrics["n"] == (3396 if len(card["classes"]) == 8 else 3589)
    assert metrics["accuracy"] == pytest.approx(card["test"]["accuracy"], abs=1e-4)
    assert metrics["macro_f1"] == pytest.approx(card["test"]["macro_f1"], abs=1e-4)
    assert (SAVED / card["confusion_matrix_image"]).exists()


@pytest.mark.parametrize("card_path", CARDS, ids=[c.stem for c in CARDS])
def test_card_recipe_is_a_runnable_train_command(card_path):
    """The card's command parses with today's CLI into the shipped architecture and options."""
    from fer_keras.reporting.model_card import train_argv
    from fer_keras.train import build_parser, config_from_args

    card = json.loads(card_path.read_text())
    config = config_from_args(build_parser().parse_args(train_argv(card["train_command"], "data", "runs/x")))
    assert (config.model, config.model_options) == (card["architecture"], card["model_options"])
    assert (config.data, config.out) == ("data", "runs/x")


@pytest.mark.parametrize("emotion", ["happy", "surprise"])
def test_clear_expressions_get_plausible_top2(emotion, test_faces):
    predictor = load_predictor(shipped_model())
    crops = test_faces.images[test_faces.labels == EMOTIONS.index(emotion)][:40]
    top2 = np.argsort(-predictor(crops), axis=1)[:, :2]
    hit_rate = np.mean([EMOTIONS.index(emotion) in row for row in top2])
    assert hit_rate >= 0.8, f"{emotion}: true class in top-2 for only {hit_rate:.0%} of 40 test crops"


def test_the_bundled_sample_photo_is_happy():
    """Eileen Collins smiles in the public-domain NASA portrait the README's first command uses."""
    from fer_keras.app.recognizer import EmotionRecognizer

    sample = Path(__file__).resolve().parents[1] / "fer_keras" / "samples" / "astronaut.jpg"
    for detector in ("haar", "dnn"):
        faces = EmotionRecognizer(detector=detector).analyze(sample)
        assert [f.label for f in faces] == ["happy"], detector
