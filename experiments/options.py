"""Command-line pieces every subcommand shares: ``--set`` pairs, the flags of a results directory,
and the confirmation asked before a very large batch of runs.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from typing import Any

from nplsim.market.errors import MAX_NESTING, ConfigError, check_nesting, printable

# Runs above which a command asks before starting (or needs --yes): 10,000 runs of the default
# 100,000-loan scenario are about 14 CPU-hours, more than a mistyped spec should start unasked.
LARGE_RUNS = 10_000


def parse_set(items: list[str], flag: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are read as TOML (numbers, booleans, lists, tables, quoted
    strings), and a bare word that is not TOML is taken as text (``regime=strengthened``).

    Raises:
        ConfigError: a pair without ``=`` or key, or a key or value holding a line break or any
            other control character (which could hide the rest of the value).
    """
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(flag, item, "expected key=value", "KEY=VALUE")
        if printable(item) != item:
            raise ConfigError(flag, key, "a key or value with a line break or control character",
                              "one line of printable text")  # fmt: skip
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        except RecursionError:
            raise ConfigError(flag, key, f"nested more than {MAX_NESTING} levels deep") from None
        check_nesting(value, flag, key)
        overrides[key] = value
    return overrides


def add_output_flags(parser: argparse.ArgumentParser, kind: str, default: str) -> None:
    """``--out`` and ``--overwrite`` (and nothing else: ``--resume`` is the sweep's own)."""
    parser.add_argument("--out", help=f"results directory (default {default})")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace earlier {kind} results in --out (only files nplsim wrote there)",
    )


def add_yes_flag(parser: argparse.ArgumentParser) -> None:
    """``--yes``: start a batch of more than :data:`LARGE_RUNS` runs without asking."""
    parser.add_argument(
        "--yes", action="store_true", help=f"start more than {LARGE_RUNS:,} runs without asking"
    )


def confirm_runs(n_runs: int, yes: bool, source: str) -> None:
    """Ask before starting more than :data:`LARGE_RUNS` runs: on a terminal, a y/N question;
    otherwise (a script, a pipe) refuse unless ``yes``.

    Raises:
        ConfigError: declined, or not confirmed where no one can be asked.
    """
    if n_runs <= LARGE_RUNS or yes:
        return
    if sys.stdin is not None and sys.stdin.isatty():
        print(f"nplsim: {source}: {n_runs:,} runs. Start them? [y/N] ", end="", file=sys.stderr)
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            return
        raise ConfigError(source, "runs", f"{n_runs:,} runs not started", "answer y, or --yes")
    raise ConfigError(source, "runs", f"{n_runs:,} runs, more than {LARGE_RUNS:,}",
                      "pass --yes to start them")  # fmt: skip
