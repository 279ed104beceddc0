"""The live app: faces and emotions of a camera, a video or images, drawn, written and summarised.

A webcam is read on its own thread that keeps only the newest frame (``fer_keras.app.capture``),
so processing never lags behind the camera; every frame goes through ``EmotionRecognizer``;
results are drawn (box, label, per-class bars, FPS), written to a video and a CSV, and summarised.
An image (or a folder of images) prints one JSON object per face instead.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_keras.app.capture import VideoSource, open_source
from fer_keras.app.detect import WholeImage
from fer_keras.app.recognizer import EmotionRecognizer, Face, to_bgr
from fer_keras.contract import EMOTIONS
from fer_keras.errors import FerKerasError, first_line

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
CSV_COLUMNS = ["frame", "time_s", "face_id", "x", "y", "w", "h", "label", "confidence"]


def csv_header(classes: tuple[str, ...] = EMOTIONS) -> list[str]:
    """The live CSV's columns: one ``p_<class>`` per class of the model."""
    return CSV_COLUMNS + [f"p_{name}" for name in classes]


CSV_HEADER = csv_header()  # a FER2013 model's
WINDOW = "fer_keras live (q to quit)"
NO_WINDOW_HINT = "run with --no-display (and --output annotated.mp4 and/or --csv faces.csv to keep the results)"
COLORS = {  # BGR
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (40, 200, 240),
    "sad": (200, 120, 40),
    "surprise": (40, 160, 250),
    "neutral": (180, 180, 180),
    "contempt": (120, 60, 40),
}


FONT = cv2.FONT_HERSHEY_SIMPLEX
PANEL_ROW = 17  # pixels per emotion in the per-class panel
PANEL_NAME, PANEL_BAR, PANEL_VALUE = 68, 62, 34  # column widths: full name, bar, percentage


def _panel_size(classes: int = len(EMOTIONS)) -> tuple[int, int]:
    return PANEL_NAME + PANEL_BAR + PANEL_VALUE + 8, PANEL_ROW * classes + 6


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _panel_place(
    frame: np.ndarray, box, taken: list[tuple[int, int, int, int]], classes: int = len(EMOTIONS)
) -> tuple[int, int, int, int]:
    """Where a face's panel goes: right of the face, else left, below or above, whichever covers
    the least of the faces, labels and panels already drawn; always inside the frame."""
    width, height = _panel_size(classes)
    frame_h, frame_w = frame.shape[:2]
    candidates = [
        (box.x + box.w + 6, box.y),
        (box.x - width - 6, box.y),
        (box.x, box.y + box.h + 6),
        (box.x, box.y - height - 6),
    ]
    clipped = []
    for x, y in candidates:
        x, y = min(max(x, 0), max(frame_w - width, 0)), min(max(y, 0), max(frame_h - height, 0))
        clipped.append((x, y, x + width, y + height))
    return min(clipped, key=lambda rect: sum(_overlap(rect, other) for other in taken))  # first of equals


def _panel(frame: np.ndarray, face: Face, rect: tuple[int, int, int, int]) -> None:
    """A dark panel listing every emotion: full name, a bar in the emotion's colour, its percentage."""
    x0, y0 = rect[0], rect[1]
    x1, y1 = min(rect[2], frame.shape[1]), min(rect[3], frame.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    frame[y0:y1, x0:x1] = (frame[y0:y1, x0:x1] * 0.25).astype(frame.dtype)  # darken: text stays readable
    for i, (name, p) in enumerate(face.probs.items()):
        base = y0 + 4 + i * PANEL_ROW
        weight = 2 if name == face.label else 1
        cv2.putText(frame, name, (x0 + 4, base + 12), FONT, 0.42, (255, 255, 255), weight, cv2.LINE_AA)
        bx = x0 + 4 + PANEL_NAME
        cv2.rectangle(frame, (bx, base + 3), (bx + PANEL_BAR, base + 13), (90, 90, 90), 1)
        cv2.rectangle(frame, (bx, base + 3), (bx + round(PANEL_BAR * p), base + 13), COLORS[name], -1)
        cv2.putText(frame, f"{p:4.0%}", (bx + PANEL_BAR + 4, base + 12), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)


def draw(frame: np.ndarray, faces: list[Face], fps: float | None = None) -> np.ndarray:
    """Box, label with confidence and a per-class panel beside each face; FPS in the corner."""
    taken = [(f.box.x, f.box.y, f.box.x + f.box.w, f.box.y + f.box.h) for f in faces]
    for face in faces:
        b, color = face.box, COLORS[face.label]
        cv2.rectangle(frame, (b.x, b.y), (b.x + b.w, b.y + b.h), color, 2)
        text = f"{face.label} {face.confidence:.0%}" + (f" #{face.face_id}" if face.face_id >= 0 else "")
        (tw, th), _ = cv2.getTextSize(text, FONT, 0.6, 2)
        y = max(b.y - 6, th + 6)
        cv2.rectangle(frame, (b.x, y - th - 6), (b.x + tw + 6, y + 3), color, -1)
        cv2.putText(frame, text, (b.x + 3, y - 2), FONT, 0.6, (0, 0, 0), 2, cv2.LINE_AA)
        taken.append((b.x, y - th - 6, b.x + tw + 6, y + 3))
    for face in sorted(faces, key=lambda f: f.box.x):  # left to right: each panel sees those placed before
        rect = _panel_place(frame, face.box, taken, len(face.probs))
        _panel(frame, face, rect)
        taken.append(rect)
    if fps is not None:
        cv2.putText(frame, f"{fps:5.1f} FPS", (8, 22), FONT, 0.6, (0, 255, 0), 2, cv2.LINE_AA)
    return frame


def face_json(face: Face, image: str | None = None) -> str:
    """One face as the JSON line the app prints for images (``Face.to_dict``, plus the image's path)."""
    return json.dumps({**({"image": image} if image else {}), **face.to_dict()})


# Annotations need room: a smaller image (a 48x48 face crop, say) is drawn on an enlarged copy.
ANNOTATE_MIN_SIDE = 360
CROP_SIZED = 96  # an image this small on its short side is most likely a ready face crop


def annotate(frame: np.ndarray, faces: list[Face]) -> np.ndarray:
    """``draw`` on a copy readable at any size: a small image is enlarged (boxes with it), and a
    face too wide to leave room for its panel gets a dark strip on the right to hold it."""
    scale = max(1.0, ANNOTATE_MIN_SIDE / min(frame.shape[:2]))
    canvas = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if scale > 1:
        size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_CUBIC)
        faces = [replace(f, box=replace(f.box, **{k: round(getattr(f.box, k) * scale) for k in "xywh"})) for f in faces]
    panel_w = _panel_size(len(faces[0].probs))[0] + 12 if faces else 0
    width = canvas.shape[1]
    if any(f.box.x < panel_w and width - f.box.x - f.box.w < panel_w for f in faces):
        canvas = cv2.copyMakeBorder(canvas, 0, 0, 0, panel_w, cv2.BORDER_CONSTANT, value=(40, 40, 40))
    return draw(canvas, faces)


def image_rows(index: int, path: Path, faces: list[Face]) -> list[list]:
    """The live CSV's rows for an image: its path first, then the video columns (frame = its index)."""
    return [[str(path), *csv_row(index, 0.0, face)] for face in faces]


def run_images(
    recognizer: EmotionRecognizer, paths: list[Path], output: str | None = None, csv_path: str | None = None
) -> int:
    """Classify every face of every image: one JSON line per face on stdout, the CSV and annotated
    images if asked. An image with no face, or one that cannot be read, is named on stderr and
    counted; a folder's run ends with a count of each on stderr."""
    many = len(paths) > 1
    if output and many:
        Path(output).mkdir(parents=True, exist_ok=True)
    csv_file = open(csv_path, "w", newline="") if csv_path else None  # noqa: SIM115 - closed in finally
    rows = csv.writer(csv_file) if csv_file else None
    if rows:
        rows.writerow(["image", *csv_header(recognizer.classes)])
    faces_total, no_face, unreadable, crop_sized = 0, 0, 0, 0
    whole = isinstance(recognizer.detector, WholeImage)
    try:
        for index, path in enumerate(paths):
            try:
                frame = to_bgr(path)
            except FerKerasError as err:
                if not many:
                    raise
                unreadable += 1
                print(f"skipped: {err}", file=sys.stderr)
                continue
            faces = recognizer.analyze(frame)
            crop_sized += min(frame.shape[:2]) <= CROP_SIZED
            faces_total += len(faces)
            if not faces:
                no_face += 1
                print(f"no face found in {path}", file=sys.stderr)
            for face in faces:
                print(face_json(face, str(path) if many else None))
            if rows:
                rows.writerows(image_rows(index, path, faces))
            if output:
                target = Path(output) / path.name if many else Path(output)
                if not cv2.imwrite(str(target), annotate(frame, faces)):
                    raise FerKerasError(f"cannot write {target}")
    finally:
        if csv_file:
            csv_file.close()
    if faces_total == 0:
        print(json.dumps({"faces": 0}))
    if crop_sized and not whole:
        # a detector looks for a face with room around it, and finds parts of a tight crop, or nothing
        print(
            f"note: {crop_sized} of the images are {CROP_SIZED} pixels or smaller, the size of ready face crops; "
            "--detector none classifies each image whole",
            file=sys.stderr,
        )
    if many:
        print(
            f"images={len(paths)} faces={faces_total} no_face={no_face} unreadable={unreadable}",
            file=sys.stderr,
        )
    return 0


def check_outputs(source_images: list[Path] | None, output: str | None, csv_path: str | None) -> None:
    """Where results go, checked before any work: a missing folder or a format OpenCV cannot write
    is a one-line error now rather than after the whole source has been processed."""
    many = source_images is not None and len(source_images) > 1
    files = [("--csv", csv_path)] + ([] if many else [("--output", output)])
    for flag, target in files:
        if target and not Path(target).resolve().parent.is_dir():
            raise FerKerasError(f"{flag} {target}: folder {Path(target).parent} does not exist")
    if many and output and Path(output).exists() and not Path(output).is_dir():
        raise FerKerasError(f"--output {output} is a file; for a folder of images give a folder")
    if output and source_images is not None and not many and not cv2.haveImageWriter(output):
        raise FerKerasError(f"--output {output}: OpenCV cannot write this image type (use .jpg or .png)")


@dataclass
class VideoSummary:
    frames: int
    seconds: float
    faces: int
    dominant: dict[int, str]
    stage_ms: dict[str, float]
    dropped: int = 0
    video_fps: float = 30.0  # the source's frame rate (a camera's, or a file's own)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def csv_row(frame: int, time_s: float, face: Face) -> list:
    b = face.box
    return [frame, f"{time_s:.3f}", face.face_id, b.x, b.y, b.w, b.h, face.label, f"{face.confidence:.4f}"] + [
        f"{p:.4f}" for p in face.probs.values()
    ]


def run_video(
    recognizer: EmotionRecognizer,
    source: str | VideoSource,
    display: bool = True,
    output: str | None = None,
    csv_path: str | None = None,
    max_frames: int = 0,
    progress: Callable[[int], Any] | None = None,
) -> VideoSummary:
    """Process a camera or video (a path or index, or a source already opened, which this closes)
    until it ends (or 'q' / Esc in the window, or ``max_frames``); ``progress(1)`` is called after
    each frame."""
    recognizer.reset()
    stream = source if isinstance(source, VideoSource) else open_source(source)
    writer = None
    csv_file = open(csv_path, "w", newline="") if csv_path else None  # noqa: SIM115 - closed in finally
    rows = csv.writer(csv_file) if csv_file else None
    if rows:
        rows.writerow(csv_header(recognizer.classes))
    frames, started, fps = 0, time.perf_counter(), 0.0
    try:
        for time_s, frame in stream:
            tick = time.perf_counter()
            faces = recognizer.process(frame)
            t_draw = time.perf_counter()
            if rows:
                rows.writerows(csv_row(frames, time_s, f) for f in faces)
            if display or output:
                draw(frame, faces, fps)
            if output:
                if writer is None:
                    writer = cv2.VideoWriter(
                        output, cv2.VideoWriter_fourcc(*"mp4v"), stream.fps, (frame.shape[1], frame.shape[0])
                    )
                    if not writer.isOpened():
                        raise FerKerasError(f"cannot write video {output}")
                writer.write(frame)
            if display:
                try:
                    cv2.imshow(WINDOW, frame)
                except cv2.error as err:  # e.g. opencv-python-headless, which has no GUI
                    raise FerKerasError(f"OpenCV cannot open a window ({first_line(err)}); {NO_WINDOW_HINT}") from None
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            recognizer.timer.seconds["draw"] += time.perf_counter() - t_draw
            frames += 1
            if progress:
                progress(1)
            elapsed = time.perf_counter() - tick
            fps = 0.9 * fps + 0.1 / elapsed if fps else 1 / max(elapsed, 1e-6)
            if max_frames and frames >= max_frames:
                break
    finally:
        seconds = time.perf_counter() - started
        stream.close()
        if writer:
            writer.release()
        if csv_file:
            csv_file.close()
        if display:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass  # no GUI: the error that matters was raised by imshow
    if frames == 0:
        raise FerKerasError(f"no frames could be read from {source}")
    tracks = recognizer.tracker.all_tracks()
    dominant = {t.face_id: recognizer.classes[int(t.label_counts.argmax())] for t in tracks}
    return VideoSummary(
        frames, seconds, len(tracks), dominant, recognizer.timer.ms_per_frame(), stream.dropped, stream.fps
    )


def image_paths(source: str) -> list[Path] | None:
    """The images a source names (a file or a folder of them), or None for a camera / video."""
    path = Path(source)
    if source.isdigit() and not path.exists():
        return None
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FerKerasError(f"folder {path} holds no images")
        return images
    if not path.exists():
        raise FerKerasError(f"source {source} does not exist (give a camera index, a video, an image or a folder)")
    return [path] if path.suffix.lower() in IMAGE_SUFFIXES else None


def check_display() -> None:
    """On Linux, OpenCV's Qt window aborts the whole process when there is no display: say so first."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise FerKerasError(f"no display for the live window (DISPLAY is not set): {NO_WINDOW_HINT}")
