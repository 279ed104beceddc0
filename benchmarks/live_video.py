"""Live-app benchmark: a labelled 640x480 video of FER2013 test crops (two faces per frame),
run headless through the live app's ``EmotionRecognizer``; prints FPS, per-stage ms, face recall and accuracy.

    python benchmarks/live_video.py --data ../shared/data/fer2013 \\
        [--detector haar,dnn,mtcnn] [--model PATH,PATH] [--detect-every 1,2] [--frames 600]

Comma-separated values run every combination on the same video: one JSON line each, then a
markdown table (the README's).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

from fer_keras.app.live import run_video
from fer_keras.app.recognizer import EmotionRecognizer
from fer_keras.app.synthetic import make_face_video, score_run
from fer_keras.data.loading import load_splits
from fer_keras.inference.predictor import limit_tf_threads

COLUMNS = ["detector", "model", "detect_every", "frames", "fps", "detect", "preprocess", "infer", "draw"]
COLUMNS += ["recall", "accuracy_end_to_end", "accuracy_detected", "false_positives"]


def run_one(video: Path, truth: Path, model: str | None, detector_name: str, margin, detect_every: int) -> dict:
    recognizer = EmotionRecognizer(model, detector_name, margin=margin, detect_every=detect_every, downscale=2.0)
    out = video.with_name(f"app-{detector_name}-{detect_every}.csv")
    summary = run_video(recognizer, str(video), display=False, csv_path=str(out))
    scores = score_run(truth, out)
    return {
        "detector": detector_name,
        "model": model or "saved_models/mobilenetv2",
        "detect_every": detect_every,
        "margin": recognizer.margin,
        "frames": summary.frames,
        "fps": round(summary.fps, 1),
        **{k: round(v, 2) for k, v in summary.stage_ms.items()},
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", help="crops to paste (use train to tune, test to report)")
    p.add_argument("--model", default="", help="comma-separated models (default: the shipped SavedModel)")
    p.add_argument("--detector", default="haar", help="comma-separated: haar, dnn, mtcnn")
    p.add_argument("--margin", type=float, default=None, help="crop margin per side (default: the detector's)")
    p.add_argument("--detect-every", default="1", help="comma-separated N")
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads per op, as fer_keras.live --threads")
    args = p.parse_args()
    limit_tf_threads(args.threads, 1)

    faces = getattr(load_splits(args.data, seed=0), args.split)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video, truth = Path(tmp, "faces.mp4"), Path(tmp, "truth.csv")
        make_face_video(faces, video, truth, frames=args.frames, seed=args.seed)
        grid = itertools.product(
            args.detector.split(","), args.model.split(","), [int(n) for n in args.detect_every.split(",")]
        )
        for detector_name, model, every in grid:
            row = run_one(video, truth, model or None, detector_name, args.margin, every)
            rows.append(row)
            print(json.dumps({"split": args.split, "threads": args.threads, **row}), flush=True)
    print("\n| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
