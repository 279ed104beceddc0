"""Search spaces: the JSON (or YAML) files in ``tuning/`` that say which training options a search
varies and over what ranges, checked against the options a search may set.

Plain Python, so a command can refuse a bad space at once, before KerasTuner and TensorFlow load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from fer_keras.errors import FerKerasError, first_line
from fer_keras.training.config import TUNABLE, TrainConfig

if TYPE_CHECKING:
    import keras_tuner as kt


def load_space(path: str | Path) -> dict:
    """Read and validate a search-space file (JSON; YAML if PyYAML is installed)."""
    path = Path(path)
    if not path.exists():
        raise FerKerasError(f"search space {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise FerKerasError("YAML search spaces need PyYAML (pip install pyyaml); or use JSON") from None
            space = yaml.safe_load(text)
        else:
            space = json.loads(text)
    except (ValueError, Exception) as err:  # noqa: BLE001 - json and yaml raise different types
        if isinstance(err, FerKerasError):
            raise
        raise FerKerasError(f"malformed search space {path}: {first_line(err)}") from None
    if not isinstance(space, dict) or not isinstance(space.get("hyperparameters"), dict):
        raise FerKerasError(f"search space {path} needs a 'hyperparameters' mapping")
    for name, spec in space["hyperparameters"].items():
        _check_spec(path, name, spec)
    fixed = space.get("fixed", {})
    if not isinstance(fixed, dict):
        raise FerKerasError(f"search space {path}: 'fixed' must be a mapping of option names to values")
    for name in fixed:
        _check_name(path, name)
    return space


def _check_name(path: Path, name: str) -> None:
    if name in TUNABLE:
        return
    if name in TrainConfig.__dataclass_fields__:
        raise FerKerasError(
            f"search space {path}: {name!r} is not searchable (it sets the data, budget or output of the "
            "search itself: give it on the tune command line instead)"
        )
    raise FerKerasError(f"search space {path}: {name!r} is not a training option")


def _check_spec(path: Path, name: str, spec: dict) -> None:
    where = f"search space {path}, {name!r}"
    _check_name(path, name)
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "choice":
        if not spec.get("values"):
            raise FerKerasError(f"{where}: a choice needs a non-empty 'values' list")
    elif kind in ("float", "int"):
        if "min" not in spec or "max" not in spec:
            raise FerKerasError(f"{where}: a {kind} range needs 'min' and 'max'")
        if not spec["min"] < spec["max"]:
            raise FerKerasError(f"{where}: empty range, min {spec['min']} must be below max {spec['max']}")
        if spec.get("sampling") == "log" and spec["min"] <= 0:
            raise FerKerasError(f"{where}: log sampling needs min > 0")
    else:
        raise FerKerasError(f"{where}: 'type' must be choice, float or int")


def define(hp: kt.HyperParameters, space: dict) -> dict:
    """Ask KerasTuner for this trial's value of every searched setting."""
    values = {}
    for name, spec in space["hyperparameters"].items():
        if spec["type"] == "choice":
            values[name] = hp.Choice(name, spec["values"])
        elif spec["type"] == "float":
            values[name] = hp.Float(
                name, spec["min"], spec["max"], step=spec.get("step"), sampling=spec.get("sampling", "linear")
            )
        else:
            values[name] = hp.Int(
                name, spec["min"], spec["max"], step=spec.get("step", 1), sampling=spec.get("sampling", "linear")
            )
    return values


def trial_config(base: TrainConfig, settings: dict) -> TrainConfig:
    """The base config with fixed and searched settings applied."""
    return base.replace(**{k: v for k, v in settings.items() if not k.startswith("tuner/")})
