"""fer_keras: facial emotion recognition with Keras 3 / TensorFlow, trained on FER2013.

    from fer_keras import EmotionRecognizer
    faces = EmotionRecognizer().analyze("photo.jpg")

The API classes load lazily: importing the package does not import TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fer_keras.contract import EMOTIONS, NUM_CLASSES
from fer_keras.errors import FerKerasError

if TYPE_CHECKING:
    from fer_keras.app.recognizer import Emotion, EmotionRecognizer, Face, VideoFrame

__version__ = "0.2.0"
__all__ = [
    "EMOTIONS",
    "NUM_CLASSES",
    "Emotion",
    "EmotionRecognizer",
    "Face",
    "FerKerasError",
    "VideoFrame",
    "__version__",
]
_LAZY = {"Emotion", "EmotionRecognizer", "Face", "VideoFrame"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from fer_keras.app import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'fer_keras' has no attribute {name!r}")
