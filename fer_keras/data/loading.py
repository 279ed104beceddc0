"""One entry point from a path on disk to train / val / test arrays."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_keras.contract import CROP_SIZE
from fer_keras.data import cache
from fer_keras.data.ferplus import EXTRA_ROWS, attach, read_votes
from fer_keras.data.ferplus import relabel as ferplus_relabel
from fer_keras.data.sources import (
    DATA_HINT,
    FaceArrays,
    decode_files,
    detect_layout,
    list_image_files,
    read_csv,
)
from fer_keras.errors import FerKerasError

DATA_ENV = "FER_KERAS_DATA"
FERPLUS_HELP = (
    "FER+ votes (fer2013_votes.csv): score against FER+ majority labels, 8 classes with contempt; images "
    "whose majority is unknown, not a face or tied are left out and counted"
)
DEFAULT_DATA = Path("data/fer2013")


def default_data_path() -> Path:
    """``$FER_KERAS_DATA`` if set (and not empty), else ``data/fer2013``."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA)


def check_data_path(path: str | Path | None, hint: str = DATA_HINT) -> Path:
    """The dataset path (default: ``default_data_path``), checked before any slow work starts:
    a missing path or an unknown layout is a one-line error at once (``hint``: how to give it)."""
    path = Path(path) if path else default_data_path()
    detect_layout(path, hint)
    return path


def add_scoring_data(parser, data_help: str) -> None:
    """``--data`` and ``--ferplus`` for a command that scores only when given a dataset."""
    parser.add_argument("--data", default=None, help=data_help)
    parser.add_argument("--ferplus", default=None, metavar="VOTES.csv", help=f"with --data: {FERPLUS_HELP}")


def check_scoring_data(args, split: str) -> None:
    """``--ferplus`` names labels for the ``--data`` split it scores: alone it has nothing to label."""
    if args.ferplus and not args.data:
        raise FerKerasError(f"--ferplus labels the --data {split} split: give --data too")
    if args.data:
        check_data_path(args.data)  # before TensorFlow loads: a wrong path answers at once


@dataclass
class LoadReport:
    """What loading cost and where the arrays came from."""

    key: str = ""
    from_cache: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def load_faces(
    path: str | Path,
    size: int = CROP_SIZE,
    on_error: str = "raise",
    ferplus: str | Path | None = None,
    use_cache: bool = True,
    report: LoadReport | None = None,
) -> FaceArrays:
    """Decode a dataset (folder layout or Kaggle CSV) into arrays, through the content-hash cache."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    root = Path(path)
    report = report if report is not None else LoadReport()
    watch = cache.Stopwatch()
    layout = detect_layout(root)
    skipped: Counter = Counter()
    if layout == "csv":
        files = [root] + ([Path(ferplus)] if ferplus else [])
        image_files = []
    else:
        votes = read_votes(ferplus) if ferplus else None  # a bad votes file fails before any decoding
        image_files = list_image_files(root, on_error, skipped)
        files = [f.path for f in image_files]
    try:
        blobs = [p.read_bytes() for p in files]
    except OSError as err:
        raise FerKerasError(f"cannot read {err.filename}: {err.strerror}") from None
    options = {"size": size, "on_error": on_error, "layout": layout}
    hash_root = root if layout != "csv" else root.parent
    report.key = cache.content_hash(hash_root, files, blobs, options)
    watch.lap("read_and_hash")
    faces = cache.load_cached(report.key) if use_cache else None
    if faces is not None:
        watch.lap("cache_load")
        report.from_cache = True
    else:
        if layout == "csv":
            faces = read_csv(root, size, on_error, Path(ferplus) if ferplus else None)
        else:
            faces = decode_files(image_files, blobs, size, on_error, skipped)
        watch.lap("decode")
        if use_cache:
            cache.save_cached(report.key, faces)
            watch.lap("cache_save")
    if layout != "csv" and ferplus:
        # the pixels are cached; the FER+ labels are cheap and follow the votes file as it is now
        faces = ferplus_relabel(faces, votes)
        report.key = hashlib.sha256((report.key + votes.digest).encode()).hexdigest()
        watch.lap("ferplus")
    report.seconds = watch.seconds
    return faces


def pixel_hashes(images: np.ndarray) -> np.ndarray:
    """A hash per image of its decoded pixels (byte-identical images share one)."""
    return np.array([hashlib.blake2b(img.tobytes(), digest_size=12).hexdigest() for img in images])


def dedupe_train(train: FaceArrays, held_out: list[FaceArrays]) -> tuple[FaceArrays, Counter]:
    """Drop training images that also appear in val/test, or twice in train with different labels.

    Identical copies with the same label keep one copy. Returns the cleaned split and counts.
    """
    hashes = pixel_hashes(train.images)
    held = set()
    for part in held_out:
        held.update(pixel_hashes(part.images))
    labels_by_hash: dict[str, set[int]] = {}
    for h, y in zip(hashes, train.labels, strict=True):
        labels_by_hash.setdefault(h, set()).add(int(y))
    keep = np.ones(len(train), dtype=bool)
    seen: set[str] = set()
    removed: Counter = Counter()
    for i, h in enumerate(hashes):
        if h in held:
            keep[i] = False
            removed["dedupe: also in val/test"] += 1
        elif len(labels_by_hash[h]) > 1:
            keep[i] = False
            removed["dedupe: conflicting labels"] += 1
        elif h in seen:
            keep[i] = False
            removed["dedupe: repeated in train"] += 1
        seen.add(h)
    cleaned = train.select(keep)
    cleaned.skipped.update(removed)
    return cleaned, removed


def _relabel_split(faces: FaceArrays, name: str) -> FaceArrays:
    """The same rows marked as split ``name`` (a new array: "all" has a dtype too short for "train")."""
    faces.splits = np.full(len(faces), name)
    return faces


@dataclass
class Splits:
    """The three arrays training needs; ``test`` may be empty for a single-folder dataset."""

    train: FaceArrays
    val: FaceArrays
    test: FaceArrays
    data_hash: str = ""

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def make_splits(
    faces: FaceArrays,
    val_fraction: float = 0.1,
    seed: int = 0,
    dedupe: bool = False,
    extra: list[FaceArrays] | None = None,
) -> Splits:
    """Official splits where the source has them, a seeded stratified val split carved from train.

    The test split is never used to carve validation. Extra datasets go into train only.
    """
    from sklearn.model_selection import train_test_split

    train = faces.select(np.isin(faces.splits, ["train", "all"]))
    test = faces.split("test")
    val = faces.split("val")
    if len(train) == 0:
        raise FerKerasError("the dataset has no training images (expected a train/ folder or Training rows)")
    if len(val) == 0:
        if not 0 < val_fraction < 1:
            raise FerKerasError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
        counts = train.class_counts()
        present = int((counts > 0).sum())
        n_val = int(np.ceil(val_fraction * len(train)))
        can_stratify = counts[counts > 0].min() >= 2 and min(n_val, len(train) - n_val) >= present
        idx_train, idx_val = train_test_split(
            np.arange(len(train)),
            test_size=val_fraction,
            random_state=seed,
            stratify=train.labels if can_stratify else None,
        )
        val = _relabel_split(train.select(np.sort(idx_val)), "val")
        train = train.select(np.sort(idx_train))
    train = _relabel_split(train, "train")
    if extra:
        train = FaceArrays.concat([train, *(_relabel_split(part, "train") for part in extra)])
    if dedupe:
        train, _ = dedupe_train(train, [val, test])
    return Splits(train, val, test)


def load_splits(
    path: str | Path,
    size: int = CROP_SIZE,
    val_fraction: float = 0.1,
    seed: int = 0,
    dedupe: bool = False,
    on_error: str = "raise",
    extra: list[str | Path] | None = None,
    ferplus: str | Path | None = None,
    limit: int | None = None,
    ferplus_labels: bool = True,
    ferplus_ties: bool = False,
) -> Splits:
    """Load a dataset and split it; ``limit`` keeps a stratified subset of each split (quick runs).

    ``ferplus`` (a votes file, folder layout) relabels every split with FER+ majorities, or, with
    ``ferplus_labels=False``, keeps the dataset's labels and attaches the votes (a teacher's targets).
    ``ferplus_ties`` keeps the training images whose top vote is tied between emotions (soft
    targets); validation and test always follow the protocol."""
    report = LoadReport()
    relabel_after = bool(ferplus) and detect_layout(Path(path)) != "csv"
    if relabel_after and extra:
        raise FerKerasError("--extra datasets have no FER+ votes: they cannot be merged into a --ferplus run")
    faces = load_faces(path, size, on_error, None if relabel_after else ferplus, report=report)
    extras = [load_faces(p, size, on_error) for p in (extra or [])]
    splits = make_splits(faces, val_fraction, seed, dedupe, extras)
    if relabel_after:
        # Split on the FER2013 labels first, then relabel: a FER+ run holds out the same validation
        # images as a FER2013 run with the same seed, so a FER2013 model it starts from never
        # trained on them.
        votes = read_votes(ferplus)
        _, unmatched = votes.match(faces.names)
        for name in ("train", "val", "test"):
            part = getattr(splits, name)
            if len(part):
                ties = ferplus_ties and name == "train"
                setattr(
                    splits, name, ferplus_relabel(part, votes, False, ties) if ferplus_labels else attach(part, votes)
                )
        if unmatched:
            splits.train.skipped[EXTRA_ROWS] += unmatched
        key = report.key + votes.digest + (":ties" if ferplus_ties and ferplus_labels else "")
        report.key = hashlib.sha256(key.encode()).hexdigest()
    if limit:
        splits.train = stratified_subset(splits.train, limit, seed)
        splits.val = stratified_subset(splits.val, max(limit // 4, 1), seed)
        splits.test = stratified_subset(splits.test, max(limit // 4, 1), seed)
    splits.data_hash = report.key
    return splits


def stratified_subset(faces: FaceArrays, n: int, seed: int = 0) -> FaceArrays:
    """At most ``n`` rows with the class proportions kept (seeded)."""
    from sklearn.model_selection import train_test_split

    if len(faces) <= n:
        return faces
    counts = faces.class_counts()
    present = int((counts > 0).sum())
    can_stratify = counts[counts > 0].min() >= 2 and min(n, len(faces) - n) >= present
    stratify = faces.labels if can_stratify else None
    idx, _ = train_test_split(np.arange(len(faces)), train_size=n, random_state=seed, stratify=stratify)
    return faces.select(np.sort(idx))
