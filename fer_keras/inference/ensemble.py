"""Average trained models into one ``.keras`` file (``python -m fer_keras.ensemble`` is the command).

The file takes the raw 48x48 crop and gives the mean of the members' probabilities, so it can
be evaluated (``fer_keras.evaluate --model FILE``), exported, or used as a distillation teacher
(``fer_keras.train --teacher FILE``): a larger model "trained once" from models already trained.
"""

from __future__ import annotations

from pathlib import Path

from fer_keras.errors import FerKerasError
from fer_keras.inference.export import load_keras_model


def build_ensemble(members: list[str | Path], out: str | Path) -> Path:
    """Load the members (``.keras`` files or run directories), average them, save ``out`` (.keras)."""
    from fer_keras.models.average import average_models

    out = Path(out)
    if out.suffix != ".keras":
        raise FerKerasError(f"--out must end in .keras, not {out.name}")
    resolved = [Path(member).resolve() for member in members]
    if out.resolve() in resolved:
        raise FerKerasError(f"--out {out} is one of the members")
    model = average_models([load_keras_model(member) for member in members])
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return out
