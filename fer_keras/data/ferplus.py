"""FER+ crowd votes for a FER2013 folder dataset: matching by path, the protocol's labels, training targets.

The votes file (``fer2013_votes.csv``) has one row per FER2013 image: its ``path`` relative to the
dataset root and ten vote counts (the eight emotions, ``unknown``, ``NF`` = not a face). An image
matches the row whose path ends with the image's path relative to ``--data``, so both the dataset
root and one split folder (``.../fer2013/test``) work.

Labels follow the FER+ paper's protocol: eight classes (FER2013's seven, then contempt), the label
is the most-voted column, and images whose most-voted column is ``unknown`` or ``NF``, or whose top
vote is tied, are dropped and counted. Training targets (``--ferplus-mode``) follow the paper's
three schemes, named as in Microsoft's FERPlus code:

- ``majority``: the one-hot majority label;
- ``probability``: every epoch, a one-hot label drawn from the vote distribution (probabilistic
  label drawing; on average the distribution itself);
- ``crossentropy``: the vote distribution as a soft target.

For the two distribution modes, single votes are dropped as outliers (as FERPlus does) and the
emotion votes renormalised; the majority label and the dropped images are the same in all three.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from fer_keras.contract import EMOTIONS, FERPLUS_EMOTIONS
from fer_keras.errors import FerKerasError

# vote columns in the file's order -> class name (None: not an emotion)
VOTE_COLUMNS = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "contempt": "contempt",
    "unknown": None,
    "NF": None,
}
MODES = ("majority", "probability", "crossentropy")
EXTRA_ROWS = "FER+ rows with no image here"
# column index in VOTE_COLUMNS -> class index in FERPLUS_EMOTIONS
_TO_CLASS = np.array([FERPLUS_EMOTIONS.index(name) for name in VOTE_COLUMNS.values() if name is not None])


class Votes:
    """A votes table: row paths and the (N, 10) vote counts in ``VOTE_COLUMNS`` order."""

    def __init__(self, paths: list[str], counts: np.ndarray, source: str = "votes"):
        self.paths = [p.replace("\\", "/").removeprefix("./") for p in paths]
        self.counts = np.asarray(counts, dtype=np.float32)
        self.source = source
        digest = hashlib.sha256("\n".join(self.paths).encode())
        digest.update(self.counts.tobytes())
        self.digest = digest.hexdigest()  # what the labels depend on (part of the data hash)
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def _suffix_index(self) -> dict[str, int]:
        """Every path suffix (``a/b/c``, ``b/c``, ``c``) -> its row; -1 where several rows share it."""
        if self._index is None:
            index: dict[str, int] = {}
            for row, path in enumerate(self.paths):
                parts = path.split("/")
                for i in range(len(parts)):
                    suffix = "/".join(parts[i:])
                    index[suffix] = -1 if suffix in index and index[suffix] != row else row
            self._index = index
        return self._index

    def match(self, names: list[str] | np.ndarray) -> tuple[np.ndarray, int]:
        """The row of each image path (relative to the dataset root) and how many rows matched no image.

        A path with no row, or one that several rows end with, is a one-line error naming it.
        """
        index = self._suffix_index()
        rows = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            key = str(name).replace("\\", "/")
            row = index.get(key)
            if row is None:
                raise FerKerasError(
                    f"{self.source} has no votes for image {key}: no row's path ends with it "
                    f"(is --ferplus the votes file of this dataset?)"
                )
            if row < 0:
                raise FerKerasError(
                    f"{self.source}: several rows' paths end with {key}; pass the dataset root as --data"
                )
            rows[i] = row
        return rows, len(self) - len(np.unique(rows))


def read_votes(path: str | Path) -> Votes:
    """Read a FER+ votes CSV with a ``path`` column and the ten vote columns."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FerKerasError(f"FER+ votes file {path} does not exist")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise FerKerasError(f"cannot read FER+ votes {path}: {err}") from None
    missing = [c for c in ("path", *VOTE_COLUMNS) if c not in table.columns]
    if missing:
        raise FerKerasError(
            f"{path} lacks column(s) {', '.join(missing)}; expected path plus the FER+ vote columns "
            f"{', '.join(VOTE_COLUMNS)} (fer2013_votes.csv)"
        )
    try:
        counts = table[list(VOTE_COLUMNS)].to_numpy(dtype=np.float32)
    except ValueError:
        raise FerKerasError(f"{path}: the vote columns must hold numbers") from None
    if np.isnan(counts).any() or (counts < 0).any():
        raise FerKerasError(f"{path}: vote counts must be non-negative numbers")
    return Votes(table["path"].astype(str).tolist(), counts, str(path))


def tied(counts: np.ndarray) -> np.ndarray:
    """Whether each row's top vote count is shared by several columns."""
    counts = np.asarray(counts, dtype=np.float32)
    return (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1


def majority(counts: np.ndarray, keep_ties: bool = False) -> tuple[np.ndarray, list[str | None]]:
    """The protocol's label of each row (index into FERPLUS_EMOTIONS, -1 if dropped) and why it was dropped.

    ``keep_ties`` keeps the rows whose top vote is shared by emotions only (a tie with ``unknown``
    or ``NF`` is still dropped), labelled by the first of them: for training on the vote
    distribution, where that label only picks the class weight and the training metrics."""
    counts = np.asarray(counts, dtype=np.float32)
    top = counts.max(axis=1)
    best = counts.argmax(axis=1)
    tie = tied(counts)
    if keep_ties:
        tie &= (counts[:, len(_TO_CLASS) :] == top[:, None]).any(axis=1)
    names = list(VOTE_COLUMNS)
    labels = np.full(len(counts), -1, dtype=np.int64)
    reasons: list[str | None] = []
    for i in range(len(counts)):
        if top[i] <= 0:
            reasons.append("FER+ no votes")
        elif tie[i]:
            reasons.append("FER+ tie")
        elif VOTE_COLUMNS[names[best[i]]] is None:
            reasons.append(f"FER+ majority {names[best[i]]}")
        else:
            labels[i] = _TO_CLASS[best[i]]
            reasons.append(None)
    return labels, reasons


def distribution(counts: np.ndarray) -> np.ndarray:
    """The emotion vote distribution (N, 8) in FERPLUS_EMOTIONS order, single votes dropped as outliers.

    A row left with no emotion votes falls back to its raw emotion votes (those rows' majority is an
    emotion, so they are never all zero where it matters)."""
    emotions = np.asarray(counts, dtype=np.float32)[:, : len(_TO_CLASS)]
    kept = np.where(emotions > 1, emotions, 0.0)
    empty = kept.sum(axis=1) == 0
    kept[empty] = emotions[empty]
    out = np.zeros((len(emotions), len(FERPLUS_EMOTIONS)), np.float32)
    out[:, _TO_CLASS] = kept
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def targets(counts: np.ndarray, mode: str) -> np.ndarray:
    """Training targets (N, 8) for a mode: one-hot majority, or the vote distribution
    (``probability`` draws a one-hot label from it every epoch, in the input pipeline)."""
    if mode not in MODES:
        raise FerKerasError(f"--ferplus-mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "majority":
        labels, _ = majority(counts)
        if (labels < 0).any():
            raise FerKerasError("majority targets need rows with a majority emotion (drop the others first)")
        return np.eye(len(FERPLUS_EMOTIONS), dtype=np.float32)[labels]
    return distribution(counts)


def to_fer2013(probs: np.ndarray) -> np.ndarray:
    """FER+ class probabilities (N, 8) folded onto FER2013's 7 classes: contempt has no FER2013
    class, so its share is dropped and the seven renormalised."""
    seven = np.asarray(probs, np.float32)[:, : len(EMOTIONS)]
    total = seven.sum(axis=1, keepdims=True)
    return np.divide(seven, total, out=np.full_like(seven, 1.0 / len(EMOTIONS)), where=total > 0)


def attach(faces, votes: Votes):
    """FaceArrays with their FER+ vote counts attached and their own labels kept (votes as a teacher)."""
    rows, _ = votes.match(faces.names)
    faces.votes = votes.counts[rows]
    return faces


def mixed_targets(labels: np.ndarray, counts: np.ndarray, alpha: float, agree_only: bool = False) -> np.ndarray:
    """FER2013 targets (N, 7) with the crowd as a teacher: ``(1 - alpha) * one_hot + alpha * votes``.

    The votes are the emotion distribution (single votes dropped) folded onto FER2013's 7 classes.
    Images with no emotion votes, and (``agree_only``) images whose FER+ majority is not their
    FER2013 label, keep the one-hot label."""
    one_hot = np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    teacher = to_fer2013(distribution(counts))
    use = counts[:, : len(_TO_CLASS)].sum(axis=1) > 0
    if agree_only:
        majority_labels, _ = majority(counts)
        use &= majority_labels == labels
    mixed = (1.0 - alpha) * one_hot + alpha * teacher
    return np.where(use[:, None], mixed, one_hot).astype(np.float32)


def relabel(faces, votes: Votes, count_extra: bool = True, keep_ties: bool = False):
    """FaceArrays relabelled with FER+ majority labels (8 classes), the vote counts attached.

    Dropped images are counted in ``skipped``, and (``count_extra``) so are the votes rows that
    match no image. ``keep_ties``: see ``majority``."""
    rows, extra = votes.match(faces.names)
    counts = votes.counts[rows]
    labels, reasons = majority(counts, keep_ties)
    keep = labels >= 0
    out = faces.select(keep)
    out.skipped.update(Counter(r for r in reasons if r is not None))
    if extra and count_extra:
        out.skipped[EXTRA_ROWS] += extra
    out.labels = labels[keep]
    out.votes = counts[keep]
    out.classes = FERPLUS_EMOTIONS
    out.fer2013_labels = faces.labels[keep]
    return out


def dropped_counts(*parts) -> dict[str, int]:
    """The images the FER+ protocol left out of these FaceArrays, by reason (summed)."""
    dropped: dict[str, int] = {}
    for part in parts:
        for reason, n in part.skipped.items():
            if reason.startswith("FER+") and reason != EXTRA_ROWS:
                dropped[reason] = dropped.get(reason, 0) + n
    return dict(sorted(dropped.items()))
