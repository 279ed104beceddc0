"""Decode once: datasets become uint8 arrays, cached on disk under a hash of their content.

The key is a SHA-256 over every source file's relative path and bytes plus the decoding options,
so a changed, added or removed image gives a new key and a stale cache can never be read.
Reading and hashing the raw files is cheap next to decoding them (FER2013: ~0.5 s vs ~1 s on the
2-core CI machine); for larger datasets the decode step dominates and the cache pays more.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from fer_keras.data.sources import FaceArrays

CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where decoded arrays are kept: ``$FER_KERAS_CACHE`` or ``~/.cache/fer_keras``."""
    return Path(os.environ.get("FER_KERAS_CACHE", Path.home() / ".cache" / "fer_keras"))


def content_hash(root: Path, files: list[Path], blobs: list[bytes], options: dict) -> str:
    """SHA-256 over the files' paths (relative to root) and bytes, and the decoding options."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": CACHE_VERSION, **options}, sort_keys=True).encode())
    base = root if root.is_dir() else root.parent
    for path, data in zip(files, blobs, strict=True):
        digest.update(str(path.relative_to(base)).encode() + b"\0")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def load_cached(key: str) -> FaceArrays | None:
    """The cached arrays for ``key``, or None when there are none (or the file is unreadable)."""
    path = cache_dir() / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return FaceArrays(
                images=npz["images"],
                labels=npz["labels"],
                splits=npz["splits"],
                subsets=npz["subsets"],
                names=npz["names"],
                skipped=Counter(json.loads(str(npz["skipped"]))),
            )
    except (OSError, KeyError, ValueError):
        return None  # a broken cache file is rebuilt, never trusted


def save_cached(key: str, faces: FaceArrays) -> Path | None:
    """Write arrays atomically; a read-only or full disk only costs the next run a decode."""
    directory = cache_dir()
    path = directory / f"{key}.npz"
    tmp = directory / f".{key}.{os.getpid()}.tmp.npz"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            tmp,
            images=faces.images,
            labels=faces.labels,
            splits=faces.splits,
            subsets=faces.subsets,
            names=faces.names,
            skipped=np.array(json.dumps(dict(faces.skipped))),
        )
        os.replace(tmp, path)
        return path
    except OSError:
        tmp.unlink(missing_ok=True)
        return None


class Stopwatch:
    """Collects named durations (seconds) for the cost report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._start
        self._start = now
