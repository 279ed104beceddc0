"""Test-time augmentation inside the model graph: views of the crop, probabilities averaged.

``flip``: the crop and its mirror image (2 network passes). ``crops``: five 48x48 crops of the
crop reflect-padded by 4 pixels (centre and corners) and their mirror images (10 passes), the
same views as ``fer_keras.inference.tta.tta_views`` (``python -m fer_keras.evaluate --tta``).

Built from stock Keras layers only (fixed 0/1 matrices mirror and pad the image axes, exactly),
so a wrapped model still loads with ``safe_mode`` on and exports to SavedModel / TFLite / ONNX
unchanged: raw 48x48 crop in, 7 probabilities out, at 2x or 10x the inference cost.
"""

from __future__ import annotations

import keras
import numpy as np

from fer_keras.contract import CROP_OFFSETS, CROP_PAD, CROP_SIZE, TTA_MODES
from fer_keras.models.preprocessing import face_input


def _fixed_dense(matrix: np.ndarray, name: str) -> keras.layers.Dense:
    """A frozen, bias-free Dense layer that multiplies the last axis by a 0/1 ``matrix`` (in, out)."""
    dense = keras.layers.Dense(matrix.shape[1], use_bias=False, trainable=False, name=name)
    dense.build((None, matrix.shape[0]))
    dense.set_weights([matrix.astype(np.float32)])
    return dense


def mirror_block(size: int = CROP_SIZE) -> keras.Sequential:
    """(N, size, size, 1) -> the same images flipped left-right (exact: a 0/1 permutation matrix)."""
    block = keras.Sequential(
        [
            keras.layers.Permute((1, 3, 2), name="columns_last"),
            _fixed_dense(np.eye(size)[::-1], "reverse_columns"),
            keras.layers.Permute((1, 3, 2), name="back"),
        ],
        name="mirror",
    )
    block.build((None, size, size, 1))
    return block


def reflect_pad_matrix(size: int, pad: int) -> np.ndarray:
    """(size, size + 2 pad) 0/1 matrix: column j copies pixel j - pad, mirrored at the edges (OpenCV REFLECT_101)."""
    matrix = np.zeros((size, size + 2 * pad), np.float32)
    for j in range(size + 2 * pad):
        i = abs(j - pad)
        matrix[i if i < size else 2 * (size - 1) - i, j] = 1
    return matrix


def reflect_pad_block(size: int = CROP_SIZE, pad: int = CROP_PAD) -> keras.Sequential:
    """(N, size, size, 1) -> (N, size + 2 pad, size + 2 pad, 1), reflect-padded like ``cv2.BORDER_REFLECT_101``."""
    matrix = reflect_pad_matrix(size, pad)
    block = keras.Sequential(
        [
            keras.layers.Permute((1, 3, 2), name="columns_last"),  # (N, H, 1, W)
            _fixed_dense(matrix, "pad_columns"),  # (N, H, 1, W')
            keras.layers.Permute((3, 2, 1), name="rows_last"),  # (N, W', 1, H)
            _fixed_dense(matrix, "pad_rows"),  # (N, W', 1, H')
            keras.layers.Permute((3, 1, 2), name="back"),  # (N, H', W', 1)
        ],
        name="reflect_pad",
    )
    block.build((None, size, size, 1))
    return block


def with_flip_tta(model: keras.Model) -> keras.Model:
    """A model whose output is the mean of ``model`` on the crop and on its mirror image."""
    inputs = face_input()
    outputs = keras.layers.Average(name="tta_mean")([model(inputs), model(mirror_block()(inputs))])
    return keras.Model(inputs, outputs, name=f"{model.name}_tta_flip")


def with_crops_tta(model: keras.Model) -> keras.Model:
    """A model whose output is the mean of ``model`` on five shifted crops and their mirror images."""
    inputs = face_input()
    padded = reflect_pad_block()(inputs)
    side = 2 * CROP_PAD
    crops = [
        keras.layers.Cropping2D(((y, side - y), (x, side - x)), name=f"crop_{i}")(padded)
        for i, (y, x) in enumerate(CROP_OFFSETS)
    ]
    mirror = mirror_block()
    views = crops + [mirror(crop) for crop in crops]
    outputs = keras.layers.Average(name="tta_mean")([model(view) for view in views])
    return keras.Model(inputs, outputs, name=f"{model.name}_tta_crops")


def with_tta(model: keras.Model, mode: str) -> keras.Model:
    """``model`` wrapped for test-time augmentation ``mode`` (one of ``TTA_MODES``)."""
    if mode not in TTA_MODES:
        raise ValueError(f"unknown TTA mode {mode!r}; choose from {', '.join(TTA_MODES)}")
    return {"none": lambda m: m, "flip": with_flip_tta, "crops": with_crops_tta}[mode](model)


def single_view(model: keras.Model) -> keras.Model:
    """The network inside a TTA wrapper; any other model is returned as it is.

    Grad-CAM and embeddings need the network's own layers: for a TTA model they describe the
    network on the crop as given (the first of the views it averages).
    """
    if not model.name.endswith(("_tta_flip", "_tta_crops")):
        return model
    fixed = {"mirror", "reflect_pad"}
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name not in fixed]
    return inner[0] if len(inner) == 1 else model
