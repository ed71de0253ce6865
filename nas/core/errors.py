"""User-facing errors: one line naming the bad value and what was expected, exit code 2; a
clean stop on a signal (nas.core.stop): one line, exit code 128 + the signal."""
from __future__ import annotations

import sys
from typing import Callable


class UserError(ValueError):
    """Bad input from the user (flags, files, data). Entry points print it on one line."""


class Stopped(Exception):
    """The run stopped at a safe point on a signal: `line` (empty on ranks other than 0) says
    where and how to resume; the process exits with `code`."""

    def __init__(self, line: str, code: int):
        super().__init__(line)
        self.line, self.code = line, code


def run_cli(main: Callable[[], object]) -> None:
    """Run an entry point; a UserError becomes `error: <message>` on stderr and exit 2."""
    try:
        main()
    except UserError as exc:
        message = " ".join(str(exc).split())  # always one line
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except Stopped as stop:
        if stop.line:
            print(stop.line, file=sys.stderr)
        sys.exit(stop.code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
