"""The options of a training run, declared once: fields, defaults, help, CLI flags and what a search may set.

``TrainConfig`` is saved as ``config.json`` in every run directory. ``add_arguments`` turns its
fields into ``python -m fer_keras.train`` flags, ``TUNABLE`` is the set a search space may set,
and ``to_argv`` writes a config back as the flags that reproduce it. This module imports no
TensorFlow, so ``--help`` and usage errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fer_keras.contract import TTA_MODES
from fer_keras.data.augment import PRESETS
from fer_keras.data.balance import BALANCE_MODES
from fer_keras.data.ferplus import MODES as FERPLUS_MODES
from fer_keras.errors import FerKerasError
from fer_keras.models.registry import model_names

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "plateau")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTE = ("none", "mirrored", "multiworker")
MONITOR = "val_f1"  # validation macro-F1: what checkpoints, early stopping and searches follow
TUNERS = ("random", "bayesian", "hyperband")  # KerasTuner strategies python -m fer_keras.tune offers

GROUPS = {
    "run": None,
    "optimisation": "optimisation",
    "data": "data",
    "distillation": "distillation (soft targets from a trained model on the same --split-seed/--val-fraction)",
    "model": "model (options not given take the model's own defaults)",
    "hardware": "hardware",
}


def option(
    default: Any,
    help: str,
    group: str,
    *,
    choices: Sequence | None = None,
    type: type | None = None,
    metavar: str | None = None,
    tunable: bool = True,
    model_option: bool = False,
    aliases: Sequence[str] = (),
    cli: bool = True,
) -> Any:
    """A ``TrainConfig`` field with what the CLI and the tuner need to know about it."""
    metadata = dict(
        help=help,
        group=group,
        choices=tuple(choices) if choices is not None else None,
        type=type,
        metavar=metavar,
        tunable=tunable,
        model_option=model_option,
        aliases=tuple(aliases),
        cli=cli,
    )
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _model(help: str, type: type, choices: Sequence | None = None) -> Any:
    return option(None, help, "model", type=type, choices=choices, model_option=True)


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` in the run directory."""

    model: str = option("mobilenetv2", "architecture", "run", choices=model_names(), tunable=False)
    data: str = option(
        "", "dataset folder or fer2013.csv (default: $FER_KERAS_DATA, else data/fer2013)", "run", tunable=False
    )
    out: str = option("", "run directory (default: runs/<model>-<time>)", "run", tunable=False)
    # optimisation
    epochs: int = option(
        30, "epochs to train; --resume keeps the saved run's unless given", "optimisation", tunable=False
    )
    batch_size: int = option(64, "images per training step", "optimisation")
    optimizer: str = option("adamw", "optimizer", "optimisation", choices=OPTIMIZERS)
    learning_rate: float = option(2e-3, "peak learning rate", "optimisation", aliases=("--lr",))
    momentum: float = option(0.9, "sgd momentum", "optimisation")
    nesterov: bool = option(True, "sgd: Nesterov momentum (--no-nesterov for plain momentum)", "optimisation")
    schedule: str = option("cosine", "learning-rate schedule", "optimisation", choices=SCHEDULES)
    warmup_epochs: int = option(1, "linear warm-up epochs of the cosine schedule", "optimisation")
    weight_decay: float = option(5e-4, "decoupled weight decay (adamw, sgd; adam has none)", "optimisation")
    label_smoothing: float = option(0.1, "label smoothing", "optimisation")
    ema: float = option(
        0.0,
        "validate, checkpoint and export a per-step moving average of the weights with this momentum "
        "(e.g. 0.999); 0 = off",
        "optimisation",
        metavar="MOMENTUM",
    )
    bn_calibration: int = option(
        20,
        "before each validation, recompute BatchNorm statistics from N batches of unaugmented training "
        "images (0 = keep Keras's moving averages, which lag the weights early in a run)",
        "optimisation",
        metavar="BATCHES",
    )
    early_stopping: int = option(
        0, "stop after PATIENCE epochs without a val macro-F1 gain; 0 = off", "optimisation", metavar="PATIENCE"
    )
    seed: int = option(0, "initialisation, augmentation and (unless --split-seed) the split", "optimisation")
    deterministic: bool = option(False, "deterministic TF ops (slower; exact resume equality)", "optimisation")
    # data
    augment: str = option("standard", "augmentation preset", "data", choices=tuple(PRESETS))
    erasing: float | None = option(
        None, "random-erasing probability (default: the preset's)", "data", type=float, metavar="P"
    )
    mixup: float | None = option(None, "mixup Beta alpha, 0 = off (default: the preset's)", "data", type=float)
    cutmix: float | None = option(None, "cutmix Beta alpha, 0 = off (default: the preset's)", "data", type=float)
    degrade: float | None = option(
        None,
        "probability of an image losing detail as a video's face does: lower resolution, then noise "
        "(default: the preset's)",
        "data",
        type=float,
        metavar="P",
    )
    balance: str = option("none", "class weights or class-balanced sampling", "data", choices=BALANCE_MODES)
    val_fraction: float = option(0.1, "share of train held out for validation", "data", tunable=False)
    split_seed: int | None = option(
        None,
        "seed of the validation split (default: --seed); fix it to compare seeds on the same validation images",
        "data",
        type=int,
        tunable=False,
    )
    dedupe: bool = option(False, "drop training images also in val/test or with conflicting labels", "data")
    limit: int = option(
        0,
        "quick runs: keep a stratified subset of N training images, and N/4 of validation and of test "
        "(so the test figure printed is on that subset); 0 = all",
        "data",
        metavar="N",
        tunable=False,
    )
    skip_bad: bool = option(False, "skip and count unreadable images instead of stopping", "data", tunable=False)
    extra: list[str] = option([], "extra folder dataset merged into training (repeatable)", "data", tunable=False)
    ferplus: str = option(
        "",
        "FER+ votes: fer2013_votes.csv for a folder --data (an 8-class FER+ model), or fer2013new.csv "
        "to relabel a fer2013.csv --data (7 classes)",
        "data",
        tunable=False,
        metavar="VOTES.csv",
    )
    ferplus_mode: str = option(
        "majority",
        "FER+ training targets: the majority label, a label drawn from the votes every step (probability), "
        "or the vote distribution (crossentropy)",
        "data",
        choices=FERPLUS_MODES,
    )
    ferplus_ties: bool = option(
        False,
        "train also on the images whose FER+ top vote is tied between emotions, as their vote distribution "
        "(crossentropy or probability targets; validation and test still leave ties out)",
        "data",
    )
    ferplus_alpha: float = option(
        0.0,
        "the FER+ votes as a teacher of a FER2013 run (folder --data with --ferplus): targets "
        "(1 - A) * one-hot + A * the vote distribution on the 7 classes; 0 = off (an 8-class FER+ model)",
        "data",
        metavar="A",
    )
    ferplus_agree: bool = option(
        False, "with --ferplus-alpha: use the votes only where their majority is the FER2013 label", "data"
    )
    # distillation
    teacher: str = option(
        "", "teacher model: .keras, SavedModel, .tflite, .onnx or run dir (FER+ runs: an 8-class model)", "distillation"
    )
    teacher_tta: str = option("none", "views the teacher averages", "distillation", choices=TTA_MODES)
    distill_alpha: float = option(0.5, "weight of the teacher in the targets", "distillation")
    distill_temperature: float = option(1.0, "> 1 softens the teacher's probabilities", "distillation")
    # model
    weights: str = option(
        "",
        "'imagenet' (Keras cache) or a .keras/.weights.h5/.h5/.pth file (default: random initialisation)",
        "model",
    )
    input_size: int | None = _model("resize crops in-graph to this size", int)
    dropout: float | None = _model("dropout before the classifier", float)
    width: float | None = _model("width multiplier of every stage (mobilenetv2, resnet18)", float)
    depth: float | None = _model("mobilenetv2 depth multiplier", float)
    stem_stride: int | None = _model("mobilenetv2 stem stride", int, choices=(1, 2))
    stem: str | None = _model(
        "resnet18 stem: small (3x3/1), strided (3x3/2, a quarter of the cost) or imagenet (7x7/2 + pool)",
        str,
        choices=("small", "strided", "imagenet"),
    )
    head_channels: int | None = _model("mobilenetv2 channels of the last 1x1 conv", int)
    fused_stages: int | None = _model(
        "mobilenetv2: the first N stages use Fused-MBConv blocks (a dense 3x3 conv instead of 1x1 + depthwise)", int
    )
    fused_expansion: int | None = _model("mobilenetv2: expansion cap of the fused blocks (model default 4)", int)
    head_epochs: int = option(0, "staged fine-tuning: first train N epochs with a frozen backbone", "model")
    unfreeze_blocks: int = option(-1, "then unfreeze the last N backbone blocks (-1 = all)", "model")
    finetune_lr_scale: float = option(0.1, "learning-rate factor after unfreezing", "model")
    # hardware
    precision: str = option(
        "auto", "auto = mixed_float16 on a CUDA GPU, else float32", "hardware", choices=PRECISIONS, tunable=False
    )
    distribute: str = option("none", "multiworker reads TF_CONFIG", "hardware", choices=DISTRIBUTE, tunable=False)
    export: bool = option(True, "write the SavedModel at the end (--no-export to skip)", "hardware", tunable=False)
    snapshot: str = option(
        "",
        "also keep a compact copy of the run here after every epoch (float16 weights of the last and best "
        "epochs, state, history): small enough to commit; --resume rebuilds --out from it when --out is "
        "missing or behind",
        "run",
        tunable=False,
        metavar="DIR",
    )
    verbose: int = option(1, "Keras progress output: 0 silent, 1 bar, 2 a line per epoch", "run", cli=False)

    # ------------------------------------------------------------------ views

    @property
    def model_options(self) -> dict[str, Any]:
        """The options given to the model builder (those left at None take the builder's defaults)."""
        return {name: getattr(self, name) for name in MODEL_OPTIONS if getattr(self, name) is not None}

    @property
    def val_split_seed(self) -> int:
        """The seed that carves the validation split: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A config from saved values; older files kept the model options in a nested ``model_options``."""
        values = {**values, **(values.get("model_options") or {})}
        return cls(**{k: v for k, v in values.items() if k in FIELDS})

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``; unknown names are a one-line error."""
        unknown = sorted(set(changes) - FIELDS)
        if unknown:
            raise FerKerasError(f"unknown training option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_argv(self, skip: Sequence[str] = ("data", "out")) -> list[str]:
        """The ``python -m fer_keras.train`` flags that give this config (options at their default left out)."""
        default = TrainConfig()
        argv = ["--model", self.model]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "model" or f.name in skip or not f.metadata["cli"] or value == getattr(default, f.name):
                continue
            if isinstance(value, bool):
                argv.append(flag(f.name) if value else flag(f.name, negated=True))
            elif isinstance(value, list):
                for item in value:
                    argv += [flag(f.name), str(item)]
            else:
                argv += [flag(f.name), str(value)]
        return argv

    def validate(self) -> None:
        """One-line errors for bad values before any work starts."""
        for f in dataclasses.fields(self):
            choices, value = f.metadata["choices"], getattr(self, f.name)
            if choices is not None and value is not None and value not in choices:
                raise FerKerasError(f"{flag(f.name)} must be one of {', '.join(map(str, choices))}, got {value!r}")
        checks = [
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.learning_rate > 0, "--learning-rate must be positive"),
            (self.warmup_epochs >= 0, "--warmup-epochs must be 0 or more"),
            (self.weight_decay >= 0, "--weight-decay must be 0 or more"),
            (0 <= self.momentum < 1, "--momentum must be in [0, 1)"),
            (self.early_stopping >= 0, "--early-stopping must be 0 (off) or a patience in epochs"),
            (0 < self.val_fraction < 1, "--val-fraction must be between 0 and 1"),
            (self.limit >= 0, "--limit must be 0 (all images) or more"),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (0 <= self.ema < 1, "--ema must be 0 (off) or a momentum in (0, 1), e.g. 0.999"),
            (self.bn_calibration >= 0, "--bn-calibration must be 0 (off) or a number of batches"),
            (
                not self.ema or self.bn_calibration,
                "--ema needs --bn-calibration above 0 (the average scored with the training weights' "
                "BatchNorm statistics can collapse to one class)",
            ),
            (0 < self.distill_alpha <= 1, "--distill-alpha must be in (0, 1]"),
            (
                self.distill_alpha <= 0.5 or self.balance not in ("weights", "sqrt-weights") or not self.teacher,
                "--distill-alpha above 0.5 cannot be combined with --balance weights/sqrt-weights "
                "(Keras weighs a soft target by its top class, which is the true label only up to 0.5)",
            ),
            (self.distill_temperature > 0, "--distill-temperature must be positive"),
            (
                0 <= self.ferplus_alpha <= 0.5,
                "--ferplus-alpha must be in [0, 0.5] (above, the votes outweigh the label)",
            ),
            (not self.ferplus_alpha or self.ferplus, "--ferplus-alpha needs --ferplus VOTES.csv"),
            (not self.ferplus_agree or self.ferplus_alpha, "--ferplus-agree needs --ferplus-alpha"),
            (
                not (self.teacher and self.ferplus_alpha),
                "--teacher and --ferplus-alpha cannot be combined: each mixes its own targets into the labels",
            ),
            (
                not self.ferplus_ties or (self.ferplus and not self.ferplus_alpha and self.ferplus_mode != "majority"),
                "--ferplus-ties needs --ferplus VOTES.csv with --ferplus-mode crossentropy or probability "
                "(a tie has no majority label)",
            ),
            (0 <= self.head_epochs < self.epochs or self.head_epochs == 0, "--head-epochs must be < --epochs"),
            (
                not (self.snapshot and self.ema),
                "--snapshot keeps the training weights, not their moving average: use it without --ema",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise FerKerasError(message)


FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
MODEL_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["model_option"])
TUNABLE = frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["tunable"])


def flag(name: str, negated: bool = False) -> str:
    """The CLI flag of a field: ``batch_size`` -> ``--batch-size`` (``--no-nesterov`` when negated)."""
    return ("--no-" if negated else "--") + name.replace("_", "-")


def _help(f: dataclasses.Field) -> str:
    default = f.default if f.default is not dataclasses.MISSING else None
    text = f.metadata["help"]
    if default in (None, "", False) or isinstance(default, list) or "default" in text:
        return text
    if default is True:
        return text
    return f"{text} (default: {default})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per ``TrainConfig`` field, grouped; a flag not given is absent from the namespace.

    Absent rather than defaulted, so ``--resume`` can tell an option the user gave from one left out.
    """
    groups = {key: parser if title is None else parser.add_argument_group(title) for key, title in GROUPS.items()}
    for f in dataclasses.fields(TrainConfig):
        m = f.metadata
        if not m["cli"]:
            continue
        group = groups[m["group"]]
        common = dict(dest=f.name, default=argparse.SUPPRESS, help=_help(f))
        if f.default is True:
            group.add_argument(flag(f.name, negated=True), action="store_false", **common)
        elif f.default is False:
            group.add_argument(flag(f.name), action="store_true", **common)
        elif isinstance(f.default, list) or f.default is dataclasses.MISSING:
            group.add_argument(flag(f.name), action="append", metavar="PATH", **common)
        else:
            kind = m["type"] or type(f.default)
            group.add_argument(
                flag(f.name), *m["aliases"], type=kind, choices=m["choices"], metavar=m["metavar"], **common
            )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A config from the flags that were given; the others keep their defaults."""
    return TrainConfig(**given_options(args))


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``TrainConfig`` fields the command line gave."""
    return {k: v for k, v in vars(args).items() if k in FIELDS}
