"""Test-time augmentation views, in numpy: what ``--tta`` averages over when predicting.

``flip``: the crop and its mirror image. ``crops``: five 48x48 crops of the crop reflect-padded
by 4 pixels (the centre, i.e. the crop itself, then the four corners) and their mirror images.
``fer_keras.models.tta`` builds the same views inside a model graph for shipping.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_keras.errors import FerKerasError

TTA_MODES = ("none", "flip", "crops")
CROP_PAD = 4
# (top, left) of the five crops inside the padded image: the centre (the crop itself), then the corners.
CROP_OFFSETS = ((CROP_PAD, CROP_PAD), (0, 0), (0, 2 * CROP_PAD), (2 * CROP_PAD, 0), (2 * CROP_PAD, 2 * CROP_PAD))
NETWORK_PASSES = {"none": 1, "flip": 2, "crops": 2 * len(CROP_OFFSETS)}


def tta_views(images: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views averaged by test-time augmentation (uint8 (N, 48, 48) each)."""
    if mode == "none":
        return [images]
    if mode == "flip":
        return [images, images[:, :, ::-1]]
    if mode == "crops":
        pad = CROP_PAD
        padded = np.stack([cv2.copyMakeBorder(im, pad, pad, pad, pad, cv2.BORDER_REFLECT_101) for im in images])
        crops = [padded[:, y : y + 48, x : x + 48] for y, x in CROP_OFFSETS]
        return crops + [c[:, :, ::-1] for c in crops]
    raise FerKerasError(f"unknown --tta {mode!r}; choose from {', '.join(TTA_MODES)}")
