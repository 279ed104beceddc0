"""Live-app benchmark: a labelled 640x480 video of FER2013 test crops (two faces per frame),
run headless through ``fer_keras.live``; prints FPS, per-stage ms, face recall and accuracy.

    python benchmarks/live_video.py --data ../shared/data/fer2013 [--model PATH] [--detector haar|dnn|mtcnn]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from fer_keras.data import load_splits
from fer_keras.detect import make_detector
from fer_keras.live import EmotionPipeline, run_video
from fer_keras.predictor import limit_tf_threads, load_predictor
from fer_keras.synthetic import make_face_video, score_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", help="crops to paste (use train to tune, test to report)")
    p.add_argument("--model", default=None)
    p.add_argument("--detector", default="haar")
    p.add_argument("--margin", type=float, default=None, help="crop margin per side (default: the detector's)")
    p.add_argument("--detect-every", type=int, default=1)
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="TensorFlow threads per op, as fer_keras.live --threads")
    args = p.parse_args()
    limit_tf_threads(args.threads, 1)

    faces = getattr(load_splits(args.data, seed=0), args.split)
    with tempfile.TemporaryDirectory() as tmp:
        video, truth, out = Path(tmp, "faces.mp4"), Path(tmp, "truth.csv"), Path(tmp, "app.csv")
        make_face_video(faces, video, truth, frames=args.frames, seed=args.seed)
        options = {"downscale": 2.0} if args.detector == "haar" else {}
        detector = make_detector(args.detector, **options)
        pipeline = EmotionPipeline(load_predictor(args.model), detector, args.margin, detect_every=args.detect_every)
        summary = run_video(pipeline, str(video), display=False, csv_path=str(out))
        scores = score_run(truth, out)
    result = {
        "detector": args.detector,
        "model": str(args.model or "saved_models/mobilenetv2"),
        "split": args.split,
        "detect_every": args.detect_every,
        "threads": args.threads,
        "margin": pipeline.margin,
        "frames": summary.frames,
        "fps": round(summary.fps, 1),
        "stage_ms": {k: round(v, 2) for k, v in summary.stage_ms.items()},
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
