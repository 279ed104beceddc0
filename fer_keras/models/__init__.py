"""Model families, reachable by name: ``build("mobilenetv2", width=0.75)``.

Every model takes raw 48x48 grayscale crops (0..255) and returns 7 probabilities in FER2013
order (``fer_keras.contract``); it is ``face -> preprocessing -> backbone -> head``, so
Grad-CAM and fine-tuning can address the ``backbone`` sub-model of any family the same way.
"""

from fer_keras.models.registry import available_models, build, model_names, register_model

__all__ = ["available_models", "build", "model_names", "register_model"]
