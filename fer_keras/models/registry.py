"""Every architecture reachable by name: ``@register_model`` on a builder, ``build(name, ...)``."""

from __future__ import annotations

from collections.abc import Callable

import keras

from fer_keras.errors import FerKerasError

_REGISTRY: dict[str, Callable[..., keras.Model]] = {}


def register_model(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
    """Register a builder under its function name (``def mobilenetv2(...)`` -> ``"mobilenetv2"``)."""
    _REGISTRY[builder.__name__] = builder
    return builder


def available_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def build(name: str, **config) -> keras.Model:
    """Build a registered model; unknown names and options give a one-line FerKerasError."""
    if name not in _REGISTRY:
        raise FerKerasError(f"unknown model {name!r}; choose from {', '.join(available_models())}")
    try:
        return _REGISTRY[name](**config)
    except TypeError as err:
        raise FerKerasError(f"bad option for model {name!r}: {err}") from None
