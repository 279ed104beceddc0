"""Figures a person wants to look at: confusion matrices, reliability diagram, mistake gallery."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from fer_keras.contract import class_names  # noqa: E402

DPI = 120


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def confusion_matrix_png(matrix: np.ndarray, path: Path, title: str = "") -> Path:
    """Counts and row-normalised (recall) heatmaps side by side (classes: the matrix's size)."""
    matrix = np.asarray(matrix)
    names = class_names(len(matrix), "the confusion matrix")
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    for ax, data, fmt, name in ((axes[0], matrix, "d", "counts"), (axes[1], normalised, ".2f", "row-normalised")):
        sns.heatmap(
            data,
            annot=True,
            fmt=fmt,
            cmap="Blues",
            xticklabels=names,
            yticklabels=names,
            cbar=False,
            square=True,
            ax=ax,
        )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"confusion matrix ({name})")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def reliability_png(y_true: np.ndarray, probs: np.ndarray, path: Path, ece: float, bins: int = 15) -> Path:
    """Accuracy per confidence bin against the diagonal, with the bin counts underneath."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    centres = (edges[:-1] + edges[1:]) / 2
    accuracy = np.array([correct[which == b].mean() if (which == b).any() else np.nan for b in range(bins)])
    counts = np.bincount(which, minlength=bins)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.bar(centres, accuracy, width=1 / bins, edgecolor="black", color="tab:blue", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability diagram (ECE = {ece:.3f})")
    ax.legend(loc="upper left")
    ax2.bar(centres, counts, width=1 / bins, edgecolor="black", color="tab:gray")
    ax2.set_xlabel("confidence (max probability)")
    ax2.set_ylabel("images")
    return _save(fig, path)


def mistakes_png(images: np.ndarray, y_true: np.ndarray, probs: np.ndarray, path: Path, count: int = 24) -> Path:
    """The most confident wrong predictions, each titled predicted (confidence) / true."""
    names = class_names(probs.shape[1], "the probabilities")
    wrong = np.flatnonzero(probs.argmax(1) != y_true)
    order = wrong[np.argsort(-probs[wrong].max(1))][:count]
    cols = 8
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.8, rows * 2.1))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, i in zip(np.atleast_1d(axes).ravel(), order):
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        pred = int(probs[i].argmax())
        ax.set_title(f"{names[pred]} {probs[i, pred]:.0%}\ntrue: {names[y_true[i]]}", fontsize=9)
    fig.suptitle("most confident mistakes (predicted, confidence / true label)")
    return _save(fig, path)


def history_png(history: dict[str, list[float]], path: Path) -> Path:
    """Loss and accuracy / macro-F1 curves of a training run (train and validation)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, ax in (("loss", ax1), ("accuracy", ax2), ("f1", ax2)):
        if key in history:
            ax.plot(epochs, history[key], label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"val {key}")
    ax1.set_title("loss")
    ax2.set_title("accuracy and macro-F1")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    return _save(fig, path)
