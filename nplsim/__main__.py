"""``python -m nplsim`` and the ``nplsim`` console script: the command line.

Ctrl-C and SIGTERM are turned into exceptions before the command line's modules are imported
(which takes about a second), so that even then they end nplsim with one line.
"""

import sys

from nplsim.experiments.interrupt import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    signals_as_exceptions,
)


def main(argv: list[str] | None = None) -> int:
    """Import the command line with signals as exceptions, then run it."""
    with signals_as_exceptions():
        try:
            from nplsim.experiments.cli import main as command_line
        except KeyboardInterrupt:
            print("nplsim: interrupted (Ctrl-C) while starting", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Terminated:
            print("nplsim: terminated (SIGTERM) while starting", file=sys.stderr)
            return EXIT_TERMINATED
    return command_line(argv)


if __name__ == "__main__":
    sys.exit(main())
