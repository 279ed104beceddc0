"""fer_keras: facial emotion recognition with Keras 3 / TensorFlow, trained on FER2013 and FER+.

    from fer_keras import EmotionRecognizer
    faces = EmotionRecognizer().analyze("photo.jpg")
    metrics = fer_keras.score("mobilenetv2_ferplus", "fer2013/test", ferplus="fer2013_votes.csv")

The API classes load lazily: importing the package does not import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_keras.contract import EMOTIONS, FERPLUS_EMOTIONS, NUM_CLASSES
from fer_keras.errors import FerKerasError

if TYPE_CHECKING:
    from fer_keras.app.recognizer import Emotion, EmotionRecognizer, Face, VideoFrame

__version__ = "0.2.0"
__all__ = [
    "EMOTIONS",
    "FERPLUS_EMOTIONS",
    "NUM_CLASSES",
    "Emotion",
    "EmotionRecognizer",
    "Face",
    "FerKerasError",
    "VideoFrame",
    "__version__",
    "score",
]
_LAZY = {"Emotion", "EmotionRecognizer", "Face", "VideoFrame"}


def score(
    model: str | Path | None = None,
    data: str | Path | None = None,
    split: str = "test",
    *,
    ferplus: str | Path | None = None,
    tta: str = "none",
) -> dict[str, Any]:
    """A model's metrics on a dataset split, as ``python -m fer_keras.evaluate`` computes them
    (no files written): accuracy, macro-F1, per-class report, confusion matrix, ...

    ``model``: any model the commands take, or a shipped model's name (default: the shipped
    FER2013 model). ``data``: a dataset root or split folder (default: ``$FER_KERAS_DATA``).
    ``split``: ``test``, ``train`` or ``val`` (carved from train as the model's run carved it).
    ``ferplus``: a FER+ votes file: FER+ majority labels and the FER+ paper's protocol.
    """
    from fer_keras.reporting.evaluation import score as _score

    metrics, _, _ = _score(model, data, split, tta, ferplus=ferplus)
    return metrics


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from fer_keras.app import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'fer_keras' has no attribute {name!r}")
