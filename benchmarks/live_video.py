"""Live-app benchmark on labelled 640x480 videos built several ways from FER2013 crops.

    python benchmarks/live_video.py --data ../shared/data/fer2013 \\
        [--scene plain,small,...|all] [--detector dnn,dnn:160,haar] [--model PATH,PATH] [--frames 3600]

Each scene (``fer_keras.app.synthetic.SCENES``: face size, border, blur, JPEG, lighting, rotation,
two sizes) is its own video of **test** crops, run headless through the live app's pipeline
(``EmotionRecognizer`` + ``run_video``, default settings unless a flag says otherwise). Per video
and pipeline it prints FPS, per-stage ms, face recall (IoU > 0.3), accuracy on the found faces,
the same model's accuracy on every face cut out with its exact framing, end-to-end accuracy (a
missed face counts as wrong), and the framing cost: exact-framing accuracy minus the app's on the
same found faces. The last two come with 95 % intervals over the video's distinct faces
(``--frames / --hold`` stays of one or two faces). Each video also times a plain Haar
cascade (the ``haar`` detector's settings), detection only, decoding included as in the app.
``--zoom 0.94,1.0`` compares BlazeFace's framings drawn at those multiples of the square
measured by benchmarks/framing.py (the app's: ``BLAZEFACE_ZOOM``). One JSON line per row, then
markdown tables and the means per setting; ``--json FILE`` keeps the rows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_keras.app.capture import open_source
from fer_keras.app.detect import BLAZEFACE_ZOOM, blazeface_framings, make_detector
from fer_keras.app.live import run_video
from fer_keras.app.recognizer import DETECT_EVERY, EmotionRecognizer
from fer_keras.app.synthetic import SCENES, exact_crops, make_face_video, score_run
from fer_keras.data.loading import load_splits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import matmul_peak_gflops  # noqa: E402

COLUMNS = [
    "scene",
    "detector",
    "model",
    "detect_every",
    "zoom",
    "fps",
    "haar_only_fps",
    "detect",
    "preprocess",
    "infer",
]
COLUMNS += ["recall", "accuracy_detected", "accuracy_exact", "accuracy_end_to_end", "end_to_end_ci"]
COLUMNS += ["framing_cost", "framing_cost_ci", "distinct_faces"]
AVERAGED = ["fps", "haar_only_fps", "detect", "preprocess", "infer"]
AVERAGED += ["recall", "accuracy_detected", "accuracy_exact", "accuracy_end_to_end", "framing_cost"]


def haar_only_fps(video: Path) -> float:
    """Frames per second of decoding + the Haar cascade alone."""
    detector = make_detector("haar")
    frames, started = 0, time.perf_counter()
    with open_source(str(video)) as stream:
        for _, frame in stream:
            detector(frame)
            frames += 1
    return frames / (time.perf_counter() - started)


def run_one(
    video: Path, truth: Path, model: str | None, detector_name: str, args, detect_every: int, zoom: float
) -> dict:
    name, _, size = detector_name.partition(":")  # dnn:160 = BlazeFace on a 160-pixel short side
    sized = {"dnn_size": int(size)} if size else {}  # dnn: the app's default size
    recognizer = EmotionRecognizer(
        model, name, margin=args.margin, detect_every=detect_every, threads=args.threads, **sized
    )
    if name == "dnn" and args.margin is None:
        recognizer.framings = blazeface_framings(zoom)
    out = video.with_name(f"app-{name}{size}-{detect_every}-{zoom}.csv")
    summary = run_video(recognizer, str(video), display=False, csv_path=str(out))
    crops, labels = exact_crops(video, truth)  # in the truth file's row order
    exact_correct = recognizer.predictor(crops).argmax(1) == labels
    scores = score_run(truth, out, exact_correct=exact_correct)
    exact = float(exact_correct.mean())
    return {
        "detector": detector_name,
        "model": model or "shipped (.tflite)",
        "detect_every": detect_every,
        "zoom": zoom,
        "frames": summary.frames,
        "fps": round(summary.fps, 1),
        **{k: round(v, 2) for k, v in summary.stage_ms.items()},
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
        "accuracy_exact": round(exact, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", help="crops to paste (use train or val to tune, test to report)")
    p.add_argument("--scene", default="all", help=f"comma-separated: {', '.join(SCENES)} (or all)")
    p.add_argument("--model", default="", help="comma-separated models (default: the shipped model, as TFLite)")
    p.add_argument(
        "--detector",
        default="dnn",
        help="comma-separated: dnn, haar, mtcnn; dnn:N runs BlazeFace on an N-pixel short side (--dnn-size N; dnn: the app's default)",
    )
    p.add_argument("--margin", type=float, default=None, help="box margin per side instead of the detector's framing")
    p.add_argument(
        "--detect-every", default=str(DETECT_EVERY), help=f"comma-separated N (the app's default: {DETECT_EVERY})"
    )
    p.add_argument(
        "--zoom",
        default=str(BLAZEFACE_ZOOM),
        help=f"comma-separated zooms of BlazeFace's measured framings (1.0: as measured; the app's: {BLAZEFACE_ZOOM})",
    )
    p.add_argument(
        "--frames", type=int, default=3600, help="frames per video (3,600: 720 distinct faces in two-face scenes)"
    )
    p.add_argument("--hold", type=int, default=10, help="frames each set of faces stays (then new crops appear)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="threads per model call, as fer_keras.live --threads")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args()
    scenes = list(SCENES) if args.scene == "all" else args.scene.split(",")
    print(f"float32 matmul peak: {matmul_peak_gflops():.0f} GFLOP/s", flush=True)

    faces = getattr(load_splits(args.data, seed=0), args.split)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s, scene in enumerate(scenes):
            video, truth = Path(tmp, f"{scene}.mp4"), Path(tmp, f"{scene}.csv")
            make_face_video(faces, video, truth, frames=args.frames, hold=args.hold, scene=scene, seed=args.seed + s)
            haar_fps = round(haar_only_fps(video), 1)
            grid = itertools.product(
                args.detector.split(","),
                args.model.split(","),
                [int(n) for n in args.detect_every.split(",")],
                [float(z) for z in args.zoom.split(",")],
            )
            for detector_name, model, every, zoom in grid:
                row = {"scene": scene, **run_one(video, truth, model or None, detector_name, args, every, zoom)}
                row["haar_only_fps"] = haar_fps
                row["fps_vs_haar_only"] = round(row["fps"] / haar_fps, 2)
                rows.append(row)
                print(json.dumps({"split": args.split, "threads": args.threads, **row}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"\nfloat32 matmul peak after the run: {matmul_peak_gflops():.0f} GFLOP/s")
    print("\n| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for row in rows:
        cells = {
            **row,
            "end_to_end_ci": f"{row['end_to_end_low']:.3f}-{row['end_to_end_high']:.3f}",
            "framing_cost_ci": f"{row['framing_cost_low']:+.3f}..{row['framing_cost_high']:+.3f}",
        }
        print("| " + " | ".join(str(cells[c]) for c in COLUMNS) + " |")
    settings = ("detector", "model", "detect_every", "zoom")
    for setting in dict.fromkeys(tuple(r[k] for k in settings) for r in rows):
        mine = [r for r in rows if tuple(r[k] for k in settings) == setting]
        mean = {k: round(float(np.mean([r[k] for r in mine])), 4) for k in AVERAGED}
        print(f"\nmean over {len(mine)} videos, {dict(zip(settings, setting))}: {json.dumps(mean)}")


if __name__ == "__main__":
    main()
