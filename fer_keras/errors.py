"""User-facing errors: one line that says what was wrong, where, and what to do."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class FerKerasError(Exception):
    """An error caused by the user's input (a path, a flag, a file), not by a bug."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors often span many lines)."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)


def cli_main(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a CLI entry point so user errors print one line and exit 2, Ctrl-C exits 130."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except FerKerasError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
