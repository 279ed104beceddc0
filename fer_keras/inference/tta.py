"""Test-time augmentation in numpy: the views ``--tta`` averages when predicting (see ``fer_keras.contract``)."""

from __future__ import annotations

import cv2
import numpy as np

from fer_keras.contract import CROP_OFFSETS, CROP_PAD, CROP_SIZE, TTA_MODES
from fer_keras.errors import FerKerasError


def tta_views(images: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views averaged by test-time augmentation (uint8 (N, CROP_SIZE, CROP_SIZE) each)."""
    if mode == "none":
        return [images]
    if mode == "flip":
        return [images, images[:, :, ::-1]]
    if mode == "crops":
        pad = CROP_PAD
        padded = np.stack([cv2.copyMakeBorder(im, pad, pad, pad, pad, cv2.BORDER_REFLECT_101) for im in images])
        crops = [padded[:, y : y + CROP_SIZE, x : x + CROP_SIZE] for y, x in CROP_OFFSETS]
        return crops + [c[:, :, ::-1] for c in crops]
    raise FerKerasError(f"unknown --tta {mode!r}; choose from {', '.join(TTA_MODES)}")
