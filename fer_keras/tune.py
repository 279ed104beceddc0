"""Search hyper-parameters with KerasTuner: ``python -m fer_keras.tune --space tuning/mobilenetv2.json --out DIR``.

Each trial is a training run (``fer_keras.training.search``). Results in ``--out``:
``trials.csv`` / ``trials.md`` (best first), ``best_hyperparameters.json`` and one run directory
per trial under ``trials/`` (with its TensorBoard ``logs/``). The same command continues a search.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_keras.cli import cli_main, command_parser, options_from
from fer_keras.data.loading import check_data_path
from fer_keras.errors import FerKerasError
from fer_keras.training.config import TUNERS
from fer_keras.training.space import load_space


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("tune", "Search training hyper-parameters with KerasTuner (objective: val macro-F1).")
    p.add_argument("--space", required=True, help="search-space file, e.g. tuning/mobilenetv2.json")
    p.add_argument("--out", required=True, help="search directory; run the same command again to continue")
    p.add_argument("--model", default="mobilenetv2", help="architecture (a space file may name its own)")
    p.add_argument(
        "--data",
        default=None,
        help="dataset folder or fer2013.csv (default: $FER_KERAS_DATA, else data/fer2013; --report: not needed)",
    )
    p.add_argument(
        "--ferplus",
        default="",
        metavar="VOTES.csv",
        help="FER+ votes for a folder --data: search an 8-class FER+ model",
    )
    p.add_argument(
        "--tuner",
        choices=TUNERS,
        default="hyperband",
        help="search strategy (default hyperband: many short trials, the best trained longer)",
    )
    p.add_argument("--max-trials", type=int, default=0, help="trials to run (random, bayesian; default 8)")
    p.add_argument("--epochs", type=int, default=27, help="epochs per trial (hyperband: the largest budget)")
    p.add_argument("--min-epochs", type=int, default=3, help="hyperband: the smallest budget")
    p.add_argument("--factor", type=int, default=3, help="hyperband: 1/FACTOR of a round goes on at FACTOR x epochs")
    p.add_argument("--iterations", type=int, default=1, help="hyperband: times its set of brackets runs")
    p.add_argument(
        "--limit", type=int, default=0, help="search on a stratified subset of N training images (and N/4 val)"
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the tuner, each trial's training and the split")
    p.add_argument("--workers", type=int, default=0, help="run a chief and N workers on this machine")
    p.add_argument(
        "--mirror",
        default="",
        metavar="DIR",
        help="after every trial copy the search's state (JSON, no checkpoints) to DIR, e.g. another disk "
        "or a folder under version control; a lost --out continues from it",
    )
    p.add_argument("--train-best", action="store_true", help="retrain the best configuration into OUT/best_run")
    p.add_argument(
        "--report",
        dest="report_only",
        action="store_true",
        help="write the trials table and plots of the search kept in OUT (or --mirror) and exit, training nothing",
    )
    p.add_argument("--best-epochs", type=int, default=0, help="epochs for --train-best (default: --epochs)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines from the trials")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    load_space(args.space)  # a bad space or data path answers at once, before TensorFlow loads
    # a report reads the search kept in --out: it needs the data only to check it is the same
    data = "" if args.report_only and not args.data else check_data_path(args.data)
    from fer_keras.training.search import SearchSpec, check_spec, launch_workers, run_search

    spec = check_spec(options_from(SearchSpec, args, data=str(data), verbose=0 if args.quiet else 2))
    if args.workers and args.report_only:
        raise FerKerasError("--report trains nothing: run --workers without it")
    if args.workers:
        code = launch_workers(argv, args.workers)
        if code != 0 or not args.train_best:
            return code
    result = run_search(spec)  # after workers: the finished search reloads, writes results and retrains
    if not result.rows:
        return 0  # a worker
    print(Path(args.out, "trials.md").read_text())
    top = result.best
    best = (
        f" best_val_macro_f1={top['val_macro_f1']:.4f} best_trial={top['trial']} at_epochs={top['epochs']}"
        if top
        else ""
    )
    print(f"trials={len(result.rows)} completed={len(result.completed)}{best}")
    if result.retrained is not None:
        m = result.retrained.test_metrics
        print(
            f"best configuration retrained: {result.retrained.run_dir} test accuracy={m['accuracy']:.4f} "
            f"macro_f1={m['macro_f1']:.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
