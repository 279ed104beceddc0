"""``benchmarks/tuning_fidelity.py``: a study continues from its committed results JSON on a fresh
checkout (finished cells are kept, never retrained), longer budgets run cheapest configuration
first, and a results file of another study is not mixed in."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "tuning" / "mobilenetv2.json"


@pytest.fixture()
def fidelity(monkeypatch):
    spec = importlib.util.spec_from_file_location("tuning_fidelity", ROOT / "benchmarks" / "tuning_fidelity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ran = []

    def fake_run(base, settings, epochs, out):  # stands in for training: a score that ranks by learning rate
        ran.append((out.name, epochs))
        return {"val_macro_f1": settings["learning_rate"] * epochs, "seconds": 10.0 * epochs * settings["width"]}

    monkeypatch.setattr(module, "run_budget", fake_run)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    models = importlib.import_module("models")  # benchmarks/models.py, which the script imports
    monkeypatch.setattr(models, "matmul_peak_gflops", lambda: 123.0)
    return module, ran


def _main(module, monkeypatch, data, results, budgets=("1", "3")):
    argv = ["tuning_fidelity.py", "--data", str(data), "--space", str(SPACE), "--configs", "3", "--budgets", *budgets]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(results.parent / "runs"), "--results", str(results)])
    module.main()


def test_a_fresh_checkout_keeps_the_committed_cells_and_runs_only_the_rest(fidelity, small_fer, tmp_path, monkeypatch):
    module, ran = fidelity
    results = tmp_path / "tuning" / "fidelity"
    _main(module, monkeypatch, small_fer, results)
    assert len(ran) == 6
    first = json.loads(results.with_suffix(".json").read_text())
    assert all(set(c["scores"]) == {"1", "3"} for c in first["configs"])
    assert "123 GFLOP/s" in first["configs"][0]["scores"]["3"]["machine"]
    assert first["correlations"][0]["spearman"] == pytest.approx(1.0)

    # a fresh checkout: the runs' folder is gone, one cell of the committed table is missing, and
    # the other cells come from before runs recorded their own CPU (the study's is named)
    del first["configs"][1]["scores"]["3"]
    for config in first["configs"]:
        for score in config["scores"].values():
            del score["machine"]
    first["machine"] = "the earlier CPU"
    results.with_suffix(".json").write_text(json.dumps(first))
    ran.clear()
    _main(module, monkeypatch, small_fer, results)
    assert ran == [("c1-e3", 3)]
    again = json.loads(results.with_suffix(".json").read_text())
    assert again["configs"][0]["scores"]["3"]["val_macro_f1"] == first["configs"][0]["scores"]["3"]["val_macro_f1"]
    report = results.with_suffix(".md").read_text()
    assert "| 1 epochs | 3 epochs | +1.000 |" in report
    assert "the earlier CPU" in report and "123 GFLOP/s" in report  # both machines named


def test_cells_of_another_study_are_not_kept(fidelity, small_fer, tmp_path, monkeypatch):
    module, ran = fidelity
    results = tmp_path / "fidelity"
    _main(module, monkeypatch, small_fer, results)
    previous = json.loads(results.with_suffix(".json").read_text())
    previous["seed"] = 7  # other configurations were drawn
    results.with_suffix(".json").write_text(json.dumps(previous))
    ran.clear()
    _main(module, monkeypatch, small_fer, results)
    assert len(ran) == 6


def test_longer_budgets_run_the_cheapest_configuration_first(fidelity):
    module, _ = fidelity
    results = {
        "budgets": [2, 6],
        "configs": [
            {"scores": {"2": {"seconds": 300.0}}},
            {"scores": {"2": {"seconds": 100.0}}},
            {"scores": {}},  # never timed: last
            {"scores": {"2": {"seconds": 200.0}}},
        ],
    }
    assert module.run_order(results, 2) == [0, 1, 2, 3]
    assert module.run_order(results, 6) == [1, 3, 0, 2]


def _study(module, monkeypatch, data, results) -> dict:
    _main(module, monkeypatch, data, results)
    return json.loads(results.with_suffix(".json").read_text())


def test_the_same_data_at_another_path_keeps_the_cells_and_changed_data_does_not(
    fidelity, small_fer, tmp_path, monkeypatch
):
    import shutil

    module, ran = fidelity
    results = tmp_path / "fidelity"
    first = _study(module, monkeypatch, small_fer, results)

    # a fresh checkout elsewhere: the same images under another path keep every cell, and the
    # record keeps naming the command as the study ran it
    moved = shutil.copytree(small_fer, tmp_path / "elsewhere" / "fer2013")
    ran.clear()
    kept = _study(module, monkeypatch, moved, results)
    assert ran == []
    assert kept["command"] == first["command"] and kept["data_hash"] == first["data_hash"]

    # one image's bytes changed: another dataset, every cell runs again
    image = next((moved / "train" / "happy").iterdir())
    image.write_bytes(next((moved / "train" / "sad").iterdir()).read_bytes())
    _main(module, monkeypatch, moved, results)
    assert len(ran) == 6


def test_results_from_before_the_data_hash_are_matched_by_path_and_gain_the_hash(
    fidelity, small_fer, tmp_path, monkeypatch
):
    module, ran = fidelity
    results = tmp_path / "fidelity"
    old = _study(module, monkeypatch, small_fer, results)
    del old["data_hash"], old["limit"]
    results.with_suffix(".json").write_text(json.dumps(old))
    ran.clear()
    upgraded = _study(module, monkeypatch, small_fer, results)
    assert ran == []
    assert upgraded["data_hash"] and upgraded["correlations"] == old["correlations"]
