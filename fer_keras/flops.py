"""Multiply-accumulate count of a model per image, from its layers' shapes (conv, depthwise, dense)."""

from __future__ import annotations

import math

import keras


def _layer_macs(layer: keras.layers.Layer) -> int:
    out = layer.output.shape
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return out[1] * out[2] * out[3] * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1]
        return out[1] * out[2] * out[3] * kh * kw * cin // layer.groups
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(out[1:-1])  # a Dense on (N, ..., C) runs once per leading position
        return positions * layer.input.shape[-1] * layer.units
    return 0


def macs_per_image(model: keras.Model) -> int:
    """MACs of one forward pass (nested models included); FLOPs are about twice this."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += macs_per_image(layer)
        else:
            total += _layer_macs(layer)
    return total
