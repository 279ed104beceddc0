"""The run directory: the unit of reproducibility, and the one place that knows its layout.

A run directory holds ``config.json`` (the resolved training options), ``history.csv``,
TensorBoard ``logs/``, ``best.keras`` (chosen on validation macro-F1), ``last.keras`` +
``state.json`` (what ``--resume`` continues from), ``saved_model/`` and ``metrics.json``
(test split). From it come the model file to load and the exact train / validation / test
split the run was trained on, so evaluation and significance tests score the images the run
held out, never images it trained on.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fer_keras.data.loading import Splits, default_data_path, load_faces, load_splits
from fer_keras.data.sources import FaceArrays
from fer_keras.errors import FerKerasError

CONFIG = "config.json"
STATE = "state.json"
BEST = "best.keras"
LAST = "last.keras"
SAVED_MODEL = "saved_model"
METRICS = "metrics.json"
HISTORY = "history.csv"
LOGS = "logs"
TEACHER_PROBS = "teacher_probs.npy"

# the validation split every model is scored on when no run directory says otherwise (train's defaults)
DEFAULT_SPLIT = {"seed": 0, "val_fraction": 0.1}


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` as is (no newline translation) to a temporary file, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(text.encode())
    os.replace(tmp, path)


def split_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``load_splits`` arguments that rebuild the splits a training config made."""
    seed = config.get("split_seed")
    return {
        "path": config.get("data") or str(default_data_path()),
        "val_fraction": config.get("val_fraction", DEFAULT_SPLIT["val_fraction"]),
        "seed": config.get("seed", DEFAULT_SPLIT["seed"]) if seed is None else seed,
        "dedupe": bool(config.get("dedupe")),
        "on_error": "skip" if config.get("skip_bad") else "raise",
        "extra": config.get("extra") or None,
        "ferplus": config.get("ferplus") or None,
        "limit": config.get("limit") or None,
        # a FER2013 run with the FER+ votes as a teacher keeps its FER2013 labels
        "ferplus_labels": not config.get("ferplus_alpha"),
        "ferplus_ties": bool(config.get("ferplus_ties")),
    }


def load_config_splits(config: Mapping[str, Any] | Any) -> Splits:
    """The train / validation / test splits of a training config (a ``TrainConfig`` or its dict),
    exactly as its training made them."""
    if not isinstance(config, Mapping):
        config = dataclasses.asdict(config)
    return load_splits(**split_options(config))


class RunDir:
    """A training run's folder: its files, its config, its resume state, its model and its splits."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def is_run(self) -> bool:
        return (self.path / CONFIG).is_file()

    @classmethod
    def containing(cls, model_path: str | Path) -> RunDir | None:
        """The run a model file or folder belongs to (the path itself, or its parent), if any."""
        path = Path(model_path)
        for folder in (path, path.parent):
            if folder.is_dir() and (folder / CONFIG).is_file():
                return cls(folder)
        return None

    def config(self) -> dict[str, Any]:
        """The saved training options (``config.json``) as a plain dict."""
        if not self.is_run:
            raise FerKerasError(f"{self.path} is not a run directory (no {CONFIG})")
        try:
            return json.loads((self.path / CONFIG).read_text())
        except ValueError as err:
            raise FerKerasError(f"{self.path / CONFIG} is not valid JSON: {err}") from None

    def resume_state(self) -> dict[str, Any]:
        """The state of the last finished epoch ({} if none finished)."""
        if not (self.path / STATE).exists() or not (self.path / LAST).exists():
            return {}
        return json.loads((self.path / STATE).read_text())

    def model_file(self) -> Path:
        """The model to load: the exported SavedModel, else the best checkpoint."""
        for name in (SAVED_MODEL, BEST):
            if (self.path / name).exists():
                return self.path / name
        raise FerKerasError(f"run directory {self.path} has no {BEST} or {SAVED_MODEL}/ yet")

    def splits(self, data: str | Path | None = None) -> Splits:
        """The splits this run trained on (``data`` reads the same dataset from another path)."""
        config = self.config()
        if data is not None:
            config["data"] = str(data)
        return load_config_splits(config)


def val_split_of(
    model_path: str | Path | None, split_seed: int | None = None, val_fraction: float | None = None
) -> tuple[int, float]:
    """(split seed, fraction) of the validation split to score a model on: the values given, else
    those of the run the model belongs to (a ``--seed 1`` run is scored on its own held-out images,
    not on images it trained on), else the training defaults."""
    run = RunDir.containing(model_path) if model_path is not None else None
    options = split_options(run.config() if run else {})
    seed = options["seed"] if split_seed is None else split_seed
    return seed, options["val_fraction"] if val_fraction is None else val_fraction


def select_split(
    data: str | Path,
    split: str,
    model_path: str | Path | None = None,
    split_seed: int | None = None,
    val_fraction: float | None = None,
    ferplus: str | Path | None = None,
) -> FaceArrays:
    """The images to score a model on.

    ``test`` / ``train`` are the dataset's own splits (a folder of ``<class>/`` images is used
    whole). ``val`` is carved from train as the run the model belongs to carved it: the same seed,
    fraction, FER+ labels, skipped files and extra data (``val_split_of``); a model outside a run
    gets the training defaults. ``ferplus`` (a votes file) labels the images with FER+ majorities
    instead of the run's labels. ``--limit`` never applies here: evaluation uses whole splits.
    """
    run = RunDir.containing(model_path) if model_path is not None else None
    options = split_options({**(run.config() if run else {}), "data": str(data), "limit": 0})
    if ferplus:
        options["ferplus"], options["ferplus_labels"] = str(ferplus), True
    elif not options["ferplus_labels"]:
        options["ferplus"] = None  # the votes were a teacher's: the run is scored on its own labels
    if split == "val":
        options["seed"], options["val_fraction"] = val_split_of(model_path, split_seed, val_fraction)
        return load_splits(**options).val
    faces = load_faces(data, on_error=options["on_error"], ferplus=options["ferplus"])
    if (faces.splits == split).any():
        return faces.split(split)
    if set(faces.splits.tolist()) == {"all"}:
        return faces  # a single folder of <class>/ images: evaluate all of it
    raise FerKerasError(f"{data} has no {split!r} split (it has: {', '.join(sorted(set(faces.splits)))})")
