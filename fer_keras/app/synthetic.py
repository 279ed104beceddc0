"""Labelled test videos made from FER2013 crops, built several ways, with every face's true framing.

A face is a crop scaled to ``side`` pixels, turned by ``angle`` degrees and placed at a centre:
that similarity is its ground truth (``true_matrix``), so a benchmark can score the app's boxes
(recall at IoU > 0.3), its labels, and what the model says on the exactly framed face. The ways a
video is made (``Scene``) differ in what a detector and the crop see: face size, what surrounds the
face (a textured background, the crop's replicated edge, its mirror image), blur, JPEG
compression, lighting, in-plane rotation, faces of different sizes in one frame, and motion.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from fer_keras.contract import CROP_SIZE, EMOTIONS
from fer_keras.data.sources import FaceArrays
from fer_keras.errors import FerKerasError

# ``appearance`` numbers each face's stay (one crop held for ``hold`` frames): the frames of one stay
# are one face seen several times, not independent samples, which the score's interval respects.
TRUTH_HEADER = ["frame", "face", "x", "y", "w", "h", "label", "cx", "cy", "side", "angle", "appearance"]
BORDERS = ("background", "replicate", "reflect")


@dataclass(frozen=True)
class Scene:
    """How a video is made. ``face_px``: (low, high) side of each face slot in turn; ``border``:
    what surrounds a face (``background``: pasted on a textured background; ``replicate``: the
    crop's edge pixels smeared outwards; ``reflect``: the crop mirrored outwards, a stand-in for the
    photo a crop was cut from); ``blur``: Gaussian sigma in pixels; ``jpeg``: quality of a JPEG round
    trip per frame (0 = none); ``light``: the largest brightness gain change across a frame (0 =
    flat); ``rotation``: the largest in-plane turn in degrees; ``motion``: how far each face moves
    per frame while it stays, (x, y) in pixels."""

    face_px: tuple[tuple[int, int], ...] = ((120, 180), (120, 180))
    border: str = "background"
    blur: float = 0.0
    jpeg: int = 0
    light: float = 0.0
    rotation: float = 0.0
    motion: tuple[float, float] = (1 / 3, 0.0)

    def __post_init__(self):
        if self.border not in BORDERS:
            raise FerKerasError(f"unknown border {self.border!r}; choose from {', '.join(BORDERS)}")


# The benchmark's videos: each changes one thing from the plain one.
SCENES = {
    "plain": Scene(),
    "small": Scene(face_px=((64, 96), (64, 96))),
    "large": Scene(face_px=((200, 260),)),
    "replicate": Scene(border="replicate"),
    "reflect": Scene(border="reflect"),
    "blur": Scene(border="replicate", blur=2.0),
    "jpeg": Scene(border="reflect", jpeg=20),
    "lighting": Scene(border="replicate", light=0.6),
    "rotation": Scene(border="reflect", rotation=15.0),
    "two-sizes": Scene(face_px=((70, 100), (160, 220)), border="replicate"),
    # a head turning or leaning while it talks: 4.5 pixels a frame, 134 a second at 30 FPS
    "moving": Scene(border="replicate", motion=(4.0, 2.0)),
}


@dataclass(frozen=True)
class PlacedFace:
    """One face in a frame: the crop's index and label, and where it went."""

    index: int
    label: int
    cx: float
    cy: float
    side: float
    angle: float

    def box(self) -> tuple[int, int, int, int]:
        """The face's upright square (what a detector should find), in frame pixels."""
        return round(self.cx - self.side / 2), round(self.cy - self.side / 2), round(self.side), round(self.side)

    def true_matrix(self, size: int = CROP_SIZE) -> np.ndarray:
        """The 2x3 map from frame pixels to the crop exactly as FER2013 framed this face."""
        s = size / self.side
        a = np.radians(self.angle)
        c, si = np.cos(a) * s, np.sin(a) * s
        # inverse of: frame = centre + rotate(angle) @ (crop - size/2) / s
        m = np.array([[c, si, 0.0], [-si, c, 0.0]])
        m[:, 2] = size / 2 - m[:, :2] @ np.array([self.cx, self.cy])
        return m.astype(np.float32)


def _background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    low = rng.uniform(40, 200, (6, 8, 3)).astype(np.float32)
    bg = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    bg += rng.normal(0, 6, bg.shape).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


def _paste(frame: np.ndarray, crop: np.ndarray, face: PlacedFace, border: str) -> None:
    """Draw a 48x48 crop into ``frame`` at the face's place, in place."""
    h, w = frame.shape[:2]
    size = crop.shape[0]
    if border == "background":
        patch, pad, feather = crop, 0, 0
    else:
        pad = size // 2
        mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_REFLECT_101
        patch, feather = cv2.copyMakeBorder(crop, pad, pad, pad, pad, mode), pad // 2
    # patch pixel -> frame pixel: the inverse of the true matrix, shifted by the patch's border
    to_crop = face.true_matrix(size)
    to_frame = cv2.invertAffineTransform(to_crop)
    to_frame[:, 2] -= to_frame[:, :2] @ np.array([pad, pad], np.float32)
    mask = np.zeros(patch.shape, np.float32)
    mask[feather : patch.shape[0] - feather, feather : patch.shape[1] - feather] = 1
    if feather:
        mask = cv2.GaussianBlur(mask, (0, 0), feather / 2)
        mask[pad:-pad, pad:-pad] = 1
    warped = cv2.warpAffine(patch, to_frame, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(mask, to_frame, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ys, xs = np.nonzero(alpha > 0)
    if not len(ys):
        return
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    a = alpha[y0:y1, x0:x1, None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(region * (1 - a) + warped[y0:y1, x0:x1, None] * a, 0, 255).astype(np.uint8)


def _light(frame: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A brightness gain that changes by up to ``strength`` across the frame, plus a gamma."""
    h, w = frame.shape[:2]
    g0 = rng.uniform(1 - strength / 2, 1 + strength / 4)
    g1 = g0 + rng.choice([-1, 1]) * strength * rng.uniform(0.5, 1)
    ramp = np.linspace(g0, g1, w, dtype=np.float32)[None, :, None]
    if rng.random() < 0.5:
        ramp = np.linspace(g0, g1, h, dtype=np.float32)[:, None, None]
    gamma = rng.uniform(0.7, 1.4)
    out = 255 * (frame.astype(np.float32) / 255) ** gamma * ramp
    return np.clip(out, 0, 255).astype(np.uint8)


def render_frames(
    faces: FaceArrays,
    scene: Scene,
    frames: int,
    hold: int = 15,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, list[PlacedFace]]]:
    """BGR frames and their faces: every ``hold`` frames new crops appear, then move by ``scene.motion``."""
    slots = len(scene.face_px)
    if len(faces) < slots:
        raise FerKerasError("not enough face crops to make a video")
    rng = np.random.default_rng(seed)
    w, h = size
    placed: list[PlacedFace] = []
    for frame_index in range(frames):
        if frame_index % hold == 0:
            background = _background(rng, size)
            picks = rng.choice(len(faces), slots, replace=False)
            placed, slot_w = [], w // slots
            light_seed = int(rng.integers(1 << 31))
            for slot, pick in enumerate(picks):
                side = float(rng.integers(*scene.face_px[slot]))
                reach = side * 0.75  # room for the face's border and a turned corner
                # and for the way it moves while it stays (at least ``hold`` pixels across)
                travel_x, travel_y = hold * max(1.0, scene.motion[0]), hold * scene.motion[1]
                lo, hi = slot * slot_w + reach, (slot + 1) * slot_w - reach - travel_x
                cx = float(rng.uniform(lo, max(lo + 1, hi)))
                cy = float(rng.uniform(reach, max(reach + 1, h - reach - travel_y)))
                angle = float(rng.uniform(-scene.rotation, scene.rotation))
                placed.append(PlacedFace(int(pick), int(faces.labels[pick]), cx, cy, side, angle))
        steps = frame_index % hold
        moved = [replace(f, cx=f.cx + steps * scene.motion[0], cy=f.cy + steps * scene.motion[1]) for f in placed]
        frame = background.copy()
        for face in moved:
            _paste(frame, faces.images[face.index], face, scene.border)
        if scene.light:
            frame = _light(frame, np.random.default_rng(light_seed), scene.light)
        if scene.blur:
            frame = cv2.GaussianBlur(frame, (0, 0), scene.blur)
        if scene.jpeg:
            ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg])
            frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
        yield frame, moved


def make_face_video(
    faces: FaceArrays,
    path: str | Path,
    truth_csv: str | Path,
    frames: int = 300,
    hold: int = 15,
    scene: Scene | str = "plain",
    size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    seed: int = 0,
) -> int:
    """Write an MP4 of ``scene`` (a ``Scene`` or a name in ``SCENES``) and its truth CSV; returns frames."""
    if isinstance(scene, str):
        if scene not in SCENES:
            raise FerKerasError(f"unknown scene {scene!r}; choose from {', '.join(SCENES)}")
        scene = SCENES[scene]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise FerKerasError(f"cannot write video {path}")
    with open(truth_csv, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(TRUTH_HEADER)
        for frame_index, (frame, placed) in enumerate(render_frames(faces, scene, frames, hold, size, seed)):
            for index, face in enumerate(placed):
                geometry = [round(face.cx, 2), round(face.cy, 2), round(face.side, 2), round(face.angle, 3)]
                appearance = frame_index // hold * len(placed) + index
                rows.writerow([frame_index, index, *face.box(), EMOTIONS[face.label], *geometry, appearance])
            writer.write(frame)
    writer.release()
    return frames


def truth_faces(truth_csv: str | Path) -> dict[int, list[PlacedFace]]:
    """The faces of each frame of a truth CSV (index -1: the crop index is not recorded)."""
    import pandas as pd

    truth = pd.read_csv(truth_csv)
    out: dict[int, list[PlacedFace]] = {}
    for t in truth.itertuples():
        face = PlacedFace(-1, EMOTIONS.index(t.label), t.cx, t.cy, t.side, t.angle)
        out.setdefault(int(t.frame), []).append(face)
    return out


def exact_crops(video: str | Path, truth_csv: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Every true face of a video cut out with its exact framing: (N, 48, 48) crops and labels."""
    from fer_keras.app.align import warp_crop

    by_frame = truth_faces(truth_csv)
    capture = cv2.VideoCapture(str(video))
    crops, labels, index = [], [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        for face in by_frame.get(index, []):
            crops.append(warp_crop(gray, face.true_matrix()))
            labels.append(face.label)
        index += 1
    capture.release()
    return np.stack(crops), np.asarray(labels)


def _face_interval(sums: np.ndarray, counts: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of sum(sums) / sum(counts), resampling the faces."""
    from scipy.stats import bootstrap

    if (counts > 0).sum() < 2:  # one face (or none): nothing to resample
        value = float(sums.sum() / counts.sum()) if counts.sum() else 0.0
        return value, value
    interval = bootstrap(
        (sums, counts),
        lambda r, s, axis=-1: r.sum(axis) / np.maximum(s.sum(axis), 1),
        paired=True,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return float(interval.low), float(interval.high)


def score_run(
    truth_csv: str | Path,
    app_csv: str | Path,
    min_iou: float = 0.3,
    resamples: int = 1000,
    seed: int = 0,
    exact_correct: np.ndarray | None = None,
) -> dict:
    """Face recall and end-to-end accuracy of the app's CSV against the ground truth.

    ``end_to_end_low`` and ``end_to_end_high`` bound a 95 % percentile-bootstrap interval for the
    end-to-end accuracy, resampling the video's distinct faces (truth column ``appearance``;
    without it each row counts as its own face): a video of a few hundred faces moves by several
    points with the sample, which resampling its frames would hide.

    ``exact_correct`` (one bool per truth row: the model right on that face's exact framing) adds
    ``framing_cost``: exact-framing accuracy minus the app's, both on the faces the app found, with
    its interval (``framing_cost_low``, ``framing_cost_high``). Comparing on the same faces leaves
    out which faces were found, so only the framing differs."""
    import pandas as pd

    from fer_keras.app.detect import FaceBox

    truth = pd.read_csv(truth_csv)
    found = pd.read_csv(app_csv)
    by_frame = {k: g for k, g in found.groupby("frame")}
    matched = np.zeros(len(truth), bool)
    correct = np.zeros(len(truth), bool)
    for i, t in enumerate(truth.itertuples()):
        candidates = by_frame.get(t.frame)
        if candidates is None:
            continue
        tbox = FaceBox(int(t.x), int(t.y), int(t.w), int(t.h))
        ious = [tbox.iou(FaceBox(int(r.x), int(r.y), int(r.w), int(r.h))) for r in candidates.itertuples()]
        best = int(np.argmax(ious))
        if ious[best] > min_iou:
            matched[i] = True
            correct[i] = candidates.iloc[best]["label"] == t.label
    n, hits = len(truth), int(matched.sum())
    faces = truth["appearance"].to_numpy() if "appearance" in truth else np.arange(n)
    _, face_of_row = np.unique(faces, return_inverse=True)
    right, seen = np.bincount(face_of_row, weights=correct), np.bincount(face_of_row)
    accuracy = int(correct.sum()) / n if n else 0.0
    lo, hi = _face_interval(right, seen, resamples, seed)
    framing = {}
    if exact_correct is not None:
        exact_correct = np.asarray(exact_correct, bool)
        if exact_correct.shape != (n,):
            raise FerKerasError(f"exact_correct needs one value per truth row ({n}), got {exact_correct.shape}")
        gap = (exact_correct.astype(float) - correct) * matched
        gaps, hits_of_face = np.bincount(face_of_row, weights=gap), np.bincount(face_of_row, weights=matched)
        cost_lo, cost_hi = _face_interval(gaps, hits_of_face, resamples, seed)
        framing = {
            "framing_cost": round(float(gap.sum() / hits), 4) if hits else 0.0,
            "framing_cost_low": round(cost_lo, 4),
            "framing_cost_high": round(cost_hi, 4),
        }
    return {
        "faces": n,
        "distinct_faces": int(len(seen)),
        "recall": hits / n if n else 0.0,
        "accuracy_end_to_end": accuracy,  # a missed face counts as wrong
        "end_to_end_low": round(float(lo), 4),
        "end_to_end_high": round(float(hi), 4),
        "accuracy_detected": int(correct.sum()) / hits if hits else 0.0,
        "false_positives": int(len(found) - hits),
        **framing,
    }
