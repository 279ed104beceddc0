"""A compact copy of a run that survives the loss of its folder (``train --snapshot DIR``).

A run longer than a working session can lose its run directory with the machine. After every
epoch the snapshot folder gets what resuming needs, small enough to keep under version control
and overwrite in place: the config, state and history, and the last and best epochs' weights in
float16 (``last.weights.npz``, ``best.weights.npz``; a quarter of a ``.keras`` checkpoint with its
optimizer). ``train --resume --out RUN --snapshot DIR`` rebuilds ``RUN`` from it when ``RUN`` is
missing or behind: the model from its config, the weights cast back to float32, the optimizer at the
snapshot's step (so the learning-rate schedule continues where it was). What it does not keep is
the optimizer's momentum, which restarts from zero, and the float32 digits of the weights.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from fer_keras import runs
from fer_keras.errors import FerKerasError
from fer_keras.runs import atomic_write

LAST_WEIGHTS = "last.weights.npz"
BEST_WEIGHTS = "best.weights.npz"
META = "snapshot.json"
COPIED = (runs.CONFIG, runs.STATE, runs.HISTORY)


def _weights_npz(model: keras.Model, path: Path) -> None:
    arrays = {}
    for i, value in enumerate(model.get_weights()):
        value = np.asarray(value)
        arrays[f"w{i:04d}"] = value.astype(np.float16) if np.issubdtype(value.dtype, np.floating) else value
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def write_snapshot(model: keras.Model, run_dir: Path, snapshot: Path, best_improved: bool, meta: dict) -> None:
    """Replace ``snapshot`` with the run's state after the epoch just checkpointed in ``run_dir``
    (the best weights carried over from the previous snapshot unless this epoch improved them).
    Built beside it and swapped in, so the folder is always one whole snapshot."""
    snapshot = Path(snapshot)
    partial = snapshot.with_name(f".{snapshot.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in COPIED:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, partial / name)
    _weights_npz(model, partial / LAST_WEIGHTS)
    if best_improved or not (snapshot / BEST_WEIGHTS).exists():
        if best_improved:
            shutil.copy2(partial / LAST_WEIGHTS, partial / BEST_WEIGHTS)
    else:
        shutil.copy2(snapshot / BEST_WEIGHTS, partial / BEST_WEIGHTS)
    atomic_write(partial / META, json.dumps(meta, indent=2) + "\n")
    old = snapshot.with_name(f".{snapshot.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if snapshot.exists():
        os.replace(snapshot, old)
    os.replace(partial, snapshot)
    shutil.rmtree(old, ignore_errors=True)


def snapshot_epoch(snapshot: Path) -> int:
    """The epochs a snapshot holds (0 if there is none)."""
    try:
        return int(json.loads((Path(snapshot) / runs.STATE).read_text()).get("epoch", 0))
    except (OSError, ValueError):
        return 0


def run_epoch(run_dir: Path) -> int:
    return int(runs.RunDir(run_dir).resume_state().get("epoch", 0)) if runs.RunDir(run_dir).is_run else 0


def _load_weights(model: keras.Model, path: Path) -> None:
    with np.load(path) as saved:
        values = [saved[f"w{i:04d}"] for i in range(len(saved.files))]
    targets = model.get_weights()
    if [v.shape for v in values] != [t.shape for t in targets]:
        raise FerKerasError(f"{path} does not fit the model its snapshot's config builds")
    model.set_weights([v.astype(t.dtype) for v, t in zip(values, targets)])


def read_snapshot(snapshot: Path):
    """A snapshot's training config, its ``snapshot.json`` (classes, steps per epoch, optimizer
    step) and its epochs."""
    from fer_keras.training.config import TrainConfig

    snapshot = Path(snapshot)
    try:
        meta = json.loads((snapshot / META).read_text())
        config = TrainConfig.from_json((snapshot / runs.CONFIG).read_text())
    except (OSError, ValueError) as err:
        raise FerKerasError(f"{snapshot} is not a training snapshot ({err})") from None
    return config, meta, snapshot_epoch(snapshot)


def restore_snapshot(snapshot: Path, run_dir: Path, model: keras.Model) -> None:
    """Rebuild ``run_dir`` (``last.keras``, ``best.keras``, config, state, history) from
    ``snapshot``, given the compiled ``model`` its config builds at its epoch (``read_snapshot``)."""
    snapshot, run_dir = Path(snapshot), Path(run_dir)
    _, meta, _ = read_snapshot(snapshot)
    run_dir.mkdir(parents=True, exist_ok=True)
    _load_weights(model, snapshot / LAST_WEIGHTS)
    model.optimizer.iterations.assign(meta["iterations"])
    model.save(run_dir / runs.LAST)
    if (snapshot / BEST_WEIGHTS).exists():
        _load_weights(model, snapshot / BEST_WEIGHTS)
        model.save(run_dir / runs.BEST)
    for name in COPIED:
        if (snapshot / name).exists():
            shutil.copy2(snapshot / name, run_dir / name)
