"""Train a model: ``python -m fer_keras.train --model mobilenetv2 --data PATH``.

config -> data -> model -> fit -> run directory. Every default is visible in ``TrainConfig``.
A run directory holds ``config.json``, ``history.csv``, TensorBoard ``logs/``, ``best.keras``
(selected on validation macro-F1), ``last.keras`` + ``state.json`` (for ``--resume``),
``saved_model/`` (``model.export``, what the live app loads) and ``metrics.json`` (test split).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fer_keras.batchnorm import BatchNormCalibration
from fer_keras.data import Splits, augment_config, class_weights, eval_dataset, load_splits, train_dataset
from fer_keras.data.loading import default_data_path
from fer_keras.data.pipeline import BALANCE_MODES
from fer_keras.errors import FerKerasError, cli_main
from fer_keras.metrics import classification_metrics, summary_line
from fer_keras.models import available_models, build, set_trainable_blocks
from fer_keras.tta import TTA_MODES

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "plateau")
MONITOR = "val_f1"  # validation macro-F1: what checkpoints and early stopping follow
# Options of the model builders (``TrainConfig.model_options``), each also a train flag of the same name.
MODEL_OPTIONS = (
    "input_size",
    "dropout",
    "width",
    "depth",
    "stem_stride",
    "stem",
    "head_channels",
    "fused_stages",
    "fused_expansion",
)


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` in the run directory."""

    model: str = "mobilenetv2"
    data: str = ""  # default: $FER_KERAS_DATA or data/fer2013
    out: str = ""  # default: runs/<model>-<timestamp>
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adamw"
    learning_rate: float = 2e-3
    momentum: float = 0.9  # sgd only
    nesterov: bool = True  # sgd only
    schedule: str = "cosine"
    warmup_epochs: int = 1
    weight_decay: float = 5e-4  # decoupled (adamw, sgd); adam ignores it
    label_smoothing: float = 0.1
    ema: float = 0.0  # momentum of a per-step exponential moving average of the weights; 0 = off
    augment: str = "standard"
    erasing: float | None = None  # overrides of the augmentation preset
    mixup: float | None = None
    cutmix: float | None = None
    balance: str = "none"  # none | weights | sqrt-weights | sample
    early_stopping: int = 0  # patience in epochs on val macro-F1; 0 = off
    seed: int = 0
    split_seed: int | None = None  # seeds the validation split; None = seed (fix it to vary seed alone)
    deterministic: bool = False  # tf op determinism (slower; exact resume equality)
    val_fraction: float = 0.1
    dedupe: bool = False
    limit: int = 0  # keep a stratified subset of N training images (quick runs); 0 = all
    skip_bad: bool = False
    extra: list[str] = field(default_factory=list)  # extra folder datasets merged into train
    ferplus: str = ""
    teacher: str = ""  # distillation: a trained model whose probabilities soften the labels
    teacher_tta: str = "none"  # views the teacher averages: none | flip | crops
    distill_alpha: float = 0.5  # weight of the teacher in the targets
    distill_temperature: float = 1.0  # > 1 softens the teacher's probabilities
    weights: str = ""  # "" (scratch), "imagenet", or a file
    head_epochs: int = 0  # staged fine-tuning: epochs with the backbone frozen first
    unfreeze_blocks: int = -1  # then unfreeze the last N backbone blocks (-1 = all)
    finetune_lr_scale: float = 0.1  # learning rate multiplier for the unfrozen stage
    model_options: dict = field(default_factory=dict)  # width, depth, stem_stride, fused_stages, input_size, ...
    precision: str = "auto"  # auto (float16 on CUDA, else float32) | float32 | mixed_float16 | mixed_bfloat16
    distribute: str = "none"  # none | mirrored | multiworker
    export: bool = True
    verbose: int = 1

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        values = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def val_split_seed(self) -> int:
        """The seed that carves the validation split: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def validate(self) -> None:
        """One-line errors for bad values before any work starts."""
        if self.model not in available_models():
            raise FerKerasError(f"unknown model {self.model!r}; choose from {', '.join(available_models())}")
        checks = [
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (self.balance in BALANCE_MODES, f"--balance must be one of {', '.join(BALANCE_MODES)}"),
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
            (self.teacher_tta in TTA_MODES, f"--teacher-tta must be one of {', '.join(TTA_MODES)}"),
            (0 < self.distill_alpha <= 1, "--distill-alpha must be in (0, 1]"),
            (
                self.distill_alpha <= 0.5 or self.balance not in ("weights", "sqrt-weights") or not self.teacher,
                "--distill-alpha above 0.5 cannot be combined with --balance weights/sqrt-weights "
                "(Keras weighs a soft target by its top class, which is the true label only up to 0.5)",
            ),
            (self.distill_temperature > 0, "--distill-temperature must be positive"),
            (
                0 <= self.head_epochs < self.epochs or self.head_epochs == 0,
                "--head-epochs must be < --epochs",
            ),
            (
                self.distribute in ("none", "mirrored", "multiworker"),
                "--distribute: none|mirrored|multiworker",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise FerKerasError(message)


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    history: dict[str, list[float]]
    test_metrics: dict | None
    best_val_f1: float
    seconds: float  # this call's wall time
    total_seconds: float  # the whole run's, across resumes


# --------------------------------------------------------------------------- model and optimizer


def set_precision(precision: str) -> str:
    """Apply the Keras dtype policy; ``auto`` picks mixed_float16 only on a CUDA GPU.

    On this project's 2-core CPU mixed_bfloat16 made a depthwise net ~2x slower, so CPUs stay float32.
    """
    if precision == "auto":
        precision = (
            "mixed_float16" if tf.config.list_physical_devices("GPU") and tf.test.is_built_with_cuda() else "float32"
        )
    keras.mixed_precision.set_global_policy(precision)
    return precision


def make_optimizer(config: TrainConfig, steps_per_epoch: int, lr_scale: float = 1.0) -> keras.optimizers.Optimizer:
    """Optimizer with the learning-rate schedule baked in (so it is saved and resumed with it)."""
    lr = config.learning_rate * lr_scale
    total = max(config.epochs * steps_per_epoch, 1)
    warmup = min(config.warmup_epochs * steps_per_epoch, total - 1)
    if config.schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr * (0.01 if warmup else 1.0),
            decay_steps=max(total - warmup, 1),
            alpha=0.01,
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    else:
        schedule = lr  # constant, or changed by ReduceLROnPlateau
    ema = {"use_ema": True, "ema_momentum": config.ema} if config.ema else {}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(schedule, **ema)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **ema)
    return keras.optimizers.SGD(
        schedule, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay or None, **ema
    )


def compile_model(model: keras.Model, config: TrainConfig, steps_per_epoch: int, lr_scale: float = 1.0) -> None:
    """Categorical cross-entropy and *categorical* metrics (the seed's binary accuracy was wrong)."""
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch, lr_scale),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.F1Score(average="macro", name="f1"),
            keras.metrics.TopKCategoricalAccuracy(k=2, name="top2"),
        ],
    )
    build_training_state(model)


def build_training_state(model: keras.Model) -> None:
    """Creates the optimizer's and F1Score's variables now, not inside the first traced training step:
    a tf.function that creates variables is traced twice, and tracing is most of a short run's time."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    uniform = np.full((1, model.output_shape[-1]), 1.0 / model.output_shape[-1], "float32")
    model.compute_metrics(None, uniform, uniform)
    model.reset_metrics()


def build_model(config: TrainConfig) -> keras.Model:
    """The registered model with the config's options and weights."""
    options = {k: v for k, v in config.model_options.items() if v is not None}
    if config.weights:
        options["weights"] = config.weights
    return build(config.model, **options)


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise FerKerasError("--distribute multiworker needs TF_CONFIG set on every worker (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


# --------------------------------------------------------------------------- callbacks


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` as is (no newline translation) to a temporary file, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(text.encode())
    os.replace(tmp, path)


def _seed_states(model: keras.Model) -> list:
    """Dropout's random-generator states; ``.keras`` files do not keep them."""
    return [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]


def restore_seed_states(model: keras.Model, values: list) -> None:
    """Put back the generator states saved in ``state.json`` so dropout masks continue as before."""
    for variable, value in zip(_seed_states(model), values):
        variable.assign(np.asarray(value, dtype=variable.dtype))


class Interrupts:
    """While training, SIGINT (Ctrl-C) and SIGTERM both raise ``KeyboardInterrupt``, except inside
    ``hold()``: a signal that arrives while a checkpoint is being written is raised once the files
    are complete, so an interrupt never leaves ``best.keras``, ``last.keras`` and ``state.json``
    out of step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.holding = self.pending = False
        self.previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals only reach the main thread
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
        return False

    def _handle(self, signum, frame):
        if self.holding:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def hold(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


class EMAWeights(keras.callbacks.SwapEMAWeights):
    """Validation, ``best.keras`` and ``last.keras`` see the moving average of the weights (``--ema``),
    training the weights themselves. Between an epoch's end and the next one's start the model
    holds the average and the optimizer's average slots hold the training weights, which is how
    ``last.keras`` stores them; ``resumed=True`` says the model was loaded that way, so the first
    epoch swaps back before training on.

    BatchNormalization's moving statistics followed the training weights, not their average,
    which scored with them can collapse to one class (at ``--ema 0.998`` validation accuracy was
    0.168, a single class, for five epochs). So each time the average goes in at a new step,
    ``calibration`` recomputes them for it (``fer_keras.batchnorm``); the training steps use
    batch statistics and never read the moving ones."""

    def __init__(self, calibration: BatchNormCalibration | None = None, resumed: bool = False):
        super().__init__(swap_on_epoch=True)
        self._ema_weights_in_model = resumed
        self.calibration = calibration
        self._calibrated_at: int | None = None

    def _swap_variables(self):
        super()._swap_variables()
        if self._ema_weights_in_model or self.calibration is None:
            return  # the flag flips after this call: the training weights just went back in
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step != self._calibrated_at:  # validation's statistics still hold at the same epoch's end
            self.calibration(self.model)
            self._calibrated_at = step


EMA_CALIBRATION_BATCHES = 20  # training batches (fixed, unaugmented) that recompute BatchNorm statistics


def ema_calibration(config: TrainConfig, images: np.ndarray) -> BatchNormCalibration:
    """The fixed training images (a seeded sample, no augmentation) of ``EMAWeights``' calibration."""
    batch_size = min(config.batch_size, len(images))
    count = min(EMA_CALIBRATION_BATCHES * batch_size, len(images))
    pick = np.random.default_rng(config.seed).permutation(len(images))[:count]
    return BatchNormCalibration(images[np.sort(pick)][..., None].astype(np.float32), batch_size)


# what EarlyStopping and ReduceLROnPlateau count between epochs; reset by their on_train_begin
PATIENCE_COUNTERS = {
    "EarlyStopping": ("wait", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


class ResumeCheckpoint(keras.callbacks.Callback):
    """After every epoch, each file written atomically and with interrupts held: ``best.keras``
    (when val macro-F1 improved), ``last.keras`` (weights, optimizer) and ``state.json`` (epoch,
    best val macro-F1, dropout RNG states, the patience counters of ``watched`` callbacks).
    ``state.json`` marks the epoch as finished: an interrupt before this callback repeats the
    epoch on resume, one after it loses nothing. Being last, its ``on_train_begin`` puts the
    ``counters`` of an interrupted run back after the watched callbacks reset them."""

    def __init__(
        self,
        run_dir: Path,
        best: float | None,
        seconds_before: float = 0.0,
        interrupts: Interrupts | None = None,
        watched: Sequence[keras.callbacks.Callback] = (),
        counters: dict | None = None,
    ):
        super().__init__()
        self.run_dir = run_dir
        self.best = best
        self.interrupts = interrupts or Interrupts()  # holds Ctrl-C / SIGTERM while files are written
        self.seconds_before = seconds_before  # training time of earlier (interrupted) sessions
        self.started = time.perf_counter()
        self.watched = {type(c).__name__: c for c in watched}
        self.counters = counters or {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        for name, values in self.counters.items():
            if name in self.watched:
                for key, value in values.items():
                    setattr(self.watched[name], key, value)

    def _counters(self) -> dict:
        def plain(value):
            return None if value is None else float(value) if isinstance(value, float | np.floating) else int(value)

        return {
            name: {key: plain(getattr(callback, key)) for key in PATIENCE_COUNTERS[name]}
            for name, callback in self.watched.items()
        }

    def _save(self, name: str) -> None:
        tmp = self.run_dir / f".{name}.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, self.run_dir / f"{name}.keras")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        with self.interrupts.hold():
            self._checkpoint(epoch, (logs or {}).get(MONITOR))

    def _checkpoint(self, epoch: int, value) -> None:
        best = self.best
        if value is not None and (best is None or value > best):
            best = float(value)
            self._save("best")
        self._save("last")
        state = {
            "epoch": epoch + 1,
            "best_val_f1": best,
            "seed_states": [v.numpy().tolist() for v in _seed_states(self.model)],
            "train_seconds": round(self.seconds_before + time.perf_counter() - self.started, 1),
            "counters": self._counters(),
        }
        atomic_write(self.run_dir / "state.json", json.dumps(state))
        self.best = best


def make_callbacks(
    config: TrainConfig,
    run_dir: Path,
    best: float | None,
    resuming: bool,
    seconds: float,
    interrupts: Interrupts | None = None,
    counters: dict | None = None,
    mid_stage: bool = False,
    calibration: BatchNormCalibration | None = None,
) -> list:
    """The run's callbacks, ``ResumeCheckpoint`` last: the optimizer it saves already carries a
    learning rate that ``ReduceLROnPlateau`` lowered in the same epoch, and it restores the
    patience ``counters`` of an interrupted run after the other callbacks reset theirs. With
    ``--ema``, ``EMAWeights`` comes first, so every later callback sees the averaged weights;
    ``mid_stage`` says the model was loaded from ``last.keras`` in the middle of a stage;
    ``calibration`` recomputes BatchNorm statistics for the average."""
    callbacks = [EMAWeights(calibration, resumed=mid_stage)] if config.ema else []
    callbacks += [
        keras.callbacks.CSVLogger(run_dir / "history.csv", append=resuming),
        keras.callbacks.TensorBoard(run_dir / "logs", write_graph=False, profile_batch=0),
        keras.callbacks.TerminateOnNaN(),
    ]
    patient = []
    if config.schedule == "plateau":
        patient.append(keras.callbacks.ReduceLROnPlateau(monitor=MONITOR, mode="max", factor=0.5, patience=3))
    if config.early_stopping:
        patient.append(keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=config.early_stopping))
    checkpoint = ResumeCheckpoint(run_dir, best, seconds, interrupts, watched=patient, counters=counters)
    return [*callbacks, *patient, checkpoint]


def drop_unfinished_history(path: Path, epochs_done: int) -> None:
    """Keep only the ``history.csv`` rows of finished epochs (an interrupt after the CSV row was
    written but before ``state.json`` repeats that epoch, which would otherwise log it twice)."""
    if not path.exists():
        return
    lines = path.read_bytes().decode().splitlines(keepends=True)  # bytes: keeps CSVLogger's \r\n line ends
    kept = [lines[0], *(line for line in lines[1:] if int(line.split(",", 1)[0]) < epochs_done)]
    if len(kept) != len(lines):
        atomic_write(path, "".join(kept))


# --------------------------------------------------------------------------- the run


def resolve_run_dir(config: TrainConfig, resume: bool) -> Path:
    if config.out:
        return Path(config.out)
    if resume:
        raise FerKerasError("--resume needs --out RUN_DIR (the run to continue)")
    return Path("runs") / f"{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"


def load_resume_state(run_dir: Path) -> tuple[TrainConfig, dict]:
    """The saved config and the state of the last finished epoch ({} if none finished)."""
    config_path, state_path = run_dir / "config.json", run_dir / "state.json"
    if not config_path.exists():
        raise FerKerasError(f"{run_dir} is not a run directory (no config.json); cannot --resume")
    config = TrainConfig.from_json(config_path.read_text())
    if not state_path.exists() or not (run_dir / "last.keras").exists():
        return config, {}
    return config, json.loads(state_path.read_text())


def predict_probs(model: keras.Model, faces, batch_size: int = 256) -> np.ndarray:
    """Probabilities for every image of a FaceArrays split."""
    return model.predict(faces.images[..., None].astype(np.float32), batch_size=batch_size, verbose=0)


def load_run_splits(config: TrainConfig) -> Splits:
    """The run's train / validation / test splits, exactly as its training made them."""
    return load_splits(
        config.data,
        val_fraction=config.val_fraction,
        seed=config.val_split_seed,
        dedupe=config.dedupe,
        on_error="skip" if config.skip_bad else "raise",
        extra=config.extra or None,
        ferplus=config.ferplus or None,
        limit=config.limit or None,
    )


def train(config: TrainConfig, resume: bool = False, extra_callbacks: Sequence = ()) -> RunResult:
    """Run (or resume) one training run and fill its run directory."""
    started = time.perf_counter()
    run_dir = resolve_run_dir(config, resume)
    state: dict = {}
    stopped = False  # early stopping ended the run: a resume only trains on when given more epochs
    if resume:
        saved, state = load_resume_state(run_dir)
        stopped = bool(state.get("stopped_early")) and config.epochs <= saved.epochs
        # the only things a resume may change: train longer, and how much it prints
        saved.epochs, saved.verbose = config.epochs, config.verbose
        config = saved
    done, best = int(state.get("epoch", 0)), state.get("best_val_f1")
    if stopped:
        print(
            f"early stopping ended this run at epoch {done} of {config.epochs}: nothing to resume "
            "(a larger --epochs trains on); scoring its best checkpoint",
            flush=True,
        )
    config.data = config.data or str(default_data_path())
    config.out = str(run_dir)
    config.validate()

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    set_precision(config.precision)

    splits = load_run_splits(config)
    if config.verbose:
        print(f"data: {splits.summary()} (hash {splits.data_hash[:12]})", flush=True)
    augment = augment_config(config.augment, erasing=config.erasing, mixup=config.mixup, cutmix=config.cutmix)
    steps = len(splits.train) // min(config.batch_size, len(splits.train))
    weights = class_weights(splits.train.labels, config.balance)
    val_ds = eval_dataset(splits.val)
    calibration = ema_calibration(config, splits.train.images) if config.ema else None
    targets = None
    if config.teacher:
        from fer_keras.distill import cached_teacher_probs, soft_targets

        teacher_started = time.perf_counter()
        teacher = cached_teacher_probs(
            run_dir, config.teacher, splits.train.images, config.teacher_tta, config.distill_temperature
        )
        targets = soft_targets(splits.train.labels, teacher, config.distill_alpha)
        if config.verbose:
            agree = float((teacher.argmax(1) == splits.train.labels).mean())
            print(
                f"teacher {config.teacher}: agrees with {agree:.3f} of the training labels "
                f"({(time.perf_counter() - teacher_started) / 60:.1f} min)",
                flush=True,
            )

    strategy = distribution_strategy(config.distribute)
    with strategy.scope():
        if done:
            model = keras.saving.load_model(run_dir / "last.keras")  # safe_mode stays on
            restore_seed_states(model, state.get("seed_states", []))
            build_training_state(model)
        else:
            model = build_model(config)
            if config.head_epochs:
                set_trainable_blocks(model, 0)
            compile_model(model, config, steps)
    # only now that the data and the model load: bad input leaves no half-made run directory
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / "config.json", config.to_json())
    stages = [(0, config.head_epochs, False), (config.head_epochs, config.epochs, True)]
    if not config.head_epochs:
        stages = [(0, config.epochs, False)]
    with Interrupts() as interrupts:
        for start, end, unfreeze in stages:
            if done >= end or stopped:
                continue
            if unfreeze and done <= start:
                with strategy.scope():
                    set_trainable_blocks(model, None if config.unfreeze_blocks < 0 else config.unfreeze_blocks)
                    compile_model(model, config, steps, lr_scale=config.finetune_lr_scale)
            first = max(done, start)
            train_ds, _ = train_dataset(
                splits.train, config.batch_size, config.seed, augment, config.balance, first, end, targets
            )
            seconds_before = float(state.get("train_seconds", 0.0)) + time.perf_counter() - started
            drop_unfinished_history(run_dir / "history.csv", first)
            mid_stage = first > start  # resumed from last.keras inside this stage; a new stage starts afresh
            callbacks = make_callbacks(
                config,
                run_dir,
                best,
                resuming=done > 0 or first > 0,
                seconds=seconds_before,
                interrupts=interrupts,
                counters=state.get("counters") if mid_stage else None,  # the interrupted stage's patience
                mid_stage=mid_stage,
                calibration=calibration,
            )
            model.fit(
                train_ds,
                epochs=end,
                initial_epoch=first,
                steps_per_epoch=steps,
                validation_data=val_ds,
                class_weight=weights,
                shuffle=False,  # the stream is already shuffled, per epoch, from the seed
                callbacks=[*callbacks, *extra_callbacks],
                verbose=config.verbose,
            )
            best = callbacks[-1].best
            done = end
            if model.stop_training:
                stopped = any(isinstance(c, keras.callbacks.EarlyStopping) and c.stopped_epoch for c in callbacks)
                break

    history = _read_history(run_dir / "history.csv")
    best_model = keras.saving.load_model(run_dir / "best.keras") if (run_dir / "best.keras").exists() else model
    seconds = time.perf_counter() - started
    total_seconds = round(seconds + float(state.get("train_seconds", 0.0)), 1)
    test_metrics = None
    if len(splits.test):
        test_metrics = classification_metrics(splits.test.labels, predict_probs(best_model, splits.test))
        test_metrics.update(
            split="test",
            data_hash=splits.data_hash,
            params=int(best_model.count_params()),
            best_val_f1=best,
            train_seconds=total_seconds,
        )
        atomic_write(run_dir / "metrics.json", json.dumps(test_metrics, indent=2))
    if config.export:
        from fer_keras.export import save_savedmodel

        save_savedmodel(best_model, run_dir / "saved_model")
    final_state = json.loads((run_dir / "state.json").read_text())
    atomic_write(run_dir / "state.json", json.dumps({**final_state, "finished": True, "stopped_early": stopped}))
    best_f1 = best if best is not None else float("nan")
    return RunResult(run_dir, history, test_metrics, best_f1, seconds, total_seconds)


def _read_history(path: Path) -> dict[str, list[float]]:
    import pandas as pd

    if not path.exists():
        return {}
    table = pd.read_csv(path)
    return {column: table[column].tolist() for column in table.columns}


# --------------------------------------------------------------------------- CLI


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except "not given" ones (None, "", [], a flag's False): the help says
    what leaving them out means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        unset = action.default is None or action.default is False or action.default in ("", [])
        return action.help if unset else super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m fer_keras.train",
        description="Train an emotion classifier on FER2013 (or a dataset laid out like it).",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--model", default=d.model, help=f"one of {', '.join(available_models())}")
    p.add_argument(
        "--data",
        default=None,
        help="dataset folder or fer2013.csv (default: $FER_KERAS_DATA or data/fer2013)",
    )
    p.add_argument("--out", default=None, help="run directory (default: runs/<model>-<time>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last finished epoch, with its saved options (only --epochs may change)",
    )
    g = p.add_argument_group("optimisation")
    g.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs to train (default: {d.epochs} for a new run; on --resume the saved run's, "
        "where a larger number trains longer at the schedule's final learning rate)",
    )
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="images per training step")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="optimizer")
    g.add_argument("--learning-rate", "--lr", type=float, default=d.learning_rate, help="peak learning rate")
    g.add_argument("--momentum", type=float, default=d.momentum, help="sgd momentum")
    g.add_argument("--no-nesterov", action="store_true", help="plain momentum for sgd")
    g.add_argument("--schedule", choices=SCHEDULES, default=d.schedule, help="learning-rate schedule")
    g.add_argument("--warmup-epochs", type=int, default=d.warmup_epochs, help="linear warm-up of the cosine schedule")
    g.add_argument(
        "--weight-decay", type=float, default=d.weight_decay, help="decoupled weight decay (adamw, sgd; adam has none)"
    )
    g.add_argument("--label-smoothing", type=float, default=d.label_smoothing, help="label smoothing")
    g.add_argument(
        "--ema",
        type=float,
        default=d.ema,
        metavar="MOMENTUM",
        help="validate, checkpoint and export a per-step moving average of the weights (e.g. 0.999); 0 = off",
    )
    g.add_argument(
        "--early-stopping",
        type=int,
        default=d.early_stopping,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a val macro-F1 gain; 0 = off",
    )
    g.add_argument("--seed", type=int, default=d.seed, help="initialisation, augmentation and (by default) the split")
    g.add_argument("--deterministic", action="store_true", help="deterministic TF ops (slower)")
    g = p.add_argument_group("data")
    g.add_argument("--augment", default=d.augment, help="preset: none, light, standard, strong")
    g.add_argument("--erasing", type=float, default=None, help="random-erasing probability (default: the preset's)")
    g.add_argument("--mixup", type=float, default=None, help="mixup Beta alpha, 0 = off (default: the preset's)")
    g.add_argument("--cutmix", type=float, default=None, help="cutmix Beta alpha, 0 = off (default: the preset's)")
    g.add_argument("--balance", choices=BALANCE_MODES, default=d.balance, help="class weights or sampling")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction, help="share of train held out")
    g.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the validation split (default: --seed); fix it to compare seeds on the same validation images",
    )
    g.add_argument(
        "--dedupe", action="store_true", help="drop train images also in val/test or with conflicting labels"
    )
    g.add_argument("--limit", type=int, default=0, help="train on a stratified subset of N images; 0 = all")
    g.add_argument("--skip-bad", action="store_true", help="skip and count unreadable images instead of stopping")
    g.add_argument("--extra", action="append", default=[], help="extra folder dataset merged into training")
    g.add_argument("--ferplus", default="", help="FER+ fer2013new.csv to relabel a fer2013.csv --data")
    g = p.add_argument_group("distillation (soft targets from a trained model on the same --split-seed/--val-fraction)")
    g.add_argument("--teacher", default="", help="teacher model: .keras, SavedModel, .tflite, .onnx or run dir")
    g.add_argument("--teacher-tta", choices=TTA_MODES, default=d.teacher_tta, help="views the teacher averages")
    g.add_argument("--distill-alpha", type=float, default=d.distill_alpha, help="weight of the teacher")
    g.add_argument("--distill-temperature", type=float, default=d.distill_temperature, help="softens the teacher")
    g = p.add_argument_group("model", "options not given take the model's own defaults")
    g.add_argument(
        "--weights",
        default="",
        help="'imagenet' (Keras cache) or a .keras/.weights.h5/.h5/.pth file (default: random initialisation)",
    )
    g.add_argument("--input-size", type=int, default=None, help="resize crops in-graph to this size")
    g.add_argument("--dropout", type=float, default=None, help="dropout before the classifier")
    g.add_argument("--width", type=float, default=None, help="mobilenetv2 width multiplier")
    g.add_argument("--depth", type=float, default=None, help="mobilenetv2 depth multiplier")
    g.add_argument("--stem-stride", type=int, choices=(1, 2), default=None, help="mobilenetv2 stem stride")
    g.add_argument("--head-channels", type=int, default=None, help="mobilenetv2 channels of the last 1x1 conv")
    g.add_argument(
        "--fused-stages",
        type=int,
        default=None,
        help="mobilenetv2: the first N stages use Fused-MBConv blocks (a dense 3x3 conv instead of 1x1 + depthwise)",
    )
    g.add_argument(
        "--fused-expansion", type=int, default=None, help="mobilenetv2: expansion cap of the fused blocks (default 4)"
    )
    g.add_argument("--stem", choices=("small", "imagenet"), default=None, help="resnet18 stem")
    g.add_argument("--head-epochs", type=int, default=0, help="staged fine-tuning: epochs with a frozen backbone")
    g.add_argument("--unfreeze-blocks", type=int, default=-1, help="then unfreeze the last N blocks (-1 = all)")
    g.add_argument(
        "--finetune-lr-scale", type=float, default=d.finetune_lr_scale, help="learning rate factor after unfreezing"
    )
    g = p.add_argument_group("hardware")
    g.add_argument(
        "--precision",
        default=d.precision,
        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        help="auto = mixed_float16 on a CUDA GPU, else float32",
    )
    g.add_argument(
        "--distribute",
        default=d.distribute,
        choices=("none", "mirrored", "multiworker"),
        help="multiworker reads TF_CONFIG",
    )
    g.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    model_options = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}
    return TrainConfig(
        model=args.model,
        data=args.data or "",
        out=args.out or "",
        epochs=TrainConfig.epochs if args.epochs is None else args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        momentum=args.momentum,
        nesterov=not args.no_nesterov,
        schedule=args.schedule,
        warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        ema=args.ema,
        augment=args.augment,
        erasing=args.erasing,
        mixup=args.mixup,
        cutmix=args.cutmix,
        balance=args.balance,
        early_stopping=args.early_stopping,
        seed=args.seed,
        split_seed=args.split_seed,
        deterministic=args.deterministic,
        val_fraction=args.val_fraction,
        dedupe=args.dedupe,
        limit=args.limit,
        skip_bad=args.skip_bad,
        extra=args.extra,
        ferplus=args.ferplus,
        teacher=args.teacher,
        teacher_tta=args.teacher_tta,
        distill_alpha=args.distill_alpha,
        distill_temperature=args.distill_temperature,
        weights=args.weights,
        head_epochs=args.head_epochs,
        unfreeze_blocks=args.unfreeze_blocks,
        finetune_lr_scale=args.finetune_lr_scale,
        model_options=model_options,
        precision=args.precision,
        distribute=args.distribute,
        export=not args.no_export,
        verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2),
    )


# what --resume may take from the command line; everything else comes from the run's config.json
RESUME_OPTIONS = ("epochs", "out", "verbose")


def resume_config(args: argparse.Namespace) -> TrainConfig:
    """The saved config of the run in ``--out``, with ``--epochs`` if given.

    Any other option given with a value that differs from the saved run is a one-line error rather
    than silently ignored (an option left at its default cannot be told apart from one not given).
    """
    given = config_from_args(args)
    saved, _ = load_resume_state(resolve_run_dir(given, resume=True))
    defaults = config_from_args(build_parser().parse_args([]))
    conflicts = [
        f"--{f.name.replace('_', '-')} (saved {getattr(saved, f.name)!r}, given {getattr(given, f.name)!r})"
        for f in dataclasses.fields(TrainConfig)
        if f.name not in RESUME_OPTIONS
        and getattr(given, f.name) not in (getattr(defaults, f.name), getattr(saved, f.name))
    ]
    if conflicts:
        raise FerKerasError(
            f"--resume continues {given.out} with its saved options, but {', '.join(conflicts)} differ; "
            "only --epochs may change (start a new --out to change the others)"
        )
    if args.epochs is not None:
        saved.epochs = args.epochs
    saved.out, saved.verbose = given.out, given.verbose
    return saved


def run_minutes(result: RunResult) -> str:
    """The run's training time, and this call's share when it resumed an earlier one."""
    total = f"{result.total_seconds / 60:.1f} min"
    if result.total_seconds - result.seconds > 1.0:
        return f"{total} in all, {result.seconds / 60:.1f} min of it in this call"
    return total


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.resume:
        config = resume_config(args)
    else:
        config = config_from_args(args)
        config.out = str(resolve_run_dir(config, resume=False))
    try:
        result = train(config, resume=args.resume)
    except KeyboardInterrupt:
        print(
            f"interrupted; finished epochs are saved: resume with --resume --out {config.out}",
            file=sys.stderr,
        )
        return 130
    print(f"run: {result.run_dir} ({run_minutes(result)}, best val macro-F1 {result.best_val_f1:.4f})")
    if result.test_metrics:
        print(f"test {summary_line(result.test_metrics)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
