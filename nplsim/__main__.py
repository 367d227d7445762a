"""``python -m nplsim`` and the ``nplsim`` console script: the command line.

Ctrl-C and SIGTERM are turned into exceptions before the command line's modules are imported
(which takes about a second), so that even then they end nplsim with one line. A signal interrupts
an import half-way, so the process then ends at once (``os._exit``) with that line and status 130
or 143, rather than unwinding through half-imported modules. (Before this module's first line
runs, Python's own start-up handles signals its default way.)
"""

import os
import sys

from nplsim.experiments.interrupt import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    signals_as_exceptions,
)


def _end_while_starting(what: str, status: int) -> None:
    print(f"nplsim: {what} while starting", file=sys.stderr, flush=True)
    os._exit(status)


def main(argv: list[str] | None = None) -> int:
    """Import the command line with signals as exceptions, then run it."""
    with signals_as_exceptions():
        try:
            from nplsim.experiments.cli import main as command_line
        except KeyboardInterrupt:
            _end_while_starting("interrupted (Ctrl-C)", EXIT_INTERRUPTED)
        except Terminated:
            _end_while_starting("terminated (SIGTERM)", EXIT_TERMINATED)
    return command_line(argv)


if __name__ == "__main__":
    sys.exit(main())
