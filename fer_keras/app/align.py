"""Framing a found face the way FER2013 frames its faces: one similarity transform per face.

FER2013's crops are tight, level-ish squares around the face. The model is only as good as the
crop it is handed, so each detector maps its output onto that framing:

- ``KeypointFraming`` (BlazeFace): the detector's eye, nose and mouth keypoints are mapped onto
  where they sit in an average FER2013 crop (``FER2013_KEYPOINTS``) by the least-squares
  similarity (rotation, uniform scale, shift). A tilted head comes out level.
- ``BoxFraming`` (Haar, MTCNN, user detectors): a square of ``scale`` times the box side, centred
  ``dx``, ``dy`` box sides away from the box centre.

Both templates were measured by ``python benchmarks/framing.py --data ../shared/data/fer2013``
on upscaled *training* crops pasted into frames built several ways (docs/experiments/live-video.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fer_keras.contract import CROP_SIZE

# BlazeFace's keypoints, in its output order.
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")
# Where BlazeFace puts them on FER2013 training crops (median, in 48x48 crop pixels). The ears are
# measured but not used: on frontal faces they sit at the crop's edge and move with hair and pose.
FER2013_KEYPOINTS = np.array(
    [[14.69, 18.81], [32.33, 18.38], [23.58, 28.39], [23.85, 36.86], [5.75, 22.66], [42.01, 21.76]], np.float32
)
ALIGN_KEYPOINTS = (0, 1, 2, 3)


@dataclass(frozen=True)
class BoxFraming:
    """A square crop ``scale`` box sides wide, centred ``dx``, ``dy`` box sides off the box centre."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    @classmethod
    def from_margin(cls, margin: float) -> BoxFraming:
        """The centred square grown by ``margin`` of the box side on each side."""
        return cls(scale=1 + 2 * margin)

    def matrix(self, box, size: int = CROP_SIZE) -> np.ndarray:
        """The 2x3 map from frame pixels to ``size``x``size`` crop pixels."""
        side = max(box.w, box.h) * self.scale
        cx = box.x + box.w / 2 + self.dx * box.w
        cy = box.y + box.h / 2 + self.dy * box.h
        s = size / side
        return np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)


@dataclass(frozen=True)
class KeypointFraming:
    """Keypoints onto the FER2013 template by a similarity; ``fallback`` for boxes without keypoints.
    ``zoom`` below 1 frames a smaller square than the template's (the template spread out from
    the crop's centre by 1 / zoom)."""

    template: tuple = tuple(map(tuple, FER2013_KEYPOINTS[list(ALIGN_KEYPOINTS)]))
    use: tuple[int, ...] = ALIGN_KEYPOINTS
    fallback: BoxFraming = BoxFraming()
    zoom: float = 1.0

    def matrix(self, box, size: int = CROP_SIZE) -> np.ndarray:
        if len(box.keypoints) <= max(self.use):
            return self.fallback.matrix(box, size)
        src = np.asarray([box.keypoints[i] for i in self.use], np.float32)
        centre = size / 2
        dst = centre + (np.asarray(self.template, np.float32) * (size / CROP_SIZE) - centre) / self.zoom
        return similarity(src, dst)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity (2x3) taking points ``src`` onto ``dst`` (Umeyama, no reflection).

    ``cv2.estimateAffinePartial2D`` fits the same model but through RANSAC, which on four points
    may keep a subset; every keypoint should count here.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    var = (a**2).sum()
    if var <= 1e-9:
        raise ValueError("keypoints coincide; no similarity maps them")
    # complex-number form of the 2D similarity: dst = z * src, z = sum(conj(a) * b) / |a|^2
    za, zb = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    z = (np.conj(za) * zb).sum() / var
    c, s = z.real, z.imag
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = md - m[:, :2] @ ms
    return m.astype(np.float32)


def warp_crop(gray: np.ndarray, matrix: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The ``size``x``size`` crop that ``matrix`` (frame -> crop pixels) frames, edges replicated.

    A face larger than the crop is warped at a whole multiple of ``size`` first and then shrunk
    with area averaging, as a plain resize would: warping straight down to 48x48 aliases.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    factor = max(1, min(8, int(round(1 / scale)))) if scale > 0 else 1
    if factor == 1:
        return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    big = cv2.warpAffine(
        gray, matrix * factor, (size * factor, size * factor), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def decompose(matrix: np.ndarray, size: int = CROP_SIZE) -> tuple[float, float, float, float]:
    """(scale, rotation in degrees, shift x, shift y as fractions of the crop) of a crop-to-crop map."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    angle = float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
    centre = np.array([size / 2, size / 2])
    moved = matrix[:, :2] @ centre + matrix[:, 2]
    return scale, angle, float((moved[0] - centre[0]) / size), float((moved[1] - centre[1]) / size)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 map ``outer(inner(p))``."""
    return (np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]]))[:2].astype(np.float32)
