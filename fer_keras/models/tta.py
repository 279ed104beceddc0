"""Test-time augmentation inside the model graph: the crop and its mirror image, probabilities averaged.

Built from stock Keras layers only (a fixed 0/1 matrix mirrors the width axis), so the wrapped
model still loads with ``safe_mode`` on and exports to SavedModel / TFLite / ONNX unchanged:
raw 48x48 crop in, 7 probabilities out, at twice the inference cost.
"""

from __future__ import annotations

import keras
import numpy as np

from fer_keras.models.preprocessing import INPUT_SIZE, face_input


def mirror_block(size: int = INPUT_SIZE) -> keras.Sequential:
    """(N, size, size, 1) -> the same images flipped left-right (exact: a 0/1 permutation matrix)."""
    dense = keras.layers.Dense(size, use_bias=False, trainable=False, name="reverse_columns")
    block = keras.Sequential(
        [keras.layers.Permute((1, 3, 2), name="columns_last"), dense, keras.layers.Permute((1, 3, 2), name="back")],
        name="mirror",
    )
    block.build((None, size, size, 1))
    dense.set_weights([np.eye(size, dtype=np.float32)[::-1]])
    return block


def with_flip_tta(model: keras.Model) -> keras.Model:
    """A model whose output is the mean of ``model`` on the crop and on its mirror image."""
    inputs = face_input()
    outputs = keras.layers.Average(name="tta_mean")([model(inputs), model(mirror_block()(inputs))])
    return keras.Model(inputs, outputs, name=f"{model.name}_tta_flip")


def single_view(model: keras.Model) -> keras.Model:
    """The network inside a :func:`with_flip_tta` wrapper; any other model is returned as it is.

    Grad-CAM and embeddings need the network's own layers: for a TTA model they describe the
    network on the crop as given (the first of the two views it averages).
    """
    if not model.name.endswith("_tta_flip"):
        return model
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != "mirror"]
    return inner[0] if len(inner) == 1 else model
