"""The in-graph preprocessing every model starts with: raw 48x48 grayscale (0..255) in.

Because it is part of the model, training, evaluation, every export and the live app feed the
same thing (the raw face crop) and can never disagree about scaling or channels.
Built only from stock Keras layers, so `.keras` files load with ``safe_mode`` on and no custom code.
"""

from __future__ import annotations

import keras

from fer_keras.contract import CROP_SIZE

# torchvision's ImageNet statistics (ResNet18 weights) and Keras VGG16's "caffe" BGR means.
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

MODES = ("unit", "torch", "caffe")


def preprocessing_block(input_size: int = CROP_SIZE, mode: str = "unit") -> keras.Sequential:
    """A named Sequential: resize to ``input_size``, then scale for the backbone.

    mode ``unit``: one channel scaled to [-1, 1] (models trained from scratch);
    ``torch``: three channels, /255 then ImageNet mean/std (torchvision ResNet weights);
    ``caffe``: three channels minus the BGR ImageNet means (Keras VGG16 weights).
    """
    if mode not in MODES:
        raise ValueError(f"preprocessing mode must be one of {MODES}, not {mode!r}")
    layers: list[keras.layers.Layer] = []
    if input_size != CROP_SIZE:
        layers.append(keras.layers.Resizing(input_size, input_size, interpolation="bilinear", name="resize"))
    if mode == "unit":
        layers.append(keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale"))
    else:
        # A fixed all-ones 1x1 convolution copies the gray channel into R, G and B.
        layers.append(
            keras.layers.Conv2D(3, 1, use_bias=False, kernel_initializer="ones", trainable=False, name="gray_to_rgb")
        )
        if mode == "torch":
            layers.append(keras.layers.Rescaling(1 / 255.0, name="scale"))
            layers.append(
                keras.layers.Normalization(
                    mean=list(TORCH_MEAN), variance=[s * s for s in TORCH_STD], name="imagenet_norm"
                )
            )
        else:
            layers.append(
                keras.layers.Normalization(mean=list(CAFFE_MEAN_BGR), variance=[1.0] * 3, name="imagenet_norm")
            )
    block = keras.Sequential(layers, name="preprocessing")
    block.build((None, CROP_SIZE, CROP_SIZE, 1))
    return block


def face_input(name: str = "face") -> keras.KerasTensor:
    """The model input: a batch of raw 48x48 grayscale crops, values 0..255."""
    return keras.Input(shape=(CROP_SIZE, CROP_SIZE, 1), name=name)
