"""tf.data pipelines over decoded arrays: seeded per-epoch order, batch augmentation, prefetch.

The training stream is built epoch by epoch from ``(seed, epoch)``: the order (shuffled or
class-balanced sampling) and every augmentation draw depend on nothing else, so a run resumed at
epoch k sees the same batches an uninterrupted run would have.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from fer_keras.data.augment import NO_AUGMENTATION, AugmentConfig
from fer_keras.data.augment_ops import augment_batch
from fer_keras.data.balance import BALANCE_MODES
from fer_keras.data.sources import FaceArrays
from fer_keras.errors import FerKerasError


def _check(faces: FaceArrays, what: str, batch_size: int) -> None:
    if len(faces) == 0:
        raise FerKerasError(f"the {what} split is empty")
    if batch_size < 1:
        raise FerKerasError(f"--batch-size must be positive, got {batch_size}")


def train_dataset(
    faces: FaceArrays,
    batch_size: int,
    seed: int,
    augment: AugmentConfig = NO_AUGMENTATION,
    balance: str = "none",
    start_epoch: int = 0,
    epochs: int = 1,
    targets: np.ndarray | None = None,
    draw: bool = False,
) -> tuple[tf.data.Dataset, int]:
    """Batches of (float32 images (B,S,S,1) in 0..255, one-hot labels) for epochs [start, epochs).

    ``targets`` (float32 (N, classes), e.g. distillation soft targets or FER+ vote distributions)
    replace the one-hot labels; ``draw`` turns each target into a one-hot label drawn from it, anew
    every step (FER+'s probabilistic label drawing). Returns the dataset and the steps per epoch
    (the last partial batch of an epoch is dropped so every step has the same shape).
    """
    _check(faces, "training", batch_size)
    if balance not in BALANCE_MODES:
        raise FerKerasError(f"unknown --balance {balance!r}; choose from {', '.join(BALANCE_MODES)}")
    n = len(faces)
    batch_size = min(batch_size, n)
    steps = n // batch_size
    images = tf.constant(faces.images[..., None])  # uint8 (N, S, S, 1), decoded once
    classes = len(faces.classes)
    if targets is not None and targets.shape != (n, classes):
        raise FerKerasError(f"targets have shape {targets.shape}, expected ({n}, {classes})")
    labels = tf.constant(
        np.eye(classes, dtype=np.float32)[faces.labels] if targets is None else targets.astype(np.float32)
    )
    counts = np.bincount(faces.labels, minlength=classes).astype(np.float64)
    sample_logits = tf.constant(np.log(1.0 / counts[faces.labels]), tf.float32)[None, :]

    def epoch_order(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
        if balance == "sample":
            order = tf.random.stateless_categorical(sample_logits, n, epoch_seed, dtype=tf.int32)[0]
        else:
            order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int32), epoch_seed)
        batches = tf.reshape(order[: steps * batch_size], [steps, batch_size])
        step_ids = tf.range(steps, dtype=tf.int64) + epoch * steps
        return tf.data.Dataset.from_tensor_slices((batches, step_ids))

    def make_batch(index: tf.Tensor, step: tf.Tensor):
        x = tf.cast(tf.gather(images, index), tf.float32)
        y = tf.gather(labels, index)
        if draw:
            # the seed differs from the augmentation's (same step) by the constant in its first half
            drawn = tf.random.stateless_categorical(
                tf.math.log(y + 1e-12), 1, tf.stack([tf.constant(seed, tf.int64) + 7919, step])
            )[:, 0]
            y = tf.one_hot(drawn, classes, dtype=tf.float32)
        if augment.enabled:
            x, y = augment_batch(x, y, augment, tf.stack([tf.constant(seed, tf.int64), step]))
        return x, y

    ds = tf.data.Dataset.range(start_epoch, max(epochs, start_epoch + 1)).flat_map(epoch_order)
    ds = ds.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), steps


def eval_dataset(faces: FaceArrays, batch_size: int = 256) -> tf.data.Dataset:
    """Batches of (float32 images, one-hot labels) in file order, for validation and evaluation."""
    _check(faces, "evaluation", batch_size)
    x = faces.images[..., None].astype(np.float32)
    y = np.eye(len(faces.classes), dtype=np.float32)[faces.labels]
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
