"""Is model B really better than model A? ``python -m fer_keras.significance A B --data PATH [--split val]``.

Both models predict the same images; a paired bootstrap (scipy) of B - A gives a confidence
interval for accuracy and macro-F1, and the share of resamples where B is ahead. Choose on
``--split val`` (the default: model A's run split), report on ``--split test``.
"""

from __future__ import annotations

import argparse

from fer_keras.cli import cli_main, command_parser
from fer_keras.contract import TTA_MODES
from fer_keras.data.loading import FERPLUS_HELP, check_data_path
from fer_keras.errors import FerKerasError
from fer_keras.inference.predictor import check_model_path


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("significance", "Paired bootstrap of model B against model A on the same images.")
    p.add_argument("model_a", help="baseline: run dir, .keras, SavedModel dir, .tflite or .onnx")
    p.add_argument("model_b", help="challenger, same kinds")
    p.add_argument("--data", default=None, help="dataset root (default: $FER_KERAS_DATA, else data/fer2013)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="select on val, report test")
    p.add_argument("--split-seed", type=int, default=None, help="seed of --split val (default: model A's run, else 0)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="share of train in --split val (default: model A's run, else 0.1)",
    )
    p.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation views to average")
    p.add_argument("--ferplus", default=None, metavar="VOTES.csv", help=FERPLUS_HELP)
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the images")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.resamples < 100:
        raise FerKerasError("--resamples must be 100 or more")
    data = check_data_path(args.data)  # before TensorFlow loads: a wrong path answers at once
    check_model_path(args.model_a)
    check_model_path(args.model_b)
    from fer_keras.reporting.significance import compare_models, format_result

    result = compare_models(
        args.model_a,
        args.model_b,
        data,
        args.split,
        args.tta,
        args.resamples,
        args.split_seed,
        args.val_fraction,
        args.ferplus,
    )
    print(format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
