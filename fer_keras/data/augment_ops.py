"""Batch augmentation ops for grayscale face crops, on the CPU inside tf.data.

Every random draw is *stateless*: it depends only on (seed, epoch, batch index). An epoch therefore
sees exactly the same augmented batches whether the run went straight through or was interrupted
and resumed, which is what lets ``--resume`` reproduce an uninterrupted seeded run.
Images are float32 in 0..255 (the model's own preprocessing rescales them).
"""

from __future__ import annotations

import math

import tensorflow as tf

from fer_keras.data.augment import AugmentConfig


def _seeds(seed: tf.Tensor, n: int) -> list[tf.Tensor]:
    """``n`` independent stateless seeds from one."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=n))


def _affine(images: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """Random rotation, zoom and shift as one projective transform per image (reflect fill)."""
    batch = tf.shape(images)[0]
    side = tf.cast(tf.shape(images)[1], tf.float32)
    s_rot, s_zoom, s_dx, s_dy = _seeds(seed, 4)
    limit = math.radians(cfg.rotation_deg)
    angle = tf.random.stateless_uniform([batch], s_rot, -limit, limit)
    scale = tf.random.stateless_uniform([batch], s_zoom, 1.0 - cfg.zoom, 1.0 + cfg.zoom)
    dx = tf.random.stateless_uniform([batch], s_dx, -cfg.shift, cfg.shift) * side
    dy = tf.random.stateless_uniform([batch], s_dy, -cfg.shift, cfg.shift) * side
    # Output pixel (x, y) samples input at A @ (x, y) + b, rotating and scaling about the centre.
    c = (side - 1.0) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = c - a0 * c - a1 * c - dx
    b2 = c - b0 * c - b1 * c - dy
    zeros = tf.zeros_like(angle)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _photometric(images: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    batch = tf.shape(images)[0]
    s_b, s_c = _seeds(seed, 2)
    if cfg.contrast:
        factor = tf.random.stateless_uniform([batch, 1, 1, 1], s_c, 1.0 - cfg.contrast, 1.0 + cfg.contrast)
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * factor + mean
    if cfg.brightness:
        delta = tf.random.stateless_uniform([batch, 1, 1, 1], s_b, -cfg.brightness, cfg.brightness)
        images = images + delta * 255.0
    return tf.clip_by_value(images, 0.0, 255.0)


def _degrade(images: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """With probability ``cfg.degrade`` per image, the detail a face loses in a video frame: the crop
    resampled from 35-90 % of its resolution (a far, out-of-focus or motion-blurred face, a codec's
    smoothing), then sensor noise of standard deviation 0-6 grey levels."""
    batch, side = tf.shape(images)[0], tf.shape(images)[1]
    s_p, s_size, s_sigma, s_noise = _seeds(seed, 4)
    apply = tf.random.stateless_uniform([batch, 1, 1, 1], s_p) < cfg.degrade
    # One lower resolution per batch (tf.image.resize takes one size); batches differ.
    sidef = tf.cast(side, tf.float32)
    low = tf.cast(tf.round(sidef * tf.random.stateless_uniform([], s_size, 0.35, 0.9)), tf.int32)
    soft = tf.image.resize(tf.image.resize(images, [low, low], antialias=True), [side, side], method="bilinear")
    sigma = tf.random.stateless_uniform([batch, 1, 1, 1], s_sigma, 0.0, 6.0)
    noisy = soft + sigma * tf.random.stateless_normal(tf.shape(images), s_noise)
    return tf.where(apply, tf.clip_by_value(noisy, 0.0, 255.0), images)


def _box_masks(batch: tf.Tensor, side: tf.Tensor, area: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """A (B, S, S, 1) float mask per image: 1 inside a random box of the given area fraction."""
    s_r, s_x, s_y = _seeds(seed, 3)
    sidef = tf.cast(side, tf.float32)
    ratio = tf.exp(tf.random.stateless_uniform([batch], s_r, math.log(0.5), math.log(2.0)))
    h = tf.minimum(tf.sqrt(area * ratio) * sidef, sidef)
    w = tf.minimum(tf.sqrt(area / ratio) * sidef, sidef)
    y0 = tf.random.stateless_uniform([batch], s_y) * (sidef - h)
    x0 = tf.random.stateless_uniform([batch], s_x) * (sidef - w)
    coords = tf.range(sidef)
    in_y = (coords[None, :] >= y0[:, None]) & (coords[None, :] < (y0 + h)[:, None])
    in_x = (coords[None, :] >= x0[:, None]) & (coords[None, :] < (x0 + w)[:, None])
    mask = tf.cast(in_y[:, :, None] & in_x[:, None, :], tf.float32)
    return mask[..., None]


def _erase(images: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """Random erasing: with probability p, one box (2-33% of the area) filled with noise."""
    batch = tf.shape(images)[0]
    s_p, s_a, s_box, s_fill = _seeds(seed, 4)
    apply = tf.random.stateless_uniform([batch, 1, 1, 1], s_p) < cfg.erasing
    area = tf.random.stateless_uniform([batch], s_a, 0.02, 0.33)
    mask = _box_masks(batch, tf.shape(images)[1], area, s_box) * tf.cast(apply, tf.float32)
    noise = tf.random.stateless_uniform(tf.shape(images), s_fill, 0.0, 255.0)
    return images * (1.0 - mask) + noise * mask


def _beta(alpha: float, shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    s1, s2 = _seeds(seed, 2)
    g1 = tf.random.stateless_gamma(shape, s1, alpha=alpha)
    g2 = tf.random.stateless_gamma(shape, s2, alpha=alpha)
    return g1 / (g1 + g2 + 1e-12)


def _mix(images: tf.Tensor, labels: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor):
    """Mixup or cutmix (half the batches each when both are on) with the reversed batch."""
    batch = tf.shape(images)[0]
    s_choice, s_lam, s_box = _seeds(seed, 3)
    other_images, other_labels = tf.reverse(images, [0]), tf.reverse(labels, [0])

    def mixup():
        lam = _beta(cfg.mixup, [batch], s_lam)
        lam_img = lam[:, None, None, None]
        return images * lam_img + other_images * (1 - lam_img), labels * lam[:, None] + other_labels * (
            1 - lam[:, None]
        )

    def cutmix():
        lam = _beta(cfg.cutmix, [batch], s_lam)
        mask = _box_masks(batch, tf.shape(images)[1], 1.0 - lam, s_box)
        side = tf.cast(tf.shape(images)[1], tf.float32)
        kept = 1.0 - tf.reduce_sum(mask, axis=[1, 2, 3]) / (side * side)  # exact area after rounding
        return images * (1 - mask) + other_images * mask, labels * kept[:, None] + other_labels * (1 - kept[:, None])

    if cfg.mixup and cfg.cutmix:
        use_mixup = tf.random.stateless_uniform([], s_choice) < 0.5
        return tf.cond(use_mixup, mixup, cutmix)
    return mixup() if cfg.mixup else cutmix()


def augment_batch(images: tf.Tensor, labels: tf.Tensor, cfg: AugmentConfig, seed: tf.Tensor):
    """Augment a float32 (B, S, S, 1) batch in 0..255 with one-hot labels; deterministic in seed."""
    s_flip, s_aff, s_photo, s_erase, s_mix = _seeds(tf.cast(seed, tf.int64), 5)
    # its own stream, so turning it on leaves every other draw of a seeded run as it was
    s_degrade = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 7)
    if cfg.flip:
        flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], s_flip) < 0.5
        images = tf.where(flip, tf.reverse(images, [2]), images)
    if cfg.rotation_deg or cfg.shift or cfg.zoom:
        images = _affine(images, cfg, s_aff)
    if cfg.degrade:
        images = _degrade(images, cfg, s_degrade)
    if cfg.brightness or cfg.contrast:
        images = _photometric(images, cfg, s_photo)
    if cfg.erasing:
        images = _erase(images, cfg, s_erase)
    if cfg.mixup or cfg.cutmix:
        images, labels = _mix(images, labels, cfg, s_mix)
    return images, labels
