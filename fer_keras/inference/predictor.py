"""One loader for every model format: run directory, ``.keras``, SavedModel, ``.tflite``, ``.onnx``.

Whatever the format, a predictor takes raw 48x48 grayscale crops (uint8 or float, 0..255) and
returns one probability per class of the model (``predictor.classes``: FER2013's 7 emotions, or
FER+'s 8 with contempt, told apart by the output width): the preprocessing is inside every artefact.
``.keras`` files load with Keras ``safe_mode`` on (no arbitrary code from a stranger's file).
"""

from __future__ import annotations

import abc
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from fer_keras import runs
from fer_keras.contract import CROP_SHAPE, EMOTIONS, class_names
from fer_keras.errors import FerKerasError, first_line
from fer_keras.runs import RunDir

FORMATS = ("savedmodel", "keras", "tflite", "onnx")  # what export writes and every loader reads
QUANTIZE = ("none", "float16", "int8")  # TFLite weight formats
MODEL_HELP = "run directory, .keras, SavedModel folder, .tflite or .onnx"
MODEL_OPTION_HELP = (
    f"{MODEL_HELP}, or a shipped model's name (mobilenetv2_ferplus: FER+'s 8 classes); "
    "default: the shipped FER2013 model"
)
SHIPPED_NAME = "mobilenetv2"


def shipped_models_dir() -> Path:
    """Where the shipped models are: inside an installed wheel (``fer_keras/saved_models``), else the
    checkout's top-level ``saved_models/``."""
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "saved_models", package.parent / "saved_models"):
        if (folder / f"{SHIPPED_NAME}.json").is_file():
            return folder
    raise FerKerasError(
        f"the shipped model is missing (looked in {package / 'saved_models'} and {package.parent / 'saved_models'}); "
        "reinstall fer_keras or pass --model"
    )


def shipped_model(suffix: str = "", name: str = SHIPPED_NAME) -> Path:
    """A shipped model (default: the FER2013 one): its SavedModel folder, or the ``suffix`` file."""
    return shipped_models_dir() / f"{name}{suffix}"


def shipped_names() -> list[str]:
    """The names of the shipped models (one card each): ``mobilenetv2``, ``mobilenetv2_ferplus``."""
    return sorted(card.stem for card in shipped_models_dir().glob("*.json"))


def shipped_by_name(path: str | Path | None, suffix: str = "") -> Path | None:
    """The shipped model a bare name such as ``mobilenetv2_ferplus`` means, when no such file exists here.

    Without ``suffix``: its SavedModel folder, else its ``.keras`` file, else its ``.tflite`` file (the
    wheel leaves out the large models' SavedModel folders; ``export`` makes them from the ``.keras``).
    """
    if not path or Path(path).exists() or Path(path).name != str(path):
        return None
    try:
        names = shipped_names()
    except FerKerasError:
        return None
    if str(path) not in names:
        return None
    if suffix:
        return shipped_model(suffix, str(path))
    candidates = [shipped_model(s, str(path)) for s in ("", ".keras", ".tflite")]
    return next((c for c in candidates if c.exists()), candidates[0])


RUNTIMES = ("auto", "tflite", "tensorflow")
RUNTIME_HELP = (
    "how a shipped model runs: tflite (on the CPU), tensorflow (its SavedModel, on a GPU where TensorFlow "
    "sees one: CUDA, or Metal on Apple Silicon), or auto: tensorflow where a GPU is visible, else tflite"
)


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (CUDA, or Metal through tensorflow-metal)."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def runtime_model(model: str | Path | EmotionPredictor | None, runtime: str = "auto") -> str | Path | EmotionPredictor:
    """What an app runs for ``model``. A shipped model (None, or a shipped model's name) runs as its
    ``.tflite`` file on a CPU (the same weights as its SavedModel and 1.4-4x faster per crop, one crop
    to batches of 32), and through TensorFlow, its SavedModel (else its ``.keras`` file), where a GPU
    does the work (``runtime``: ``auto`` picks by ``gpu_visible``). Anything else as given."""
    if runtime not in RUNTIMES:
        raise FerKerasError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    if model is not None and (not isinstance(model, str | Path) or not shipped_by_name(model)):
        return model  # a loaded predictor, or a path that is not a shipped model's name
    name = SHIPPED_NAME if model is None else str(model)
    if runtime == "auto":
        runtime = "tensorflow" if gpu_visible() else "tflite"
    if runtime == "tflite" and shipped_model(".tflite", name).is_file():
        return shipped_model(".tflite", name)
    folder = shipped_model("", name)
    return folder if (folder / "saved_model.pb").is_file() else shipped_model(".keras", name)


def all_cores(cap: int = 4) -> int:
    """The CPU's cores, at most ``cap``: the thread count of a TFLite or ONNX call by default."""
    return min(os.cpu_count() or 1, cap)


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
    """Callable: crops (N, 48, 48[, 1]) -> probabilities (N, len(classes))."""

    kind = "abstract"

    def __init__(self, path: Path):
        self.path = path
        self.classes: tuple[str, ...] = EMOTIONS  # set from the model's output by check_output

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops, dtype=np.float32)
        given = crops.shape  # the error names the shape the caller gave, not one reshaped here
        if crops.ndim == 3:
            crops = crops[..., None]
        if crops.shape[1:] != CROP_SHAPE:
            raise FerKerasError(f"crops must be (N, {CROP_SHAPE[0]}, {CROP_SHAPE[1]}) grayscale, got {given}")
        if len(crops) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return np.asarray(self._predict(crops), dtype=np.float32)

    @abc.abstractmethod
    def _predict(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities for a float32 (N, 48, 48, 1) batch."""

    def check_output(self) -> EmotionPredictor:
        """Read the class list off the model's output; fail early, in one line, on a model that gives
        neither FER2013's 7 nor FER+'s 8 probabilities."""
        out = self(np.zeros((1, *CROP_SHAPE), np.float32))
        if out.ndim != 2 or len(out) != 1:
            raise FerKerasError(f"model {self.path} gives outputs of shape {out.shape}; expected (1, classes)")
        self.classes = class_names(out.shape[-1], f"model {self.path}")
        return self


def check_keras_file(path: Path) -> Path:
    """A ``.keras`` file that is a zip archive, as every Keras 3 model file is; else the one message
    every command gives for it."""
    if not zipfile.is_zipfile(path):
        raise FerKerasError(f"{path} is not a Keras model file (a .keras file is a zip archive)")
    return path


class KerasPredictor(EmotionPredictor):
    kind = "keras"

    def __init__(self, path: Path):
        super().__init__(path)
        check_keras_file(path)
        import keras

        from fer_keras.models.dtype import float32_copy

        try:
            self.model = keras.saving.load_model(path)  # safe_mode=True is the default
        except Exception as err:  # noqa: BLE001 - any failure means the file is not a usable model
            raise FerKerasError(f"cannot load Keras model {path}: {first_line(err)}") from None
        self.model = float32_copy(self.model)  # a mixed-precision run's checkpoint scores as it ships
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
                self._fn = self._fn.get_concrete_function(tf.TensorSpec([None, *CROP_SHAPE], tf.float32))
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

    def __init__(self, path: Path, threads: int = 2):
        super().__init__(path)
        self.interpreter = tflite_interpreter(path, threads=threads)
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
            self.interpreter.resize_tensor_input(self._input["index"], [n, *CROP_SHAPE])
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
        options = onnx_session_options(ort, threads)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001
            raise FerKerasError(f"cannot load ONNX model {path}: {first_line(err)}") from None
        self._input = self.session.get_inputs()[0].name

    def _predict(self, crops):
        return self.session.run(None, {self._input: crops})[0]


def onnx_session_options(ort, threads: int):
    """ONNX Runtime options for a model that shares the CPU with other runtimes (the live app runs
    BlazeFace and the classifier in turn on every frame).

    ORT's worker threads busy-wait after each run by default; on a 2-core CPU that spinning takes
    the cores the next model needs (docs/experiments/live-video.md, "Two runtimes on two cores").
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _int_range(dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return info.min, info.max


def resolve_model_path(path: str | Path | None) -> Path:
    """A run directory resolves to its SavedModel (else best.keras); None to the shipped model."""
    if not path:
        return shipped_model()
    path = shipped_by_name(path) or Path(path)
    if not path.exists():
        try:
            names = ", ".join(shipped_names())
        except FerKerasError:
            names = "none found"
        raise FerKerasError(f"model {path} does not exist (give a {MODEL_HELP}, or a shipped model's name: {names})")
    run = RunDir(path)
    if path.is_dir() and run.is_run and not (path / "saved_model.pb").exists():
        return run.model_file()
    return path


def check_model_path(path: str | Path | None) -> Path | None:
    """A ``--model`` checked before TensorFlow loads: it exists (or names a shipped model), and a
    ``.keras`` file is one. None (the shipped model) passes as it is."""
    if path is None or isinstance(path, EmotionPredictor):
        return None
    resolved = resolve_model_path(path)
    if resolved.suffix == ".keras" and resolved.is_file():
        check_keras_file(resolved)
    return resolved


def keras_file_of(path: str | Path | None) -> Path | None:
    """The ``.keras`` file behind a model: the file itself, its run's best checkpoint, or the
    ``.keras`` file beside a SavedModel folder (as ``saved_models/`` ships them); None if none."""
    path = resolve_model_path(path)
    if path.suffix == ".keras":
        return path
    run = RunDir.containing(path)
    candidates = [run.file(runs.BEST)] if run else []
    if path.is_dir():
        candidates.append(path.with_suffix(".keras"))
    return next((c for c in candidates if c.is_file()), None)


def load_predictor(path: str | Path | None = None, threads: int = 2) -> EmotionPredictor:
    """Load any supported model file or directory and read its class list off its output
    (``threads``: of a TFLite or ONNX model; TensorFlow's are set by ``limit_tf_threads``)."""
    path = resolve_model_path(path)
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise FerKerasError(f"{path} is a folder but not a SavedModel (no saved_model.pb)")
        predictor: EmotionPredictor = SavedModelPredictor(path)
    elif path.suffix == ".keras":
        predictor = KerasPredictor(path)
    elif path.suffix == ".tflite":
        predictor = TFLitePredictor(path, threads)
    elif path.suffix == ".onnx":
        predictor = OnnxPredictor(path, threads)
    else:
        raise FerKerasError(f"unsupported model file {path}: use a {MODEL_HELP}")
    return predictor.check_output()


def predict(predictor: EmotionPredictor, images: np.ndarray, tta: str = "none", batch_size: int = 256) -> np.ndarray:
    """Probabilities for uint8 (N, 48, 48) crops, in batches, averaged over the TTA views."""
    from fer_keras.inference.tta import tta_views

    total = None
    views = tta_views(images, tta)
    for view in views:
        probs = np.concatenate(
            [predictor(view[i : i + batch_size]) for i in range(0, len(view), batch_size)]
            or [np.zeros((0, len(predictor.classes)), np.float32)]
        )
        total = probs if total is None else total + probs
    return total / len(views)
