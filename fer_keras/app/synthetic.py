"""Labelled test videos made from FER2013 crops: faces pasted on a background, boxes known.

Used by the live-app benchmark and tests: the app runs headless on the video and its CSV is
compared with the ground truth (face recall at IoU > 0.3, end-to-end accuracy).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from fer_keras.contract import EMOTIONS
from fer_keras.data.sources import FaceArrays
from fer_keras.errors import FerKerasError

TRUTH_HEADER = ["frame", "face", "x", "y", "w", "h", "label"]


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    low = rng.uniform(40, 200, (6, 8, 3)).astype(np.float32)
    bg = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    bg += rng.normal(0, 6, bg.shape).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


def make_face_video(
    faces: FaceArrays,
    path: str | Path,
    truth_csv: str | Path,
    frames: int = 300,
    hold: int = 15,
    faces_per_frame: int = 2,
    size: tuple[int, int] = (640, 480),
    face_px: tuple[int, int] = (120, 180),
    fps: float = 30.0,
    seed: int = 0,
) -> int:
    """Write an MP4 where every ``hold`` frames new crops appear (drifting slightly); returns frames."""
    if len(faces) < faces_per_frame:
        raise FerKerasError("not enough face crops to make a video")
    rng = np.random.default_rng(seed)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise FerKerasError(f"cannot write video {path}")
    with open(truth_csv, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(TRUTH_HEADER)
        placed: list[tuple[int, int, int, int, np.ndarray]] = []
        background = _background(rng, size)
        for frame_index in range(frames):
            if frame_index % hold == 0:
                background = _background(rng, size)
                picks = rng.choice(len(faces), faces_per_frame, replace=False)
                placed = []
                slot_w = w // faces_per_frame
                for slot, pick in enumerate(picks):
                    side = int(rng.integers(*face_px))
                    x = slot * slot_w + int(rng.integers(10, max(11, slot_w - side - 10)))
                    y = int(rng.integers(10, h - side - 10))
                    face = cv2.resize(faces.images[pick], (side, side), interpolation=cv2.INTER_CUBIC)
                    placed.append((x, y, side, int(faces.labels[pick]), face))
            frame = background.copy()
            drift = frame_index % hold
            for index, (x, y, side, label, face) in enumerate(placed):
                dx = min(max(x + drift // 3, 0), w - side)
                frame[y : y + side, dx : dx + side] = face[..., None]
                rows.writerow([frame_index, index, dx, y, side, side, EMOTIONS[label]])
            writer.write(frame)
    writer.release()
    return frames


def score_run(truth_csv: str | Path, app_csv: str | Path, min_iou: float = 0.3) -> dict:
    """Face recall and end-to-end accuracy of the app's CSV against the ground truth."""
    import pandas as pd

    from fer_keras.app.detect import FaceBox

    truth = pd.read_csv(truth_csv)
    found = pd.read_csv(app_csv)
    by_frame = {k: g for k, g in found.groupby("frame")}
    matched = correct = 0
    for _, t in truth.iterrows():
        candidates = by_frame.get(t["frame"])
        if candidates is None:
            continue
        tbox = FaceBox(int(t["x"]), int(t["y"]), int(t["w"]), int(t["h"]))
        ious = [tbox.iou(FaceBox(int(r.x), int(r.y), int(r.w), int(r.h))) for r in candidates.itertuples()]
        best = int(np.argmax(ious))
        if ious[best] > min_iou:
            matched += 1
            correct += candidates.iloc[best]["label"] == t["label"]
    n = len(truth)
    return {
        "faces": n,
        "recall": matched / n if n else 0.0,
        "accuracy_end_to_end": correct / n if n else 0.0,  # a missed face counts as wrong
        "accuracy_detected": correct / matched if matched else 0.0,
        "false_positives": int(len(found) - matched),
    }
