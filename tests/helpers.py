"""Shared pieces of the tests that run nplsim as a user would: the smallest valid command line of
each subcommand, nplsim as a separate process, and nplsim without root's powers over files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TINY_RUN = {"quarters": 1, "n_loans": 500}
SWEEP_SPEC = "quarters = 1\noverrides = { n_loans = 500 }\n"
SENSITIVITY_SPEC = (
    'base = "pilot_2005"\nquarters = 1\nmethod = "morris"\nn = 2\noutcomes = ["car_final"]\n'
    "[overrides]\nn_loans = 500\n[parameters.disclosure_level]\nlow = 0.2\nhigh = 1.0\n"
)
# Capabilities that let root read and write whatever the permission bits say; without them root
# meets "Permission denied" like anyone else.
FILE_POWERS = "-dac_override,-dac_read_search"
PROCESS_TIMEOUT_S = 300


def command_line(command: str, workdir: Path, quarters: int = 1) -> list[str]:
    """The smallest valid command line of ``command`` (spec files are written into ``workdir``);
    ``--out`` and ``--quiet`` are for the caller to add."""
    tiny = ["--set", f"n_loans={TINY_RUN['n_loans']}"]
    if command == "run":
        return ["run", "pilot_2005", "--quarters", str(quarters), *tiny]
    if command == "sweep":
        spec = workdir / "sweep-spec.toml"
        spec.write_text(SWEEP_SPEC)
        return ["sweep", str(spec), "--workers", "1"]
    if command == "compare":
        return ["compare", "pilot_2005", "restart_2016", "--seeds", "2", "--quarters", "1",
                "--workers", "1", "--set-a", "n_loans=500", "--set-b", "n_loans=500"]  # fmt: skip
    if command == "sensitivity":
        spec = workdir / "sensitivity-spec.toml"
        spec.write_text(SENSITIVITY_SPEC)
        return ["sensitivity", str(spec), "--workers", "1"]
    if command == "validate":
        return ["validate", "--seeds", "1", "--loans", "500", "--workers", "1"]
    raise ValueError(command)


def nplsim_process(argv: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    """``python -m nplsim ARGV`` started in ``cwd`` in a process group of its own (stdout
    discarded, stderr as text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "nplsim", *argv], cwd=cwd, text=True, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **env},
    )  # fmt: skip


def unprivileged(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m nplsim ARGV`` bound by file permissions: as root (CI, containers), without the
    capabilities that override them (``setpriv``); otherwise as this user."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            import pytest

            pytest.skip("running as root without setpriv: permission bits bind no one")
        prefix = [setpriv, f"--bounding-set={FILE_POWERS}"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "nplsim", *argv], cwd=cwd, text=True,
        capture_output=True, timeout=PROCESS_TIMEOUT_S,
    )  # fmt: skip
