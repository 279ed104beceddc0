"""Readers that turn a dataset on disk into FaceArrays: folders of images, the Kaggle CSV, FER+.

Every reader maps class names through `fer_keras.contract`, so the label order is FER2013's
whatever the folder order is, and every bad input is either a one-line FerKerasError naming the
file or row, or (with ``on_error="skip"``) skipped and counted in ``FaceArrays.skipped``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_keras.contract import CROP_SIZE, EMOTIONS, label_index
from fer_keras.errors import FerKerasError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})

# Folder names that hold an official split; val folders are used as given instead of carving one.
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
    "publictest": "test",
    "privatetest": "test",
}
# FER2013 file-name prefixes (Kaggle msambare layout) and CSV `Usage` values: the official subsets.
OFFICIAL_SUBSETS = ("Training", "PublicTest", "PrivateTest")
USAGE_SPLIT = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}


@dataclass
class FaceArrays:
    """Decoded faces: uint8 images (N, S, S), label indices into ``classes``, split and origin of each.

    FER+ labelled faces (``fer_keras.data.ferplus.relabel``) also carry their vote counts and
    their original FER2013 labels."""

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray  # "train" | "val" | "test" | "all"
    subsets: np.ndarray  # "Training" | "PublicTest" | "PrivateTest" | "" (unknown)
    names: np.ndarray  # relative file path or "csv row N", for reports and errors
    skipped: Counter = field(default_factory=Counter)
    classes: tuple[str, ...] = EMOTIONS
    votes: np.ndarray | None = None  # FER+ vote counts (N, 10)
    fer2013_labels: np.ndarray | None = None  # the FER2013 labels of FER+ labelled faces

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, mask: np.ndarray) -> FaceArrays:
        """The rows where ``mask`` is true (a boolean array or index array)."""
        return FaceArrays(
            **{f: None if getattr(self, f) is None else getattr(self, f)[mask] for f in _ARRAY_FIELDS},
            skipped=Counter(self.skipped),
            classes=self.classes,
        )

    def split(self, name: str) -> FaceArrays:
        """The rows of one split."""
        return self.select(self.splits == name)

    @staticmethod
    def concat(parts: Iterable[FaceArrays]) -> FaceArrays:
        """Join several FaceArrays (for instance an extra dataset merged into training)."""
        parts = list(parts)
        classes = {p.classes for p in parts}
        if len(classes) > 1:
            raise FerKerasError("cannot merge datasets with different class lists (FER+ labels and FER2013 labels)")
        skipped: Counter = Counter()
        for part in parts:
            skipped.update(part.skipped)

        def joined(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            if any(v is None for v in values):
                if name in _OPTIONAL_FIELDS and any(v is not None for v in values):
                    raise FerKerasError("cannot merge FER+ labelled faces with faces that have no FER+ votes")
                return None
            return np.concatenate(values)

        return FaceArrays(**{f: joined(f) for f in _ARRAY_FIELDS}, skipped=skipped, classes=parts[0].classes)

    def class_counts(self) -> np.ndarray:
        """Images per class, in ``classes`` order."""
        return np.bincount(self.labels, minlength=len(self.classes))


_OPTIONAL_FIELDS = ("votes", "fer2013_labels")
_ARRAY_FIELDS = ("images", "labels", "splits", "subsets", "names", *_OPTIONAL_FIELDS)


def _skip_or_raise(on_error: str, skipped: Counter, reason: str, message: str) -> None:
    if on_error == "skip":
        skipped[reason] += 1
        return
    raise FerKerasError(f"{message} (pass --skip-bad to skip and count such files)")


def decode_image(data: bytes, size: int = CROP_SIZE) -> np.ndarray | None:
    """Decode image bytes to a (size, size) uint8 grayscale array; None if not a complete image."""
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None  # truncated JPEG: OpenCV would decode it with a grey bottom, silently
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        return None
    if image.shape != (size, size):
        interp = cv2.INTER_AREA if min(image.shape) > size else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interp)
    return image


def subset_from_name(filename: str) -> str:
    """FER2013's official subset from a Kaggle file name prefix (``Training_123.jpg``), else ''."""
    for subset in OFFICIAL_SUBSETS:
        if filename.startswith(subset + "_"):
            return subset
    return ""


@dataclass(frozen=True)
class ImageFile:
    """One image file found in a folder dataset, before decoding."""

    path: Path
    rel: str
    label: int
    split: str


DATA_HINT = "pass --data or set FER_KERAS_DATA"  # how a command is told where the data is


def detect_layout(root: Path, hint: str = DATA_HINT) -> str:
    """'csv', 'splits' (ROOT/{train,test}/<class>/) or 'classes' (ROOT/<class>/); ``hint`` says how
    the caller's user names the data path, for the error when it does not exist."""
    if not root.exists():
        raise FerKerasError(
            f"data path {root} does not exist; download FER2013 from Kaggle (see README, 'Data') and {hint}"
        )
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "csv"
        raise FerKerasError(f"{root} is a file but not a CSV; pass a dataset folder or fer2013.csv")
    children = [c for c in root.iterdir() if c.is_dir() and not c.name.startswith(".")]
    if not children:
        raise FerKerasError(f"{root} holds no class or split folders (is it empty?)")
    if any(c.name.lower() in SPLIT_FOLDERS for c in children):
        return "splits"
    return "classes"


def list_image_files(root: Path, on_error: str = "raise", skipped: Counter | None = None) -> list[ImageFile]:
    """Every image file of a folder dataset with its label and split, in a stable order."""
    skipped = Counter() if skipped is None else skipped
    layout = detect_layout(root)
    if layout == "csv":
        raise FerKerasError(f"{root} is a CSV file, not an image folder")
    if layout == "splits":
        split_dirs = []
        for child in sorted(root.iterdir()):
            if child.name.startswith(".") or not child.is_dir():
                continue
            if child.name.lower() not in SPLIT_FOLDERS:
                raise FerKerasError(
                    f"unexpected folder {child} next to the split folders; expected {sorted(set(SPLIT_FOLDERS))}"
                )
            split_dirs.append((child, SPLIT_FOLDERS[child.name.lower()]))
    else:
        split_dirs = [(root, "all")]

    files: list[ImageFile] = []
    for split_dir, split in split_dirs:
        class_dirs = sorted(c for c in split_dir.iterdir() if c.is_dir() and not c.name.startswith("."))
        if not class_dirs:
            raise FerKerasError(f"split folder {split_dir} is empty: expected <class>/ folders inside")
        split_count = 0
        for class_dir in class_dirs:
            label = label_index(class_dir.name, where=str(class_dir))
            entries = sorted(p for p in class_dir.iterdir() if p.is_file() and not p.name.startswith("."))
            if label is None:
                skipped[f"dropped class {class_dir.name.lower()}"] += len(entries)
                continue
            for path in entries:
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    _skip_or_raise(on_error, skipped, "not an image file", f"{path} is not an image file")
                    continue
                files.append(ImageFile(path, str(path.relative_to(root)), label, split))
                split_count += 1
        if split_count == 0:
            raise FerKerasError(f"split folder {split_dir} has no images")
    return files


def read_folder(root: Path, size: int = CROP_SIZE, on_error: str = "raise") -> FaceArrays:
    """Decode a folder dataset (``ROOT/{train,test}/<class>/*`` or ``ROOT/<class>/*``)."""
    skipped: Counter = Counter()
    files = list_image_files(root, on_error, skipped)
    return decode_files(files, [f.path.read_bytes() for f in files], size, on_error, skipped)


def decode_files(files: list[ImageFile], blobs: list[bytes], size: int, on_error: str, skipped: Counter) -> FaceArrays:
    """Decode already-read image bytes into FaceArrays, enforcing the error policy."""
    images, keep = [], []
    for i, (file, data) in enumerate(zip(files, blobs, strict=True)):
        image = decode_image(data, size)
        if image is None:
            _skip_or_raise(on_error, skipped, "corrupt image", f"{file.path} is corrupt, truncated or not an image")
            continue
        images.append(image)
        keep.append(i)
    if not keep:
        raise FerKerasError("no readable images were found")
    kept = [files[i] for i in keep]
    return FaceArrays(
        images=np.stack(images).astype(np.uint8),
        labels=np.array([f.label for f in kept], dtype=np.int64),
        splits=np.array([f.split for f in kept]),
        subsets=np.array([subset_from_name(f.path.name) for f in kept]),
        names=np.array([f.rel for f in kept]),
        skipped=skipped,
    )


def read_csv(path: Path, size: int = CROP_SIZE, on_error: str = "raise", ferplus: Path | None = None) -> FaceArrays:
    """Read the Kaggle challenge CSV (``emotion,pixels,Usage``); optionally relabel with FER+ votes."""
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype={"pixels": str})
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise FerKerasError(f"cannot read CSV {path}: {err}") from None
    for column in ("emotion", "pixels"):
        if column not in table.columns:
            raise FerKerasError(
                f"{path} has no {column!r} column (columns: {', '.join(map(str, table.columns))}); "
                f"expected the Kaggle fer2013.csv with emotion,pixels,Usage"
            )
    skipped: Counter = Counter()
    labels = _ferplus_labels(ferplus, len(table), skipped) if ferplus else None
    usage = table["Usage"].astype(str).tolist() if "Usage" in table.columns else [""] * len(table)
    side = CROP_SIZE  # the CSV's pixel strings are FER2013's 48x48 crops
    images, keep_labels, splits, subsets, names = [], [], [], [], []
    for i, (emotion, pixels) in enumerate(zip(table["emotion"], table["pixels"], strict=True)):
        row = f"{path.name} row {i + 2}"  # +1 for the header, +1 for 1-based line numbers
        values = np.array(str(pixels).split(), dtype=object)
        try:
            values = values.astype(np.int64)
        except ValueError:
            _skip_or_raise(on_error, skipped, "bad pixel values", f"{row}: pixels are not integers")
            continue
        if values.size != side * side or values.min(initial=0) < 0 or values.max(initial=0) > 255:
            _skip_or_raise(
                on_error,
                skipped,
                "bad pixel count",
                f"{row}: expected {side * side} pixel values in 0..255, got {values.size}",
            )
            continue
        if labels is not None:
            label = labels[i]
            if label < 0:
                continue  # dropped by the FER+ vote, counted in skipped
        else:
            try:
                label = int(emotion)
            except ValueError:
                label = -1
            if not 0 <= label < len(EMOTIONS):
                _skip_or_raise(on_error, skipped, "bad emotion", f"{row}: emotion {emotion!r} is not 0..6")
                continue
        image = values.astype(np.uint8).reshape(side, side)
        if size != side:
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
        subset = usage[i] if usage[i] in USAGE_SPLIT else ""
        images.append(image)
        keep_labels.append(label)
        splits.append(USAGE_SPLIT.get(subset, "all"))
        subsets.append(subset)
        names.append(row)
    if not images:
        raise FerKerasError(f"{path} holds no usable rows")
    return FaceArrays(
        np.stack(images),
        np.array(keep_labels, dtype=np.int64),
        np.array(splits),
        np.array(subsets),
        np.array(names),
        skipped,
    )


def _ferplus_labels(path: Path, rows: int, skipped: Counter) -> np.ndarray:
    """Majority-vote FER+ labels aligned with fer2013.csv rows, on FER2013's 7 classes; -1 where the
    protocol drops the row or its majority is contempt (no FER2013 class)."""
    import pandas as pd

    from fer_keras.data.ferplus import VOTE_COLUMNS, majority

    try:
        votes = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise FerKerasError(f"cannot read FER+ CSV {path}: {err}") from None
    missing = [c for c in VOTE_COLUMNS if c not in votes.columns]
    if missing:
        raise FerKerasError(f"FER+ file {path} lacks vote columns {missing}; expected fer2013new.csv")
    if len(votes) != rows:
        raise FerKerasError(f"FER+ file {path} has {len(votes)} rows but the FER2013 CSV has {rows}")
    labels, reasons = majority(votes[list(VOTE_COLUMNS)].to_numpy(dtype=np.float32))
    contempt = labels >= len(EMOTIONS)
    labels[contempt] = -1
    skipped.update(reason for reason in reasons if reason is not None)
    if contempt.any():
        skipped["FER+ contempt"] += int(contempt.sum())
    return labels


def source_files(root: Path) -> list[Path]:
    """The files whose bytes define a dataset (for the content hash of the cache)."""
    if root.is_file():
        return [root]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return out
