"""Knowledge distillation by soft targets: a trained teacher's probabilities, mixed into the labels.

The teacher (any model file ``fer_keras`` can load: ``.keras``, SavedModel, ``.tflite``, ``.onnx``)
predicts every training image once, optionally averaged over test-time-augmentation views and
softened by a temperature. The student then trains on ``(1 - alpha) * one_hot + alpha * teacher``
(or, for a FER+ run, ``(1 - alpha) * vote_targets + alpha * teacher``, the teacher then an 8-class
FER+ model) with the usual loss, so distillation costs one teacher pass over the training split instead of a
teacher forward pass per step. The probabilities are kept in the run directory
(``teacher_probs.npy``), so ``--resume`` does not recompute them.

The teacher should have been trained on the same validation split (same ``--split-seed``, which
defaults to ``--seed``, and ``--val-fraction``): a teacher that saw the student's validation images
makes validation optimistic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_keras.errors import FerKerasError

PROBS_FILE = "teacher_probs.npy"


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities as if the logits were divided by ``temperature`` (> 1 spreads them out)."""
    if temperature <= 0:
        raise FerKerasError(f"--distill-temperature must be positive, got {temperature}")
    logits = np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    soft = np.exp(logits)
    return (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)


def soft_targets(labels: np.ndarray, teacher: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) * labels + alpha * teacher``, float32 (N, classes).

    ``labels`` are class indices (N,), made one-hot, or targets already (N, classes): a FER+ run's
    vote targets."""
    labels = np.asarray(labels)
    classes = labels.shape[1] if labels.ndim == 2 else teacher.shape[-1]
    if teacher.shape != (len(labels), classes):
        raise FerKerasError(f"teacher probabilities have shape {teacher.shape}, expected ({len(labels)}, {classes})")
    base = labels.astype(np.float32) if labels.ndim == 2 else np.eye(classes, dtype=np.float32)[labels]
    return ((1.0 - alpha) * base + alpha * teacher).astype(np.float32)


def teacher_probs(
    teacher: str | Path, images: np.ndarray, tta: str = "none", temperature: float = 1.0, classes: tuple = ()
) -> np.ndarray:
    """The teacher's (softened) probabilities for uint8 (N, 48, 48) crops; with ``classes``, the
    teacher must predict exactly that class list."""
    from fer_keras.inference.predictor import load_predictor, predict

    if not str(teacher):
        raise FerKerasError("--teacher needs a model file")
    predictor = load_predictor(teacher)
    if classes and tuple(predictor.classes) != tuple(classes):
        raise FerKerasError(
            f"teacher {teacher} predicts {len(predictor.classes)} classes ({', '.join(predictor.classes)}); "
            f"this run trains {len(classes)} ({', '.join(classes)})"
        )
    return soften(predict(predictor, images, tta), temperature)


def cached_teacher_probs(
    run_dir: Path,
    teacher: str | Path,
    images: np.ndarray,
    tta: str = "none",
    temperature: float = 1.0,
    classes: tuple = (),
) -> np.ndarray:
    """``teacher_probs`` computed once per run directory and reused when the run resumes."""
    path = run_dir / PROBS_FILE
    if path.exists():
        probs = np.load(path, allow_pickle=False)
        if probs.ndim == 2 and len(probs) == len(images) and (not classes or probs.shape[1] == len(classes)):
            return probs
    probs = teacher_probs(teacher, images, tta, temperature, classes)
    run_dir.mkdir(parents=True, exist_ok=True)  # a teacher that fails to load leaves no run directory
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, probs, allow_pickle=False)
    os.replace(tmp, path)
    return probs
