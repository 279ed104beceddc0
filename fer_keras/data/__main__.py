"""``python -m fer_keras.data inspect PATH``: counts, leakage and label-conflict report."""

from __future__ import annotations

from fer_keras import cli
from fer_keras.cli import CommandParser, cli_main


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(
        prog=f"{cli.PROGRAM}data",
        description="Inspect a dataset: counts per split and class, duplicates across splits and conflicting labels.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="print counts per split and class and the duplicate report")
    inspect.add_argument(
        "path",
        nargs="?",
        default=None,
        help="dataset folder or fer2013.csv (default: $FER_KERAS_DATA or data/fer2013)",
    )
    inspect.add_argument(
        "--ferplus",
        metavar="VOTES.csv",
        help="FER+ votes: fer2013_votes.csv for a folder (8 classes, with the agreement between FER2013 "
        "and FER+ labels per class), or fer2013new.csv for a fer2013.csv",
    )
    inspect.add_argument("--skip-bad", action="store_true", help="skip and count unreadable files")
    inspect.add_argument("--no-cache", action="store_true", help="decode again instead of using the cache")
    args = parser.parse_args(argv)
    from fer_keras.data.inspect import format_report
    from fer_keras.data.loading import LoadReport, check_data_path, load_faces

    path = check_data_path(args.path, hint="give its path (data inspect PATH) or set FER_KERAS_DATA")
    report = LoadReport()
    faces = load_faces(
        path,
        on_error="skip" if args.skip_bad else "raise",
        ferplus=args.ferplus,
        use_cache=not args.no_cache,
        report=report,
    )
    print(format_report(faces, report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
