"""VGG16 baseline (the UPF seed's): keras.applications.VGG16 backbone plus a three-layer dense head.

The seed compiled it with binary accuracy, which overstated its accuracy; this project compiles
every model with categorical cross-entropy and categorical metrics (see ``fer_keras.train``).
"""

from __future__ import annotations

from pathlib import Path

import keras

from fer_keras.contract import CROP_SIZE, NUM_CLASSES
from fer_keras.errors import FerKerasError, first_line
from fer_keras.models.head import classifier, load_keras_weights
from fer_keras.models.imagenet import VGG16_NOTOP, cached_weights
from fer_keras.models.preprocessing import face_input, preprocessing_block
from fer_keras.models.registry import register_model


def _dense_bn(x, units: int, dropout: float, name: str):
    x = keras.layers.Dense(units, use_bias=False, name=f"{name}_dense")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.Dropout(dropout, name=f"{name}_dropout")(x) if dropout else x


@register_model
def vgg16(
    num_classes: int = NUM_CLASSES,
    weights: str | None = None,
    input_size: int = CROP_SIZE,
    dropout: float = 0.5,
    head_units: tuple[int, int] = (512, 256),
    classifier_activation: str | None = "softmax",
) -> keras.Model:
    """VGG16 on raw 48x48 grayscale crops, resized in-graph to ``input_size`` (>= 32).

    ``weights``: None (from scratch), ``"imagenet"`` (Keras cache), a Keras-applications ``.h5``
    backbone file, or a ``.keras`` / ``.weights.h5`` file of this whole model.
    """
    if input_size < 32:
        raise FerKerasError(f"vgg16 needs an input size of at least 32, got {input_size}")
    backbone_weights = None
    if weights == "imagenet":
        backbone_weights = str(cached_weights(*VGG16_NOTOP))
    elif weights and Path(weights).suffix == ".h5" and not str(weights).endswith(".weights.h5"):
        if not Path(weights).exists():
            raise FerKerasError(f"weights file {weights} does not exist")
        backbone_weights = str(weights)
    inputs = face_input()
    x = preprocessing_block(input_size, "caffe")(inputs)
    try:
        backbone = keras.applications.VGG16(
            include_top=False, weights=backbone_weights, input_shape=(input_size, input_size, 3)
        )
    except (ValueError, OSError) as err:
        raise FerKerasError(f"weights file {backbone_weights} does not fit VGG16: {first_line(err)}") from None
    backbone.name = "backbone"
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    for i, units in enumerate(head_units, start=1):
        x = _dense_bn(x, units, dropout, f"head{i}")
    outputs = classifier(x, num_classes, classifier_activation)
    model = keras.Model(inputs, outputs, name="vgg16")
    if weights and weights != "imagenet" and backbone_weights is None:
        load_keras_weights(model, weights)
    return model
