"""Class balancing for imbalanced emotion datasets: the modes and Keras ``class_weight``."""

from __future__ import annotations

import numpy as np

from fer_keras.contract import NUM_CLASSES

BALANCE_MODES = ("none", "weights", "sqrt-weights", "sample")


def class_weights(labels: np.ndarray, mode: str = "weights", num_classes: int = NUM_CLASSES) -> dict[int, float] | None:
    """Keras ``class_weight`` for imbalanced classes: inverse frequency, or its square root."""
    if mode not in ("weights", "sqrt-weights"):
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    if mode == "sqrt-weights":
        weights = np.sqrt(weights)
    out = {c: 1.0 for c in range(num_classes)}
    out.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return out
