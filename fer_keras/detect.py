"""Face detectors behind one small interface: ``detector(frame_bgr) -> list[FaceBox]``.

``haar``: OpenCV 4.x's frontal-face Haar cascade (shipped with opencv-python), run on a frame
downscaled by ``downscale`` for speed. ``dnn``: MTCNN from the ``mtcnn`` package, whose weights
ship inside the wheel (works offline), slower but more robust to pose and lighting.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fer_keras.errors import FerKerasError

DETECTORS = ("haar", "dnn")


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

    def __init__(self, min_confidence: float = 0.9, min_face: int = 40):
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise FerKerasError("--detector dnn needs the mtcnn package: pip install mtcnn==1.0.0") from None
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


def make_detector(name: str = "haar", **options) -> HaarDetector | MtcnnDetector:
    """A detector by name (``haar`` or ``dnn``)."""
    if name == "haar":
        return HaarDetector(**options)
    if name == "dnn":
        return MtcnnDetector(**{k: v for k, v in options.items() if k in ("min_confidence", "min_face")})
    raise FerKerasError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")


def face_crop(gray: np.ndarray, box: FaceBox, margin: float = 0.1, size: int = 48) -> np.ndarray:
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
