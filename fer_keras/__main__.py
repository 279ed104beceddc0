"""``fer-keras COMMAND [...]`` (or ``python -m fer_keras COMMAND``): the same commands as ``python -m fer_keras.COMMAND``."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": "train a model",
    "evaluate": "score a model on a split: metrics, figures, report",
    "tune": "search hyper-parameters with KerasTuner",
    "live": "faces and emotions from a webcam, video or images",
    "analyze": "many videos and images: per-face summaries and timelines",
    "serve": "HTTP API and browser demo",
    "export": "write a model as SavedModel, .keras, TFLite or ONNX",
    "compare": "markdown table of training runs",
    "significance": "paired bootstrap of two models",
    "model_card": "ship a run: export, score and describe it",
    "ensemble": "average models into one .keras file",
    "data": "inspect a dataset (data inspect PATH)",
}


def usage() -> str:
    lines = ["usage: fer-keras COMMAND [options]   (fer-keras COMMAND --help for a command's options)", ""]
    lines += [f"  {name:<13} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from fer_keras import __version__

        print(f"fer_keras {__version__}")
        return 0
    name = argv[0].replace("-", "_")
    if name not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from fer_keras import cli

    module = importlib.import_module("fer_keras.data.__main__" if name == "data" else f"fer_keras.{name}")
    log_filter = cli.quiet_native_logs(argv[1:])  # the command runs in-process, as the console script's
    program, cli.PROGRAM = cli.PROGRAM, "fer-keras "  # usage lines name the command as it was typed
    try:
        return module.main(argv[1:])
    finally:
        cli.PROGRAM = program
        if log_filter:
            log_filter.close()


if __name__ == "__main__":
    raise SystemExit(main())
