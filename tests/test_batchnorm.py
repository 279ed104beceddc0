"""``fer_keras.training.batchnorm``: BatchNorm statistics recomputed for the weights a model holds, on real crops."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_keras.data.loading import load_splits
from fer_keras.training.batchnorm import BatchNormCalibration, recalibrate_batchnorm


def _net() -> keras.Model:
    keras.utils.set_random_seed(0)
    face = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(face)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(face, keras.layers.Dense(7, activation="softmax")(x))


@pytest.fixture(scope="module")
def crops(small_fer) -> np.ndarray:
    return load_splits(small_fer).train.images[:96, ..., None].astype(np.float32)


def test_statistics_are_the_mean_of_each_batchs_training_mode_statistics(crops):
    model = _net()
    assert recalibrate_batchnorm(model, crops[:90], batch_size=32) == 2  # full batches only
    # by hand: bn1 sees conv1's output; bn2 sees conv2 applied to bn1 in training mode (batch statistics)
    conv1 = keras.Model(model.input, model.get_layer("conv1").output)
    bn1, conv2, bn2 = (model.get_layer(n) for n in ("bn1", "conv2", "bn2"))
    means1, vars1, means2, vars2 = [], [], [], []
    for x in (crops[:32], crops[32:64]):
        a = conv1(x).numpy()
        means1.append(a.mean((0, 1, 2)))
        vars1.append(a.var((0, 1, 2)))
        normed = (a - means1[-1]) / np.sqrt(vars1[-1] + bn1.epsilon) * bn1.gamma.numpy() + bn1.beta.numpy()
        b = conv2(np.maximum(normed, 0)).numpy()
        means2.append(b.mean((0, 1, 2)))
        vars2.append(b.var((0, 1, 2)))
    np.testing.assert_allclose(bn1.moving_mean.numpy(), np.mean(means1, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn1.moving_variance.numpy(), np.mean(vars1, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn2.moving_mean.numpy(), np.mean(means2, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn2.moving_variance.numpy(), np.mean(vars2, 0), rtol=1e-4, atol=1e-5)
    assert bn1.momentum == bn2.momentum == 0.99  # the layers' own momentum is back for training


def test_one_batch_makes_inference_equal_training_mode_and_calls_are_repeatable(crops):
    model = _net()
    batch = crops[:48]
    assert not np.allclose(model(batch, training=False), model(batch, training=True), atol=1e-4)
    calibration = BatchNormCalibration(batch, batch_size=48)
    assert calibration(model) == 1
    np.testing.assert_allclose(model(batch, training=False), model(batch, training=True), atol=1e-5)
    before = [w.numpy() for w in model.weights]
    model.get_layer("bn1").moving_mean.assign(np.full(8, 5.0, np.float32))
    assert calibration(model) == 1  # the traced pass is reused and gives the same statistics
    for w, b in zip(model.weights, before, strict=True):
        np.testing.assert_allclose(w.numpy(), b, atol=1e-6)


def test_nothing_to_do_changes_nothing(crops):
    model = _net()
    before = [w.numpy() for w in model.weights]
    assert recalibrate_batchnorm(model, crops[:10], batch_size=32) == 0  # fewer images than a batch
    model.get_layer("bn1").trainable = False
    model.get_layer("bn2").trainable = False
    assert recalibrate_batchnorm(model, crops, batch_size=32) == 0  # frozen layers keep their statistics
    for w, b in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), b)
