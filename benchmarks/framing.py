"""Where detectors put FER2013's faces: the keypoint template, the Haar box framing, and what is left.

    python benchmarks/framing.py --data ../shared/data/fer2013 [--split train] [--frames 400]
    python benchmarks/framing.py --data ../shared/data/fer2013 --split val --score saved_models/mobilenetv2

Frames are rendered from the split's crops (one face per frame, several scenes: borders, sizes,
lighting, +-15 degree turns), each face's exact FER2013 framing known. For every face a detector
finds (IoU > 0.3):
- BlazeFace's six keypoints, in the face's own 48x48 crop coordinates: their median is the
  alignment template (``fer_keras.app.align.FER2013_KEYPOINTS``);
- each box's square relative to the true one (scale, centre offset in box sides): their medians
  are ``HAAR_FRAMING`` and ``BLAZEFACE_BOX_MEASURED`` in ``fer_keras.app.detect``;
- with the current framings, the residual map from the true crop to the app's crop: scale,
  rotation and shift (median and 90th percentile of their size).
``--score MODEL[,MODEL]`` also classifies every found face framed each way (and the app's way: its
framings and their mirror images, averaged) and exactly, on the same faces.
Measure on ``train``; score on ``val`` (never the test split for choices).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import cv2
import numpy as np

from fer_keras.app.align import (
    FER2013_KEYPOINTS,
    KEYPOINT_NAMES,
    BoxFraming,
    KeypointFraming,
    compose,
    decompose,
    warp_crop,
)
from fer_keras.app.detect import BLAZEFACE_BOX_FRAMING, HAAR_FRAMING, FaceBox, make_detector
from fer_keras.app.synthetic import SCENES, render_frames
from fer_keras.data.loading import load_splits

MEASURE_SCENES = ("plain", "small", "large", "replicate", "reflect", "lighting", "rotation")


def match(found: list[FaceBox], box: FaceBox) -> FaceBox | None:
    best = max(found, key=box.iou, default=None)
    return best if best is not None and box.iou(best) > 0.3 else None


def box_framing(box: FaceBox, face) -> tuple[float, float, float]:
    """(scale, dx, dy) that would turn ``box`` into the face's true square."""
    return (
        face.side / max(box.w, box.h),
        (face.cx - (box.x + box.w / 2)) / box.w,
        (face.cy - (box.y + box.h / 2)) / box.h,
    )


def residual(matrix: np.ndarray, face) -> tuple[float, float, float, float]:
    """(scale, degrees, shift x, shift y) of true crop -> app crop."""
    return decompose(compose(matrix, cv2.invertAffineTransform(face.true_matrix())))


def summary(values: np.ndarray) -> dict:
    return {"median": round(float(np.median(values)), 4), "p90_abs": round(float(np.percentile(abs(values), 90)), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="train", choices=("train", "val", "test"))
    p.add_argument("--frames", type=int, default=400, help="frames (= faces) per scene")
    p.add_argument("--score", default="", help="also classify the found faces with these models (comma-separated)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    faces = getattr(load_splits(args.data, seed=0), args.split)
    detectors = {"dnn": make_detector("dnn"), "haar": make_detector("haar")}
    found = {name: [] for name in detectors}  # (scene, face, box, gray)
    for s, scene_name in enumerate(MEASURE_SCENES):
        scene = replace(SCENES[scene_name], face_px=SCENES[scene_name].face_px[:1])
        for frame, placed in render_frames(faces, scene, args.frames, hold=1, seed=args.seed + s):
            face = placed[0]
            truth = FaceBox(*face.box())
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            for name, detector in detectors.items():
                box = match(detector(gray if name == "haar" else frame), truth)
                if box is not None:
                    found[name].append((scene_name, face, box, gray))
    total = args.frames * len(MEASURE_SCENES)
    report: dict = {
        "split": args.split,
        "faces": total,
        "recall": {k: round(len(v) / total, 4) for k, v in found.items()},
    }

    points = np.array([[crop_point(face, kp) for kp in box.keypoints] for _, face, box, _ in found["dnn"]])
    template = np.median(points, 0)
    report["keypoint_template"] = {
        n: [round(float(x), 2), round(float(y), 2)] for n, (x, y) in zip(KEYPOINT_NAMES, template)
    }
    report["keypoint_spread_px"] = {
        n: round(float(v), 2) for n, v in zip(KEYPOINT_NAMES, np.median(abs(points - template), 0).mean(1))
    }
    for name, rows in found.items():
        values = np.array([box_framing(box, face) for _, face, box, _ in rows if abs(face.angle) < 5])
        scale, dx, dy = np.median(values, 0)
        report[f"{name}_box_framing"] = vars(
            BoxFraming(round(float(scale), 3), round(float(dx), 3), round(float(dy), 3))
        )

    # The framings in the code (measured on train earlier) and the alternatives they were chosen over.
    ways = {
        "dnn keypoints (eyes, nose, mouth)": ("dnn", detectors["dnn"].framings[0]),
        "dnn keypoints (all six)": (
            "dnn",
            KeypointFraming(template=tuple(map(tuple, FER2013_KEYPOINTS)), use=tuple(range(6))),
        ),
        "dnn box framing": ("dnn", BLAZEFACE_BOX_FRAMING),
        "dnn box, margin 0": ("dnn", BoxFraming()),
        "haar box framing": ("haar", HAAR_FRAMING),
        "haar box, margin -0.05": ("haar", BoxFraming.from_margin(-0.05)),
    }
    report["residual"] = {}
    for way, (name, framing) in ways.items():
        r = np.array([residual(framing.matrix(box), face) for _, face, box, _ in found[name]])
        report["residual"][way] = {
            "scale": summary(r[:, 0]),
            "rotation_deg": summary(r[:, 1]),
            "shift_x": summary(r[:, 2]),
            "shift_y": summary(r[:, 3]),
        }

    for model in filter(None, args.score.split(",")):
        from fer_keras.inference.predictor import load_predictor

        predictor = load_predictor(model)
        scores = report.setdefault("accuracy", {})[model] = {}
        for name, detector in detectors.items():
            rows = found[name]
            labels = np.array([face.label for _, face, _, _ in rows])
            exact = np.stack([warp_crop(g, face.true_matrix()) for _, face, _, g in rows])
            scores[f"{name}: exact framing of the found faces"] = accuracy(predictor, exact, labels)
            probs = {}
            for way, (way_detector, framing) in ways.items():
                if way_detector == name:
                    crops = np.stack([warp_crop(g, framing.matrix(box)) for _, _, box, g in rows])
                    probs[way] = predictor(crops), predictor(crops[:, :, ::-1])
                    scores[way] = accuracy(predictor, crops, labels)
            # the app's default: each of the detector's framings and its mirror image, averaged
            app = [probs[way] for way, (d, framing) in ways.items() if d == name and framing in detector.framings]
            both = np.mean([p for p, _ in app], 0)
            scores[f"{name}: the app's framings, averaged"] = round(float((both.argmax(1) == labels).mean()), 4)
            mirrored = np.mean([p for pair in app for p in pair], 0)
            scores[f"{name}: the app's framings and their mirror images (the default)"] = round(
                float((mirrored.argmax(1) == labels).mean()), 4
            )
    print(json.dumps(report, indent=1))


def crop_point(face, point) -> tuple[float, float]:
    """A frame point in the face's own 48x48 crop coordinates."""
    m = face.true_matrix()
    return tuple(m[:, :2] @ np.asarray(point) + m[:, 2])


def accuracy(predictor, crops: np.ndarray, labels: np.ndarray) -> float:
    return round(float((predictor(crops).argmax(1) == labels).mean()), 4)


if __name__ == "__main__":
    main()
