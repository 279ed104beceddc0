"""Search spaces: the JSON (or YAML) files in ``tuning/`` that say which training options a search
varies and over what ranges, checked against the options a search may set.

Plain Python, so a command can refuse a bad space at once, before KerasTuner and TensorFlow load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from fer_keras.errors import FerKerasError, first_line
from fer_keras.training.config import MODEL_OPTIONS, TUNABLE, TrainConfig

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
    unknown = sorted(set(space) - SPACE_KEYS)
    if unknown:
        raise FerKerasError(
            f"search space {path}: unknown entry {unknown[0]!r} (a space has {', '.join(sorted(SPACE_KEYS))})"
        )
    _check_start(path, space)
    return space


SPACE_KEYS = {"model", "fixed", "hyperparameters", "start"}


def _check_start(path: Path, space: dict) -> None:
    """``start``: the first trial's value of every searched hyper-parameter (the recipe the search
    sets out from, so its table shows what beats it); each value must lie in its range."""
    if "start" not in space:
        return
    start, searched = space["start"], space["hyperparameters"]
    if not isinstance(start, dict):
        raise FerKerasError(f"search space {path}: 'start' must map each searched hyper-parameter to a value")
    extra = [name for name in start if name not in searched]
    if extra:
        raise FerKerasError(f"search space {path}: 'start' sets {extra[0]!r}, which the space does not search")
    missing = [name for name in searched if name not in start]
    if missing:
        raise FerKerasError(f"search space {path}: 'start' needs a value for {', '.join(map(repr, missing))}")
    for name, value in start.items():
        spec = searched[name]
        if spec["type"] == "choice":
            inside = value in spec["values"]
        else:
            inside = isinstance(value, (int, float)) and not isinstance(value, bool)
            inside = inside and spec["min"] <= value <= spec["max"]
            inside = inside and (spec["type"] == "float" or float(value).is_integer())
        if not inside:
            raise FerKerasError(f"search space {path}: 'start' gives {name}={value!r}, outside what the space searches")


def start_values(space: dict) -> dict:
    """The space's ``start`` in the types KerasTuner gives its hyper-parameters ({} without one)."""
    values = {}
    for name, value in space.get("start", {}).items():
        spec = space["hyperparameters"][name]
        if spec["type"] == "choice":
            values[name] = next(v for v in spec["values"] if v == value)
        else:
            values[name] = float(value) if spec["type"] == "float" else int(value)
    return values


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


# options that act only when another option allows them: a space that lets one vary where it
# cannot act would report a hyper-parameter its trials ignored
REQUIRES = {
    "momentum": ("optimizer", lambda v: v == "sgd", "optimizer sgd"),
    "nesterov": ("optimizer", lambda v: v == "sgd", "optimizer sgd"),
    "weight_decay": ("optimizer", lambda v: v in ("adamw", "sgd"), "optimizer adamw or sgd (adam has none)"),
    "warmup_epochs": ("schedule", lambda v: v == "cosine", "schedule cosine"),
    "unfreeze_blocks": ("head_epochs", bool, "head_epochs above 0"),
    "finetune_lr_scale": ("head_epochs", bool, "head_epochs above 0"),
    "teacher_tta": ("teacher", bool, "a teacher"),
    "distill_alpha": ("teacher", bool, "a teacher"),
    "distill_temperature": ("teacher", bool, "a teacher"),
    "ferplus_agree": ("ferplus_alpha", bool, "ferplus_alpha above 0"),
    "ferplus_ties": ("ferplus_mode", lambda v: v != "majority", "ferplus_mode crossentropy or probability"),
}


def candidate_values(space: dict, name: str, base: TrainConfig) -> list:
    """The values a space lets an option take: its fixed value, its choices, the ends of its range,
    or the base config's value when the space leaves it alone."""
    if name in space.get("fixed", {}):
        return [space["fixed"][name]]
    spec = space["hyperparameters"].get(name)
    if spec is None:
        return [getattr(base, name)]
    return list(spec["values"]) if spec["type"] == "choice" else [spec["min"], spec["max"]]


def check_space(space: dict, base: TrainConfig, where: str = "search space") -> None:
    """Refuse, by name, a setting no trial could honour: a value the training options refuse
    (with the search's own data and budget), or an option that needs another the space does not
    guarantee. Every value of every searched option is tried with the fixed settings."""
    fixed = space.get("fixed", {})
    settings = {**fixed, **{name: candidate_values(space, name, base)[0] for name in space["hyperparameters"]}}
    for name in [*fixed, *space["hyperparameters"]]:
        for value in candidate_values(space, name, base):
            try:
                trial_config(base, {**settings, name: value}).validate()
            except FerKerasError as err:
                raise FerKerasError(f"{where}: {name}={value!r} cannot be trained: {err}") from None
        if name in REQUIRES:
            needed, allows, what = REQUIRES[name]
            bad = [v for v in candidate_values(space, needed, base) if not allows(v)]
            if bad:
                raise FerKerasError(
                    f"{where}: {name!r} acts only with {what}, but the space lets {needed} be {bad[0]!r}; "
                    f"fix {needed} in 'fixed' or leave {name} out"
                )


def check_model_options(space: dict, model: str, accepted: set[str], where: str = "search space") -> None:
    """Refuse model options the architecture's builder does not take (e.g. width for resnet18)."""
    for name in [*space.get("fixed", {}), *space["hyperparameters"]]:
        if name in MODEL_OPTIONS and name not in accepted:
            raise FerKerasError(f"{where}: {name!r} is not an option of model {model!r}")


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
