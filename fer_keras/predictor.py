"""One loader for every model format: run directory, ``.keras``, SavedModel, ``.tflite``, ``.onnx``.

Whatever the format, a predictor takes raw 48x48 grayscale crops (uint8 or float, 0..255) and
returns 7 probabilities in FER2013 order: the preprocessing is inside every artefact.
``.keras`` files load with Keras ``safe_mode`` on (no arbitrary code from a stranger's file).
"""

from __future__ import annotations

import abc
import warnings
from pathlib import Path

import numpy as np

from fer_keras.errors import FerKerasError, first_line
from fer_keras.labels import NUM_CLASSES

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "saved_models" / "mobilenetv2"


def limit_tf_threads(intra_op: int = 1, inter_op: int = 1) -> bool:
    """Run TensorFlow ops on ``intra_op`` threads; False when TF has already started (no change).

    Batch-1 calls of a small net are dominated by thread hand-offs: one thread is several times
    faster than the default pool, above all when other work (a detector, a video) shares the CPU.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        return False
    return True


def tflite_interpreter(path: str | Path, threads: int = 2):
    """A ready TFLite interpreter (LiteRT when installed, else ``tf.lite``); one-line error if unusable."""
    try:
        try:  # LiteRT, TFLite's successor, when installed; tf.lite's interpreter otherwise
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter

        with warnings.catch_warnings():  # tf.lite's "deprecated, use LiteRT" notice, on every load
            warnings.simplefilter("ignore", UserWarning)
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except Exception as err:  # noqa: BLE001
        raise FerKerasError(f"cannot load TFLite model {path}: {first_line(err)}") from None
    return interpreter


class EmotionPredictor(abc.ABC):
    """Callable: crops (N, 48, 48[, 1]) -> probabilities (N, 7)."""

    kind = "abstract"

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim == 3:
            crops = crops[..., None]
        if crops.shape[1:] != (48, 48, 1):
            raise FerKerasError(f"crops must be (N, 48, 48) grayscale, got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return np.asarray(self._predict(crops), dtype=np.float32)

    @abc.abstractmethod
    def _predict(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities for a float32 (N, 48, 48, 1) batch."""

    def check_output(self) -> EmotionPredictor:
        """Fail early, in one line, on a model that does not give 7 probabilities."""
        out = self(np.zeros((1, 48, 48, 1), np.float32))
        if out.shape != (1, NUM_CLASSES):
            raise FerKerasError(
                f"model {self.path} gives {out.shape[-1]} outputs; an emotion model must give {NUM_CLASSES} "
                f"(angry, disgust, fear, happy, sad, surprise, neutral)"
            )
        return self


class KerasPredictor(EmotionPredictor):
    kind = "keras"

    def __init__(self, path: Path):
        super().__init__(path)
        import keras

        try:
            self.model = keras.saving.load_model(path)  # safe_mode=True is the default
        except Exception as err:  # noqa: BLE001 - any failure means the file is not a usable model
            raise FerKerasError(f"cannot load Keras model {path}: {first_line(err)}") from None
        import tensorflow as tf

        self._fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def _predict(self, crops):
        return self._fn(crops).numpy()


class SavedModelPredictor(EmotionPredictor):
    kind = "savedmodel"

    def __init__(self, path: Path):
        super().__init__(path)
        import tensorflow as tf

        try:
            self.model = tf.saved_model.load(str(path))
        except Exception as err:  # noqa: BLE001
            raise FerKerasError(f"cannot load SavedModel {path}: {first_line(err)}") from None
        self._fn = getattr(self.model, "serve", None) or self.model.signatures.get("serving_default")
        if self._fn is None:
            raise FerKerasError(f"SavedModel {path} has no serve() endpoint; export it with fer_keras.export")
        if hasattr(self._fn, "get_concrete_function"):
            # The traced graph itself: skips the restored function's argument matching (~0.3-0.7 ms a call).
            try:
                self._fn = self._fn.get_concrete_function(tf.TensorSpec([None, 48, 48, 1], tf.float32))
            except (TypeError, ValueError):
                pass  # a serve() with another signature; the generic call below still works

    def _predict(self, crops):
        import tensorflow as tf

        out = self._fn(tf.constant(crops))
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return out.numpy()


class TFLitePredictor(EmotionPredictor):
    kind = "tflite"

    def __init__(self, path: Path):
        super().__init__(path)
        self.interpreter = tflite_interpreter(path, threads=2)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = None

    def _quantize(self, x: np.ndarray, detail: dict) -> np.ndarray:
        scale, zero = detail["quantization"]
        if detail["dtype"] == np.float32 or not scale:
            return x.astype(detail["dtype"])
        return np.clip(np.round(x / scale + zero), *_int_range(detail["dtype"])).astype(detail["dtype"])

    def _predict(self, crops):
        n = len(crops)
        if self._batch != n:
            self.interpreter.resize_tensor_input(self._input["index"], [n, 48, 48, 1])
            self.interpreter.allocate_tensors()
            self._batch = n
        self.interpreter.set_tensor(self._input["index"], self._quantize(crops, self._input))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        scale, zero = self._output["quantization"]
        if self._output["dtype"] != np.float32 and scale:
            out = (out.astype(np.float32) - zero) * scale
        return out


class OnnxPredictor(EmotionPredictor):
    kind = "onnx"

    def __init__(self, path: Path, threads: int = 2):
        super().__init__(path)
        try:
            import onnxruntime as ort
        except ImportError:
            raise FerKerasError("ONNX models need onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001
            raise FerKerasError(f"cannot load ONNX model {path}: {first_line(err)}") from None
        self._input = self.session.get_inputs()[0].name

    def _predict(self, crops):
        return self.session.run(None, {self._input: crops})[0]


def _int_range(dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return info.min, info.max


def resolve_model_path(path: str | Path | None) -> Path:
    """A run directory resolves to its SavedModel (else best.keras); None to the shipped model."""
    path = Path(path) if path else DEFAULT_MODEL
    if not path.exists():
        hint = " (the shipped model: see saved_models/README.md)" if path == DEFAULT_MODEL else ""
        raise FerKerasError(f"model {path} does not exist{hint}")
    if path.is_dir() and (path / "config.json").exists() and not (path / "saved_model.pb").exists():
        for candidate in ("best.keras", "saved_model"):
            if (path / candidate).exists():
                return path / candidate
        raise FerKerasError(f"run directory {path} has no best.keras or saved_model/ yet")
    return path


def load_predictor(path: str | Path | None = None) -> EmotionPredictor:
    """Load any supported model file or directory and check it gives 7 probabilities."""
    path = resolve_model_path(path)
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise FerKerasError(f"{path} is a folder but not a SavedModel (no saved_model.pb)")
        predictor: EmotionPredictor = SavedModelPredictor(path)
    elif path.suffix == ".keras":
        predictor = KerasPredictor(path)
    elif path.suffix == ".tflite":
        predictor = TFLitePredictor(path)
    elif path.suffix == ".onnx":
        predictor = OnnxPredictor(path)
    else:
        raise FerKerasError(
            f"unsupported model file {path}: use a run dir, .keras, SavedModel folder, .tflite or .onnx"
        )
    return predictor.check_output()
