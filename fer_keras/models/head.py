"""Pieces every model family shares: the classifier head and loading a local weights file."""

from __future__ import annotations

from pathlib import Path

import keras

from fer_keras.contract import NUM_CLASSES
from fer_keras.errors import FerKerasError, first_line


def classifier(x, num_classes: int = NUM_CLASSES, activation: str | None = "softmax", dropout: float = 0.0):
    """Dropout then the dense layer that gives the emotion probabilities (named ``emotion_probs``)."""
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.layers.Dense(num_classes, activation=activation, name="emotion_probs", dtype="float32")(x)


def load_keras_weights(model: keras.Model, path: str | Path) -> None:
    """Load a ``.keras`` or ``.weights.h5`` file of the same architecture into ``model``."""
    path = Path(path)
    if not path.exists():
        raise FerKerasError(f"weights file {path} does not exist")
    if not (path.name.endswith(".weights.h5") or path.suffix == ".keras"):
        raise FerKerasError(f"weights file {path} must end in .keras or .weights.h5 for this model")
    if path.suffix == ".keras" and _load_backbone(model, path):
        return
    try:
        model.load_weights(path)
    except (ValueError, KeyError, OSError) as err:
        raise FerKerasError(f"weights file {path} does not fit model {model.name}: {first_line(err)}") from None


def _load_backbone(model: keras.Model, path: Path) -> bool:
    """Start from another model's backbone when only the classifier differs (say, a FER2013 model
    starting a FER+ one): the backbone's weights are copied and the new head keeps its initialisation."""
    try:
        source = keras.saving.load_model(path, compile=False)  # safe_mode stays on
        if source.output_shape[-1] == model.output_shape[-1]:
            return False
        model.get_layer("backbone").set_weights(source.get_layer("backbone").get_weights())
    except (ValueError, KeyError, OSError, TypeError):
        return False
    print(
        f"weights: the backbone of {path} ({source.output_shape[-1]} classes); "
        f"a new {model.output_shape[-1]}-class head",
        flush=True,
    )
    return True


# Layer-name prefixes that belong to the stem (ResNet18 keeps torchvision's conv1 / bn1 names).
_STEM_PREFIXES = frozenset({"stem", "conv1", "bn1"})


def block_of(layer_name: str) -> str:
    """The block a backbone layer belongs to: its name up to the first '_' (stem parts -> 'stem')."""
    prefix = layer_name.split("_")[0]
    return "stem" if prefix in _STEM_PREFIXES else prefix


def backbone_groups(backbone: keras.Model) -> list[str]:
    """Block names of a backbone in input-to-output order (``stem``, ``block1``, ..., ``top``)."""
    groups: list[str] = []
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        group = block_of(layer.name)
        if group not in groups:
            groups.append(group)
    return groups


def set_trainable_blocks(model: keras.Model, last_n: int | None) -> None:
    """Freeze the backbone except its last ``last_n`` blocks (None: all trainable, 0: all frozen).

    Frozen BatchNormalization layers run in inference mode (Keras 3 semantics of trainable=False).
    """
    backbone = model.get_layer("backbone")
    backbone.trainable = True
    groups = backbone_groups(backbone)
    keep = set(groups if last_n is None else groups[len(groups) - last_n :] if last_n else [])
    for layer in backbone.layers:
        layer.trainable = block_of(layer.name) in keep
