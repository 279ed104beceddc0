"""How tight BlazeFace's framings should be: the live app's accuracy with both framings zoomed.

    python benchmarks/framing_zoom.py --data ../shared/data/fer2013 [--zoom 0.94,0.97,1.0] [--seed 31] [--frames 1800]

One video per scene (``fer_keras.app.synthetic.SCENES``) of **validation** crops unless ``--split``
says otherwise, each run through the live app's pipeline (``EmotionRecognizer`` + ``run_video``,
default settings) once per zoom: BlazeFace's keypoint and box framings drawn ``zoom`` times the
measured square's side (``fer_keras.app.detect.blazeface_framings``; 1.0 is the square measured by
benchmarks/framing.py, the app uses ``BLAZEFACE_ZOOM``). Prints per video and zoom the recall,
accuracy on found faces, end to end and the framing cost (exact-framing accuracy minus the app's
on the same found faces, 95 % interval over distinct faces), then the means per zoom.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from fer_keras.app.detect import blazeface_framings
from fer_keras.app.live import run_video
from fer_keras.app.recognizer import EmotionRecognizer
from fer_keras.app.synthetic import SCENES, exact_crops, make_face_video, score_run
from fer_keras.data.loading import load_splits

KEYS = ("recall", "accuracy_detected", "accuracy_end_to_end", "framing_cost", "framing_cost_low", "framing_cost_high")
AVERAGED = ("accuracy_detected", "accuracy_end_to_end", "framing_cost")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val", help="crops to paste (val to choose; test only to report)")
    p.add_argument("--zoom", default="0.94,0.97,1.0", help="comma-separated zooms of the measured framings")
    p.add_argument("--scene", default="all", help=f"comma-separated: {', '.join(SCENES)} (or all)")
    p.add_argument("--frames", type=int, default=1800, help="frames per video (new faces every 10)")
    p.add_argument("--seed", type=int, default=31)
    args = p.parse_args()
    zooms = [float(z) for z in args.zoom.split(",")]
    scenes = list(SCENES) if args.scene == "all" else args.scene.split(",")
    faces = getattr(load_splits(args.data, seed=0), args.split)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s, scene in enumerate(scenes):
            video, truth = Path(tmp, f"{scene}.mp4"), Path(tmp, f"{scene}.csv")
            make_face_video(faces, video, truth, frames=args.frames, hold=10, scene=scene, seed=args.seed + s)
            for zoom in zooms:
                recognizer = EmotionRecognizer()
                recognizer.framings = blazeface_framings(zoom)
                out = Path(tmp, f"app-{zoom}.csv")
                run_video(recognizer, str(video), display=False, csv_path=str(out))
                crops, labels = exact_crops(video, truth)
                exact_correct = recognizer.predictor(crops).argmax(1) == labels
                scores = score_run(truth, out, exact_correct=exact_correct)
                row = {"scene": scene, "zoom": zoom, **{k: round(float(scores[k]), 4) for k in KEYS}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| scene | zoom | recall | found faces | end to end | framing cost (95 %) |\n|---|---|---|---|---|---|")
    for r in rows:
        cost = f"{r['framing_cost']:+.3f} ({r['framing_cost_low']:+.3f}..{r['framing_cost_high']:+.3f})"
        print(
            f"| {r['scene']} | {r['zoom']} | {r['recall']} | {r['accuracy_detected']} | {r['accuracy_end_to_end']} | {cost} |"
        )
    for zoom in zooms:
        mine = [r for r in rows if r["zoom"] == zoom]
        mean = {k: round(float(np.mean([r[k] for r in mine])), 4) for k in AVERAGED}
        print(f"mean over {len(mine)} videos, zoom {zoom}: {json.dumps(mean)}")


if __name__ == "__main__":
    main()
