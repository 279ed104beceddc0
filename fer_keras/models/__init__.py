"""Model families, reachable by name: ``build("mobilenetv2", width=0.75)``.

Every model takes raw 48x48 grayscale crops (0..255) and returns 7 probabilities in FER2013
order; it is ``face -> preprocessing -> backbone -> head``, so Grad-CAM and fine-tuning can
address the ``backbone`` sub-model of any family the same way.
"""

# Importing a family registers it.
from fer_keras.models import mobilenetv2, resnet18, vgg16  # noqa: F401
from fer_keras.models.head import backbone_groups, set_trainable_blocks
from fer_keras.models.registry import available_models, build, register_model

__all__ = ["available_models", "backbone_groups", "build", "register_model", "set_trainable_blocks"]
