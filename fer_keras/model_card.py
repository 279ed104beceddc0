"""Ship a trained run: ``python -m fer_keras.model_card --run RUN --name mobilenetv2 --data PATH``.

Writes ``OUT/NAME.keras``, ``OUT/NAME/`` (SavedModel), ``OUT/NAME.tflite`` (the live app's default on a CPU),
``OUT/NAME_confusion_matrix.png`` and the card ``OUT/NAME.json``: the command that trained it, the
data hash, parameters, FLOPs, validation and test figures and batch-1 latency per format.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_keras.cli import cli_main, command_parser
from fer_keras.contract import TTA_MODES
from fer_keras.data.loading import check_data_path


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("model_card", "Export, score and describe a run's best checkpoint as a shipped model.")
    p.add_argument("--run", required=True, type=Path, help="finished run directory (best.keras, config.json)")
    p.add_argument("--name", required=True, help="file stem of the shipped model, e.g. mobilenetv2")
    p.add_argument("--data", required=True, help="the dataset the run trained on (for its splits and the test figures)")
    p.add_argument(
        "--ferplus", default=None, metavar="VOTES.csv", help="a FER+ run's votes file, if moved since training"
    )
    p.add_argument("--out", default="saved_models", type=Path, help="folder for the model files and the card")
    p.add_argument("--tta", choices=TTA_MODES, default="none", help="views to average inside the shipped graph")
    p.add_argument(
        "--tflite-weights",
        choices=("float32", "float16"),
        default="float32",
        help="weights of the .tflite file (float16: half the size, for large models; same outputs to about 1e-3)",
    )
    p.add_argument("--latency-repeats", type=int, default=300, help="timed batch-1 calls per format (median)")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_data_path(args.data)  # before TensorFlow loads: a wrong path answers at once
    from fer_keras.inference.predictor import limit_tf_threads
    from fer_keras.reporting.model_card import ship

    limit_tf_threads(1, 1)  # latency as the live app runs it (--threads 1)
    card = ship(
        args.run, args.name, args.data, args.out, args.tta, args.latency_repeats, args.ferplus, args.tflite_weights
    )
    print(json.dumps({k: v for k, v in card.items() if k != "summary"}, indent=2))
    print(card["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
