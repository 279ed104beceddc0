"""Export a model: ``python -m fer_keras.export --model PATH --format savedmodel|keras|tflite|onnx``.

Every artefact takes raw 48x48 grayscale crops (0..255) and gives the model's probabilities: the
preprocessing is part of the graph, so it is part of every export. With ``--data`` the export is
scored on the test split next to the float model. int8 calibrates on training images.
"""

from __future__ import annotations

import argparse

from fer_keras.cli import cli_main, command_parser
from fer_keras.data.loading import add_scoring_data, check_scoring_data
from fer_keras.errors import FerKerasError
from fer_keras.inference.predictor import FORMATS, QUANTIZE, check_model_path


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("export", "Export a trained model to SavedModel, .keras, TFLite or ONNX.")
    p.add_argument("--model", default=None, help=".keras file or run directory (default: the shipped model)")
    p.add_argument("--format", choices=FORMATS, required=True, help="artefact to write")
    p.add_argument("--quantize", choices=QUANTIZE, default="none", help="TFLite weights (int8 needs --data)")
    p.add_argument("--out", default=None, help="output path (default: beside the model)")
    add_scoring_data(p, "dataset: int8 calibration (train) and the accuracy check (test)")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_scoring_data(args, "test")
    if args.quantize == "int8" and not args.data:
        raise FerKerasError("--quantize int8 needs --data (training images calibrate the ranges)")
    if args.quantize != "none" and args.format != "tflite":
        raise FerKerasError("--quantize applies to --format tflite only")
    check_model_path(args.model)  # before TensorFlow loads: a wrong path answers at once
    from fer_keras.inference.export import export, keras_source
    from fer_keras.inference.predictor import shipped_model
    from fer_keras.reporting.evaluation import compare_on_test
    from fer_keras.reporting.metrics import summary_line

    model = args.model or shipped_model(".keras")
    target = export(model, args.format, args.out, args.quantize, args.data)
    print(f"wrote {target}")
    if args.data:
        before, after = compare_on_test(keras_source(model), target, args.data, args.ferplus)
        delta = 100 * (after["accuracy"] - before["accuracy"])
        print(f"float model: {summary_line(before)}")
        print(f"export:      {summary_line(after)} (accuracy change {delta:+.2f} points)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
