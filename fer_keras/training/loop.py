"""The training loop: ``train(config)`` runs (or resumes) one run and fills its run directory.

config -> data -> model -> fit -> run directory (``fer_keras.runs``). Every option and its
default is in ``fer_keras.training.config.TrainConfig``; ``python -m fer_keras.train`` and
``fer_keras.tune`` both train through ``train``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fer_keras import runs
from fer_keras.contract import NUM_CLASSES
from fer_keras.data.augment import augment_config
from fer_keras.data.balance import class_weights
from fer_keras.data.ferplus import dropped_counts, tied
from fer_keras.data.ferplus import mixed_targets as ferplus_mixed_targets
from fer_keras.data.ferplus import targets as ferplus_targets
from fer_keras.data.loading import default_data_path
from fer_keras.data.pipeline import eval_dataset, train_dataset
from fer_keras.errors import FerKerasError
from fer_keras.models import build
from fer_keras.models.dtype import layer_policies
from fer_keras.models.head import set_trainable_blocks
from fer_keras.reporting.metrics import classification_metrics
from fer_keras.runs import RunDir, atomic_write
from fer_keras.training.callbacks import (
    Interrupts,
    bn_calibration,
    drop_unfinished_history,
    make_callbacks,
    restore_seed_states,
)
from fer_keras.training.config import TrainConfig


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

    CPUs stay float32: without bfloat16 matmul units, mixed_bfloat16 made a depthwise net about 2x slower.
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
    """Categorical cross-entropy and *categorical* metrics.

    Binary accuracy on one-hot targets would count the six correct zeros of every wrong answer
    and read about 0.86 for a model that is wrong most of the time."""
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


def under_current_policy(saved: keras.Model, config: TrainConfig, num_classes: int, steps: int, epoch: int):
    """A checkpoint as the current precision policy builds it: itself when its layers compute as a
    fresh model's would, else the fresh model with its weights and optimizer state (both float32
    under any policy), so a run resumed with another ``--precision`` continues where it was.
    (Loading does not do this: a layer saved under the default policy loads under the global one,
    a layer saved under a mixed policy keeps it.)"""
    model = model_at_epoch(config.replace(weights=""), num_classes, steps, epoch)
    if layer_policies(model) == layer_policies(saved):
        return saved
    build_training_state(model)
    build_training_state(saved)
    model.set_weights(saved.get_weights())

    def inner(optimizer):  # mixed_float16 wraps the optimizer for loss scaling
        return getattr(optimizer, "inner_optimizer", optimizer)

    for new, old in zip(inner(model.optimizer).variables, inner(saved.optimizer).variables, strict=True):
        new.assign(old)
    before = Counter(layer_policies(saved)).most_common(1)[0][0]
    after = Counter(layer_policies(model)).most_common(1)[0][0]
    print(f"precision: the checkpoint's layers computed in {before}; they go on in {after}", flush=True)
    return model


def build_model(config: TrainConfig, num_classes: int = NUM_CLASSES) -> keras.Model:
    """The registered model with the config's options and weights, for ``num_classes`` classes."""
    options = {k: v for k, v in config.model_options.items() if v is not None}
    if num_classes != NUM_CLASSES:
        options["num_classes"] = num_classes
    if config.weights:
        options["weights"] = config.weights
    return build(config.model, **options)


def model_at_epoch(config: TrainConfig, num_classes: int, steps: int, epoch: int) -> keras.Model:
    """The compiled model a run trains after ``epoch`` epochs: with ``--head-epochs``, its
    backbone frozen in the first stage, unfrozen at the fine-tuning learning rate after it."""
    model = build_model(config, num_classes)
    if config.head_epochs and epoch <= config.head_epochs:
        set_trainable_blocks(model, 0)
        compile_model(model, config, steps)
    elif config.head_epochs:
        set_trainable_blocks(model, None if config.unfreeze_blocks < 0 else config.unfreeze_blocks)
        compile_model(model, config, steps, lr_scale=config.finetune_lr_scale)
    else:
        compile_model(model, config, steps)
    return model


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise FerKerasError(
                "--distribute multiworker needs TF_CONFIG (the cluster's addresses and this worker's index) set on every worker"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


# --------------------------------------------------------------------------- the run


def resolve_run_dir(config: TrainConfig, resume: bool) -> Path:
    """``--out``, else a new ``runs/<model>-<time>`` (a resume must name the run it continues)."""
    if config.out:
        return Path(config.out)
    if resume:
        raise FerKerasError("--resume needs --out RUN_DIR (the run to continue)")
    return Path("runs") / f"{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"


def load_resume_state(run_dir: Path) -> tuple[TrainConfig, dict]:
    """The saved config and the state of the last finished epoch ({} if none finished)."""
    run = RunDir(run_dir)
    if not run.is_run:
        raise FerKerasError(f"{run_dir} is not a run directory (no {runs.CONFIG}); cannot --resume")
    return TrainConfig.from_dict(run.config()), run.resume_state()


def predict_probs(model: keras.Model, faces, batch_size: int = 256) -> np.ndarray:
    """Probabilities for every image of a FaceArrays split."""
    return model.predict(faces.images[..., None].astype(np.float32), batch_size=batch_size, verbose=0)


@dataclass
class TrainingRun:
    """What ``prepare`` sets up for ``fit`` and ``report``: the resolved config, where the run
    stands, its data and targets, and the model."""

    config: TrainConfig
    run_dir: Path
    state: dict  # the last finished epoch's resume state ({} for a new run)
    done: int  # epochs finished
    best: float | None  # best validation macro-F1 so far
    stopped: bool  # early stopping ended the run: a resume trains on only when given more epochs
    splits: object
    augment: object
    steps: int  # training steps per epoch
    class_weight: dict | None
    val_ds: object
    calibration: object
    targets: np.ndarray | None  # soft or vote targets; None: the one-hot labels
    draw: bool  # draw a label from ``targets`` every step (FER+ probability mode)
    strategy: tf.distribute.Strategy
    model: keras.Model


def train(config: TrainConfig, resume: bool = False, extra_callbacks: Sequence = ()) -> RunResult:
    """Run (or resume) one training run and fill its run directory: prepare, fit, report."""
    started = time.perf_counter()
    run = prepare(config, resume)
    fit(run, started, extra_callbacks)
    return report(run, started)


def prepare(config: TrainConfig, resume: bool = False) -> TrainingRun:
    """The run's config (a resume's saved one), data, targets and model; writes ``config.json``
    only once they all load, so bad input leaves no half-made run directory."""
    config, run_dir, state, stopped = resolve_config(config, resume)
    done, best = int(state.get("epoch", 0)), state.get("best_val_f1")

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    set_precision(config.precision)

    splits = runs.load_config_splits(config)
    if config.verbose:
        print(f"data: {splits.summary()} (hash {splits.data_hash[:12]})", flush=True)
    augment = augment_config(
        config.augment, erasing=config.erasing, mixup=config.mixup, cutmix=config.cutmix, degrade=config.degrade
    )
    steps = len(splits.train) // min(config.batch_size, len(splits.train))
    classes = splits.train.classes
    class_weight = class_weights(splits.train.labels, config.balance, len(classes))
    val_ds = eval_dataset(splits.val)
    calibration = bn_calibration(config, splits.train.images)
    targets, draw = training_targets(config, splits, run_dir)

    strategy = distribution_strategy(config.distribute)
    with strategy.scope():
        if done:
            model = keras.saving.load_model(run_dir / runs.LAST)  # safe_mode stays on
            model = under_current_policy(model, config, len(classes), steps, done)
            restore_seed_states(model, state.get("seed_states", []))
            build_training_state(model)
        else:
            model = model_at_epoch(config, len(classes), steps, 0)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / runs.CONFIG, config.to_json())
    return TrainingRun(
        config=config,
        run_dir=run_dir,
        state=state,
        done=done,
        best=best,
        stopped=stopped,
        splits=splits,
        augment=augment,
        steps=steps,
        class_weight=class_weight,
        val_ds=val_ds,
        calibration=calibration,
        targets=targets,
        draw=draw,
        strategy=strategy,
        model=model,
    )


def resolve_config(config: TrainConfig, resume: bool) -> tuple[TrainConfig, Path, dict, bool]:
    """The config a run trains with (a resume's saved one, with only ``epochs``, ``verbose``,
    ``snapshot`` and ``precision`` taken from ``config``), its folder, its resume state, and
    whether early stopping ended it."""
    run_dir = resolve_run_dir(config, resume)
    state: dict = {}
    stopped = False
    if resume and config.snapshot:
        from fer_keras.training.snapshot import read_snapshot, restore_snapshot, run_epoch, snapshot_epoch

        if snapshot_epoch(Path(config.snapshot)) > run_epoch(run_dir):  # the run folder is lost, or behind
            saved, meta, epoch = read_snapshot(Path(config.snapshot))
            model = model_at_epoch(saved.replace(weights=""), meta["num_classes"], meta["steps_per_epoch"], epoch)
            restore_snapshot(Path(config.snapshot), run_dir, model)
            print(f"restored {run_dir} from the snapshot {config.snapshot} at epoch {epoch}", flush=True)
    if resume:
        saved, state = load_resume_state(run_dir)
        stopped = bool(state.get("stopped_early")) and config.epochs <= saved.epochs
        # the only things a resume may change: train longer, how much it prints, where it snapshots,
        # and the precision (a property of the machine it resumes on, such as bfloat16 units)
        saved.epochs, saved.verbose, saved.precision = config.epochs, config.verbose, config.precision
        saved.snapshot = config.snapshot or saved.snapshot
        config = saved
    if stopped:
        print(
            f"early stopping ended this run at epoch {int(state.get('epoch', 0))} of {config.epochs}: nothing to "
            "resume (a larger --epochs trains on); scoring its best checkpoint",
            flush=True,
        )
    config.data = config.data or str(default_data_path())
    config.out = str(run_dir)
    config.validate()
    return config, run_dir, state, stopped


def training_targets(config: TrainConfig, splits, run_dir: Path) -> tuple[np.ndarray | None, bool]:
    """The targets training fits, when not the one-hot labels: FER+ votes (as the labels, or mixed
    into them) and a teacher's soft targets; and whether a label is drawn from them every step."""
    train, classes = splits.train, splits.train.classes
    targets, draw = None, False
    if config.ferplus_alpha:
        targets = ferplus_mixed_targets(train.labels, train.votes, config.ferplus_alpha, config.ferplus_agree)
        if config.verbose:
            moved = float((np.abs(targets - np.eye(len(classes))[train.labels]).sum(1) > 1e-6).mean())
            print(
                f"FER+ votes as a teacher (alpha {config.ferplus_alpha}): {moved:.1%} of the targets mixed", flush=True
            )
    elif train.votes is not None:
        targets = ferplus_targets(train.votes, config.ferplus_mode)
        draw = config.ferplus_mode == "probability"
        if config.verbose:
            dropped = ", ".join(f"{k}: {n}" for k, n in dropped_counts(train, splits.val, splits.test).items())
            ties = f"; {int(tied(train.votes).sum())} tied training images kept" if config.ferplus_ties else ""
            print(
                f"FER+ labels ({len(classes)} classes, {config.ferplus_mode} targets); left out {dropped}{ties}",
                flush=True,
            )
    elif config.ferplus_mode != "majority":
        raise FerKerasError("--ferplus-mode needs FER+ votes for a folder dataset (--ferplus fer2013_votes.csv)")
    if config.teacher:
        from fer_keras.training.distill import cached_teacher_probs, soft_targets

        teacher_started = time.perf_counter()
        teacher = cached_teacher_probs(
            run_dir, config.teacher, train.images, config.teacher_tta, config.distill_temperature, classes
        )
        # a FER+ run mixes the teacher into its vote targets, a FER2013 run into the one-hot labels
        targets = soft_targets(train.labels if targets is None else targets, teacher, config.distill_alpha)
        if config.verbose:
            agree = float((teacher.argmax(1) == train.labels).mean())
            print(
                f"teacher {config.teacher}: agrees with {agree:.3f} of the training labels "
                f"({(time.perf_counter() - teacher_started) / 60:.1f} min)",
                flush=True,
            )
    return targets, draw


def fit(run: TrainingRun, started: float, extra_callbacks: Sequence = ()) -> None:
    """Train the epochs still to do, stage by stage (a frozen-backbone stage first with
    ``--head-epochs``); ``run.done``, ``run.best`` and ``run.stopped`` follow."""
    config, model = run.config, run.model
    stages = [(0, config.head_epochs, False), (config.head_epochs, config.epochs, True)]
    if not config.head_epochs:
        stages = [(0, config.epochs, False)]
    with Interrupts() as interrupts:
        for start, end, unfreeze in stages:
            if run.done >= end or run.stopped:
                continue
            if unfreeze and run.done <= start:
                with run.strategy.scope():
                    set_trainable_blocks(model, None if config.unfreeze_blocks < 0 else config.unfreeze_blocks)
                    compile_model(model, config, run.steps, lr_scale=config.finetune_lr_scale)
            first = max(run.done, start)
            train_ds, _ = train_dataset(
                run.splits.train,
                config.batch_size,
                config.seed,
                run.augment,
                config.balance,
                first,
                end,
                run.targets,
                run.draw,
            )
            seconds_before = float(run.state.get("train_seconds", 0.0)) + time.perf_counter() - started
            drop_unfinished_history(run.run_dir / runs.HISTORY, first)
            mid_stage = first > start  # resumed from last.keras inside this stage; a new stage starts afresh
            callbacks = make_callbacks(
                config,
                run.run_dir,
                run.best,
                resuming=run.done > 0 or first > 0,
                seconds=seconds_before,
                interrupts=interrupts,
                counters=run.state.get("counters") if mid_stage else None,  # the interrupted stage's patience
                mid_stage=mid_stage,
                calibration=run.calibration,
                snapshot=snapshot_writer(run),
            )
            model.fit(
                train_ds,
                epochs=end,
                initial_epoch=first,
                steps_per_epoch=run.steps,
                validation_data=run.val_ds,
                class_weight=run.class_weight,
                shuffle=False,  # the stream is already shuffled, per epoch, from the seed
                callbacks=[*callbacks, *extra_callbacks],
                verbose=config.verbose,
            )
            run.best = callbacks[-1].best
            run.done = end
            if model.stop_training:
                run.stopped = any(isinstance(c, keras.callbacks.EarlyStopping) and c.stopped_epoch for c in callbacks)
                break


def snapshot_writer(run: TrainingRun):
    """What ``--snapshot`` writes after each epoch's checkpoint (None without it)."""
    if not run.config.snapshot:
        return None
    from fer_keras.training.snapshot import write_snapshot

    def write(model: keras.Model, best_improved: bool) -> None:
        meta = {
            "num_classes": int(model.output_shape[-1]),
            "steps_per_epoch": run.steps,
            "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        }
        write_snapshot(model, run.run_dir, Path(run.config.snapshot), best_improved, meta)

    return write


def report(run: TrainingRun, started: float) -> RunResult:
    """Score the best checkpoint on the test split (after training chose it on validation), export
    it, and mark the run finished."""
    config, splits, run_dir = run.config, run.splits, run.run_dir
    history = _read_history(run_dir / runs.HISTORY)
    best_file = run_dir / runs.BEST
    best_model = keras.saving.load_model(best_file) if best_file.exists() else run.model
    seconds = time.perf_counter() - started
    total_seconds = round(seconds + float(run.state.get("train_seconds", 0.0)), 1)
    test_metrics = None
    if len(splits.test):
        test_metrics = classification_metrics(splits.test.labels, predict_probs(best_model, splits.test))
        test_metrics.update(
            split="test",
            data_hash=splits.data_hash,
            params=int(best_model.count_params()),
            best_val_f1=run.best,
            train_seconds=total_seconds,
            # --limit scores a stratified subset of the test split, not all of it
            test_subset=bool(config.limit),
        )
        atomic_write(run_dir / runs.METRICS, json.dumps(test_metrics, indent=2))
    if config.export:
        from fer_keras.inference.export import save_savedmodel

        save_savedmodel(best_model, run_dir / runs.SAVED_MODEL)
    final_state = json.loads((run_dir / runs.STATE).read_text())
    atomic_write(run_dir / runs.STATE, json.dumps({**final_state, "finished": True, "stopped_early": run.stopped}))
    best_f1 = run.best if run.best is not None else float("nan")
    return RunResult(run_dir, history, test_metrics, best_f1, seconds, total_seconds)


def _read_history(path: Path) -> dict[str, list[float]]:
    import pandas as pd

    if not path.exists():
        return {}
    table = pd.read_csv(path)
    return {column: table[column].tolist() for column in table.columns}
