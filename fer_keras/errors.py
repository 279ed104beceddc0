"""User-facing errors: one line that says what was wrong, where, and what to do."""

from __future__ import annotations


class FerKerasError(Exception):
    """An error caused by the user's input (a path, a flag, a file), not by a bug."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors often span many lines)."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
