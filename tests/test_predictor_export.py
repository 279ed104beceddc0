"""One loader for .keras / SavedModel / .tflite / .onnx / run dirs, and exports that agree with the source."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from fer_keras.data.loading import load_faces
from fer_keras.errors import FerKerasError
from fer_keras.export import main
from fer_keras.inference.export import export
from fer_keras.inference.predictor import load_predictor
from fer_keras.models import build


@pytest.fixture(scope="module")
def test_crops(small_fer):
    return load_faces(small_fer / "test").images[:32]


@pytest.fixture(scope="module")
def reference(small_model_file, test_crops):
    return load_predictor(small_model_file)(test_crops)


@pytest.mark.smoke
@pytest.mark.parametrize(
    "fmt,quantize,atol",
    [("savedmodel", "none", 1e-5), ("keras", "none", 1e-6), ("tflite", "none", 1e-4), ("tflite", "float16", 2e-2)],
)
def test_exports_agree_with_the_keras_model(small_model_file, test_crops, reference, tmp_path, fmt, quantize, atol):
    suffix = {"savedmodel": "", "keras": ".keras", "tflite": ".tflite"}[fmt]
    target = export(small_model_file, fmt, tmp_path / f"m{suffix}", quantize)
    probs = load_predictor(target)(test_crops)
    assert probs.shape == (32, 7) and np.allclose(probs.sum(1), 1, atol=1e-3)
    np.testing.assert_allclose(probs, reference, atol=atol)


@pytest.mark.smoke
def test_savedmodel_of_an_upsampling_model_serves_what_keras_computes(tmp_path):
    """Regression: ``model.export`` served wrong outputs for the 72x72-input MobileNetV2 (Keras 3.15)."""
    import tensorflow as tf

    from fer_keras.inference.export import save_savedmodel

    keras.utils.set_random_seed(0)
    model = build("mobilenetv2", input_size=72, classifier_activation=None)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # trained-like BatchNorm statistics, so every layer's output matters
        if "moving_mean" in weight.path:
            weight.assign(rng.normal(0, 0.5, weight.shape).astype(np.float32))
        if "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.5, 2.0, weight.shape).astype(np.float32))
    crops = rng.uniform(0, 255, (4, 48, 48, 1)).astype(np.float32)
    expected = model.predict(crops, verbose=0)
    assert np.abs(expected).max() > 0.5  # logits far from zero: a wrong graph would show
    save_savedmodel(model, tmp_path / "sm")
    served = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(served.serve(tf.constant(crops)).numpy(), expected, atol=1e-4)


def test_onnx_export_agrees_and_reports_the_change(
    small_model_file, small_fer, test_crops, reference, tmp_path, capsys
):
    pytest.importorskip("tf2onnx", reason='ONNX export needs pip install -e ".[onnx]" (CI installs it)')
    pytest.importorskip("onnxruntime", reason='ONNX inference needs pip install -e ".[onnx]" (CI installs it)')
    target = tmp_path / "m.onnx"
    argv = ["--model", str(small_model_file), "--format", "onnx", "--out", str(target), "--data", str(small_fer)]
    assert main(argv) == 0
    predictor = load_predictor(target)
    assert predictor.kind == "onnx"
    assert predictor.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    np.testing.assert_allclose(predictor(test_crops), reference, atol=1e-4)
    assert re.search(r"accuracy change [+-]0\.00 points", capsys.readouterr().out)


def test_export_refuses_ferplus_without_data_and_a_wrong_data_path_before_writing(small_model_file, tmp_path, capsys):
    cases = {
        "give --data too": ["--ferplus", "v.csv"],
        "does not exist": ["--data", str(tmp_path / "no-such-dataset")],
    }
    for message, extra in cases.items():
        argv = ["--model", str(small_model_file), "--format", "keras", "--out", str(tmp_path / "m.keras"), *extra]
        assert main(argv) == 2, message
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err, (message, err)
    assert not (tmp_path / "m.keras").exists()


def test_int8_export_calibrates_on_train_and_reports_the_change(small_model_file, small_fer, tmp_path, capsys):
    target = tmp_path / "m_int8.tflite"
    code = main(
        [
            "--model",
            str(small_model_file),
            "--format",
            "tflite",
            "--quantize",
            "int8",
            "--out",
            str(target),
            "--data",
            str(small_fer),
        ]
    )
    assert code == 0 and target.exists()
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(
        r"export: +accuracy=0\.\d{4} macro_f1=0\.\d{4} \(accuracy change [+-]\d+\.\d\d points\)", lines[-1]
    )
    assert target.stat().st_size < (small_model_file.stat().st_size)


def test_run_directory_resolves_to_its_model(small_model_file, tmp_path, test_crops, reference):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "best.keras").write_bytes(small_model_file.read_bytes())
    np.testing.assert_allclose(load_predictor(run)(test_crops), reference, atol=1e-6)


def test_model_with_wrong_output_size(tmp_path):
    keras.utils.set_random_seed(0)
    path = tmp_path / "five.keras"
    build("mobilenetv2", width=0.35, num_classes=5).save(path)
    with pytest.raises(FerKerasError, match="returns 5 values per face; fer_keras models return 7"):
        load_predictor(path)


def test_missing_and_unsupported_models(tmp_path):
    with pytest.raises(FerKerasError, match="does not exist"):
        load_predictor(tmp_path / "nope.keras")
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"x")
    with pytest.raises(FerKerasError, match="unsupported model file"):
        load_predictor(bad)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(FerKerasError, match="is not a Keras model file") as err:
        load_predictor(broken)
    assert "not found" not in str(err.value).lower()  # it exists; it is just not a model
    import zipfile

    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("readme.txt", "a zip, but not a Keras model")
    with pytest.raises(FerKerasError, match="cannot load Keras model"):
        load_predictor(tmp_path / "other.keras")


@pytest.mark.parametrize("command", ["export", "ensemble", "evaluate", "live"])
def test_a_text_file_named_keras_gets_the_same_message_in_every_command(command, tmp_path, capsys):
    import importlib

    bogus = tmp_path / "model.keras"
    bogus.write_text("not a model")
    argv = {
        "export": ["--model", str(bogus), "--format", "tflite"],
        "ensemble": [str(bogus), str(bogus), "--out", str(tmp_path / "e.keras")],
        "evaluate": ["--model", str(bogus), "--data", str(tmp_path)],
        "live": ["--model", str(bogus), "--source", "fer_keras/samples/astronaut.jpg", "--no-display"],
    }[command]
    (tmp_path / "happy").mkdir()
    assert importlib.import_module(f"fer_keras.{command}").main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"error: {bogus} is not a Keras model file (a .keras file is a zip archive)\n"


def test_export_and_ensemble_functions_refuse_a_file_that_is_not_a_keras_zip(tmp_path):
    from fer_keras.inference.ensemble import build_ensemble

    bogus = tmp_path / "model.keras"
    bogus.write_text("not a model")
    with pytest.raises(FerKerasError, match="is not a Keras model file"):
        export(bogus, "tflite")
    with pytest.raises(FerKerasError, match="is not a Keras model file"):
        build_ensemble([bogus, bogus], tmp_path / "e.keras")


def test_classify_names_the_shape_it_was_given(small_model_file):
    predictor = load_predictor(small_model_file)
    with pytest.raises(FerKerasError, match=r"got \(3, 64, 64\)$"):
        predictor(np.zeros((3, 64, 64), np.uint8))


def test_a_loader_error_without_a_message_is_still_one_line(tmp_path, monkeypatch):
    # an exception whose message is empty has no first line: the error must still be one line
    def fail(*args, **kwargs):
        raise ValueError("")

    monkeypatch.setattr(keras.saving, "load_model", fail)
    import zipfile

    zipfile.ZipFile(tmp_path / "m.keras", "w").close()  # a zip, so the loader is reached
    with pytest.raises(FerKerasError, match=r"cannot load Keras model .*m\.keras: ValueError$"):
        load_predictor(tmp_path / "m.keras")


def test_bad_export_options(small_model_file):
    with pytest.raises(FerKerasError, match="--quantize applies to --format tflite only"):
        export(small_model_file, "keras", quantize="int8")
    with pytest.raises(FerKerasError, match="needs --data"):
        export(small_model_file, "tflite", quantize="int8")
