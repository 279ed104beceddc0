"""ResNet18 ported from torchvision (BasicBlock, [2, 2, 2, 2]); keras.applications has none.

Layer names follow torchvision's state-dict keys with '.' replaced by '_' (``layer2_0_conv1``),
so ``load_torchvision_weights`` can map a ``.pth`` file one to one. Padding is explicit
(ZeroPadding2D + 'valid') wherever Keras 'same' would pad differently from PyTorch at stride 2.

Three stems: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool, for pretrained weights at 224),
``"small"`` (3x3/1 conv, no pool: the classic from-scratch setting at 48x48) and ``"strided"``
(3x3/2 conv, no pool: the small stem at a quarter of its cost, layer1 working at 24x24).
``width`` scales every stage's channels (0.5 halves them and costs about 4x less).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from fer_keras.contract import CROP_SIZE, NUM_CLASSES
from fer_keras.errors import FerKerasError, first_line
from fer_keras.models.head import classifier, load_keras_weights
from fer_keras.models.imagenet import RESNET18_TORCHVISION, cached_weights
from fer_keras.models.preprocessing import face_input, preprocessing_block
from fer_keras.models.registry import register_model

BN_EPSILON = 1e-5  # PyTorch's default
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1 in Keras' convention
STEMS = ("imagenet", "small", "strided")
STAGE_CHANNELS = (64, 128, 256, 512)


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _conv3x3(x, filters: int, stride: int, name: str):
    if stride == 1:
        return keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=name)(x)


def _basic_block(x, filters: int, stride: int, name: str):
    shortcut = x
    y = _conv3x3(x, filters, stride, f"{name}_conv1")
    y = keras.layers.ReLU(name=f"{name}_relu1")(_bn(f"{name}_bn1")(y))
    y = _conv3x3(y, filters, 1, f"{name}_conv2")
    y = _bn(f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_downsample_0")(x)
        shortcut = _bn(f"{name}_downsample_1")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu2")(y)


def stage_channels(width: float = 1.0) -> tuple[int, ...]:
    """Channels of the stem and the four stages at a width multiplier (at least 8 each)."""
    if width <= 0:
        raise FerKerasError(f"ResNet18 width must be positive, got {width}")
    return tuple(max(8, round(c * width)) for c in STAGE_CHANNELS)


def resnet18_backbone(input_size: int, stem: str = "small", width: float = 1.0) -> keras.Model:
    """Three-channel ImageNet-normalised input -> layer4 features (512 * width channels)."""
    if stem not in STEMS:
        raise FerKerasError(f"unknown ResNet18 stem {stem!r}; choose from {', '.join(STEMS)}")
    channels = stage_channels(width)
    inputs = keras.Input((input_size, input_size, 3), name="rgb")
    if stem == "imagenet":
        x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
        x = keras.layers.Conv2D(channels[0], 7, strides=2, use_bias=False, name="conv1")(x)
    elif stem == "strided":
        x = _conv3x3(inputs, channels[0], 2, "conv1")
    else:
        x = keras.layers.Conv2D(channels[0], 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = keras.layers.ReLU(name="stem_relu")(_bn("bn1")(x))
    if stem == "imagenet":
        x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)  # after ReLU: 0 acts as -inf
        x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    for stage, filters in enumerate(channels, start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            x = _basic_block(x, filters, stride, f"layer{stage}_{block}")
    return keras.Model(inputs, x, name="backbone")


@register_model
def resnet18(
    num_classes: int = NUM_CLASSES,
    weights: str | None = None,
    input_size: int = CROP_SIZE,
    stem: str | None = None,
    width: float = 1.0,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
) -> keras.Model:
    """ResNet18 on raw 48x48 grayscale crops -> 7 probabilities.

    ``stem`` defaults to ``"imagenet"`` with ImageNet / ``.pth`` weights and ``"small"`` otherwise;
    ``width`` scales every stage's channels (torchvision weights need 1.0).
    ``weights``: None, ``"imagenet"`` (torchvision weights via the Keras cache), a torchvision
    ``.pth`` state dict, or a ``.keras`` / ``.weights.h5`` file of this model.
    """
    is_torch = weights == "imagenet" or (weights is not None and Path(weights).suffix in (".pth", ".pt"))
    stem = stem or ("imagenet" if is_torch else "small")
    if is_torch and width != 1.0:
        raise FerKerasError("torchvision ResNet18 weights need --width 1.0")
    inputs = face_input()
    x = preprocessing_block(input_size, "torch")(inputs)
    x = resnet18_backbone(input_size, stem, width)(x)
    x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
    outputs = classifier(x, num_classes, classifier_activation, dropout)
    model = keras.Model(inputs, outputs, name="resnet18")
    if is_torch:
        path = cached_weights(*RESNET18_TORCHVISION) if weights == "imagenet" else Path(weights)
        load_torchvision_weights(model, path)
    elif weights:
        load_keras_weights(model, weights)
    return model


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of a PyTorch checkpoint as numpy arrays, read with ``weights_only=True`` (no unpickling)."""
    try:
        import torch
    except ImportError:
        raise FerKerasError("reading .pth weights needs PyTorch: pip install 'fer_keras[torch]'") from None
    path = Path(path)
    if not path.exists():
        raise FerKerasError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise FerKerasError(f"cannot read {path} as a PyTorch state dict: {first_line(err)}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise FerKerasError(f"{path} does not hold a state dict")
    return {k.removeprefix("module."): v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


def load_torchvision_weights(model: keras.Model, path: str | Path) -> dict[str, list[str]]:
    """Copy a torchvision ``resnet18`` state dict into a fer_keras ResNet18.

    The classifier (``fc``) is copied only when its shape matches (e.g. a 7-class checkpoint);
    an ImageNet 1000-class ``fc`` is skipped. Returns the torch keys loaded and skipped.
    """
    state = read_torch_state_dict(path)
    backbone = model.get_layer("backbone")
    keras_layers = {layer.name: layer for layer in backbone.layers}
    keras_layers["fc"] = model.get_layer("emotion_probs")
    loaded, skipped = [], []
    prefixes = sorted({k.rsplit(".", 1)[0] for k in state})
    for prefix in prefixes:
        name = prefix.replace(".", "_")
        layer = keras_layers.get(name)
        if layer is None:
            skipped.append(prefix)
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            values = [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
        elif isinstance(layer, keras.layers.Dense):
            values = [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]
        else:
            values = [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [v.shape for v in values] != expected:
            if name in ("fc", "conv1"):
                skipped.append(prefix)  # a different head or stem: train it instead
                continue
            raise FerKerasError(
                f"{path}: {prefix} has shape {[v.shape for v in values]}, the model expects {expected}; "
                f"is it a torchvision resnet18 state dict?"
            )
        layer.set_weights(values)
        loaded.append(prefix)
    if not any(p.startswith("layer") for p in loaded):
        raise FerKerasError(f"{path} holds no torchvision resnet18 weights (no layer1..layer4 keys)")
    return {"loaded": loaded, "skipped": skipped}
