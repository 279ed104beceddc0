"""Training callbacks: checkpoints that ``--resume`` continues from, interrupt safety, the weights' moving average.

``ResumeCheckpoint`` writes ``best.keras``, ``last.keras`` and ``state.json`` after every epoch,
each atomically and with Ctrl-C / SIGTERM held, so the three always describe the same epoch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from fer_keras import runs
from fer_keras.runs import atomic_write
from fer_keras.training.batchnorm import BatchNormCalibration, seed_states
from fer_keras.training.config import MONITOR, TrainConfig


def restore_seed_states(model: keras.Model, values: list) -> None:
    """Put back the generator states saved in ``state.json`` so dropout masks continue as before."""
    for variable, value in zip(seed_states(model), values):
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
    ``calibration`` recomputes them for it (``fer_keras.training.batchnorm``); the training steps use
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


class CalibratedBatchNorm(keras.callbacks.Callback):
    """Before each validation, BatchNorm's moving statistics are recomputed for the weights the
    model holds (``--bn-calibration``; "precise BN"). Keras's moving averages (momentum 0.99) trail
    the weights by about a hundred steps, which early in a run, or in a short run on a subset, is
    a different network: after 2 epochs on 4,000 images MobileNetV2 scored validation accuracy
    0.173 / macro-F1 0.042 (every face "neutral") with them, and 0.257 / 0.132 with statistics
    recomputed from 2,048 training images. Training steps use batch statistics and never read the
    moving ones, so this changes what validation, checkpoints and exports see, not the training."""

    def __init__(self, calibration: BatchNormCalibration):
        super().__init__()
        self.calibration = calibration

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.calibration(self.model)


def bn_calibration(config: TrainConfig, images: np.ndarray) -> BatchNormCalibration | None:
    """``config.bn_calibration`` batches of fixed training images (a seeded sample, no augmentation)
    that recompute BatchNorm statistics; None when off."""
    if not config.bn_calibration:
        return None
    batch_size = min(config.batch_size, len(images))
    count = min(config.bn_calibration * batch_size, len(images))
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
        snapshot: Callable[[keras.Model, bool], None] | None = None,
    ):
        super().__init__()
        self.snapshot = snapshot  # also copies the run somewhere else after each epoch (--snapshot)
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

    def _save(self, filename: str) -> None:
        tmp = self.run_dir / f".tmp.{filename}"  # Keras wants the .keras suffix on the temporary file too
        self.model.save(tmp)
        os.replace(tmp, self.run_dir / filename)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        with self.interrupts.hold():
            self._checkpoint(epoch, (logs or {}).get(MONITOR))

    def _checkpoint(self, epoch: int, value) -> None:
        best = self.best
        if value is not None and (best is None or value > best):
            best = float(value)
            self._save(runs.BEST)
        self._save(runs.LAST)
        state = {
            "epoch": epoch + 1,
            "best_val_f1": best,
            "seed_states": [v.numpy().tolist() for v in seed_states(self.model)],
            "train_seconds": round(self.seconds_before + time.perf_counter() - self.started, 1),
            "counters": self._counters(),
        }
        atomic_write(self.run_dir / runs.STATE, json.dumps(state))
        if self.snapshot:
            self.snapshot(self.model, best != self.best)
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
    snapshot: Callable[[keras.Model, bool], None] | None = None,
) -> list:
    """The run's callbacks, ``ResumeCheckpoint`` last: the optimizer it saves already carries a
    learning rate that ``ReduceLROnPlateau`` lowered in the same epoch, and it restores the
    patience ``counters`` of an interrupted run after the other callbacks reset theirs. With
    ``--ema``, ``EMAWeights`` comes first, so every later callback sees the averaged weights;
    ``mid_stage`` says the model was loaded from ``last.keras`` in the middle of a stage;
    ``calibration`` recomputes BatchNorm statistics before each validation (for the average, with EMA)."""
    if config.ema:
        callbacks = [EMAWeights(calibration, resumed=mid_stage)]
    else:
        callbacks = [CalibratedBatchNorm(calibration)] if calibration is not None else []
    callbacks += [
        keras.callbacks.CSVLogger(run_dir / runs.HISTORY, append=resuming),
        keras.callbacks.TensorBoard(run_dir / runs.LOGS, write_graph=False, profile_batch=0),
        keras.callbacks.TerminateOnNaN(),
    ]
    patient = []
    if config.schedule == "plateau":
        patient.append(keras.callbacks.ReduceLROnPlateau(monitor=MONITOR, mode="max", factor=0.5, patience=3))
    if config.early_stopping:
        patient.append(keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=config.early_stopping))
    checkpoint = ResumeCheckpoint(
        run_dir, best, seconds, interrupts, watched=patient, counters=counters, snapshot=snapshot
    )
    return [*callbacks, *patient, checkpoint]


def drop_unfinished_history(path: Path, epochs_done: int) -> None:
    """Keep only the ``history.csv`` rows of finished epochs (an interrupt after the CSV row was
    written but before ``state.json`` repeats that epoch, which would otherwise log it twice).
    A run stopped before its first epoch ended leaves an empty file, or a header alone: the
    header is rewritten by the logger then, so nothing but finished rows is kept."""
    if not path.exists():
        return
    lines = path.read_bytes().decode().splitlines(keepends=True)  # bytes: keeps CSVLogger's \r\n line ends

    def finished(line: str) -> bool:
        epoch = line.split(",", 1)[0]
        return epoch.isdigit() and int(epoch) < epochs_done and line.endswith("\n")

    rows = [line for line in lines[1:] if finished(line)]
    kept = [lines[0], *rows] if rows else []
    if len(kept) != len(lines):
        atomic_write(path, "".join(kept))
