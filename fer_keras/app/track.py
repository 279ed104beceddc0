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
    missed: int = 0
    frames: int = 0
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(0))


class FaceTracker:
    """Greedy IoU matching; probabilities smoothed with an exponential moving average.

    ``smoothing`` is the weight of the past (0 = no smoothing); tracks unseen for ``max_missed``
    frames are dropped. Smoothing is what keeps labels from flickering frame to frame.
    """

    def __init__(self, smoothing: float = 0.6, min_iou: float = 0.3, max_missed: int = 10):
        self.smoothing, self.min_iou, self.max_missed = smoothing, min_iou, max_missed
        self.tracks: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 0

    def update(self, boxes: list[FaceBox], probs: np.ndarray) -> list[Track]:
        """Match this frame's faces to tracks; returns the track of each box, in box order."""
        pairs = sorted(
            ((box.iou(track.box), b, t) for b, box in enumerate(boxes) for t, track in enumerate(self.tracks)),
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
            track.box, track.missed = box, 0
            track.frames += 1
            track.label_counts[int(track.probs.argmax())] += 1
            out.append(track)
        for track in self.tracks:
            if all(track is not o for o in out):
                track.missed += 1
        self.finished += [t for t in self.tracks if t.missed > self.max_missed]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

    def all_tracks(self) -> list[Track]:
        """Every track seen so far, finished or live, by id."""
        return sorted(self.finished + self.tracks, key=lambda t: t.face_id)
