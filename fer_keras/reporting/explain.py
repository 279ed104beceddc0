"""What a model looks at (Grad-CAM on the backbone's last feature map) and how it groups faces
(t-SNE of the penultimate embeddings). Works for every registered model, because every model is
``face -> preprocessing -> backbone -> head layers``."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from fer_keras.contract import CROP_SHAPE, CROP_SIZE, EMOTIONS, class_names
from fer_keras.errors import FerKerasError
from fer_keras.models.tta_layers import single_view
from fer_keras.reporting.plots import _save, plt


def _parts(model: keras.Model) -> tuple[keras.layers.Layer, keras.Model, list[keras.layers.Layer]]:
    model = single_view(model)
    try:
        preprocessing, backbone = model.get_layer("preprocessing"), model.get_layer("backbone")
    except ValueError:
        raise FerKerasError(
            f"model {model.name} has no preprocessing/backbone parts; Grad-CAM needs a fer_keras model"
        ) from None
    head = model.layers[model.layers.index(backbone) + 1 :]
    return preprocessing, backbone, head


def _cam_model(backbone: keras.Model, min_side: int = 3) -> keras.Model:
    """Backbone -> (deepest feature map at least ``min_side`` wide, backbone output).

    VGG16 at 48x48 pools down to 1x1, where Grad-CAM is a constant: use its last 3x3 conv instead.
    """
    cam_layer = backbone.layers[-1]
    for layer in reversed(backbone.layers):
        shape = layer.output.shape
        if len(shape) == 4 and shape[1] is not None and shape[1] >= min_side:
            cam_layer = layer
            break
    return keras.Model(backbone.input, [cam_layer.output, backbone.output])


def grad_cam(model: keras.Model, images: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
    """Grad-CAM heatmaps (N, 48, 48) in [0, 1] for ``classes`` (default: the predicted class)."""
    preprocessing, backbone, head = _parts(model)
    cam_model = _cam_model(backbone)
    x = tf.constant(np.asarray(images, np.float32).reshape(-1, *CROP_SHAPE))
    with tf.GradientTape() as tape:
        features, y = cam_model(preprocessing(x), training=False)
        for layer in head:
            y = layer(y, training=False)
        if classes is None:
            classes = tf.argmax(y, axis=1).numpy()
        score = tf.reduce_sum(y * tf.one_hot(classes, y.shape[-1]), axis=1)
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
    maps = np.stack([cv2.resize(c, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_CUBIC) for c in cam])
    maps = np.clip(maps, 0, None)
    peak = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def embeddings(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The input of the classifier layer (``emotion_probs``): the penultimate embedding."""
    preprocessing, backbone, head = _parts(model)
    out = []
    for start in range(0, len(images), batch_size):
        y = backbone(preprocessing(np.asarray(images[start : start + batch_size], np.float32)[..., None]))
        for layer in head[:-1]:
            y = layer(y, training=False)
        out.append(np.asarray(y))
    return np.concatenate(out)


def grad_cam_png(model: keras.Model, images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 4) -> Path:
    """A grid: per class, ``per_class`` examples with their Grad-CAM overlay for the predicted class.

    A flip-TTA model is shown as its single-view network, so each title's prediction is the one
    its heatmap explains.
    """
    model = single_view(model)
    names = class_names(model.output_shape[-1], "the model")
    picks = [np.flatnonzero(labels == c)[:per_class] for c in range(len(names))]
    fig, axes = plt.subplots(len(names), per_class * 2, figsize=(per_class * 2 * 1.4, len(names) * 1.6))
    for ax in axes.ravel():
        ax.axis("off")
    for c, idx in enumerate(picks):
        if not len(idx):
            continue
        probs = model.predict(images[idx][..., None].astype(np.float32), verbose=0)
        maps = grad_cam(model, images[idx])
        for j, (i, cam) in enumerate(zip(idx, maps)):
            ax_img, ax_cam = axes[c, 2 * j], axes[c, 2 * j + 1]
            ax_img.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            ax_img.set_title(f"true {names[c]}", fontsize=7)
            ax_cam.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            ax_cam.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            pred = int(probs[j].argmax())
            ax_cam.set_title(f"pred {names[pred]} {probs[j, pred]:.0%}", fontsize=7)
    fig.suptitle("Grad-CAM: where the model looks for its predicted class")
    return _save(fig, path)


def tsne_png(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    path: Path,
    seed: int = 0,
    classes: tuple[str, ...] = EMOTIONS,
) -> Path:
    """t-SNE of the penultimate embeddings, coloured by true class (``classes``: the labels' names)."""
    from sklearn.manifold import TSNE

    emb = embeddings(model, images)
    perplexity = float(min(30, max(5, (len(emb) - 1) // 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(emb)
    fig, ax = plt.subplots(figsize=(8, 7))
    palette = plt.get_cmap("tab10")
    for c, name in enumerate(classes):
        mask = labels == c
        ax.scatter(points[mask, 0], points[mask, 1], s=8, alpha=0.7, color=palette(c), label=f"{name} ({mask.sum()})")
    ax.legend(markerscale=2, fontsize=9)
    ax.set_title(f"t-SNE of penultimate embeddings ({len(emb)} test images)")
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)
