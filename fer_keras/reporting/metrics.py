"""Classification metrics the field reports for FER2013, computed with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from fer_keras.contract import CLASS_LISTS, NUM_CLASSES, class_names


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy over equal-width bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    """Macro-F1 over all the classes (a class never predicted nor present scores 0)."""
    return float(f1_score(y_true, y_pred, labels=list(range(num_classes)), average="macro", zero_division=0))


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, macro / weighted P-R-F1, per-class report, top-2, ECE and confusion counts.

    The class list follows the probabilities' width: FER2013's 7 emotions or FER+'s 8."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] not in CLASS_LISTS:
        raise ValueError(f"expected probabilities of shape (N, 7) or (N, 8), got {probs.shape}")
    names = class_names(probs.shape[1])
    y_pred = probs.argmax(axis=1)
    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    macro = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1(y_true, y_pred, len(names)),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "weighted_precision": float(weighted[0]),
        "weighted_recall": float(weighted[1]),
        "weighted_f1": float(weighted[2]),
        "top2_accuracy": float(top_k_accuracy_score(y_true, probs, k=2, labels=labels)),
        "ece": expected_calibration_error(y_true, probs),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": list(names),
    }


def summary_line(metrics: dict) -> str:
    """``accuracy=0.XXXX macro_f1=0.XXXX`` (the last line the CLIs print)."""
    return f"accuracy={metrics['accuracy']:.4f} macro_f1={metrics['macro_f1']:.4f}"
