"""An ensemble inside one Keras graph: several trained models on the same crop, probabilities averaged.

Each member keeps its own in-graph preprocessing (input size, fused stages, ...), so members of
different recipes combine as long as they take the raw 48x48 crop. Built from stock Keras layers
(nested functional models and ``Average``), so the file loads with ``safe_mode`` on and serves as
a distillation teacher (``fer_keras.train --teacher``) or an evaluation model like any other.
"""

from __future__ import annotations

import keras

from fer_keras.contract import class_names
from fer_keras.errors import FerKerasError
from fer_keras.models.preprocessing import face_input


def average_models(models: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """A model whose output is the mean of ``models``' probabilities on the same raw crop; the
    members must share a class list (7 FER2013 or 8 FER+ probabilities)."""
    if len(models) < 2:
        raise FerKerasError("an ensemble needs two or more models")
    inputs = face_input()
    outputs = []
    classes = None
    for index, model in enumerate(models):
        if tuple(model.input_shape[1:]) != tuple(inputs.shape[1:]):
            raise FerKerasError(
                f"member {index} maps {model.input_shape} to {model.output_shape}: "
                f"ensemble members take {tuple(inputs.shape)} crops"
            )
        # Averaging is only meaningful between models that share a class list (FER2013's 7 or FER+'s 8).
        own = class_names(model.output_shape[-1], where=f"ensemble member {index}")
        if classes is not None and own != classes:
            raise FerKerasError(
                f"ensemble member {index} predicts {len(own)} classes ({', '.join(own)}); member 0 predicts "
                f"{len(classes)} ({', '.join(classes)}): ensemble members must share a class list"
            )
        classes = own
        # A fresh name per member: the nested models' own names may repeat (two runs of one recipe).
        member = keras.Model(model.input, model.output, name=f"member_{index}")
        outputs.append(member(inputs))
    return keras.Model(inputs, keras.layers.Average(name="ensemble_mean")(outputs), name=name)
