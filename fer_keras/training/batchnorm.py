"""Recompute BatchNormalization statistics for the weights a model holds now.

A moving average of the weights (``--ema``) is a different network from the one whose
activations BatchNormalization's moving mean / variance followed during training, so scored with
those statistics it can collapse to one class. ``recalibrate_batchnorm`` does what
``torch.optim.swa_utils.update_bn`` does: a forward pass in training mode over fixed training
images, each layer's moving statistics set to the average of its per-batch statistics.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The trainable BatchNormalization layers (frozen ones run in inference mode and keep theirs)."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def seed_states(model: keras.Model) -> list:
    """Dropout's random-generator states (``.keras`` files do not keep them)."""
    return [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]


class BatchNormCalibration:
    """``calibration(model)`` sets every trainable BatchNormalization layer's moving mean and
    variance to the mean of its batch statistics over ``images`` (float32 (N, 48, 48, 1), 0..255)
    in full batches of ``batch_size``, the model in training mode; it returns the number of
    batches used (0: no BatchNormalization or fewer images than a batch, nothing changed). The
    forward pass is traced once per model and reused."""

    def __init__(self, images: np.ndarray, batch_size: int):
        self.batches = len(images) // batch_size
        self.images = [tf.constant(images[b * batch_size : (b + 1) * batch_size]) for b in range(self.batches)]
        self._traced: tuple[keras.Model, list, object] | None = None

    def _forward(self, model: keras.Model):
        if self._traced is None or self._traced[0] is not model:
            layers = batchnorm_layers(model)

            @tf.function
            def batch_statistics(x):
                model(x, training=True)
                return [(layer.moving_mean.value, layer.moving_variance.value) for layer in layers]

            self._traced = (model, layers, batch_statistics)
        return self._traced[1], self._traced[2]

    def __call__(self, model: keras.Model) -> int:
        layers, batch_statistics = self._forward(model)
        if not layers or self.batches == 0:
            return 0
        momenta = [layer.momentum for layer in layers]
        # the training-mode pass draws dropout masks; put the generators back so that training after
        # a calibration draws the masks it would have drawn without one
        generators = [(v, v.numpy()) for v in seed_states(model)]
        for layer in layers:
            layer.momentum = 0.0  # read when the forward pass is traced: each call leaves this batch's statistics
        try:
            per_batch = [batch_statistics(x) for x in self.images]  # tensors: each batch's (mean, variance) per layer
        finally:
            for layer, momentum in zip(layers, momenta, strict=True):
                layer.momentum = momentum
            for variable, value in generators:
                variable.assign(value)
        for i, layer in enumerate(layers):
            layer.moving_mean.assign(np.mean([b[i][0] for b in per_batch], axis=0, dtype=np.float64).astype(np.float32))
            layer.moving_variance.assign(
                np.mean([b[i][1] for b in per_batch], axis=0, dtype=np.float64).astype(np.float32)
            )
        return self.batches


def recalibrate_batchnorm(model: keras.Model, images: np.ndarray, batch_size: int) -> int:
    """One-off ``BatchNormCalibration(images, batch_size)(model)``."""
    return BatchNormCalibration(images, batch_size)(model)
