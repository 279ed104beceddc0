"""Multiply-accumulate count of a model per image, from its layers' shapes (conv, depthwise, dense)."""

from __future__ import annotations

import math

import keras


def _layer_macs(layer: keras.layers.Layer, cin: int, out: tuple) -> int:
    """MACs of one call of ``layer`` on ``cin`` input channels giving an output of shape ``out``."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return out[1] * out[2] * out[3] * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return out[1] * out[2] * out[3] * kh * kw * cin // layer.groups
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(out[1:-1])  # a Dense on (N, ..., C) runs once per leading position
        return positions * cin * layer.units
    return 0


def _calls(model: keras.Model) -> list[tuple[keras.layers.Layer, int, tuple]]:
    """(layer, input channels, output shape) for every call in ``model``'s graph: a layer or a nested
    model that a functional graph calls k times (a TTA wrapper's network, its mirror) is listed k times."""
    by_depth = getattr(model, "_nodes_by_depth", None)  # functional graphs; a Sequential calls each layer once
    if not by_depth:
        return [(layer, layer.input.shape[-1], tuple(layer.output.shape)) for layer in model.layers]
    return [
        (node.operation, node.input_tensors[0].shape[-1], tuple(node.outputs[0].shape))
        for nodes in by_depth.values()
        for node in nodes
        if node.input_tensors  # not an input placeholder
    ]


def macs_per_image(model: keras.Model) -> int:
    """MACs of one forward pass, every call counted (nested models included); FLOPs are about twice this."""
    total = 0
    for layer, cin, out in _calls(model):
        total += macs_per_image(layer) if isinstance(layer, keras.Model) else _layer_macs(layer, cin, out)
    return total
