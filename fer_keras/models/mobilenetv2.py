"""A compact MobileNetV2 for 48x48 faces (the UPF seed's variant), under 500k parameters.

Changes from MobileNetV2-1.0/224: fewer bottleneck repeats, no 160/320 blocks, a 1x1 projection
to 128 channels instead of 1280, dropout before the classifier. ``stem_stride`` picks the cost:
1 keeps 48x48 through the first block (~4x the compute), 2 halves it at once. ``fused_stages``
swaps the first stages' 1x1-expand + depthwise pairs for one dense 3x3 conv (Fused-MBConv).
"""

from __future__ import annotations

import math

import keras

from fer_keras.contract import CROP_SIZE, NUM_CLASSES
from fer_keras.errors import FerKerasError
from fer_keras.models.head import classifier, load_keras_weights
from fer_keras.models.preprocessing import face_input, preprocessing_block
from fer_keras.models.registry import register_model

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper's table.
DEFAULT_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 3, 2),
    (6, 96, 2, 1),
)


def _divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of 8, never more than 10% down (MobileNet convention)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, activation: bool = True):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.99, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if activation else x


def _inverted_residual(x, expansion: int, filters: int, stride: int, name: str):
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv_bn(y, in_channels * expansion, 1, 1, f"{name}_expand")
    y = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = keras.layers.BatchNormalization(momentum=0.99, name=f"{name}_dw_bn")(y)
    y = keras.layers.ReLU(6.0, name=f"{name}_dw_relu")(y)
    y = _conv_bn(y, filters, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def _fused_inverted_residual(x, expansion: int, filters: int, stride: int, name: str):
    """Fused-MBConv (EfficientNetV2): one dense 3x3 conv replaces the 1x1 expansion + 3x3 depthwise.

    More FLOPs per block, but a CPU runs dense convolutions far closer to its peak than depthwise
    ones (the 72x72 net: 35% of the matmul peak fused, 11% plain; ``benchmarks/models.py``), so
    the early high-resolution stages train faster.
    """
    in_channels = x.shape[-1]
    if expansion == 1:
        y = _conv_bn(x, filters, 3, stride, f"{name}_fused")
    else:
        y = _conv_bn(x, in_channels * expansion, 3, stride, f"{name}_fused")
        y = _conv_bn(y, filters, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def mobilenetv2_backbone(
    width: float = 1.0,
    depth: float = 1.0,
    stem_stride: int = 2,
    stem_channels: int = 32,
    head_channels: int = 128,
    full_res_stem: bool = False,
    blocks: tuple[tuple[int, int, int, int], ...] = DEFAULT_BLOCKS,
    input_size: int = CROP_SIZE,
    fused_stages: int = 0,
    fused_expansion: int = 4,
) -> keras.Model:
    """The convolutional trunk: (S, S, 1) scaled input -> (H, W, head_channels) features."""
    inputs = keras.Input((input_size, input_size, 1), name="scaled_face")
    if stem_stride == 2 and full_res_stem:
        # One cheap 3x3 conv at full 48x48 resolution before downsampling keeps the finest detail.
        inputs_x = _conv_bn(inputs, _divisible(stem_channels * width / 2), 3, 1, "stem_full")
        x = _conv_bn(inputs_x, _divisible(stem_channels * width), 3, 2, "stem")
    else:
        x = _conv_bn(inputs, _divisible(stem_channels * width), 3, stem_stride, "stem")
    index = 0
    for stage, (expansion, channels, repeats, stride) in enumerate(blocks):
        fused = stage < fused_stages
        for r in range(max(1, math.ceil(repeats * depth))):
            index += 1
            filters, block_stride = _divisible(channels * width), stride if r == 0 else 1
            if fused:
                x = _fused_inverted_residual(x, min(expansion, fused_expansion), filters, block_stride, f"block{index}")
            else:
                x = _inverted_residual(x, expansion, filters, block_stride, f"block{index}")
    x = _conv_bn(x, head_channels, 1, 1, "top")
    return keras.Model(inputs, x, name="backbone")


@register_model
def mobilenetv2(
    num_classes: int = NUM_CLASSES,
    width: float = 1.0,
    depth: float = 1.0,
    stem_stride: int = 2,
    head_channels: int = 128,
    full_res_stem: bool = False,
    fused_stages: int = 0,
    fused_expansion: int = 4,
    dropout: float = 0.2,
    weights: str | None = None,
    input_size: int = CROP_SIZE,
    classifier_activation: str | None = "softmax",
) -> keras.Model:
    """Compact MobileNetV2 from scratch on raw 48x48 grayscale crops (0..255) -> 7 probabilities.

    ``input_size`` > 48 upsamples the crop in-graph (more compute per image, finer feature maps).
    ``fused_stages`` = N builds the first N stages from Fused-MBConv blocks (EfficientNetV2), whose
    expansion is capped at ``fused_expansion``: on a CPU they train faster than the depthwise
    blocks they replace, despite more FLOPs (``benchmarks/models.py``).
    """
    if weights == "imagenet":
        raise FerKerasError(
            "mobilenetv2 is the compact 48x48 variant: it has no ImageNet weights "
            "(train it from scratch, or pass a .keras/.weights.h5 file)"
        )
    if input_size < 32:
        raise FerKerasError(f"mobilenetv2 needs an input size of at least 32, got {input_size}")
    if not 0 <= fused_stages <= len(DEFAULT_BLOCKS):
        raise FerKerasError(f"mobilenetv2 --fused-stages must be 0..{len(DEFAULT_BLOCKS)}, got {fused_stages}")
    if fused_expansion < 1:
        raise FerKerasError(f"mobilenetv2 --fused-expansion must be at least 1, got {fused_expansion}")
    inputs = face_input()
    x = preprocessing_block(input_size, "unit")(inputs)
    x = mobilenetv2_backbone(
        width,
        depth,
        stem_stride,
        head_channels=head_channels,
        full_res_stem=full_res_stem,
        input_size=input_size,
        fused_stages=fused_stages,
        fused_expansion=fused_expansion,
    )(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = classifier(x, num_classes, classifier_activation, dropout)
    model = keras.Model(inputs, outputs, name="mobilenetv2")
    if weights:
        load_keras_weights(model, weights)
    return model
