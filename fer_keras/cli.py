"""What every command shares: its parser (help shows defaults, ``--verbose``) and quiet TensorFlow start-up.

Commands import TensorFlow only once their arguments are parsed and checked, so ``--help`` and
usage errors answer at once. TensorFlow's C++ start-up lines (oneDNN notices, CUDA probing on a
machine without a GPU) are silenced (``fer_keras.logs``) unless ``--verbose`` is given or
``TF_CPP_MIN_LOG_LEVEL`` is set.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

from fer_keras.errors import FerKerasError, first_line
from fer_keras.logs import NativeLogFilter

VERBOSE_FLAG = "--verbose"
# How the user started the command, for its usage line: ``fer-keras`` sets its own name
PROGRAM = "python -m fer_keras."


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
    parser = CommandParser(prog=f"{PROGRAM}{prog}", description=description, formatter_class=HelpFormatter, **kwargs)
    parser.add_argument(VERBOSE_FLAG, action="store_true", help="show TensorFlow's C++ start-up and log lines")
    return parser


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
