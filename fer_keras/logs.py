"""TensorFlow's native start-up lines kept off stderr, for commands and for library users alike.

TensorFlow, TFLite and XNNPACK write C++ log lines straight to file descriptor 2 when they load
(oneDNN notices, CUDA probing on a machine without a GPU, the XNNPACK delegate). Some are written
before absl's logging reads ``TF_CPP_MIN_LOG_LEVEL``, so setting it is not enough: the lines are
filtered out of the descriptor instead. A command filters for its whole run (``fer_keras.cli``);
the Python API only while it loads TensorFlow and a model (``quiet_library_logs``), so a program
that imports fer_keras keeps its own stderr untouched the rest of the time.

To see the lines: a command's ``--verbose``, or for the API ``FER_KERAS_VERBOSE=1`` (or any
``TF_CPP_MIN_LOG_LEVEL`` below 3) in the environment.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

# TensorFlow's native log lines (absl format: "I0000 00:00:1796305490.686625 5603 port.cc:153] ...")
# and the notices around them. TF_CPP_MIN_LOG_LEVEL does not silence the ones written before
# absl's logging is initialised, so a command filters them out of its stderr instead.
NATIVE_LOG_LINE = re.compile(
    rb"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] |WARNING: All log messages before absl::InitializeLog"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate|To enable the following instructions: )"
)


SEGMENT_END = re.compile(rb"(?<=[\r\n])")  # split after each line end, keeping it
_active: list[NativeLogFilter] = []  # the filter in force in this process, if any (filters do not nest)


class NativeLogFilter:
    """Routes file descriptor 2 through a pipe and drops TensorFlow's native log lines from it.

    Python's own ``sys.stderr`` goes through the same pipe, so error messages keep their order;
    ``close`` forwards what is left and puts the original descriptor back.
    """

    def __init__(self):
        sys.stderr.flush()
        self.original = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.reader = os.fdopen(read, "rb", buffering=0)
        self.thread = threading.Thread(target=self._forward, daemon=True)
        self.thread.start()
        _active.append(self)

    def _forward(self) -> None:
        # Segments end at "\n" or at "\r": a progress bar redraws its line after "\r" and must show at
        # once, and a native line written after a bar's "\r" must still be recognised from its start.
        pending = b""
        while chunk := self.reader.read(65536):
            *segments, pending = SEGMENT_END.split(pending + chunk)
            kept = [segment for segment in segments if not NATIVE_LOG_LINE.match(segment)]
            if kept:
                os.write(self.original, b"".join(kept))
        if pending and not NATIVE_LOG_LINE.match(pending):
            os.write(self.original, pending)

    def close(self) -> None:
        if self in _active:
            _active.remove(self)
        sys.stderr.flush()
        os.dup2(self.original, 2)  # closes the pipe's write end: the reader sees the end of the stream
        self.thread.join(timeout=5)
        os.close(self.original)


def library_logs_wanted() -> bool:
    """Whether a library user asked to see TensorFlow's native lines (``FER_KERAS_VERBOSE``, or a
    ``TF_CPP_MIN_LOG_LEVEL`` below 3)."""
    if os.environ.get("FER_KERAS_VERBOSE", "").strip() not in ("", "0"):
        return True
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3"


@contextlib.contextmanager
def quiet_library_logs() -> Iterator[None]:
    """Inside: TensorFlow's native lines are dropped from stderr (unless wanted, or a command's
    filter already runs). Everything else written to stderr meanwhile passes, in order."""
    if _active or library_logs_wanted():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the lines absl writes after start-up
    try:
        log_filter = NativeLogFilter()
    except OSError:  # no usable descriptor 2: nothing to filter
        yield
        return
    try:
        yield
    finally:
        log_filter.close()


F = TypeVar("F", bound=Callable)


def quiet(function: F) -> F:
    """Run ``function`` inside ``quiet_library_logs``."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with quiet_library_logs():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
