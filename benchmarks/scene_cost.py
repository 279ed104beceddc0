"""What each way of making a test video costs, on the same faces: exact framing and the app's crops.

    python benchmarks/scene_cost.py --data ../shared/data/fer2013 [--split val] [--frames 1000]
        [--model saved_models/mobilenetv2.tflite,runs/x/saved_model]

The live benchmark (``benchmarks/live_video.py``) gives each scene its own faces, so its videos
differ by their samples as well as by how they were made. Here every scene of
``fer_keras.app.synthetic.SCENES`` renders the *same* faces (same seed: one face per frame, single
frames, no tracking), so the differences between rows are the scenes' own. Per scene and model:
BlazeFace's recall (IoU > 0.3), accuracy on every face cut out with its exact framing, and on the
found faces both exactly framed and as the app crops them (its framings and mirror images,
averaged): the last two side by side are what framing costs, paired.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from fer_keras.app.align import warp_crop
from fer_keras.app.detect import FaceBox
from fer_keras.app.recognizer import EmotionRecognizer
from fer_keras.app.synthetic import SCENES, render_frames
from fer_keras.data.loading import load_splits
from fer_keras.inference.predictor import load_predictor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from framing import match  # noqa: E402
from models import matmul_peak_gflops  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--frames", type=int, default=1000, help="faces per scene (one per frame)")
    p.add_argument("--model", default="saved_models/mobilenetv2.tflite", help="comma-separated models")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    print(f"float32 matmul peak: {matmul_peak_gflops():.0f} GFLOP/s", flush=True)

    faces = getattr(load_splits(args.data, seed=0), args.split)
    recognizer = EmotionRecognizer()
    models = {m: load_predictor(m) for m in args.model.split(",")}
    rows = []
    for name, scene in SCENES.items():
        scene = replace(scene, face_px=scene.face_px[:1])  # one face a frame: every scene, the same faces
        labels, exact, app, found = [], [], [], []
        for frame, (face, *_) in render_frames(faces, scene, args.frames, hold=1, seed=args.seed):
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            labels.append(face.label)
            exact.append(warp_crop(gray, face.true_matrix()))
            box = match(recognizer.locate(frame)[0], FaceBox(*face.box()))
            found.append(box is not None)
            if box is not None:
                app.append(recognizer.locate(frame, [box])[1])
        labels, found, exact = np.array(labels), np.array(found), np.stack(exact)
        for model, predictor in models.items():
            right_exact = predictor(exact).argmax(1) == labels
            right_app = recognizer.merge_views(predictor(np.concatenate(app))).argmax(1) == labels[found]
            row = {
                "scene": name,
                "model": model,
                "faces": len(labels),
                "recall": round(float(found.mean()), 4),
                "exact": round(float(right_exact.mean()), 4),
                "found_exact": round(float(right_exact[found].mean()), 4),
                "found_app": round(float(right_app.mean()), 4),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nfloat32 matmul peak after the run: {matmul_peak_gflops():.0f} GFLOP/s\n")
    columns = ["scene", "model", "recall", "exact", "found_exact", "found_app"]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")
    for model in models:
        mine = [r for r in rows if r["model"] == model]
        mean = {k: round(float(np.mean([r[k] for r in mine])), 4) for k in columns[2:]}
        print(f"\nmean over {len(mine)} scenes, {model}: {json.dumps(mean)}")


if __name__ == "__main__":
    main()
