"""The research half of the Python API (``fer_keras.load_data``, ``train``, ``evaluate``, ...):
each function does what its command does, takes the command's options and fails in one line.
The notebooks, which CI executes, are written against these functions alone."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest

import fer_keras
from fer_keras import FerKerasError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_every_public_name_resolves_and_nothing_else_does():
    for name in fer_keras.__all__:
        assert getattr(fer_keras, name) is not None, name
    # importing a command module sets it as an attribute of the package: no public name may be one
    commands = {p.stem for p in Path(fer_keras.__file__).parent.glob("*.py")}
    assert not commands & set(fer_keras.__all__)
    for command in ("train", "evaluate", "tune", "export", "compare"):
        importlib.import_module(f"fer_keras.{command}")
    assert callable(fer_keras.train_model) and callable(fer_keras.evaluate_model)
    with pytest.raises(AttributeError, match="no attribute 'loop'"):
        fer_keras.loop  # noqa: B018


def test_load_data_and_inspect(small_fer):
    faces = fer_keras.load_data(small_fer)
    test = fer_keras.load_data(small_fer, "test")
    assert len(test) == 12 * 7 and set(test.splits) == {"test"}
    assert len(faces) == len(test) + len(fer_keras.load_data(small_fer, "train"))
    assert test.images.shape[1:] == (48, 48) and test.images.dtype == np.uint8
    assert test.classes == fer_keras.EMOTIONS and list(test.class_counts()) == [12] * 7
    with pytest.raises(FerKerasError, match="unknown split 'val'"):
        fer_keras.load_data(small_fer, "val")
    with pytest.raises(FerKerasError, match="does not exist|not found|no such"):
        fer_keras.load_data(small_fer / "missing")
    report = fer_keras.inspect_data(small_fer)
    assert "train" in report and "test" in report and "duplicate" in report.lower()


def test_augment_is_the_training_preset(small_fer):
    crops = fer_keras.load_data(small_fer, "test").images[:6]
    same = fer_keras.augment(crops, "none")
    np.testing.assert_allclose(same, crops.astype(np.float32))
    moved = fer_keras.augment(crops, "strong", seed=3)
    assert moved.shape == crops.shape and moved.dtype == np.float32
    assert 0 <= moved.min() and moved.max() <= 255 and np.abs(moved - crops).mean() > 5
    np.testing.assert_array_equal(moved, fer_keras.augment(crops, "strong", seed=3))  # seeded
    assert not np.array_equal(moved, fer_keras.augment(crops, "strong", seed=4))
    with pytest.raises(FerKerasError, match="unknown augmentation preset 'wild'"):
        fer_keras.augment(crops, "wild")
    with pytest.raises(FerKerasError, match=r"\(N, 48, 48\) crops"):
        fer_keras.augment(crops[0])


def test_train_options_are_checked_before_anything_runs(small_fer):
    with pytest.raises(FerKerasError, match="unknown training option 'epoch'"):
        fer_keras.train_model(model="mobilenetv2", data=str(small_fer), epoch=1)
    with pytest.raises(FerKerasError, match="either a TrainConfig or options"):
        fer_keras.train_model(fer_keras.TrainConfig(data=str(small_fer)), epochs=1)
    with pytest.raises(FerKerasError, match="unknown model 'resnet50'"):
        fer_keras.build_model("resnet50")


def test_train_evaluate_compare_export(small_fer, tmp_path):
    run = fer_keras.train_model(
        model="mobilenetv2",
        data=str(small_fer),
        out=str(tmp_path / "run"),
        epochs=1,
        batch_size=32,
        width=0.5,
        depth=0.34,
        augment="none",
        export=False,
        verbose=0,
    )
    assert run.run_dir == tmp_path / "run" and len(run.history["val_f1"]) == 1
    assert set(run.test_metrics) >= {"accuracy", "macro_f1"}
    metrics = fer_keras.evaluate_model(run.run_dir, small_fer, out=tmp_path / "eval", tsne_images=40)
    assert metrics["accuracy"] == pytest.approx(fer_keras.score(run.run_dir, small_fer)["accuracy"])
    for png in metrics["figures"].values():
        assert (tmp_path / "eval" / png).stat().st_size > 1000
    table = fer_keras.compare_runs([run.run_dir])
    assert table.startswith("|") and "run" in table.splitlines()[2]
    tflite = fer_keras.export_model(run.run_dir, "tflite", tmp_path / "model.tflite")
    assert tflite.stat().st_size > 10_000
    crops = fer_keras.load_data(small_fer, "test").images[:8]
    a = [e.vector() for e in fer_keras.EmotionRecognizer(model=run.run_dir / "best.keras").classify(crops)]
    b = [e.vector() for e in fer_keras.EmotionRecognizer(model=tflite).classify(crops)]
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_tune_refuses_a_bad_space_at_once(tmp_path, small_fer):
    space = tmp_path / "space.json"
    space.write_text('{"hyperparameters": {"epochs": {"type": "choice", "values": [1, 2]}}}')
    with pytest.raises(FerKerasError, match="epochs"):
        fer_keras.tune_model(space, tmp_path / "search", data=small_fer)


def test_test_video_run_and_score(small_fer, small_model_file, tmp_path):
    video, truth, found = tmp_path / "v.mp4", tmp_path / "truth.csv", tmp_path / "faces.csv"
    assert fer_keras.make_test_video(video, truth, small_fer, frames=16, seed=2) == video
    recognizer = fer_keras.EmotionRecognizer(small_model_file, detector="dnn")
    summary = fer_keras.run_video(video, recognizer, csv=found, output=tmp_path / "out.mp4")
    assert summary.frames == 16 and summary.fps > 0 and (tmp_path / "out.mp4").stat().st_size > 0
    score = fer_keras.score_video(truth, found)
    assert score["faces"] == 32 and score["recall"] > 0.8  # two faces a frame, BlazeFace finds them
    assert 0 <= score["accuracy_end_to_end"] <= score["accuracy_detected"] <= 1
    assert score["distinct_faces"] == 4  # two faces held for 15 frames, then two new ones
    assert score["end_to_end_low"] <= score["accuracy_end_to_end"] <= score["end_to_end_high"]
    with pytest.raises(FerKerasError, match="no such file"):
        fer_keras.score_video(truth, tmp_path / "missing.csv")
    with pytest.raises(FerKerasError, match="unknown scene 'fog'"):
        fer_keras.make_test_video(video, truth, small_fer, scene="fog")


def _imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_notebooks_use_the_public_api_only():
    import json

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        reached = {m for m in _imports(code) if m.startswith("fer_keras")}
        assert reached <= {"fer_keras"}, f"{path.name} imports {sorted(reached - {'fer_keras'})}"
        private = {
            a
            for a in ast.walk(ast.parse(code))
            if isinstance(a, ast.Attribute) and a.attr.startswith("_") and not a.attr.endswith("__")
        }
        assert not private, f"{path.name} reaches into {[a.attr for a in private]}"


def test_notebooks_are_committed_with_outputs_and_a_runtime():
    import json

    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert len(paths) >= 6
    for path in paths:
        cells = json.loads(path.read_text())["cells"]
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
        figures = [v for o in outputs for k, v in o.get("data", {}).items() if k in ("image/png", "image/jpeg")]
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} has no plot in its outputs"
        assert all(len(f) < 300_000 for f in figures), f"{path.name}: a figure over ~220 kB"
        runtime = [c for c in cells if "runtime" in c["metadata"].get("tags", [])]
        assert len(runtime) == 1 and "full mode" in "".join(runtime[0]["source"]), path.name
        errors = [o for o in outputs if o["output_type"] == "error"]
        assert not errors, f"{path.name} was committed with an error output"
