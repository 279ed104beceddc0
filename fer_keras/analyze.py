"""Analyze recordings at scale: ``python -m fer_keras.analyze INPUT... --out DIR``.

Videos, images, folders (searched recursively) and globs go through the live app's pipeline; each
file gets its per-frame CSV, a per-face summary and (videos) a timeline plot, and the run a table
across files and ``summary.md`` (``fer_keras.app.analyze``). Run it again and the files already
done are skipped. ``--workers N`` runs N processes; ``--ray [ADDRESS]`` runs on a Ray cluster.
"""

from __future__ import annotations

import argparse
import json

from fer_keras.cli import cli_main, command_parser, options_from
from fer_keras.errors import FerKerasError
from fer_keras.inference.predictor import check_model_path
from fer_keras.live import add_recognizer_options, check_options


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("analyze", "Faces and their emotions over many videos and images, summarised per face.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video or image files, folders, or globs ('clips/*.mp4')")
    p.add_argument("--out", required=True, help="folder for the results (one subfolder per file)")
    add_recognizer_options(p)
    p.add_argument("--max-frames", type=int, default=0, help="stop each video after N frames (0 = all)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="files analyzed at once, each in its own process with its own model and a share of the cores "
        "(with --ray: actors; default there: one per CPU of the cluster)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=None,
        metavar="ADDRESS",
        help="run on Ray (pip install 'fer_keras[ray]'): a new local instance, or the cluster at ADDRESS "
        "('auto', 'ray://head:10001'); results are written to --out, which every node must reach",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_options(args)
    check_model_path(args.model)  # before TensorFlow loads: a wrong path answers at once
    from fer_keras.app.analyze import AnalyzeOptions, analyze_files

    options = options_from(AnalyzeOptions, args, flip=not args.no_flip)
    summary = analyze_files(
        args.inputs, args.out, options, workers=args.workers, ray=args.ray, progress=not args.no_progress
    )
    counts = summary.counts()
    if counts["failed"] == counts["files"]:
        raise FerKerasError(f"none of the {counts['files']} files could be analyzed (each is named above)")
    print(f"wrote {args.out}/faces.csv and {args.out}/summary.md")
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
