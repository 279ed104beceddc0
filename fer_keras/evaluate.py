"""Evaluate a model: ``python -m fer_keras.evaluate --model PATH --data PATH [--split test] [--tta flip]``.

Writes ``metrics.json``, confusion-matrix, reliability, mistakes, Grad-CAM and t-SNE PNGs and a
``report.md`` to ``--out``; the last line printed is ``accuracy=0.XXXX macro_f1=0.XXXX``.
"""

from __future__ import annotations

import argparse

from fer_keras.cli import cli_main, command_parser
from fer_keras.contract import TTA_MODES
from fer_keras.data.loading import FERPLUS_HELP, check_data_path
from fer_keras.inference.predictor import MODEL_OPTION_HELP, check_model_path


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("evaluate", "Score a model on a dataset split: metrics, figures and a report.")
    p.add_argument("--model", default=None, help=MODEL_OPTION_HELP)
    p.add_argument(
        "--data", default=None, help="dataset root or a <class>/ folder (default: $FER_KERAS_DATA, else data/fer2013)"
    )
    p.add_argument(
        "--split",
        default="test",
        choices=("train", "val", "test"),
        help="which images: the dataset's test or train split, or val carved from train as the model's run did",
    )
    p.add_argument("--split-seed", type=int, default=None, help="seed of --split val (default: the run's, else 0)")
    p.add_argument(
        "--val-fraction", type=float, default=None, help="share of train in --split val (default: the run's, else 0.1)"
    )
    p.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation views to average")
    p.add_argument("--ferplus", default=None, metavar="VOTES.csv", help=FERPLUS_HELP)
    p.add_argument("--out", default="eval", help="folder for metrics.json, figures and report.md")
    p.add_argument("--no-explain", action="store_true", help="skip Grad-CAM and t-SNE")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data = check_data_path(args.data)  # before TensorFlow loads: a wrong path answers at once
    check_model_path(args.model)
    from fer_keras.reporting.evaluation import evaluate
    from fer_keras.reporting.metrics import summary_line

    metrics = evaluate(
        args.model,
        data,
        args.out,
        args.split,
        args.tta,
        explain=not args.no_explain,
        split_seed=args.split_seed,
        val_fraction=args.val_fraction,
        ferplus=args.ferplus,
    )
    if metrics.get("dropped") or metrics.get("note"):
        left_out = ", ".join(f"{reason}: {n}" for reason, n in sorted(metrics.get("dropped", {}).items()))
        print("; ".join(part for part in (f"left out {left_out}" if left_out else "", metrics.get("note", "")) if part))
    per_class = " ".join(f"{name}={metrics['per_class'][name]['f1']:.3f}" for name in metrics["labels"])
    print(f"{metrics['n']} images, labels from {metrics['labels_from']}; per-class F1: {per_class}")
    print(f"wrote {args.out}/metrics.json, report.md and figures")
    print(summary_line(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
