"""Ship a trained run: export its best checkpoint, score it and write its model card.

Writes ``saved_models/NAME.keras``, ``saved_models/NAME/`` (SavedModel, the live app's default),
``saved_models/NAME.tflite``, ``saved_models/NAME_confusion_matrix.png`` and the card
``saved_models/NAME.json``: the command that trained it, the data hash, parameters, FLOPs,
test accuracy / macro-F1 / per-class F1, batch-1 latency per format and the date.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shlex
import shutil
import time
from pathlib import Path

import numpy as np

from fer_keras import runs
from fer_keras.contract import CROP_SIZE, NUM_CLASSES, TTA_MODES
from fer_keras.data.ferplus import dropped_counts
from fer_keras.data.loading import Splits
from fer_keras.errors import FerKerasError
from fer_keras.inference.export import export, load_keras_model
from fer_keras.inference.predictor import load_predictor, predict
from fer_keras.models.flops import macs_per_image
from fer_keras.models.tta_layers import with_tta
from fer_keras.reporting.metrics import classification_metrics, summary_line
from fer_keras.reporting.plots import confusion_matrix_png
from fer_keras.runs import RunDir, select_split
from fer_keras.training.config import TrainConfig

TRAIN_PREFIX = "python -m fer_keras.train"  # how a card's train_command starts
# Card keys of the views a run is scored with, and how the shipped artefact's TTA is described.
VIEW_KEYS = {"none": "single_view", "flip": "tta_flip", "crops": "tta_crops"}
TFLITE_WEIGHTS = {"float32": "none", "float16": "float16"}  # --tflite-weights -> export's --quantize
TTA_DESCRIPTIONS = {
    "none": "none",
    "flip": "flip: mean of the crop and its mirror image, inside the graph",
    "crops": "crops: mean over 5 shifted crops (4-pixel reflect padding) and their mirror images, inside the graph",
}


def batch1_latency_ms(path: Path, crop: np.ndarray, repeats: int = 300) -> float:
    """Median milliseconds of one single-crop call (after warm-up)."""
    predictor = load_predictor(path)
    for _ in range(20):
        predictor(crop)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor(crop)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def _save_inference_model(source: Path, target: Path, tta: str = "none") -> None:
    """Save the model without its optimizer state (a third of the file, useless for inference).

    ``tta`` other than ``"none"`` ships the model wrapped so it averages its TTA views in-graph.
    """
    import keras

    from fer_keras.models.dtype import float32_copy

    with_tta(float32_copy(keras.saving.load_model(source, compile=False)), tta).save(target)


def run_splits(data: str | Path, run: Path, ferplus: str | Path | None = None) -> tuple[TrainConfig, Splits]:
    """The run's config (reading ``data``, and ``ferplus`` for its FER+ votes if given) and the
    splits its training made."""
    changes = {"data": str(data), **({"ferplus": str(ferplus)} if ferplus else {})}
    config = TrainConfig.from_dict(RunDir(run).config()).replace(**changes)
    return config, runs.load_config_splits(config)


def data_description(run_config, splits, n_test: int) -> str:
    labels = ""
    if run_config.ferplus:
        votes = Path(run_config.ferplus).name
        labels = (
            f", FER+ votes ({votes}) as a teacher, alpha {run_config.ferplus_alpha}"
            if run_config.ferplus_alpha
            else f", labelled by FER+ majority votes ({votes})"
        )
    dropped = dropped_counts(splits.train, splits.val, splits.test)
    left_out = "; left out by the FER+ protocol: " + ", ".join(f"{k[5:]} {v:,}" for k, v in dropped.items())
    return (
        f"{Path(run_config.data).resolve().name}{labels}: {len(splits.train):,} training and {len(splits.val):,} "
        f"validation images (validation carved from the training folder: {run_config.val_fraction:.0%}, "
        f"split seed {run_config.val_split_seed}), {n_test:,} test images" + (left_out if dropped else "")
    )


def validation_views(run: Path, val) -> dict:
    """The run's validation split scored with each TTA mode.

    This is where the shipped TTA mode is chosen: on validation, never on the test split.
    """
    predictor = load_predictor(run / runs.BEST)
    views = {}
    for tta, key in VIEW_KEYS.items():
        m = classification_metrics(val.labels, predict(predictor, val.images, tta))
        views[key] = {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4)}
    return {"n": len(val), **views}


def train_command(config: dict) -> str:
    """The ``python -m fer_keras.train`` command that reproduces a run's config (data left as $FER_KERAS_DATA)."""
    argv = TrainConfig.from_dict(config).to_argv()
    return " ".join([TRAIN_PREFIX, *argv[:2], "--data", "$FER_KERAS_DATA", *map(shlex.quote, argv[2:])])


def train_argv(command: str, data: str | Path, out: str | Path | None = None) -> list[str]:
    """A card's ``train_command`` as the arguments of ``python -m fer_keras.train``, on ``data``."""
    argv = shlex.split(command)
    if argv[:3] != TRAIN_PREFIX.split():
        raise FerKerasError(f"a card's train_command must start with '{TRAIN_PREFIX}': {command!r}")
    args = [str(data) if arg == "$FER_KERAS_DATA" else arg for arg in argv[3:]]
    return args + (["--out", str(out)] if out is not None else [])


def machine_description() -> str:
    """Where a run's training time was measured: CPU model and core count (times depend on both)."""
    import os
    import platform

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and contents, sorted)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def teacher_record(config: dict, overwritten: list[Path]) -> dict | None:
    """The distillation teacher of a run (path, hash, settings); refuses a teacher this ship would overwrite.

    The card's train command names the teacher's path, so the teacher must outlive the shipping.
    """
    if not config.get("teacher"):
        return None
    teacher = Path(config["teacher"])
    if teacher.exists() and any(
        teacher.resolve() == target.resolve() or target.resolve() in teacher.resolve().parents for target in overwritten
    ):
        raise FerKerasError(
            f"the run's teacher {teacher} is a file this would overwrite: copy it elsewhere (e.g. "
            "saved_models/teachers/), point 'teacher' in the run's config.json at the copy and ship again"
        )
    return {
        "path": str(teacher),
        "sha256": file_sha256(teacher) if teacher.exists() else None,
        "tta": config.get("teacher_tta", "none"),
        "alpha": config.get("distill_alpha"),
        "temperature": config.get("distill_temperature"),
    }


def ship(
    run: Path,
    name: str,
    data: str | Path,
    out: Path = Path("saved_models"),
    tta: str = "none",
    latency_repeats: int = 300,
    ferplus: str | Path | None = None,
    tflite_weights: str = "float32",
) -> dict:
    """Copy, export, evaluate and describe one run's best checkpoint (``tta``: views averaged in-graph;
    ``ferplus``: where a FER+ run's votes file is now, if not where its config says; ``tflite_weights``:
    float16 halves a large model's TFLite file, which TFLite widens back to float32 when it loads)."""
    if tta not in TTA_MODES:
        raise FerKerasError(f"--tta must be one of {', '.join(TTA_MODES)}, not {tta!r}")
    if tflite_weights not in TFLITE_WEIGHTS:
        raise FerKerasError(f"--tflite-weights must be one of {', '.join(TFLITE_WEIGHTS)}, not {tflite_weights!r}")
    if latency_repeats < 1:
        raise FerKerasError(f"--latency-repeats must be at least 1, got {latency_repeats}")
    best = run / runs.BEST
    config_path = run / runs.CONFIG
    if not best.exists() or not config_path.exists():
        raise FerKerasError(f"{run} has no {runs.BEST} / {runs.CONFIG}: is it a finished run directory?")
    keras_path, saved_path, tflite_path = out / f"{name}.keras", out / name, out / f"{name}.tflite"
    config = json.loads(config_path.read_text())
    teacher = teacher_record(config, [keras_path, saved_path, tflite_path])
    # before anything is written: a run whose data is missing fails here
    run_config, splits = run_splits(data, run, ferplus)
    out.mkdir(parents=True, exist_ok=True)
    _save_inference_model(best, keras_path, tta)
    if saved_path.exists():
        shutil.rmtree(saved_path)
    export(keras_path, "savedmodel", saved_path)
    export(keras_path, "tflite", tflite_path, quantize=TFLITE_WEIGHTS[tflite_weights])

    ferplus_labels = bool(run_config.ferplus) and not run_config.ferplus_alpha  # an 8-class FER+ model
    test = select_split(data, "test", ferplus=run_config.ferplus if ferplus_labels else None)
    model = load_keras_model(keras_path)
    macs = macs_per_image(model)  # a TTA model: the network once per view, plus its 0/1 mirror and padding matmuls
    predictor = load_predictor(saved_path)
    classes = predictor.classes
    metrics = classification_metrics(test.labels, predict(predictor, test.images))
    # The other views: the run's checkpoint with each TTA mode the shipped artefact does not build in.
    checkpoint = load_predictor(best)
    other_views = {
        VIEW_KEYS[mode]: classification_metrics(test.labels, predict(checkpoint, test.images, mode))
        for mode in TTA_MODES
        if mode != tta
    }
    confusion_matrix_png(
        np.array(metrics["confusion_matrix"]),
        out / f"{name}_confusion_matrix.png",
        f"{name} on {'FER+' if ferplus_labels else 'FER2013'} test ({metrics['n']} images): accuracy {metrics['accuracy']:.3f}, "
        f"macro-F1 {metrics['macro_f1']:.3f}",
    )
    crop = test.images[:1]
    run_metrics = json.loads((run / runs.METRICS).read_text()) if (run / runs.METRICS).exists() else {}
    card = {
        "name": name,
        "date": datetime.date.today().isoformat(),
        "architecture": config["model"],
        "model_options": run_config.model_options,
        "parameters": int(model.count_params()),
        "test_time_augmentation": TTA_DESCRIPTIONS[tta],
        "mflops_per_image": round(2 * macs / 1e6, 1),
        "input": f"raw {CROP_SIZE}x{CROP_SIZE} grayscale crop, float32 0..255, shape (N, {CROP_SIZE}, {CROP_SIZE}, 1)",
        "classes": list(classes),
        "output": f"{len(classes)} probabilities in {'FER+' if len(classes) > NUM_CLASSES else 'FER2013'} order: "
        + ", ".join(classes),
        "train_command": train_command(config),
        **({"teacher": teacher} if teacher else {}),
        "train_minutes": round(run_metrics["train_seconds"] / 60, 1) if "train_seconds" in run_metrics else None,
        "train_machine": machine_description(),
        "data": data_description(run_config, splits, len(test)),
        "data_hash": run_metrics.get("data_hash", ""),
        "selection": "best validation macro-F1 epoch (never the test split)",
        "validation": validation_views(run, splits.val),
        "test": {
            "accuracy": round(metrics["accuracy"], 4),
            "macro_f1": round(metrics["macro_f1"], 4),
            "top2_accuracy": round(metrics["top2_accuracy"], 4),
            "ece": round(metrics["ece"], 4),
            "per_class_f1": {e: round(metrics["per_class"][e]["f1"], 4) for e in classes},
            **{
                key: {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4)}
                for key, m in other_views.items()
            },
        },
        "confusion_matrix_image": f"{name}_confusion_matrix.png",
        "batch1_latency_ms": {
            "tf_threads": 1,
            "savedmodel": round(batch1_latency_ms(saved_path, crop, latency_repeats), 3),
            "keras": round(batch1_latency_ms(keras_path, crop, latency_repeats), 3),
            "tflite": round(batch1_latency_ms(tflite_path, crop, latency_repeats), 3),
        },
        "files": {"savedmodel": f"{name}/", "keras": f"{name}.keras", "tflite": f"{name}.tflite"},
        "tflite_weights": tflite_weights,
    }
    (out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    card["summary"] = summary_line(metrics)
    return card
