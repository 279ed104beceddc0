"""Real-time emotion recognition: ``python -m fer_keras.live [--source 0|VIDEO|IMAGE|DIR]``.

capture -> detect -> crop -> classify (all faces of a frame in one batch) -> track + smooth ->
draw / write video / CSV (``fer_keras.app.live``). An image or a folder of images prints one
JSON object per face.
"""

from __future__ import annotations

import argparse

from fer_keras.app.detect import DETECTORS
from fer_keras.app.recognizer import DETECT_EVERY, DNN_SIZE
from fer_keras.cli import cli_main, command_parser
from fer_keras.errors import FerKerasError
from fer_keras.inference.predictor import MODEL_OPTION_HELP, RUNTIME_HELP, RUNTIMES, check_model_path


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("live", "Faces and their emotions from a webcam, a video, an image or a folder of images.")
    p.add_argument("--source", default="0", help="camera index, video file, image file or folder of images")
    add_recognizer_options(p)
    p.add_argument("--no-display", action="store_true", help="no window (headless: SSH, Docker)")
    p.add_argument("--output", help="annotated video (.mp4), or annotated image file / folder for image sources")
    p.add_argument("--csv", help="CSV file with one row per face per frame (images: per face per image)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = until the end)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per model call, the classifier's and BlazeFace's (default: 1 for TensorFlow models, "
        "the fastest for a few faces; every core for .tflite, .onnx and BlazeFace)",
    )
    return p


def add_recognizer_options(p: argparse.ArgumentParser) -> None:
    """The options of ``EmotionRecognizer`` as flags (live, analyze)."""
    p.add_argument("--model", default=None, help=MODEL_OPTION_HELP)
    p.add_argument("--runtime", choices=RUNTIMES, default="auto", help=RUNTIME_HELP)
    p.add_argument(
        "--detector",
        choices=DETECTORS,
        default="dnn",
        help="dnn (BlazeFace TFLite with landmark alignment: the fastest, finds the most faces), "
        "haar (OpenCV cascade), mtcnn (slow), or none: each image is one face (a folder of ready face crops)",
    )
    p.add_argument("--downscale", type=float, default=2.0, help="haar: detect on a frame this many times smaller")
    p.add_argument(
        "--dnn-size",
        type=int,
        default=DNN_SIZE,
        help="dnn: BlazeFace's input pixels on the frame's short side (its model's own is 256, 1.4x faster "
        "per detection, and finds fewer faces under 100 pixels)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=None,
        help="crop the box's square grown by this share per side instead of the detector's FER2013 framing",
    )
    p.add_argument(
        "--detect-every",
        type=int,
        default=DETECT_EVERY,
        help="run the detector every N frames of a video; in between, tracked faces are re-classified in place "
        "(a face that no longer looks like itself there triggers a detection)",
    )
    p.add_argument(
        "--no-flip", action="store_true", help="never classify a face's mirror image (by default: on every other frame)"
    )
    p.add_argument("--smoothing", type=float, default=0.6, help="weight of the past in each face's running average")


def check_options(args: argparse.Namespace) -> None:
    """One-line errors for option values that would crash later or silently mislead."""
    from fer_keras.app.recognizer import check_options as check_recognizer_options

    check_recognizer_options(
        args.smoothing, args.detect_every, args.margin, args.dnn_size, name=lambda o: "--" + o.replace("_", "-")
    )
    threads = getattr(args, "threads", None)  # live's; analyze divides the cores itself
    checks = [
        (args.downscale > 0, f"--downscale must be positive, got {args.downscale}"),
        (args.max_frames >= 0, f"--max-frames must be 0 (no limit) or more, got {args.max_frames}"),
        (threads is None or threads >= 1, f"--threads must be at least 1, got {threads}"),
    ]
    for ok, message in checks:
        if not ok:
            raise FerKerasError(message)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_options(args)
    check_model_path(args.model)  # before TensorFlow loads: a wrong path answers at once
    from fer_keras.app.capture import open_source
    from fer_keras.app.live import check_display, check_outputs, image_paths, run_images, run_video
    from fer_keras.app.recognizer import EmotionRecognizer

    images = image_paths(args.source)
    check_outputs(images, args.output, args.csv)
    if images is None and not args.no_display:
        check_display()
    # a camera or video that cannot be opened answers before the model loads (seconds)
    stream = open_source(args.source) if images is None else None
    try:
        recognizer = EmotionRecognizer(
            args.model,
            args.detector,
            margin=args.margin,
            smoothing=args.smoothing,
            detect_every=args.detect_every,
            flip=not args.no_flip,
            threads=args.threads,
            downscale=args.downscale,
            dnn_size=args.dnn_size,
            runtime=args.runtime,
        )
    except BaseException:
        if stream:
            stream.close()
        raise
    if stream is None:
        return run_images(recognizer, images, args.output, args.csv)
    summary = run_video(recognizer, stream, not args.no_display, args.output, args.csv, args.max_frames)
    stages = " ".join(f"{k}={v:.2f}ms" for k, v in summary.stage_ms.items())
    print(f"per frame: {stages}")
    if summary.dropped:
        print(f"stale camera frames dropped: {summary.dropped}")
    for face_id, label in summary.dominant.items():
        print(f"face {face_id}: mostly {label}")
    print(f"frames={summary.frames} fps={summary.fps:.1f} faces={summary.faces}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
