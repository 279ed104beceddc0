"""Average trained models into one ``.keras`` file: ``python -m fer_keras.ensemble A B [...] --out FILE``.

The file takes the raw 48x48 crop and gives the mean of the members' probabilities (7 FER2013 or
8 FER+ classes; the members must share them): evaluate it, export it, or use it as a distillation
teacher. ``--data`` scores each member and the ensemble on the validation split of the first
member's run, never on the test split; ``--ferplus`` scores them on FER+ majority labels.
"""

from __future__ import annotations

import argparse

from fer_keras.cli import cli_main, command_parser
from fer_keras.data.loading import add_scoring_data, check_scoring_data
from fer_keras.inference.predictor import check_model_path


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("ensemble", "Average trained models into one .keras file.")
    p.add_argument("members", nargs="+", help=".keras files or run directories (two or more)")
    p.add_argument("--out", required=True, help="the ensemble's .keras file")
    add_scoring_data(p, "also score members and ensemble on the validation split")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_scoring_data(args, "validation")
    for member in args.members:  # before TensorFlow loads: a wrong path answers at once
        check_model_path(member)
    from fer_keras.inference.ensemble import build_ensemble
    from fer_keras.reporting.evaluation import score_members

    out = build_ensemble(args.members, args.out)
    print(f"wrote {out}")
    if args.data:
        print("\n".join(score_members(args.members, out, args.data, args.ferplus)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
