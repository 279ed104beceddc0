"""Score one model on one split: metrics, figures and a markdown report.

Writes ``metrics.json``, confusion-matrix, reliability, mistakes, Grad-CAM and t-SNE PNGs and
``report.md`` to the output folder (``python -m fer_keras.evaluate`` is the command).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fer_keras import runs
from fer_keras.contract import EMOTIONS, FERPLUS_EMOTIONS, TTA_MODES
from fer_keras.data.ferplus import dropped_counts, to_fer2013
from fer_keras.data.loading import check_data_path
from fer_keras.data.sources import FaceArrays
from fer_keras.errors import FerKerasError
from fer_keras.inference.export import keras_source, load_keras_model
from fer_keras.inference.predictor import keras_file_of, load_predictor, predict, resolve_model_path
from fer_keras.reporting.metrics import classification_metrics, summary_line
from fer_keras.runs import select_split, val_split_of


def scored(predictor, faces: FaceArrays, tta: str = "none") -> tuple[FaceArrays, np.ndarray, str]:
    """The model's probabilities on ``faces``, in the class list both share, and what that took.

    A FER2013 model on FER+ labels leaves out the contempt images (it has no such class; the FER+
    protocol for 7-class models); a FER+ model on FER2013 labels has its contempt share folded out."""
    probs = predict(predictor, faces.images, tta)
    model, data = tuple(predictor.classes), tuple(faces.classes)
    if model == data:
        return faces, probs, ""
    if model == EMOTIONS and data == FERPLUS_EMOTIONS:
        keep = faces.labels < len(EMOTIONS)
        kept = faces.select(keep)
        kept.classes = EMOTIONS
        return kept, probs[keep], f"{int((~keep).sum())} FER+ contempt images left out: a 7-class model has no contempt"
    if model == FERPLUS_EMOTIONS and data == EMOTIONS:
        return faces, to_fer2013(probs), "a FER+ model scored on FER2013's 7 classes (its contempt share left out)"
    raise FerKerasError(f"the model's classes ({', '.join(model)}) do not fit the data's ({', '.join(data)})")


def keras_model_for_explain(path: Path):
    """The .keras model behind any artefact (for Grad-CAM / t-SNE), or None if there is none."""
    source = keras_file_of(path)
    return load_keras_model(source) if source else None


def score(
    model: str | Path | None = None,
    data: str | Path | None = None,
    split: str = "test",
    tta: str = "none",
    split_seed: int | None = None,
    val_fraction: float | None = None,
    ferplus: str | Path | None = None,
) -> tuple[dict, FaceArrays, np.ndarray]:
    """A model's metrics on one split, with the images and probabilities they came from.

    ``split="val"`` carves validation from train as the model's run did (``fer_keras.runs.select_split``).
    ``ferplus`` scores against FER+ majority labels (the FER+ paper's protocol: images whose
    majority is unknown, not a face or tied left out, and counted in ``metrics["dropped"]``)."""
    if tta not in TTA_MODES:
        raise FerKerasError(f"unknown --tta {tta!r}; choose from {', '.join(TTA_MODES)}")
    data = check_data_path(data)
    model_path = resolve_model_path(model)
    predictor = load_predictor(model_path)
    faces = select_split(data, split, model_path, split_seed, val_fraction, ferplus)
    if len(faces) == 0:
        raise FerKerasError(f"no images to evaluate in {data} ({split})")
    faces, probs, note = scored(predictor, faces, tta)
    metrics = classification_metrics(faces.labels, probs)
    metrics.update(model=str(model_path), data=str(data), split=split, tta=tta, model_format=predictor.kind)
    metrics["labels_from"] = "FER+ majority votes" if faces.votes is not None else "the dataset"
    dropped = dropped_counts(faces)
    if note:
        metrics["note"] = note
    if dropped:
        metrics["dropped"] = dropped
    if split == "val":
        seed, fraction = val_split_of(model_path, split_seed, val_fraction)
        metrics["val_split"] = {"seed": seed, "fraction": fraction}
    return metrics, faces, probs


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
    ferplus: str | Path | None = None,
) -> dict:
    """Metrics (``score``) and figures for one model on one split, written to ``out``; returns the metrics."""
    metrics, faces, probs = score(model, data, split, tta, split_seed, val_fraction, ferplus)
    model_path = Path(metrics["model"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    from fer_keras.reporting import plots

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
        from fer_keras.reporting import explain as explain_mod

        figures["grad_cam"] = explain_mod.grad_cam_png(keras_model, faces.images, faces.labels, out / "grad_cam.png")
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(len(faces), min(tsne_images, len(faces)), replace=False))
        figures["tsne"] = explain_mod.tsne_png(
            keras_model, faces.images[pick], faces.labels[pick], out / "tsne.png", classes=faces.classes
        )
    metrics["figures"] = {k: v.name for k, v in figures.items()}
    (out / runs.METRICS).write_text(json.dumps(metrics, indent=2))
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
    for name in metrics["labels"]:
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


def compare_on_test(
    reference: str | Path, exported: Path, data: str | Path, ferplus: str | Path | None = None
) -> tuple[dict, dict]:
    """Metrics of the float model and of the export on the test split."""
    test = select_split(data, "test", ferplus=ferplus)
    if len(test) == 0:
        raise FerKerasError(f"{data} has no test split to compare on")
    before, after = (classification_metrics(*_labels_probs(load_predictor(p), test)) for p in (reference, exported))
    return before, after


def _labels_probs(predictor, faces: FaceArrays, tta: str = "none") -> tuple[np.ndarray, np.ndarray]:
    faces, probs, _ = scored(predictor, faces, tta)
    return faces.labels, probs


def score_members(
    members: list[str | Path], ensemble: Path, data: str | Path, ferplus: str | Path | None = None
) -> list[str]:
    """One line per member and for the ensemble: accuracy and macro-F1 on the validation split
    (labelled by FER+ majority with ``ferplus``, a votes file)."""
    faces = select_split(data, "val", keras_source(members[0]), ferplus=ferplus)
    lines = []
    for path in [*members, ensemble]:
        metrics = classification_metrics(*_labels_probs(load_predictor(keras_source(path)), faces))
        lines.append(f"{path}: val {summary_line(metrics)}")
    return lines
