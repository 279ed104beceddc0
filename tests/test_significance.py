"""``python -m fer_keras.significance``: a paired bootstrap of B - A on the same images."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_keras.inference.predictor import load_predictor, predict
from fer_keras.reporting.metrics import classification_metrics
from fer_keras.reporting.significance import paired_bootstrap
from fer_keras.runs import select_split
from fer_keras.significance import main

SHIPPED = Path(__file__).resolve().parents[1] / "saved_models" / "mobilenetv2.keras"


def test_identical_predictions_differ_by_exactly_nothing():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    for r in paired_bootstrap(y, pred, pred.copy(), resamples=200).values():
        assert r["a"] == r["b"] and r["delta"] == r["low"] == r["high"] == 0.0
        assert r["p_b_ahead"] == 0.0


def test_a_clear_gain_has_an_interval_above_zero_and_a_noisy_one_does_not():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 1000)
    a = np.where(rng.random(1000) < 0.6, y, (y + 1) % 7)  # about 60% right
    b = np.where(rng.random(1000) < 0.3, y, a)  # fixes about 30% of A's mistakes
    clear = paired_bootstrap(y, a, b, resamples=300)["accuracy"]
    assert clear["delta"] == pytest.approx((b == y).mean() - (a == y).mean())
    assert 0.0 < clear["low"] < clear["delta"] < clear["high"] and clear["p_b_ahead"] == 1.0
    # C fixes 6% of A's mistakes and breaks 4% of its right answers: the same expected score
    u = rng.random(1000)
    c = np.where((a != y) & (u < 0.06), y, np.where((a == y) & (u < 0.04), (y + 2) % 7, a))
    noisy = paired_bootstrap(y, a, c, resamples=300)["macro_f1"]
    assert noisy["low"] < 0.0 < noisy["high"] and 0.0 < noisy["p_b_ahead"] < 1.0


@pytest.mark.slow
def test_cli_scores_both_models_on_the_same_real_images(small_fer, small_model_file, capsys):
    argv = [str(SHIPPED), str(small_model_file), "--data", str(small_fer), "--split", "test", "--resamples", "300"]
    assert main(argv) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert set(lines) == {"accuracy", "macro_f1"}
    faces = select_split(small_fer, "test")
    shipped = classification_metrics(faces.labels, predict(load_predictor(SHIPPED), faces.images))
    assert lines["accuracy"].startswith(f"A={shipped['accuracy']:.4f} ")
    # the untrained model is far behind the shipped one, beyond resampling noise
    low, high = map(float, re.search(r"CI \[(\S+), (\S+)\]", lines["macro_f1"]).groups())
    assert low < high < 0.0 and lines["macro_f1"].endswith("P(B ahead)=0.00")


def test_runs_with_different_validation_splits_are_refused(tmp_path, small_fer, small_model_file, capsys):
    for name, seed in (("a", 0), ("b", 1)):
        (tmp_path / name).mkdir()
        shutil.copy(small_model_file, tmp_path / name / "best.keras")
        (tmp_path / name / "config.json").write_text(json.dumps({"model": "mobilenetv2", "seed": seed}))
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--data", str(small_fer)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "different validation splits" in err
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--data", str(small_fer), "--resamples", "5"]) == 2
    assert "--resamples must be 100 or more" in capsys.readouterr().err
