"""Evaluate a model: ``python -m fer_keras.evaluate --model PATH --data PATH [--split test] [--tta flip]``.

Writes ``metrics.json``, confusion-matrix, reliability, mistakes, Grad-CAM and t-SNE PNGs and a
``report.md`` to ``--out``; the last line printed is ``accuracy=0.XXXX macro_f1=0.XXXX``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fer_keras.data import load_faces, make_splits
from fer_keras.data.loading import default_data_path
from fer_keras.data.sources import FaceArrays
from fer_keras.errors import FerKerasError, cli_main
from fer_keras.labels import EMOTIONS
from fer_keras.metrics import classification_metrics, summary_line
from fer_keras.predictor import EmotionPredictor, load_predictor, resolve_model_path
from fer_keras.tta import TTA_MODES, tta_views


def select_split(data: str | Path, split: str, seed: int = 0, val_fraction: float = 0.1) -> FaceArrays:
    """The images to evaluate: a named split of a dataset root, or every image of a class folder."""
    faces = load_faces(data)
    if split == "val":
        return make_splits(faces, val_fraction=val_fraction, seed=seed).val
    if (faces.splits == split).any():
        return faces.split(split)
    if set(faces.splits.tolist()) == {"all"}:
        return faces  # a single folder of <class>/ images: evaluate all of it
    raise FerKerasError(f"{data} has no {split!r} split (it has: {', '.join(sorted(set(faces.splits)))})")


def val_split_of(model_path: Path, seed: int | None = None, fraction: float | None = None) -> tuple[int, float]:
    """(split seed, fraction) of the validation split to evaluate on: the values given, else those
    of the run directory the model sits in (so a ``--seed 1`` run is scored on its own validation
    images, not on images it trained on), else the training defaults (seed 0, 0.1)."""
    run_seed, run_fraction = 0, 0.1
    for folder in (model_path, model_path.parent):
        if folder.is_dir() and (folder / "config.json").is_file():
            from fer_keras.train import TrainConfig

            config = TrainConfig.from_json((folder / "config.json").read_text())
            run_seed, run_fraction = config.val_split_seed, config.val_fraction
            break
    return (run_seed if seed is None else seed), (run_fraction if fraction is None else fraction)


def predict(predictor: EmotionPredictor, images: np.ndarray, tta: str = "none", batch_size: int = 256) -> np.ndarray:
    """Probabilities averaged over the TTA views."""
    total = None
    views = tta_views(images, tta)
    for view in views:
        probs = np.concatenate([predictor(view[i : i + batch_size]) for i in range(0, len(view), batch_size)])
        total = probs if total is None else total + probs
    return total / len(views)


def keras_model_for_explain(path: Path):
    """The .keras model behind any artefact (for Grad-CAM / t-SNE), or None if there is none."""
    import keras

    candidates = [path] if path.suffix == ".keras" else []
    if path.is_dir():
        candidates += [path.with_suffix(".keras"), path.parent / "best.keras", path / "best.keras"]
    for candidate in candidates:
        if candidate.is_file() and candidate.suffix == ".keras":
            return keras.saving.load_model(candidate)
    return None


def evaluate(
    model: str | Path | None,
    data: str | Path,
    out: str | Path,
    split: str = "test",
    tta: str = "none",
    explain: bool = True,
    tsne_images: int = 1000,
    split_seed: int | None = None,
    val_fraction: float | None = None,
) -> dict:
    """Metrics and figures for one model on one split; returns the metrics dict.

    ``split="val"`` carves validation from train as training did (see ``val_split_of``)."""
    if tta not in TTA_MODES:
        raise FerKerasError(f"unknown --tta {tta!r}; choose from {', '.join(TTA_MODES)}")
    model_path = resolve_model_path(model)
    predictor = load_predictor(model_path)
    seed, fraction = val_split_of(model_path, split_seed, val_fraction)
    faces = select_split(data, split, seed, fraction)
    if len(faces) == 0:
        raise FerKerasError(f"no images to evaluate in {data} ({split})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    probs = predict(predictor, faces.images, tta)
    metrics = classification_metrics(faces.labels, probs)
    metrics.update(model=str(model_path), data=str(data), split=split, tta=tta, model_format=predictor.kind)
    if split == "val":
        metrics["val_split"] = {"seed": seed, "fraction": fraction}

    from fer_keras import plots

    figures = {
        "confusion_matrix": plots.confusion_matrix_png(
            np.array(metrics["confusion_matrix"]),
            out / "confusion_matrix.png",
            f"{model_path.name} on {split} ({len(faces)} images): accuracy {metrics['accuracy']:.3f}, "
            f"macro-F1 {metrics['macro_f1']:.3f}",
        ),
        "reliability": plots.reliability_png(faces.labels, probs, out / "reliability.png", metrics["ece"]),
        "mistakes": plots.mistakes_png(faces.images, faces.labels, probs, out / "mistakes.png"),
    }
    keras_model = keras_model_for_explain(model_path) if explain else None
    if keras_model is not None:
        from fer_keras import explain as explain_mod

        figures["grad_cam"] = explain_mod.grad_cam_png(keras_model, faces.images, faces.labels, out / "grad_cam.png")
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(len(faces), min(tsne_images, len(faces)), replace=False))
        figures["tsne"] = explain_mod.tsne_png(keras_model, faces.images[pick], faces.labels[pick], out / "tsne.png")
    metrics["figures"] = {k: v.name for k, v in figures.items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "report.md").write_text(report_markdown(metrics, explained=keras_model is not None))
    return metrics


def _val_note(metrics: dict) -> str:
    val = metrics.get("val_split")
    return f"; {val['fraction']:g} of train, split seed {val['seed']}" if val else ""


def report_markdown(metrics: dict, explained: bool) -> str:
    lines = [
        f"# Evaluation of `{metrics['model']}`",
        "",
        f"Data `{metrics['data']}`, split `{metrics['split']}` ({metrics['n']} images{_val_note(metrics)}), "
        f"test-time augmentation `{metrics['tta']}`.",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "top2_accuracy", "ece"):
        lines.append(f"| {key} | {metrics[key]:.4f} |")
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name in EMOTIONS:
        c = metrics["per_class"][name]
        lines.append(f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |")
    lines += [
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "![reliability](reliability.png)",
        "",
        "![most confident mistakes](mistakes.png)",
        "",
    ]
    if explained:
        lines += ["![Grad-CAM](grad_cam.png)", "", "![t-SNE](tsne.png)", ""]
    else:
        lines += ["Grad-CAM and t-SNE need the Keras model (.keras); this artefact has none beside it.", ""]
    return "\n".join(lines)


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_keras.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="run dir, .keras, SavedModel dir or .tflite (default: shipped)")
    p.add_argument("--data", default=None, help="dataset root or a <class>/ folder (default: $FER_KERAS_DATA)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--split-seed", type=int, default=None, help="seed of --split val (default: the run's, else 0)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="fraction of train in --split val (default: the run's, else 0.1)",
    )
    p.add_argument("--tta", default="none", choices=TTA_MODES)
    p.add_argument("--out", default="eval", help="folder for metrics.json, figures and report.md")
    p.add_argument("--no-explain", action="store_true", help="skip Grad-CAM and t-SNE")
    args = p.parse_args(argv)
    metrics = evaluate(
        args.model,
        args.data or default_data_path(),
        args.out,
        args.split,
        args.tta,
        explain=not args.no_explain,
        split_seed=args.split_seed,
        val_fraction=args.val_fraction,
    )
    per_class = " ".join(f"{name}={metrics['per_class'][name]['f1']:.3f}" for name in EMOTIONS)
    print(f"per-class F1: {per_class}")
    print(f"wrote {args.out}/metrics.json, report.md and figures")
    print(summary_line(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
