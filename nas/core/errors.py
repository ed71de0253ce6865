"""User-facing errors: one line naming the bad value and what was expected, exit code 2; a
clean stop on a signal (nas.core.stop): one line, exit code 128 + the signal."""

from __future__ import annotations

import sys
from typing import Callable


class UserError(ValueError):
    """Bad input from the user (flags, files, data). Entry points print it on one line."""


def describe_os_error(exc: OSError) -> str:
    """'<path>: <what the errno means>' of a failed file operation, on one line."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return " ".join(f"{' -> '.join(paths) + ': ' if paths else ''}{reason}".split())


class Stopped(Exception):
    """The run stopped at a safe point on a signal: `line` (empty on ranks other than 0) says
    where and how to resume; the process exits with `code`."""

    def __init__(self, line: str, code: int):
        super().__init__(line)
        self.line, self.code = line, code


def install_extra(extra: str) -> str:
    """How to install an optional dependency: the package extra that declares it (pyproject.toml)."""
    return f"pip install 'pertnas[{extra}]'"


def run_cli(main: Callable[[], object]) -> None:
    """Run an entry point; a UserError becomes `error: <message>` on stderr and exit 2; a file
    operation the system refused (disk full, read-only, unreadable) `error: <path>: <reason>`
    and exit 1 (the run's files are written atomically, so they stay valid)."""
    try:
        main()
    except UserError as exc:
        message = " ".join(str(exc).split())  # always one line
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        sys.exit(1)
    except Stopped as stop:
        if stop.line:
            print(stop.line, file=sys.stderr)
        sys.exit(stop.code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
