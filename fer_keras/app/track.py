"""A light IoU tracker that keeps an identity per face and smooths its probabilities over time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_keras.app.detect import FaceBox


@dataclass
class Track:
    """One face followed across frames."""

    face_id: int
    box: FaceBox
    probs: np.ndarray  # exponentially smoothed probabilities
    look: np.ndarray | None = None  # the last crop, zero-mean and unit-norm (``appearance``)
    missed: int = 0
    frames: int = 0
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(0))


def appearance(crop: np.ndarray) -> np.ndarray:
    """A crop as a zero-mean, unit-norm vector: the dot product of two is their normalised
    correlation, blind to brightness and contrast."""
    v = np.asarray(crop, np.float32).ravel()
    v = v - v.mean()
    return v / max(float(np.linalg.norm(v)), 1e-6)


class FaceTracker:
    """Greedy IoU matching; probabilities smoothed with an exponential moving average.

    ``smoothing`` is the weight of the past (0 = no smoothing); tracks unseen for ``max_missed``
    frames are dropped. Smoothing is what keeps labels from flickering frame to frame.

    Given the faces' crops, a box also has to look like the track's last crop (normalised
    correlation of at least ``min_similarity``) to continue it: a different person who steps into
    the place of another starts a new track instead of inheriting the last one's emotion.
    Measured on labelled videos of validation faces (docs/experiments/live-video.md), the same
    face's crops two frames apart correlate at 0.78-0.94 or more (5th percentile per video), and
    a new face whose box overlaps the last one's at 0.30-0.55 or less (95th percentile).
    """

    def __init__(self, smoothing: float = 0.6, min_iou: float = 0.3, max_missed: int = 10, min_similarity: float = 0.5):
        self.smoothing, self.min_iou, self.max_missed = smoothing, min_iou, max_missed
        self.min_similarity = min_similarity
        self.tracks: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 0

    def update(self, boxes: list[FaceBox], probs: np.ndarray, crops: np.ndarray | None = None) -> list[Track]:
        """Match this frame's faces to tracks; returns the track of each box, in box order.
        ``crops``: one crop per box (any fixed size), to tell a new face from the one before."""
        looks = [appearance(c) for c in crops] if crops is not None else [None] * len(boxes)

        pairs = sorted(
            (
                (box.iou(track.box), b, t)
                for b, box in enumerate(boxes)
                for t, track in enumerate(self.tracks)
                if self._looks_like(looks[b], track)
            ),
            reverse=True,
        )
        assigned: dict[int, Track] = {}
        used_tracks: set[int] = set()
        for iou, b, t in pairs:
            if iou < self.min_iou:
                break
            if b in assigned or t in used_tracks:
                continue
            assigned[b] = self.tracks[t]
            used_tracks.add(t)
        out = []
        for b, box in enumerate(boxes):
            track = assigned.get(b)
            if track is None:
                track = Track(self._next_id, box, probs[b].copy(), label_counts=np.zeros(probs.shape[1]))
                self._next_id += 1
                self.tracks.append(track)
            else:
                track.probs = self.smoothing * track.probs + (1 - self.smoothing) * probs[b]
            track.box, track.look, track.missed = box, looks[b], 0
            track.frames += 1
            track.label_counts[int(track.probs.argmax())] += 1
            out.append(track)
        for track in self.tracks:
            if all(track is not o for o in out):
                track.missed += 1
        self.finished += [t for t in self.tracks if t.missed > self.max_missed]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

    def still_alike(self, tracks: list[Track], crops: np.ndarray) -> bool:
        """Whether each track's crop in this frame (same order) still looks like its last one: a
        face that left, or was replaced, between two detections shows up as a crop that does not."""
        return all(self._looks_like(appearance(crop), track) for track, crop in zip(tracks, crops))

    def _looks_like(self, look: np.ndarray | None, track: Track) -> bool:
        """A crop's ``appearance`` against a track's last one (either unknown: no evidence against)."""
        return look is None or track.look is None or float(look @ track.look) >= self.min_similarity

    def all_tracks(self) -> list[Track]:
        """Every track seen so far, finished or live, by id."""
        return sorted(self.finished + self.tracks, key=lambda t: t.face_id)
