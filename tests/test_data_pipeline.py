"""tf.data pipelines: shapes, seeded per-epoch determinism, balancing, augmentation semantics."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fer_keras.contract import NUM_CLASSES
from fer_keras.data.augment import PRESETS, augment_config
from fer_keras.data.augment_ops import augment_batch
from fer_keras.data.balance import class_weights
from fer_keras.data.loading import load_splits
from fer_keras.data.pipeline import eval_dataset, train_dataset
from fer_keras.errors import FerKerasError

pytestmark = pytest.mark.smoke  # also run on the TF 2.19 line


@pytest.fixture(scope="module")
def splits(small_fer):
    return load_splits(small_fer, seed=0)


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_train_batches_shape_and_range(splits):
    ds, steps = train_dataset(splits.train, 32, seed=1, augment=PRESETS["standard"], epochs=1)
    batches = _batches(ds)
    assert len(batches) == steps == len(splits.train) // 32
    x, y = batches[0]
    assert x.shape == (32, 48, 48, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 255.0
    assert y.shape == (32, NUM_CLASSES) and np.allclose(y.sum(1), 1.0)


def test_each_epoch_is_a_permutation_and_epochs_differ(splits):
    ds, steps = train_dataset(splits.train, 64, seed=1, epochs=2)
    batches = _batches(ds)
    first, second = batches[:steps], batches[steps:]
    assert not np.array_equal(first[0][0], second[0][0])
    # No augmentation: an epoch's images are distinct training images.
    seen = np.concatenate([x for x, _ in first]).reshape(steps * 64, -1)
    assert len({row.tobytes() for row in seen}) >= steps * 64 - 5  # FER2013 has a few duplicates


def test_resumed_stream_equals_uninterrupted_stream(splits):
    """Epoch 2 is the same whether the stream starts at epoch 0 or is rebuilt at epoch 2."""
    cfg = augment_config("strong", cutmix=1.0)
    full, steps = train_dataset(splits.train, 32, seed=7, augment=cfg, balance="sample", epochs=3)
    resumed, _ = train_dataset(splits.train, 32, seed=7, augment=cfg, balance="sample", start_epoch=2, epochs=3)
    full_batches, resumed_batches = _batches(full)[2 * steps :], _batches(resumed)
    assert len(full_batches) == len(resumed_batches) == steps
    for (xa, ya), (xb, yb) in zip(full_batches, resumed_batches):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_balanced_sampling_evens_out_classes(fer_root):
    splits = load_splits(fer_root, limit=4000, seed=0)
    counts = splits.train.class_counts()
    assert counts.max() / counts.min() > 10  # disgust is rare in FER2013
    ds, _ = train_dataset(splits.train, 100, seed=0, balance="sample", epochs=1)
    drawn = np.concatenate([y.argmax(1) for _, y in _batches(ds)])
    share = np.bincount(drawn, minlength=NUM_CLASSES) / len(drawn)
    assert np.all(np.abs(share - 1 / NUM_CLASSES) < 0.03)


def test_class_weights_are_inverse_frequency():
    labels = np.array([0] * 10 + [1] * 30 + [3] * 60)
    weights = class_weights(labels, "weights")
    assert weights[0] == pytest.approx(100 / (3 * 10)) and weights[3] == pytest.approx(100 / (3 * 60))
    assert weights[2] == 1.0  # absent class
    assert class_weights(labels, "sqrt-weights")[0] == pytest.approx((100 / 30) ** 0.5)
    assert class_weights(labels, "none") is None


def test_flip_only_mirrors_images():
    x = tf.constant(np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48, 1) % 256)
    y = tf.one_hot([1, 2], NUM_CLASSES)
    cfg = augment_config("none", flip=True)
    out, labels = augment_batch(x, y, cfg, tf.constant([0, 5], tf.int64))
    for i in range(2):
        a, b = out[i].numpy(), x[i].numpy()
        assert np.array_equal(a, b) or np.array_equal(a, b[:, ::-1])
    np.testing.assert_array_equal(labels.numpy(), y.numpy())


def test_mixup_and_cutmix_make_soft_labels_that_sum_to_one():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (16, 48, 48, 1)).astype(np.float32))
    y = tf.one_hot(rng.integers(0, NUM_CLASSES, 16), NUM_CLASSES)
    for cfg in (augment_config("none", mixup=0.4), augment_config("none", cutmix=1.0)):
        out, labels = augment_batch(x, y, cfg, tf.constant([1, 2], tf.int64))
        assert np.allclose(labels.numpy().sum(1), 1.0, atol=1e-5)
        assert (labels.numpy().max(1) < 1.0).any()
        assert out.shape == x.shape


def test_erasing_changes_a_box_only():
    x = tf.fill([8, 48, 48, 1], 100.0)
    cfg = augment_config("none", erasing=1.0)
    out, _ = augment_batch(x, tf.one_hot([0] * 8, NUM_CLASSES), cfg, tf.constant([3, 4], tf.int64))
    changed = (out.numpy() != 100.0).mean(axis=(1, 2, 3))
    assert np.all(changed > 0.01) and np.all(changed < 0.4)


def test_degrade_blurs_some_images_and_leaves_other_draws_alone():
    # a checkerboard of 1-pixel squares: all detail, which a lower resolution removes
    board = (np.indices((48, 48)).sum(0) % 2 * 200.0 + 20.0).astype(np.float32)
    x = tf.constant(np.repeat(board[None, ..., None], 64, axis=0))
    y = tf.one_hot([0] * 64, NUM_CLASSES)
    seed = tf.constant([5, 6], tf.int64)
    out = augment_batch(x, y, augment_config("none", degrade=0.5), seed)[0].numpy()
    detail = np.abs(np.diff(out[..., 0], axis=2)).mean(axis=(1, 2))  # 200 for the board itself
    degraded = detail < 100
    assert 10 < degraded.sum() < 54  # about half the images
    assert np.array_equal(out[~degraded], x.numpy()[~degraded])
    assert abs(out[degraded].mean() - 120.0) < 10  # detail lost, brightness kept
    np.testing.assert_array_equal(out, augment_batch(x, y, augment_config("none", degrade=0.5), seed)[0].numpy())
    # turning it on does not move the flips, affine and photometric draws of a seeded run
    light = augment_batch(x, y, augment_config("light"), seed)[0].numpy()
    both = augment_batch(x, y, augment_config("light", degrade=1e-9), seed)[0].numpy()
    np.testing.assert_array_equal(light, both)


def test_eval_dataset_keeps_order(splits):
    x, y = next(iter(eval_dataset(splits.test, 16)))
    np.testing.assert_array_equal(x.numpy()[..., 0], splits.test.images[:16])
    np.testing.assert_array_equal(y.numpy().argmax(1), splits.test.labels[:16])


def test_bad_pipeline_options(splits):
    with pytest.raises(FerKerasError, match="unknown --balance"):
        train_dataset(splits.train, 32, 0, balance="oversample")
    with pytest.raises(FerKerasError, match="unknown augmentation preset"):
        augment_config("extreme")
    with pytest.raises(FerKerasError, match="empty"):
        eval_dataset(splits.train.select(np.zeros(len(splits.train), bool)))
