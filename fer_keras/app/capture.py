"""Frames from a camera or a video file, as ``(time_s, BGR frame)`` pairs.

A camera is read on its own thread that keeps only the newest frame, so processing never lags
behind the camera (stale frames are dropped and counted); a video file is read frame by frame.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np

from fer_keras.errors import FerKerasError


@contextlib.contextmanager
def opencv_quiet() -> Iterator[None]:
    """OpenCV's own log lines (``[ WARN:0@...]``) silenced inside."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


class LatestFrameReader:
    """Reads a camera on a thread and keeps only the newest frame (stale frames are dropped)."""

    def __init__(self, capture: cv2.VideoCapture):
        self.capture = capture
        self._frame: np.ndarray | None = None
        self._new = threading.Condition()
        self._stopped = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LatestFrameReader:
        """Start reading (frames before this are not read, so they are not counted as dropped)."""
        if not self._thread.is_alive() and not self._stopped:
            self._thread.start()
        return self

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
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.capture.release()


class VideoSource:
    """A webcam (an index such as ``"0"``) or a video file; iterate for ``(time_s, frame)``.

    Opening checks the source; a camera is read from the first iteration on, so a source can be
    opened (and refused at once) before a model loads.
    """

    def __init__(self, source: str):
        self.source = source
        self.is_camera = source.isdigit()
        with opencv_quiet():  # each backend tried logs its own failure; the one-line error below says it all
            capture = cv2.VideoCapture(int(source)) if self.is_camera else cv2.VideoCapture(source)
        if not capture.isOpened():
            capture.release()
            if self.is_camera:
                raise FerKerasError(f"cannot open camera {source} (no camera, or in use); try --source VIDEO")
            raise FerKerasError(f"cannot read video {source} (missing file or unsupported format)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        self.fps = fps if 1 <= fps <= 240 else 30.0
        self.capture = capture
        self.reader = LatestFrameReader(capture) if self.is_camera else None

    @property
    def dropped(self) -> int:
        """Camera frames dropped because a newer one arrived first."""
        return self.reader.dropped if self.reader else 0

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        if self.reader:
            started = time.perf_counter()
            for frame in self.reader.start():
                yield time.perf_counter() - started, frame
            return
        index = 0
        while True:
            ok, frame = self.capture.read()
            if not ok:
                return
            yield index / self.fps, frame
            index += 1

    def close(self) -> None:
        if self.reader:
            self.reader.close()
        else:
            self.capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(source: str) -> VideoSource:
    """A camera index or a video path, opened (one-line error if it cannot be)."""
    return VideoSource(source)
