"""fer_keras: facial emotion recognition with Keras 3 / TensorFlow, trained on FER2013."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides our own output; users can override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer_keras.labels import EMOTIONS, NUM_CLASSES  # noqa: E402

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "NUM_CLASSES", "__version__"]
