"""fer_keras: facial emotion recognition with Keras 3 / TensorFlow, trained on FER2013 and FER+.

    from fer_keras import EmotionRecognizer
    faces = EmotionRecognizer().analyze("photo.jpg")
    metrics = fer_keras.score("mobilenetv2_ferplus", "fer2013/test", ferplus="fer2013_votes.csv")
    run = fer_keras.train_model(model="mobilenetv2", data="fer2013", epochs=5)   # each command as a function

The API loads lazily: importing the package does not import TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fer_keras.contract import EMOTIONS, FERPLUS_EMOTIONS, NUM_CLASSES
from fer_keras.errors import FerKerasError

if TYPE_CHECKING:
    from fer_keras.api import (
        analyze_files,
        augment,
        build_model,
        compare_runs,
        evaluate_model,
        export_model,
        inspect_data,
        load_data,
        make_test_video,
        run_video,
        score,
        score_video,
        train_model,
        tune_model,
    )
    from fer_keras.app.recognizer import Emotion, EmotionRecognizer, Face, VideoFrame
    from fer_keras.training.config import TrainConfig

__version__ = "0.2.0"
__all__ = [
    "EMOTIONS",
    "FERPLUS_EMOTIONS",
    "NUM_CLASSES",
    "Emotion",
    "EmotionRecognizer",
    "Face",
    "FerKerasError",
    "TrainConfig",
    "VideoFrame",
    "__version__",
    "analyze_files",
    "augment",
    "build_model",
    "compare_runs",
    "evaluate_model",
    "export_model",
    "inspect_data",
    "load_data",
    "make_test_video",
    "run_video",
    "score",
    "score_video",
    "train_model",
    "tune_model",
]
# where the lazily loaded names that are not in fer_keras.api live
_ELSEWHERE = {
    **dict.fromkeys(("Emotion", "EmotionRecognizer", "Face", "VideoFrame"), "fer_keras.app.recognizer"),
    "TrainConfig": "fer_keras.training.config",
}


def __getattr__(name: str) -> Any:
    if name in __all__:  # only asked for names not defined above
        import importlib

        return getattr(importlib.import_module(_ELSEWHERE.get(name, "fer_keras.api")), name)
    raise AttributeError(f"module 'fer_keras' has no attribute {name!r}")
