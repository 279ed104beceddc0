"""Every architecture reachable by name: ``@register_model`` on a builder, ``build(name, ...)``.

The families shipped with the package are listed in ``FAMILIES`` and imported (which registers
them) only when a model is built, so listing the names costs no TensorFlow import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from fer_keras.errors import FerKerasError

if TYPE_CHECKING:
    import keras

# model name -> the module whose @register_model builder of that name builds it
FAMILIES = {
    "mobilenetv2": "fer_keras.models.mobilenetv2",
    "resnet18": "fer_keras.models.resnet18",
    "vgg16": "fer_keras.models.vgg16",
}
_REGISTRY: dict[str, Callable[..., keras.Model]] = {}


def register_model(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
    """Register a builder under its function name (``def mobilenetv2(...)`` -> ``"mobilenetv2"``)."""
    _REGISTRY[builder.__name__] = builder
    return builder


def model_names() -> list[str]:
    """Names of the shipped families and of any model registered since, sorted."""
    return sorted(set(FAMILIES) | set(_REGISTRY))


def available_models() -> list[str]:
    """Every buildable model name (imports the shipped families, which registers them)."""
    for module in FAMILIES.values():
        importlib.import_module(module)
    return model_names()


def builder_options(name: str) -> set[str]:
    """The keyword options the named model's builder takes."""
    import inspect

    if name not in _REGISTRY and name in FAMILIES:
        importlib.import_module(FAMILIES[name])
    if name not in _REGISTRY:
        raise FerKerasError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    return set(inspect.signature(_REGISTRY[name]).parameters)


def build(name: str, **config) -> keras.Model:
    """Build a registered model; unknown names and options give a one-line FerKerasError."""
    if name not in _REGISTRY and name in FAMILIES:
        importlib.import_module(FAMILIES[name])
    if name not in _REGISTRY:
        raise FerKerasError(f"unknown model {name!r}; choose from {', '.join(model_names())}")
    try:
        return _REGISTRY[name](**config)
    except TypeError as err:
        raise FerKerasError(f"bad option for model {name!r}: {err}") from None
