"""The public Python API: ``EmotionRecognizer().analyze(image)`` -> one ``Face`` per face found.

detect -> crop (the detector's FER2013-like framing) -> classify all faces of a frame in one batch
-> (video) track and smooth. The live app, the notebooks and user code all go through this class.

    from fer_keras import EmotionRecognizer

    recognizer = EmotionRecognizer()               # the shipped model, BlazeFace detector
    for face in recognizer.analyze("photo.jpg"):   # a path, a BGR / grayscale array or a PIL image
        print(face.label, face.confidence, face.box)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_keras.app.align import BoxFraming
from fer_keras.app.capture import open_source
from fer_keras.app.detect import DETECTORS, FaceBox, face_crop, make_detector
from fer_keras.app.track import FaceTracker
from fer_keras.contract import CROP_SIZE, EMOTIONS, class_names
from fer_keras.errors import FerKerasError
from fer_keras.inference.predictor import (
    EmotionPredictor,
    all_cores,
    limit_tf_threads,
    load_predictor,
    runtime_model,
)
from fer_keras.logs import quiet

STAGES = ("detect", "preprocess", "infer", "draw")


@dataclass(frozen=True)
class Emotion:
    """A classified crop: the top emotion, its probability, and every emotion's probability by name."""

    label: str
    confidence: float
    probs: dict[str, float]

    @classmethod
    def from_probs(cls, probs: np.ndarray) -> Emotion:
        """From a model's probabilities (FER2013's 7 classes or FER+'s 8, told apart by their number)."""
        names = class_names(len(probs))
        top = int(np.argmax(probs))
        return cls(names[top], float(probs[top]), {e: float(p) for e, p in zip(names, probs, strict=True)})

    def vector(self) -> np.ndarray:
        """The probabilities in the model's class order."""
        return np.array(list(self.probs.values()), np.float32)


@dataclass(frozen=True)
class Face(Emotion):
    """A face in an image: where it is (pixels), what it shows, and its track id in a video."""

    box: FaceBox = field(default_factory=lambda: FaceBox(0, 0, 0, 0))
    face_id: int = -1

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """The JSON schema of the live app's image output and the web service."""
        box = asdict(self.box)
        box.pop("score", None)
        box.pop("keypoints", None)
        return {
            "face_id": self.face_id,
            "box": box,
            "label": self.label,
            "confidence": round(self.confidence, digits),
            "probs": {e: round(p, digits) for e, p in self.probs.items()},
        }


@dataclass
class VideoFrame:
    """One frame of a video or camera: its index, time, the BGR image and the tracked faces."""

    index: int
    time_s: float
    image: np.ndarray
    faces: list[Face]


@dataclass
class StageTimer:
    """Seconds spent per stage of the per-frame work (for the live app's report)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0

    def ms_per_frame(self) -> dict[str, float]:
        return {k: 1000 * v / max(self.frames, 1) for k, v in self.seconds.items()}


def to_bgr(image: Any) -> np.ndarray:
    """A uint8 BGR or grayscale array from a path, an array (BGR, BGRA or grayscale) or a PIL image."""
    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise FerKerasError(f"image {path} does not exist")
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise FerKerasError(f"cannot read image {path} (not an image, or a format OpenCV cannot decode)")
        return frame
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image, without importing PIL
        return np.asarray(image.convert("RGB"))[:, :, ::-1].copy()
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise FerKerasError(f"image arrays must be uint8 (0..255), got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3):
        return array
    raise FerKerasError(f"an image must be (H, W) grayscale or (H, W, 3) BGR, got shape {array.shape}")


# BlazeFace on 320 pixels of a frame's short side rather than its model's 256 finds 4-5 points more
# of the faces under 100 pixels (a face far from the camera) and frames them better, for 1.42x the
# detection time; detecting every third frame instead of every second pays for that, and changes
# neither recall nor accuracy, on moving faces either (docs/experiments/live-video.md).
DNN_SIZE = 320
DETECT_EVERY = 3


def check_options(
    smoothing: float,
    detect_every: int,
    margin: float | None,
    dnn_size: int | None = None,
    name=lambda option: option,
) -> None:
    """One-line errors for recognizer options that would crash later or silently mislead
    (``name`` spells an option the way the caller's user wrote it, e.g. as a flag)."""
    checks = [
        (0 <= smoothing < 1, f"{name('smoothing')} must be in [0, 1) (the weight of the past), got {smoothing}"),
        (detect_every >= 1, f"{name('detect_every')} must be at least 1, got {detect_every}"),
        (margin is None or margin > -0.5, f"{name('margin')} must be above -0.5 (per side), got {margin}"),
        (
            dnn_size is None or 64 <= dnn_size <= 2048,
            f"{name('dnn_size')} must be between 64 and 2048 pixels, got {dnn_size}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise FerKerasError(message)


def merge_views(probs: np.ndarray, views: int) -> np.ndarray:
    """Average each face's ``views`` consecutive rows of probabilities."""
    probs = np.asarray(probs)
    return probs if views == 1 else probs.reshape(-1, views, probs.shape[-1]).mean(1)


def _looks(crops: np.ndarray, views: int, mirrored: bool | None) -> np.ndarray:
    """Each face's first crop, the right way round: what the tracker compares between frames."""
    looks = crops[::views]
    return looks[:, :, ::-1] if mirrored else looks


def _gray(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


class EmotionRecognizer:
    """Faces and their emotions in images, videos and camera streams.

    ``model``: any supported format (run directory, ``.keras``, SavedModel, ``.tflite``, ``.onnx``),
    or a shipped model's name (``"mobilenetv2_ferplus"``: FER+'s 8 classes); default: the shipped
    FER2013 model. ``classes`` is the model's class list, the keys of every ``probs``.
    ``detector``: ``dnn`` (BlazeFace), ``haar`` or ``mtcnn``. ``margin`` replaces the detector's
    FER2013 framing (keypoint alignment for ``dnn``) by the box's square grown by that share per side;
    ``flip`` also classifies each crop's mirror image (beside it for a still image, on every other
    frame of a video) and averages; ``smoothing`` is the weight of the past in a tracked face's probabilities;
    ``detect_every`` re-runs detection every N video frames only (in between, the tracked faces
    are re-classified where they were: faces move little in 1/30 s, and detection is the costly
    stage; a frame where a tracked face no longer looks like itself is detected at once).
    ``threads``: per model call, the classifier's and BlazeFace's (default: 1 for a TensorFlow
    classifier, every core for TFLite/ONNX and for BlazeFace).
    ``dnn_size``: BlazeFace's input pixels on the frame's short side (its model's own is 256).
    ``runtime``: how a shipped model runs, ``tflite`` on the CPU or ``tensorflow`` (its SavedModel,
    on a GPU); ``auto``, the default, picks TensorFlow where it sees a GPU (CUDA or Metal).
    """

    @quiet  # loading TensorFlow, TFLite and the detector writes native log lines to stderr
    def __init__(
        self,
        model: str | Path | EmotionPredictor | None = None,
        detector: str | Any = "dnn",
        *,
        margin: float | None = None,
        smoothing: float = 0.6,
        detect_every: int = DETECT_EVERY,
        threads: int | None = None,
        downscale: float = 2.0,
        flip: bool = True,
        dnn_size: int | None = DNN_SIZE,
        runtime: str = "auto",
    ):
        check_options(smoothing, detect_every, margin, dnn_size)
        if isinstance(detector, str) and detector not in DETECTORS:
            raise FerKerasError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
        # A TensorFlow model runs a few crops fastest on one thread (thread hand-offs dominate);
        # TFLite and ONNX runtimes gain from every core (shipped .tflite, 4 crops: 1.8 ms on two
        # threads, 3.0 ms on one).
        limit_tf_threads(threads or 1, 1)
        # A path is loaded (the shipped model as TFLite); a predictor object, e.g. a shared one, is used as is.
        model = runtime_model(model, runtime)
        self.predictor = load_predictor(model, threads or all_cores()) if isinstance(model, str | Path) else model
        # the model's class list: FER2013's 7 emotions, or FER+'s 8 with contempt
        self.classes: tuple[str, ...] = tuple(getattr(self.predictor, "classes", EMOTIONS))
        self.detector = (
            make_detector(detector, downscale=downscale, short_side=dnn_size, threads=threads)
            if isinstance(detector, str)
            else detector
        )
        # Each detector frames a face its own way: its framings make the crops look like FER2013's.
        # With several (BlazeFace: keypoints and box), each face is classified in each framing and
        # the probabilities averaged: two noisy estimates of the framing err less than one.
        default = tuple(getattr(self.detector, "framings", (BoxFraming(),)))
        self.framings = default if margin is None else (BoxFraming.from_margin(margin),)
        # and in its mirror image (a face has no handedness; +0.5 points on found validation faces)
        self.flip = flip
        self.sides = (False, True) if flip else (False,)  # each crop as it is, then mirrored
        self.views = len(self.framings) * len(self.sides)
        self.smoothing, self.detect_every = smoothing, detect_every
        self.timer = StageTimer()
        self.tracker = FaceTracker(smoothing=smoothing)
        self._frames_seen = 0
        self.redetections = 0  # frames detected out of turn: a tracked face stopped looking like itself

    # ------------------------------------------------------------------ the API

    def analyze(self, image: Any) -> list[Face]:
        """Every face of one image (path, BGR / grayscale uint8 array or PIL image), untracked."""
        return self.process(to_bgr(image), track=False)

    def classify(self, crops: Any) -> list[Emotion]:
        """Emotions of ready face crops: (N, 48, 48) or (N, 48, 48, 1) grayscale, values 0..255."""
        crops = np.asarray(crops)
        if crops.ndim == 2:
            crops = crops[None]
        probs = self.predictor(crops)
        return [Emotion.from_probs(p) for p in probs]

    def video(self, source: str | int = 0, max_frames: int = 0) -> Iterator[VideoFrame]:
        """The tracked faces of each frame of a video file or camera (an index such as 0)."""
        self.reset()
        with open_source(str(source)) as stream:
            for index, (time_s, frame) in enumerate(stream):
                yield VideoFrame(index, time_s, frame, self.process(frame))
                if max_frames and index + 1 >= max_frames:
                    return

    def reset(self) -> None:
        """Forget tracked faces and timings (a new video)."""
        self.tracker = FaceTracker(smoothing=self.smoothing)
        self.timer = StageTimer()
        self._frames_seen = 0
        self.redetections = 0

    # ------------------------------------------------------------------ per-frame work

    def locate(self, frame: np.ndarray, boxes: list[FaceBox] | None = None) -> tuple[list[FaceBox], np.ndarray]:
        """The faces of a BGR or grayscale frame (``boxes``, else the detector's) and their crops
        framed like FER2013's: (N * V, 48, 48), a face's V framings together (``merge_views``)."""
        gray = _gray(frame)
        boxes = self._detect(frame, gray) if boxes is None else boxes
        return boxes, self._crops(gray, boxes)

    def merge_views(self, probs: np.ndarray) -> np.ndarray:
        """(N, classes) probabilities from the model's output on ``locate``'s (N * V) crops."""
        return merge_views(probs, self.views)

    def _detect(self, frame: np.ndarray, gray: np.ndarray) -> list[FaceBox]:
        return self.detector(gray if getattr(self.detector, "wants_gray", False) else frame)

    def _crops(self, gray: np.ndarray, boxes: list[FaceBox], sides: tuple[bool, ...] | None = None) -> np.ndarray:
        """Each box's crops in every framing, as they are (False) and/or mirrored (True): ``sides``."""
        crops = []
        for box in boxes:
            for framing in self.framings:
                crop = face_crop(gray, box, framing)
                crops += [crop[:, ::-1] if mirrored else crop for mirrored in sides or self.sides]
        return np.stack(crops) if crops else np.zeros((0, CROP_SIZE, CROP_SIZE), np.uint8)

    @staticmethod
    def faces(boxes: list[FaceBox], probs: Any, ids: list[int] | None = None) -> list[Face]:
        """``Face`` records from boxes and their probabilities (ids: the boxes' order unless given)."""
        ids = list(range(len(boxes))) if ids is None else ids
        return [Face(**vars(Emotion.from_probs(p)), box=b, face_id=i) for b, p, i in zip(boxes, probs, ids)]

    def process(self, frame: np.ndarray, track: bool = True) -> list[Face]:
        """Detect, crop and classify the faces of one BGR or grayscale frame (tracked in a video)."""
        t0 = time.perf_counter()
        gray = _gray(frame)  # once per frame: the crops need it, and so does the Haar detector
        # In a video each face's mirror image is classified on every other frame rather than beside
        # it on every frame: the tracker's smoothing averages the two, for half the crops per frame.
        mirror = bool(self._frames_seen % 2) if track and self.flip else None
        sides = self.sides if mirror is None else (mirror,)
        views = len(self.framings) * len(sides)
        # Between detections (``detect_every`` > 1) the faces tracked in the last frame are
        # re-classified in place: detection is the costly stage, and faces move little in 1/30 s.
        # Unless a tracked face no longer looks like itself there (it left, or someone else took
        # its place): then this frame is detected at once rather than a stale box classified.
        boxes, crops = [], None
        if track and self._frames_seen % self.detect_every != 0:
            tracks = [t for t in self.tracker.tracks if t.missed == 0]
            boxes = [t.box for t in tracks]
            crops = self._crops(gray, boxes, sides)
            if not self.tracker.still_alike(tracks, _looks(crops, views, mirror)):
                boxes, crops = [], None
                self.redetections += 1
        if crops is None:
            boxes = self._detect(frame, gray)
        self._frames_seen += 1
        t1 = time.perf_counter()
        crops = self._crops(gray, boxes, sides) if crops is None else crops
        t2 = time.perf_counter()
        probs = merge_views(self.predictor(crops), views) if boxes else np.zeros((0, len(self.classes)), np.float32)
        t3 = time.perf_counter()
        ids = None
        if track:
            # each face's first view (its first framing) is its look, to tell a new face from the last
            tracked = self.tracker.update(boxes, probs, _looks(crops, views, mirror))
            ids, probs = [t.face_id for t in tracked], [t.probs for t in tracked]
        timer = self.timer.seconds
        timer["detect"] += t1 - t0
        timer["preprocess"] += t2 - t1
        timer["infer"] += t3 - t2
        self.timer.frames += 1
        return self.faces(boxes, probs, ids)
