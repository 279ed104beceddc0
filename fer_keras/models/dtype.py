"""Models trained under a mixed-precision policy, served in float32.

A run trained with ``--precision mixed_bfloat16`` (or ``mixed_float16``) saves its checkpoints
with that policy on every layer, so a loaded checkpoint would still compute in 16 bits: its
figures would differ from the float32 artefacts it is shipped as, and the SavedModel / TFLite
converters would see 16-bit ops. The variables are float32 under either policy, so the same
network rebuilt with float32 policies takes the weights unchanged.
"""

from __future__ import annotations

import keras


def layer_policies(model: keras.Model) -> list[str]:
    """The dtype policy of every layer, nested models included, in a fixed order."""
    return [layer.dtype_policy.name for layer in model._flatten_layers()]


def is_mixed(model: keras.Model) -> bool:
    """Whether any layer of ``model`` (nested models included) computes in a mixed policy."""
    return any(name.startswith("mixed_") for name in layer_policies(model))


def _float32_policies(config):
    if isinstance(config, dict):
        policy = config.get("config", {}) if config.get("class_name") == "DTypePolicy" else {}
        if str(policy.get("name", "")).startswith("mixed_"):
            return {**config, "config": {**policy, "name": "float32"}}
        return {key: _float32_policies(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_policies(value) for value in config]
    return config


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` itself when it computes in float32 already, else the same network and weights
    with float32 policies (an optimizer is not carried over: the copy is for inference)."""
    if not is_mixed(model):
        return model
    copy = model.__class__.from_config(_float32_policies(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy
