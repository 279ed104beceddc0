"""The research half of the Python API: each command's work as a function, re-exported by ``fer_keras``.

    import fer_keras
    faces = fer_keras.load_data("fer2013", "train")            # images, labels, classes
    run = fer_keras.train_model(model="mobilenetv2", data="fer2013", epochs=5, out="runs/mnv2")
    metrics = fer_keras.evaluate_model(run.run_dir, "fer2013", out="eval/mnv2")   # + confusion, Grad-CAM, t-SNE PNGs

Every function takes the options its command takes, by the same names, and raises
``FerKerasError`` with a one-line message on bad input. TensorFlow loads on first call, with its
native start-up lines kept off stderr (``fer_keras.logs``; ``FER_KERAS_VERBOSE=1`` shows them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_keras.errors import FerKerasError
from fer_keras.logs import quiet

if TYPE_CHECKING:
    from fer_keras.app.analyze import AnalyzeSummary
    from fer_keras.app.live import VideoSummary
    from fer_keras.app.recognizer import EmotionRecognizer
    from fer_keras.data.sources import FaceArrays
    from fer_keras.training.config import TrainConfig
    from fer_keras.training.loop import RunResult
    from fer_keras.training.search import SearchResult

SPLITS = ("train", "test")


def load_data(
    data: str | Path | None = None, split: str | None = None, *, ferplus: str | Path | None = None
) -> FaceArrays:
    """A dataset (folder layout or Kaggle CSV) as arrays: ``.images`` (N, 48, 48) uint8,
    ``.labels``, ``.classes``, ``.splits``; ``split`` keeps ``"train"`` or ``"test"`` only.
    ``ferplus``: a FER+ votes file, for FER+ majority labels (8 classes)."""
    from fer_keras.data.loading import check_data_path, load_faces

    if split is not None and split not in SPLITS:
        raise FerKerasError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    faces = load_faces(check_data_path(data), ferplus=ferplus)
    return faces.split(split) if split else faces


def inspect_data(data: str | Path | None = None, *, ferplus: str | Path | None = None) -> str:
    """The report ``python -m fer_keras.data inspect`` prints: counts per split and class, duplicates
    across splits, conflicting labels (and, with ``ferplus``, FER2013/FER+ agreement)."""
    from fer_keras.data.inspect import format_report
    from fer_keras.data.loading import LoadReport, check_data_path, load_faces

    report = LoadReport()
    return format_report(load_faces(check_data_path(data), ferplus=ferplus, report=report), report)


@quiet
def augment(images: Any, preset: str = "standard", seed: int = 0) -> np.ndarray:
    """What training's ``--augment PRESET`` does to a batch of (N, 48, 48) crops (mixup and
    cutmix need labels, so they are left out); returns float32 crops in 0..255."""
    import tensorflow as tf

    from fer_keras.data.augment import augment_config
    from fer_keras.data.augment_ops import augment_batch

    crops = np.asarray(images, np.float32)
    if crops.ndim != 3:
        raise FerKerasError(f"augment takes (N, 48, 48) crops, not an array of shape {crops.shape}")
    cfg = augment_config(preset, mixup=0.0, cutmix=0.0)
    labels = tf.zeros((len(crops), 1))
    out, _ = augment_batch(tf.constant(crops[..., None]), labels, cfg, tf.constant([seed, 0], tf.int64))
    return out.numpy()[..., 0]


@quiet
def build_model(name: str = "mobilenetv2", **options: Any):
    """An untrained Keras model from the registry (``vgg16``, ``resnet18``, ``mobilenetv2``, or
    one registered with ``fer_keras.models.register_model``) with its model options
    (``input_size``, ``width``, ...). It takes raw (N, 48, 48, 1) crops in 0..255."""
    from fer_keras.models.registry import build

    return build(name, **options)


@quiet
def train_model(config: TrainConfig | None = None, *, resume: bool = False, **options: Any) -> RunResult:
    """One training run, as ``python -m fer_keras.train``: options are ``TrainConfig``'s fields
    (``model``, ``data``, ``epochs``, ``augment``, ``input_size``, ...), or a whole ``config``.
    Returns the run directory, history, test metrics and best validation macro-F1."""
    from fer_keras.training.config import TrainConfig
    from fer_keras.training.loop import train as train_run

    if config is None:
        unknown = sorted(set(options) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise FerKerasError(f"unknown training option {unknown[0]!r}")
        config = TrainConfig(**options)
    elif options:
        raise FerKerasError("give either a TrainConfig or options, not both")
    return train_run(config, resume=resume)


@quiet
def score(
    model: str | Path | None = None,
    data: str | Path | None = None,
    split: str = "test",
    *,
    ferplus: str | Path | None = None,
    tta: str = "none",
) -> dict[str, Any]:
    """A model's metrics on a dataset split, as ``python -m fer_keras.evaluate`` computes them
    (no files written): accuracy, macro-F1, per-class report, confusion matrix, ...

    ``model``: any model the commands take, or a shipped model's name (default: the shipped
    FER2013 model). ``data``: a dataset root or split folder (default: ``$FER_KERAS_DATA``).
    ``split``: ``test``, ``train`` or ``val`` (carved from train as the model's run carved it).
    ``ferplus``: a FER+ votes file: FER+ majority labels and the FER+ paper's protocol.
    """
    from fer_keras.reporting.evaluation import score as score_model

    metrics, _, _ = score_model(model, data, split, tta, ferplus=ferplus)
    return metrics


@quiet
def evaluate_model(
    model: str | Path | None = None,
    data: str | Path | None = None,
    out: str | Path = "eval",
    split: str = "test",
    *,
    ferplus: str | Path | None = None,
    tta: str = "none",
    explain: bool = True,
    tsne_images: int = 1000,
) -> dict[str, Any]:
    """``python -m fer_keras.evaluate``: the metrics of ``fer_keras.score`` plus, in ``out``, the
    confusion matrix, reliability diagram, most confident mistakes, Grad-CAM and t-SNE PNGs
    (``metrics["figures"]`` names them) and ``report.md``."""
    from fer_keras.data.loading import check_data_path
    from fer_keras.reporting.evaluation import evaluate

    return evaluate(model, check_data_path(data), out, split, tta, explain, tsne_images, ferplus=ferplus)


def compare_runs(runs: Sequence[str | Path]) -> str:
    """The markdown table ``python -m fer_keras.compare`` prints for run directories."""
    from fer_keras.reporting.compare import markdown_table

    return markdown_table([Path(r) for r in runs])


@quiet
def tune_model(
    space: str | Path,
    out: str | Path,
    *,
    model: str = "mobilenetv2",
    data: str | Path | None = None,
    tuner: str = "hyperband",
    max_trials: int = 0,
    epochs: int = 27,
    min_epochs: int = 3,
    factor: int = 3,
    iterations: int = 1,
    limit: int = 0,
    seed: int = 0,
    ferplus: str | Path | None = None,
    train_best: bool = False,
    best_epochs: int = 0,
    mirror: str | Path | None = None,
    report_only: bool = False,
    verbose: int = 0,
) -> SearchResult:
    """A KerasTuner search, as ``python -m fer_keras.tune`` (run it again to continue it). The
    result's ``rows`` are the trials, best validation macro-F1 first; ``best`` is the best of the
    trials at the largest budget (a short Hyperband trial's higher score is not comparable), the one
    ``train_best`` retrains into ``retrained``. Hyperband (the default) trains ``epochs`` at most
    and ``min_epochs`` at least per trial; random and bayesian run ``max_trials`` (default 8) trials of ``epochs``.
    ``mirror``: a folder that keeps a copy of the search's state after every trial, from which a
    search whose ``out`` was lost continues. ``report_only``: write the results of the search kept in
    ``out`` (or ``mirror``) and train nothing."""
    from fer_keras.data.loading import check_data_path
    from fer_keras.training.search import SearchSpec, run_search

    spec = SearchSpec(
        space=str(space),
        out=str(out),
        model=model,
        data=str(check_data_path(data)),
        ferplus=str(ferplus or ""),
        tuner=tuner,
        max_trials=max_trials,
        epochs=epochs,
        min_epochs=min_epochs,
        factor=factor,
        iterations=iterations,
        limit=limit,
        seed=seed,
        train_best=train_best,
        best_epochs=best_epochs,
        mirror=str(mirror or ""),
        report_only=report_only,
        verbose=verbose,
    )
    return run_search(spec)


def analyze_files(
    inputs: Sequence[str | Path] | str | Path,
    out: str | Path,
    *,
    workers: int = 1,
    ray: str | bool | None = None,
    progress: bool = True,
    **options: Any,
) -> AnalyzeSummary:
    """``python -m fer_keras.analyze INPUT... --out OUT``: every video and image (files, folders,
    globs) through the live app's pipeline, each file's per-frame CSV, per-face summary and
    timeline plot, and the run's table across files. ``options`` are the live command's recognizer
    options (``model``, ``detector``, ``margin``, ``smoothing``, ``detect_every``, ``flip``,
    ``dnn_size``, ``downscale``) and ``max_frames``; ``workers`` processes, or Ray (``ray=True`` or
    a cluster address). Files finished by an earlier call are skipped."""
    import dataclasses

    from fer_keras.app.analyze import AnalyzeOptions
    from fer_keras.app.analyze import analyze_files as run

    known = {f.name for f in dataclasses.fields(AnalyzeOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise FerKerasError(f"unknown analyze option(s): {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    inputs = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    return run(inputs, out, AnalyzeOptions(**options), workers=workers, ray=ray, progress=progress)


@quiet
def export_model(
    model: str | Path | None,
    format: str = "tflite",
    out: str | Path | None = None,
    *,
    quantize: str = "none",
    data: str | Path | None = None,
) -> Path:
    """``python -m fer_keras.export``: a model as ``savedmodel``, ``keras``, ``tflite`` or
    ``onnx`` (``quantize``: ``float16`` or ``int8``, calibrated on ``data``'s training images)."""
    from fer_keras.inference.export import export

    return export(model, format, out, quantize, data)


def make_test_video(
    video: str | Path,
    truth: str | Path,
    data: str | Path | None = None,
    *,
    scene: str = "plain",
    frames: int = 300,
    seed: int = 0,
) -> Path:
    """A labelled 640x480 MP4 of test-split faces (the live benchmark's videos) and its truth
    CSV (every face's box and label per frame). ``scene``: ``plain``, ``small``, ``large``,
    ``replicate``, ``reflect``, ``blur``, ``jpeg``, ``lighting``, ``rotation`` or ``two-sizes``."""
    from fer_keras.app.synthetic import make_face_video

    make_face_video(load_data(data, "test"), video, truth, frames=frames, scene=scene, seed=seed)
    return Path(video)


def run_video(
    source: str | int,
    recognizer: EmotionRecognizer | None = None,
    *,
    csv: str | Path | None = None,
    output: str | Path | None = None,
    max_frames: int = 0,
) -> VideoSummary:
    """``python -m fer_keras.live --source SOURCE --no-display``: every frame through the
    recognizer, optionally written as the live app's CSV and an annotated MP4. Returns frames,
    seconds, ``fps``, tracked faces, each face's dominant emotion and milliseconds per stage."""
    from fer_keras.app.live import run_video as run
    from fer_keras.app.recognizer import EmotionRecognizer

    recognizer = recognizer or EmotionRecognizer()
    return run(
        recognizer,
        str(source),
        display=False,
        output=str(output) if output else None,
        csv_path=str(csv) if csv else None,
        max_frames=max_frames,
    )


def score_video(truth: str | Path, csv: str | Path, min_iou: float = 0.3) -> dict[str, float]:
    """A live run's CSV against a test video's truth: face recall (IoU > ``min_iou``), accuracy on
    found faces, end-to-end accuracy (a missed face counts as wrong) with its 95 % interval over
    the video's distinct faces, false positives."""
    from fer_keras.app.synthetic import score_run

    for path in (truth, csv):
        if not Path(path).is_file():
            raise FerKerasError(f"no such file: {path}")
    return score_run(truth, csv, min_iou)
