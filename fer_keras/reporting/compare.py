"""The ablation table: one markdown row per run directory (``python -m fer_keras.compare`` prints it).

Rows are ordered by best validation macro-F1 (what the runs were selected on), the test columns
come from each run's ``metrics.json``."""

from __future__ import annotations

import json
from pathlib import Path

from fer_keras import runs
from fer_keras.contract import EMOTIONS
from fer_keras.errors import FerKerasError
from fer_keras.runs import RunDir
from fer_keras.training.config import TrainConfig

KEY_OPTIONS = (
    "optimizer",
    "learning_rate",
    "schedule",
    "epochs",
    "batch_size",
    "augment",
    "balance",
    "label_smoothing",
    "weight_decay",
)
# shown only when a run sets them: overrides of the augmentation preset (0 included: it turns one
# off), then the weight average and dedupe when on
OVERRIDES = ("erasing", "mixup", "cutmix", "degrade")
SWITCHES = ("ema", "dedupe")


def run_row(run: Path) -> dict:
    """What one run directory says about itself (config.json + metrics.json)."""
    metrics_path = RunDir(run).file(runs.METRICS)
    config = RunDir(run).config()  # a one-line error for a folder that is not a run
    if not metrics_path.exists():
        raise FerKerasError(f"{run} has no {runs.METRICS} yet (unfinished run?)")
    metrics = json.loads(metrics_path.read_text())
    options = ", ".join(f"{k}={config[k]}" for k in KEY_OPTIONS if k in config)
    options += "".join(f", {k}={config[k]}" for k in OVERRIDES if config.get(k) is not None)
    options += "".join(f", {k}={config[k]}" for k in SWITCHES if config.get(k))
    extra = TrainConfig.from_dict(config).model_options
    if extra:
        options += ", " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items()))
    if config.get("split_seed") is not None:
        options += f", seed={config.get('seed')}, split_seed={config['split_seed']}"
    if config.get("teacher"):
        options += (
            f", teacher={Path(config['teacher']).name} ({config.get('teacher_tta', 'none')}),"
            f" alpha={config.get('distill_alpha')}, T={config.get('distill_temperature')}"
        )
    return {
        "run": run.name,
        "model": config["model"],
        "params": metrics.get("params"),
        "options": options,
        "val_macro_f1": metrics.get("best_val_f1"),
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "per_class_f1": [metrics["per_class"][e]["f1"] for e in EMOTIONS],
        "minutes": metrics.get("train_seconds", float("nan")) / 60,
    }


def markdown_table(runs: list[Path]) -> str:
    rows = sorted((run_row(r) for r in runs), key=lambda r: (-(r["val_macro_f1"] or 0.0), -r["macro_f1"]))
    header = ["run", "model", "params", "hyper-parameters", "val macro-F1", "test accuracy", "test macro-F1"]
    header += [*EMOTIONS, "train min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        params = f"{r['params']:,}" if r["params"] else "?"
        cells = [
            r["run"],
            r["model"],
            params,
            r["options"],
            "?" if r["val_macro_f1"] is None else f"{r['val_macro_f1']:.4f}",
            f"{r['accuracy']:.4f}",
            f"{r['macro_f1']:.4f}",
            *(f"{f:.3f}" for f in r["per_class_f1"]),
            f"{r['minutes']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
