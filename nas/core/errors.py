"""User-facing errors: one line naming the bad value and what was expected, exit code 2."""
from __future__ import annotations

import sys
from typing import Callable


class UserError(ValueError):
    """Bad input from the user (flags, files, data). Entry points print it on one line."""


def run_cli(main: Callable[[], object]) -> None:
    """Run an entry point; a UserError becomes `error: <message>` on stderr and exit 2."""
    try:
        main()
    except UserError as exc:
        message = " ".join(str(exc).split())  # always one line
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
