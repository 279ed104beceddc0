"""The ablation table: ``python -m fer_keras.compare RUN_DIR...`` prints one markdown row per run.

Rows are ordered by best validation macro-F1 (what runs are selected on); the test columns come
from each run's ``metrics.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fer_keras.cli import cli_main, command_parser


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("compare", "Print a markdown table of training runs, best validation macro-F1 first.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories made by fer_keras.train")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fer_keras.reporting.compare import markdown_table

    print(markdown_table(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
