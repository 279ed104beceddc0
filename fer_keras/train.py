"""Train an emotion classifier: ``python -m fer_keras.train --model mobilenetv2 --data PATH``.

Every flag comes from ``fer_keras.training.config.TrainConfig``; the loop is
``fer_keras.training.loop.train``. ``--resume --out RUN`` continues an interrupted run with its
saved options (only ``--epochs`` may change).
"""

from __future__ import annotations

import argparse
import sys

from fer_keras.cli import cli_main, command_parser
from fer_keras.data.loading import check_data_path
from fer_keras.errors import FerKerasError
from fer_keras.training.config import TrainConfig, add_arguments, flag, given_options

# what --resume may take from the command line; everything else comes from the run's config.json
RESUME_OPTIONS = ("epochs", "out", "verbose", "snapshot", "precision")


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("train", "Train an emotion classifier on FER2013 (or a dataset laid out like it).")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last finished epoch, with its saved options; "
        "only --epochs may change (a larger number trains longer at the schedule's final learning rate), "
        "and --precision, which the machine it resumes on decides; "
        "with --snapshot DIR, --out is rebuilt from the snapshot when it is missing or behind",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_arguments(p)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's options: the flags given over the defaults (or, with ``--resume``, over the saved run)."""
    given = given_options(args)
    given["verbose"] = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
    if not args.resume:
        return TrainConfig(**given)
    from fer_keras.runs import RunDir

    out = given.get("out")
    if not out:
        raise FerKerasError("--resume needs --out RUN_DIR (the run to continue)")
    run = RunDir(out)
    snapshot = RunDir(given.get("snapshot") or "")  # a snapshot holds the run's config.json too
    if not run.is_run and not (given.get("snapshot") and snapshot.is_run):
        raise FerKerasError(f"{out} is not a run directory (no config.json); cannot --resume")
    saved = TrainConfig.from_dict((run if run.is_run else snapshot).config())
    conflicts = [
        f"{flag(name)} (saved {getattr(saved, name)!r}, given {value!r})"
        for name, value in given.items()
        if name not in RESUME_OPTIONS and value != getattr(saved, name)
    ]
    if conflicts:
        raise FerKerasError(
            f"--resume continues {out} with its saved options, but {', '.join(conflicts)} differ; "
            "only --epochs (and --precision) may change (start a new --out to change the others)"
        )
    return saved.replace(**{k: v for k, v in given.items() if k in RESUME_OPTIONS})


def run_minutes(result) -> str:
    """The run's training time, and this call's share when it resumed an earlier one."""
    total = f"{result.total_seconds / 60:.1f} min"
    if result.total_seconds - result.seconds > 1.0:
        return f"{total} in all, {result.seconds / 60:.1f} min of it in this call"
    return total


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    config.validate()
    check_data_path(config.data)  # before TensorFlow loads: a wrong path answers at once
    from fer_keras.reporting.metrics import summary_line
    from fer_keras.training.loop import resolve_run_dir, train

    config.out = str(resolve_run_dir(config, resume=args.resume))
    try:
        result = train(config, resume=args.resume)
    except KeyboardInterrupt:
        print(f"interrupted; finished epochs are saved: resume with --resume --out {config.out}", file=sys.stderr)
        return 130
    print(f"run: {result.run_dir} ({run_minutes(result)}, best val macro-F1 {result.best_val_f1:.4f})")
    if result.test_metrics:
        subset = f" (a --limit subset of {result.test_metrics['n']} images)" if config.limit else ""
        print(f"test{subset} {summary_line(result.test_metrics)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
