"""Real-time emotion recognition: ``python -m fer_keras.live [--source 0|VIDEO|IMAGE|DIR]``.

capture -> detect -> crop -> classify (all faces of a frame in one batch) -> track + smooth ->
draw / write video / CSV. A webcam is read on its own thread that keeps only the newest frame,
so processing never lags behind the camera; a video file is processed frame by frame.
An image (or a folder of images) prints one JSON object per face instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_keras.detect import DETECTORS, FaceBox, face_crop, make_detector
from fer_keras.errors import FerKerasError, cli_main, first_line
from fer_keras.labels import EMOTIONS
from fer_keras.predictor import EmotionPredictor, limit_tf_threads, load_predictor
from fer_keras.track import FaceTracker

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
CSV_HEADER = ["frame", "time_s", "face_id", "x", "y", "w", "h", "label", "confidence"] + [f"p_{e}" for e in EMOTIONS]
STAGES = ("detect", "preprocess", "infer", "draw")
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
}


# --------------------------------------------------------------------------- capture


class LatestFrameReader:
    """Reads a camera on a thread and keeps only the newest frame (stale frames are dropped)."""

    def __init__(self, capture: cv2.VideoCapture):
        self.capture = capture
        self._frame: np.ndarray | None = None
        self._new = threading.Condition()
        self._stopped = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            ok, frame = self.capture.read()
            with self._new:
                if not ok:
                    self._stopped = True
                elif self._frame is not None:
                    self.dropped += 1
                if ok:
                    self._frame = frame
                self._new.notify()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self._new:
                while self._frame is None and not self._stopped:
                    self._new.wait(timeout=1.0)
                if self._frame is None:
                    return
                frame, self._frame = self._frame, None
            yield frame

    def close(self) -> None:
        self._stopped = True
        self._thread.join(timeout=2.0)
        self.capture.release()


def open_video(source: str) -> tuple[cv2.VideoCapture, bool, float]:
    """A capture for a webcam index or a video file: (capture, is_camera, fps)."""
    is_camera = source.isdigit()
    capture = cv2.VideoCapture(int(source)) if is_camera else cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        if is_camera:
            raise FerKerasError(f"cannot open camera {source} (no camera, or in use); try --source VIDEO")
        raise FerKerasError(f"cannot read video {source} (missing file or unsupported format)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    return capture, is_camera, fps if 1 <= fps <= 240 else 30.0


# --------------------------------------------------------------------------- per-frame work


@dataclass
class FaceResult:
    box: FaceBox
    probs: np.ndarray  # smoothed when tracked
    face_id: int = -1

    @property
    def label(self) -> str:
        return EMOTIONS[int(self.probs.argmax())]

    @property
    def confidence(self) -> float:
        return float(self.probs.max())


@dataclass
class StageTimer:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0

    def ms_per_frame(self) -> dict[str, float]:
        return {k: 1000 * v / max(self.frames, 1) for k, v in self.seconds.items()}


class EmotionPipeline:
    """Detector + predictor (+ tracker for video): one call per frame."""

    def __init__(
        self,
        predictor: EmotionPredictor,
        detector,
        margin: float | None = None,
        smoothing: float = 0.6,
        detect_every: int = 1,
    ):
        self.predictor, self.detector = predictor, detector
        # Each detector frames a face its own way: its crop_margin makes the crop look like FER2013's.
        self.margin = getattr(detector, "crop_margin", 0.0) if margin is None else margin
        self.detect_every = max(1, detect_every)
        self.tracker = FaceTracker(smoothing=smoothing)
        self.timer = StageTimer()
        self._frames_seen = 0

    def classify(self, frame: np.ndarray, track: bool = True) -> list[FaceResult]:
        t0 = time.perf_counter()
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)  # once per frame
        # Between detections (``detect_every`` > 1) the faces tracked in the last frame are re-classified
        # in place: detection is the costly stage, faces move little in 1/30 s.
        reuse = track and self._frames_seen % self.detect_every != 0
        if reuse:
            boxes = [t.box for t in self.tracker.tracks if t.missed == 0]
        else:
            boxes = self.detector(gray if getattr(self.detector, "wants_gray", False) else frame)
        self._frames_seen += 1
        t1 = time.perf_counter()
        crops = np.stack([face_crop(gray, b, self.margin) for b in boxes]) if boxes else np.zeros((0, 48, 48))
        t2 = time.perf_counter()
        probs = self.predictor(crops) if boxes else np.zeros((0, len(EMOTIONS)), np.float32)
        t3 = time.perf_counter()
        results = [FaceResult(b, p) for b, p in zip(boxes, probs)]
        if track:
            for result, tracked in zip(results, self.tracker.update(boxes, probs)):
                result.probs, result.face_id = tracked.probs, tracked.face_id
        else:
            for i, result in enumerate(results):
                result.face_id = i
        timer = self.timer.seconds
        timer["detect"] += t1 - t0
        timer["preprocess"] += t2 - t1
        timer["infer"] += t3 - t2
        self.timer.frames += 1
        return results


def draw(frame: np.ndarray, faces: list[FaceResult], fps: float | None = None) -> np.ndarray:
    """Box, label with confidence and a bar per class beside each face; FPS in the corner."""
    for face in faces:
        b, color = face.box, COLORS[face.label]
        cv2.rectangle(frame, (b.x, b.y), (b.x + b.w, b.y + b.h), color, 2)
        text = f"{face.label} {face.confidence:.0%}" + (f" #{face.face_id}" if face.face_id >= 0 else "")
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
        y = max(b.y - 6, th + 4)
        cv2.rectangle(frame, (b.x, y - th - 4), (b.x + tw + 4, y + 2), color, -1)
        cv2.putText(frame, text, (b.x + 2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        bar_x = b.x + b.w + 6 if b.x + b.w + 110 < frame.shape[1] else max(b.x - 110, 0)
        for i, (name, p) in enumerate(zip(EMOTIONS, face.probs)):
            by = b.y + i * 13
            cv2.rectangle(frame, (bar_x + 52, by + 2), (bar_x + 52 + int(50 * p), by + 11), COLORS[name], -1)
            cv2.putText(frame, name[:7], (bar_x, by + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
    if fps is not None:
        cv2.putText(frame, f"{fps:5.1f} FPS", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2, cv2.LINE_AA)
    return frame


# --------------------------------------------------------------------------- sources


def face_json(face: FaceResult, image: str | None = None) -> str:
    record = {
        **({"image": image} if image else {}),
        "face_id": face.face_id,
        "box": {"x": face.box.x, "y": face.box.y, "w": face.box.w, "h": face.box.h},
        "label": face.label,
        "confidence": round(face.confidence, 4),
        "probs": {e: round(float(p), 4) for e, p in zip(EMOTIONS, face.probs)},
    }
    return json.dumps(record)


def run_images(pipeline: EmotionPipeline, paths: list[Path], output: str | None) -> int:
    """Classify every face of every image; one JSON line per face."""
    if output and len(paths) > 1:
        Path(output).mkdir(parents=True, exist_ok=True)
    faces_total = 0
    for path in paths:
        frame = cv2.imread(str(path))
        if frame is None:
            raise FerKerasError(f"cannot read image {path}")
        faces = pipeline.classify(frame, track=False)
        faces_total += len(faces)
        for face in faces:
            print(face_json(face, str(path) if len(paths) > 1 else None))
        if output:
            target = Path(output) / path.name if len(paths) > 1 else Path(output)
            if not cv2.imwrite(str(target), draw(frame, faces)):
                raise FerKerasError(f"cannot write {target}")
    if faces_total == 0:
        print(json.dumps({"faces": 0}))
    return 0


@dataclass
class VideoSummary:
    frames: int
    seconds: float
    faces: int
    dominant: dict[int, str]
    stage_ms: dict[str, float]
    dropped: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def run_video(
    pipeline: EmotionPipeline,
    source: str,
    display: bool = True,
    output: str | None = None,
    csv_path: str | None = None,
    max_frames: int = 0,
) -> VideoSummary:
    """Process a camera or video until it ends (or 'q' / Esc in the window, or ``max_frames``)."""
    capture, is_camera, source_fps = open_video(source)
    reader = LatestFrameReader(capture) if is_camera else None
    frames_iter = iter(reader) if reader else _video_frames(capture)
    writer = None
    csv_file = open(csv_path, "w", newline="") if csv_path else None  # noqa: SIM115 - closed in finally
    rows = csv.writer(csv_file) if csv_file else None
    if rows:
        rows.writerow(CSV_HEADER)
    frames, started, fps = 0, time.perf_counter(), 0.0
    try:
        for frame in frames_iter:
            tick = time.perf_counter()
            faces = pipeline.classify(frame)
            t_draw = time.perf_counter()
            time_s = frames / source_fps if not is_camera else tick - started
            if rows:
                for f in faces:
                    b = f.box
                    rows.writerow(
                        [frames, f"{time_s:.3f}", f.face_id, b.x, b.y, b.w, b.h, f.label, f"{f.confidence:.4f}"]
                        + [f"{p:.4f}" for p in f.probs]
                    )
            if display or output:
                draw(frame, faces, fps)
            if output:
                if writer is None:
                    writer = cv2.VideoWriter(
                        output, cv2.VideoWriter_fourcc(*"mp4v"), source_fps, (frame.shape[1], frame.shape[0])
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
            pipeline.timer.seconds["draw"] += time.perf_counter() - t_draw
            frames += 1
            elapsed = time.perf_counter() - tick
            fps = 0.9 * fps + 0.1 / elapsed if fps else 1 / max(elapsed, 1e-6)
            if max_frames and frames >= max_frames:
                break
    finally:
        seconds = time.perf_counter() - started
        if reader:
            reader.close()
        else:
            capture.release()
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
    tracks = pipeline.tracker.all_tracks()
    dominant = {t.face_id: EMOTIONS[int(t.label_counts.argmax())] for t in tracks}
    return VideoSummary(
        frames, seconds, len(tracks), dominant, pipeline.timer.ms_per_frame(), reader.dropped if reader else 0
    )


def _video_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


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


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fer_keras.live", description=__doc__.split("\n")[0])
    p.add_argument("--source", default="0", help="camera index, video file, image file or folder (default: 0)")
    p.add_argument(
        "--model", default=None, help="SavedModel dir, .keras, .tflite or run dir (default: saved_models/mobilenetv2)"
    )
    p.add_argument(
        "--detector",
        choices=DETECTORS,
        default="haar",
        help="haar (OpenCV cascade), dnn (BlazeFace TFLite: finds more faces, as fast) or mtcnn (slow)",
    )
    p.add_argument("--downscale", type=float, default=2.0, help="haar: detect on a frame this many times smaller")
    p.add_argument(
        "--margin", type=float, default=None, help="crop margin per side around the face box (default: the detector's)"
    )
    p.add_argument("--detect-every", type=int, default=1, help="run the detector every N frames (video)")
    p.add_argument("--smoothing", type=float, default=0.6, help="weight of the past in the per-face average")
    p.add_argument("--no-display", action="store_true", help="no window (headless)")
    p.add_argument("--output", help="annotated video (.mp4) or image file / folder for image sources")
    p.add_argument("--csv", help="one row per face per frame")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = until the end)")
    p.add_argument(
        "--threads", type=int, default=1, help="TensorFlow threads per op (1 is fastest for a few faces per frame)"
    )
    return p


def check_display() -> None:
    """On Linux, OpenCV's Qt window aborts the whole process when there is no display: say so first."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise FerKerasError(f"no display for the live window (DISPLAY is not set): {NO_WINDOW_HINT}")


def check_options(args: argparse.Namespace) -> None:
    """One-line errors for option values that would crash later or silently mislead."""
    checks = [
        (0 <= args.smoothing < 1, f"--smoothing must be in [0, 1) (the weight of the past), got {args.smoothing}"),
        (args.detect_every >= 1, f"--detect-every must be at least 1, got {args.detect_every}"),
        (args.downscale > 0, f"--downscale must be positive, got {args.downscale}"),
        (args.margin is None or args.margin > -0.5, f"--margin must be above -0.5 (per side), got {args.margin}"),
        (args.max_frames >= 0, f"--max-frames must be 0 (no limit) or more, got {args.max_frames}"),
        (args.threads >= 1, f"--threads must be at least 1, got {args.threads}"),
    ]
    for ok, message in checks:
        if not ok:
            raise FerKerasError(message)


def make_pipeline(args: argparse.Namespace) -> EmotionPipeline:
    limit_tf_threads(args.threads, 1)
    predictor = load_predictor(args.model)
    detector = make_detector(args.detector, downscale=args.downscale)
    return EmotionPipeline(
        predictor, detector, margin=args.margin, smoothing=args.smoothing, detect_every=args.detect_every
    )


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_options(args)
    images = image_paths(args.source)
    if images is None and not args.no_display:
        check_display()
    pipeline = make_pipeline(args)
    if images is not None:
        return run_images(pipeline, images, args.output)
    summary = run_video(pipeline, args.source, not args.no_display, args.output, args.csv, args.max_frames)
    stages = " ".join(f"{k}={v:.2f}ms" for k, v in summary.stage_ms.items())
    print(f"per frame: {stages}")
    if summary.dropped:
        print(f"stale camera frames dropped: {summary.dropped}")
    for face_id, label in summary.dominant.items():
        print(f"face {face_id}: mostly {label}")
    print(f"frames={summary.frames} fps={summary.fps:.1f} faces={summary.faces}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
