"""What every command shares: its parser (help shows defaults, ``--verbose``) and quiet TensorFlow start-up.

Commands import TensorFlow only once their arguments are parsed and checked, so ``--help`` and
usage errors answer at once. TensorFlow's C++ start-up lines (oneDNN notices, CUDA probing on a
machine without a GPU) are silenced unless ``--verbose`` is given or ``TF_CPP_MIN_LOG_LEVEL`` is set.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import threading
from collections.abc import Callable

from fer_keras.errors import FerKerasError, first_line

VERBOSE_FLAG = "--verbose"


class CommandParser(argparse.ArgumentParser):
    """Usage errors as one line (``error: ...``), like every other error of a command."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except "not given" ones (None, "", [], a flag's False) and
    help lines that already say what leaving the option out means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        unset = action.default in (None, False, "", [], argparse.SUPPRESS) or "default" in text
        return text if unset else super()._get_help_string(action)


def command_parser(prog: str, description: str, **kwargs) -> argparse.ArgumentParser:
    """An argument parser for ``python -m fer_keras.<prog>`` with the shared ``--verbose`` flag."""
    parser = CommandParser(
        prog=f"python -m fer_keras.{prog}", description=description, formatter_class=HelpFormatter, **kwargs
    )
    parser.add_argument(VERBOSE_FLAG, action="store_true", help="show TensorFlow's C++ start-up and log lines")
    return parser


# TensorFlow's native log lines (absl format: "I0000 00:00:1796305490.686625 5603 port.cc:153] ...")
# and the notices around them. TF_CPP_MIN_LOG_LEVEL does not silence the ones written before
# absl's logging is initialised, so a command filters them out of its stderr instead.
NATIVE_LOG_LINE = re.compile(
    rb"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] |WARNING: All log messages before absl::InitializeLog"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate|To enable the following instructions: )"
)


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

    def _forward(self) -> None:
        pending = b""
        while chunk := self.reader.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = [line + b"\n" for line in lines if not NATIVE_LOG_LINE.match(line)]
            if kept:
                os.write(self.original, b"".join(kept))
        if pending and not NATIVE_LOG_LINE.match(pending):
            os.write(self.original, pending)

    def close(self) -> None:
        sys.stderr.flush()
        os.dup2(self.original, 2)  # closes the pipe's write end: the reader sees the end of the stream
        self.thread.join(timeout=5)
        os.close(self.original)


def quiet_native_logs(argv: list[str] | None) -> NativeLogFilter | None:
    """Unless ``--verbose``: TF_CPP_MIN_LOG_LEVEL (a level the user exported wins) and the filter."""
    args = sys.argv[1:] if argv is None else argv
    if VERBOSE_FLAG in args:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        return None  # the user asked to see some of them
    try:
        return NativeLogFilter()
    except OSError:  # no usable descriptor 2 (e.g. closed): nothing to filter
        return None


def options_from(cls: type, args: argparse.Namespace, **overrides):
    """A dataclass of a command's options from its parsed flags: each field takes the flag of its
    name, ``overrides`` win."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in vars(args).items() if k in names}, **overrides})


def cli_main(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a command's entry point: user errors print one line and exit 2, Ctrl-C exits 130."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        log_filter = quiet_native_logs(argv) if argv is None else None  # only a real command's own stderr
        try:
            return main(argv)
        except FerKerasError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except OSError as err:  # a full disk or a folder without write permission, met mid-run
            print(f"error: {first_line(err)}", file=sys.stderr)
            return 2
        except SystemExit as done:  # --help, or a usage error already printed
            return done.code if isinstance(done.code, int) else 0
        finally:
            if log_filter:
                log_filter.close()

    return wrapper
