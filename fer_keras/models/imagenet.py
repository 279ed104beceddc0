"""ImageNet weights through Keras' cache (~/.keras/models), with an offline error that says what to do."""

from __future__ import annotations

from pathlib import Path

import keras

from fer_keras.errors import FerKerasError, first_line

KERAS_CACHE = Path(keras.config.keras_home() if hasattr(keras.config, "keras_home") else "~/.keras") / "models"

VGG16_NOTOP = (
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
)
RESNET18_TORCHVISION = ("resnet18-f37072fd.pth", "https://download.pytorch.org/models/resnet18-f37072fd.pth")


def cached_weights(fname: str, origin: str) -> Path:
    """The local path of a weights file: from the Keras cache, downloading it there if online."""
    local = KERAS_CACHE.expanduser() / fname
    if local.exists():
        return local
    try:
        return Path(keras.utils.get_file(fname, origin, cache_subdir="models"))
    except Exception as err:  # noqa: BLE001 - any download failure means the same thing to the user
        # Keras says "URL fetch failure on URL: None -- [Errno -2] Name or service not known": keep the cause
        reason = first_line(err).rsplit(" -- ", 1)[-1]
        raise FerKerasError(
            f"could not download ImageNet weights ({reason}); place {fname} "
            f"(from {origin}) in {local.parent}/ or pass --weights PATH"
        ) from None
