"""``python -m nplsim`` and the ``nplsim`` console script: the command line.

Ctrl-C and SIGTERM are turned into exceptions before the command line's modules are imported
(the command line itself is light; a subcommand's modules, imported only when it runs, can take
about a second), so that even then they end nplsim with one line. A signal interrupts
an import half-way, so the process then ends at once (``os._exit``) with that line and status 130
or 143, rather than unwinding through half-imported modules. (Before this module's first line
runs, Python's own start-up handles signals its default way.) Once the command has ended, its
results are in place: a signal that arrives as it returns is reported in one line, and one that
arrives while the interpreter shuts down is ignored, so it cannot turn a finished run into a
traceback.
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


def _ended_as_it_finished(what: str, status: int) -> int:
    print(f"nplsim: {what} as the command ended; what it wrote is complete", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Import the command line with signals as exceptions, then run it; ignore signals after."""
    with signals_as_exceptions(ignore_after=True):
        try:
            from nplsim.experiments.cli import main as command_line
            from nplsim.experiments.cli import parse_command_line

            args = parse_command_line(argv)  # imports the subcommand's modules
        except KeyboardInterrupt:
            _end_while_starting("interrupted (Ctrl-C)", EXIT_INTERRUPTED)
        except Terminated:
            _end_while_starting("terminated (SIGTERM)", EXIT_TERMINATED)
        try:
            return command_line(argv, args)
        except KeyboardInterrupt:
            return _ended_as_it_finished("interrupted (Ctrl-C)", EXIT_INTERRUPTED)
        except Terminated:
            return _ended_as_it_finished("terminated (SIGTERM)", EXIT_TERMINATED)


if __name__ == "__main__":
    sys.exit(main())
