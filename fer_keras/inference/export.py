"""Write a model as SavedModel, ``.keras``, TFLite (float, float16, int8) or ONNX.

Every artefact takes raw 48x48 grayscale crops (0..255) and gives 7 probabilities: the
preprocessing is part of the Keras graph, so it is part of every export. With ``--data``, the
exported model is evaluated on the test split next to the float model and the accuracy change
is printed. int8 quantisation calibrates on training images (never on the test split).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fer_keras import runs
from fer_keras.contract import CROP_SHAPE, CROP_SIZE
from fer_keras.data.loading import stratified_subset
from fer_keras.errors import FerKerasError, first_line
from fer_keras.inference.predictor import FORMATS, QUANTIZE, check_keras_file, keras_file_of, resolve_model_path
from fer_keras.models.dtype import float32_copy
from fer_keras.runs import select_split


def keras_source(path: str | Path | None) -> Path:
    """The ``.keras`` file behind a model (``keras_file_of``), else the model path itself."""
    return keras_file_of(path) or resolve_model_path(path)


def load_keras_model(path: str | Path | None) -> keras.Model:
    """The Keras model behind a run directory or ``.keras`` file (exports start from it)."""
    path = keras_source(path)
    if path.suffix != ".keras":
        raise FerKerasError(f"export starts from a .keras file or a run directory, not {path}")
    check_keras_file(path)
    try:
        model = keras.saving.load_model(path)
    except Exception as err:  # noqa: BLE001
        raise FerKerasError(f"cannot load {path}: {first_line(err)}") from None
    return float32_copy(model)  # exports compute in float32, whatever precision the run trained in


def representative_crops(data: str | Path | None, count: int = 300, seed: int = 0) -> np.ndarray:
    """Training crops for int8 calibration (stratified, seeded)."""
    if data is None:
        raise FerKerasError("--quantize int8 needs --data (training images calibrate the ranges)")
    train = select_split(data, "train")
    return stratified_subset(train, count, seed).images[..., None].astype(np.float32)


def save_savedmodel(model: keras.Model, path: str | Path) -> None:
    """A SavedModel whose ``serve`` runs ``model(x, training=False)`` on (N, 48, 48, 1) float32 crops.

    The graph is frozen (weights as constants), so TensorFlow's optimiser folds BatchNorm into
    the convolutions: batch-1 calls got 10-40% faster here. Not ``model.export``: on Keras 3.15 /
    TF 2.21 the default export of the 72x72-input MobileNetV2 (in-graph Resizing before the
    backbone) served different probabilities from the Keras model (test accuracy 0.29 instead of
    0.65). Fine-tune from the ``.keras`` file; this artefact is for serving.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, CROP_SIZE, CROP_SIZE, 1], tf.float32, name="face")
    traced = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(traced)
    module = tf.Module()
    module.serve = tf.function(lambda x: frozen(x)[0], input_signature=[spec])
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def to_tflite(model: keras.Model, quantize: str = "none", calibration: np.ndarray | None = None) -> bytes:
    """TFLite flatbuffer with a dynamic batch dimension; float16 or full-int8 weights optionally."""
    # Through a SavedModel: converting a concrete function of a Keras 3 model directly gave NaNs
    # (variables not frozen).
    with tempfile.TemporaryDirectory() as tmp:
        save_savedmodel(model, tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        _configure_quantization(converter, quantize, calibration)
        return converter.convert()


def _configure_quantization(converter, quantize: str, calibration: np.ndarray | None) -> None:
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if calibration is None:
            raise FerKerasError("int8 quantisation needs calibration images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def samples():
            for crop in calibration:
                yield [crop[None]]

        converter.representative_dataset = samples
        # int8 inside, float32 at the edges: callers keep feeding 0..255 crops and reading probabilities.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def to_onnx(model: keras.Model, path: Path) -> None:
    try:
        import tf2onnx
    except ImportError:
        raise FerKerasError('--format onnx needs tf2onnx: pip install "fer_keras[onnx]"') from None
    spec = (tf.TensorSpec([None, *CROP_SHAPE], tf.float32, name="face"),)
    fn = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(fn, input_signature=spec, opset=17, output_path=str(path))


def default_output(model_path: Path, fmt: str, quantize: str) -> Path:
    stem = model_path.parent if model_path.name in (runs.BEST, runs.SAVED_MODEL) else model_path.with_suffix("")
    suffix = {"savedmodel": "_savedmodel", "keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}[fmt]
    tag = f"_{quantize}" if quantize != "none" else ""
    return Path(f"{stem}{tag}{suffix}")


def export(
    model_path: str | Path | None,
    fmt: str,
    out: str | Path | None = None,
    quantize: str = "none",
    data: str | Path | None = None,
) -> Path:
    """Write the artefact and return its path."""
    if fmt not in FORMATS:
        raise FerKerasError(f"unknown --format {fmt!r}; choose from {', '.join(FORMATS)}")
    if quantize not in QUANTIZE:
        raise FerKerasError(f"unknown --quantize {quantize!r}; choose from {', '.join(QUANTIZE)}")
    if quantize != "none" and fmt != "tflite":
        raise FerKerasError("--quantize applies to --format tflite only")
    source = keras_source(model_path)
    model = load_keras_model(source)
    target = Path(out) if out else default_output(source, fmt, quantize)
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "savedmodel":
        save_savedmodel(model, target)
    elif fmt == "keras":
        model.save(target)
    elif fmt == "tflite":
        calibration = representative_crops(data) if quantize == "int8" else None
        target.write_bytes(to_tflite(model, quantize, calibration))
    else:
        to_onnx(model, target)
    return target
