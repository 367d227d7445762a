"""Hostile cases against the nplsim command line: does every one hold? Prints tried / held / broke.

Usage::

    python benchmarks/hostile.py                 # every case, 4 at a time
    python benchmarks/hostile.py --jobs 2 -k out  # the cases whose name contains "out"
    python benchmarks/hostile.py --list           # the case names, by family

Each case makes its own scratch folder, runs ``python -m nplsim ...`` as a separate process (some
run several at once, signal them, kill their workers, bind them by file permissions — with
``setpriv`` when run as root — or cap the size of the files they may write), and checks what a
user would see: the exit status; that an error is one printable line; that the files the user had
are untouched; that nothing half-written is left beside the results; that results are complete
and record what was asked; that no process outlives the command. A case *holds* when every check
passes and *breaks* otherwise. The exit status is 0 when every case held. (A signal that lands
while Python itself is still starting, before any of nplsim's code has run, ends the process as
the signal's default does, silently and with nothing written; the signal cases accept that.)

The cases follow the attack of issue 14 (results directories, overrides, manifests, bounded
parsing, write errors, signals and processes, the app's server, sizes), varied over every command
that writes results and every file input.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 900  # one nplsim process; the slowest case (a sweep of 40-quarter runs) needs ~1 min
POLL_S = 0.05
POLLS = 4000  # bounded waits: at most 200 s for a condition
FILE_POWERS = "--bounding-set=-dac_override,-dac_read_search"  # what lets root ignore modes
SMALL = ["--set", "n_loans=500"]
STAGING = re.compile(r"\.(stage|old)-[0-9a-f]{8}$|\.lock$|^\.tmp-|^\.nplsim-check-")
COMMANDS = ("run", "sweep", "compare", "sensitivity", "validate")
REGIME_FLOATS = {  # field of the law: (a valid value, a value out of its range)
    "disclosure_level": (0.3, 1.5),
    "bankruptcy_remoteness": (0.5, -0.1),
    "investor_protection": (0.2, 7.0),
    "risk_retention": (0.1, 0.9),
    "enforcement_efficiency": (1.2, 0.01),
    "guarantee_enforceability": (0.8, 1.01),
    "stamp_duty_bp": (5.0, 1000.0),
}
PRUDENTIAL_FLOATS = {  # field of the prudential rules: (a valid value, a value out of its range)
    "car_min": (0.1, 2.0),
    "liquidity_ratio_min": (0.3, 2.0),
    "npl_ratio_target": (0.1, -1.0),
}


# ====================================================================== running nplsim
@dataclass
class Result:
    """What one nplsim process did."""

    code: int
    out: str
    err: str


def nplsim(
    argv: list[str],
    cwd: Path,
    *,
    unprivileged: bool = False,
    env: dict[str, str] | None = None,
    preexec: Callable[[], None] | None = None,
    stdin: str | None = None,
) -> Result:
    """Run ``python -m nplsim ARGV`` in ``cwd`` and wait for it."""
    prefix = _unprivileged() if unprivileged else []
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "nplsim", *argv], cwd=cwd, capture_output=True,
        text=True, timeout=TIMEOUT_S, env={**os.environ, **(env or {})}, preexec_fn=preexec,
        input=stdin,
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start(argv: list[str], cwd: Path, env=None) -> subprocess.Popen:
    """Start ``python -m nplsim ARGV`` in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "nplsim", *argv], cwd=cwd, text=True, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _unprivileged() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise Skip("root without setpriv: permission bits bind no one")
    return [setpriv, FILE_POWERS]


class Skip(Exception):  # noqa: N818 — a case that cannot run here
    """The case cannot run on this machine."""


def wait_for(condition: Callable[[], bool]) -> bool:
    for _ in range(POLLS):
        if condition():
            return True
        time.sleep(POLL_S)
    return False


# ====================================================================== checks
def one_line(result: Result, code: int = 2, says: str | None = None) -> list[str]:
    """Problems unless ``result`` exited ``code`` with exactly one printable line on stderr."""
    problems = []
    if result.code != code:
        problems.append(f"exit {result.code}, expected {code}: {result.err[-300:]!r}")
    lines = result.err.splitlines()
    if len(lines) != 1 or not result.err.endswith("\n"):
        problems.append(f"stderr is {len(lines)} lines: {result.err[-300:]!r}")
    elif not lines[0].isprintable():
        problems.append(f"unescaped characters: {lines[0]!r}")
    if "Traceback" in result.err:
        problems.append("traceback")
    if says is not None and says not in result.err:
        problems.append(f"message lacks {says!r}: {result.err[-300:]!r}")
    return problems


def ok(result: Result) -> list[str]:
    return [] if result.code == 0 else [f"exit {result.code}: {result.err[-400:]!r}"]


def user_files(folder: Path) -> dict[str, bytes]:
    """Every file a case put there as the user's (its content begins with ``USER``)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and p.read_bytes().startswith(USER)
    }


USER = b"a user's file: "


def no_staging(folder: Path) -> list[str]:
    found = [str(p.relative_to(folder)) for p in folder.rglob("*") if STAGING.search(p.name)]
    return [f"left behind: {found}"] if found else []


def complete_run(out: Path, quarters: int | None = None) -> list[str]:
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    needed = {"manifest.json", "model.parquet", "summary.json", ".nplsim-results.json"}
    if not needed <= names:
        return [f"incomplete results: {sorted(names)}"]
    manifest = json.loads((out / "manifest.json").read_text())
    if quarters is not None and manifest["quarters"] != quarters:
        return [f"quarters {manifest['quarters']} != {quarters}"]
    return []


def smallest(command: str, folder: Path, quarters: int = 1) -> list[str]:
    """The smallest valid command line of ``command`` (spec files written into ``folder``)."""
    if command == "run":
        return ["run", "pilot_2005", "--quarters", str(quarters), *SMALL]
    if command == "sweep":
        spec = folder / "sweep.toml"
        spec.write_text(f"quarters = {quarters}\noverrides = {{ n_loans = 500 }}\n")
        return ["sweep", str(spec), "--workers", "1"]
    if command == "compare":
        return ["compare", "pilot_2005", "restart_2016", "--seeds", "2", "--quarters",
                str(quarters), "--workers", "1", "--set-a", "n_loans=500", "--set-b",
                "n_loans=500"]  # fmt: skip
    if command == "sensitivity":
        spec = folder / "sens.toml"
        spec.write_text(
            f'base = "pilot_2005"\nquarters = {quarters}\nmethod = "morris"\nn = 2\n'
            'outcomes = ["car_final"]\n[overrides]\nn_loans = 500\n'
            "[parameters.disclosure_level]\nlow = 0.2\nhigh = 1.0\n"
        )
        return ["sensitivity", str(spec), "--workers", "1"]
    return ["validate", "--seeds", "1", "--loans", "500", "--workers", "1"]


# ====================================================================== the cases
@dataclass(frozen=True)
class Case:
    family: str
    name: str
    check: Callable[[Path], list[str]]


CASES: list[Case] = []


def case(family: str, name: str):
    def register(check: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
        CASES.append(Case(family, name, check))
        return check

    return register


# ---------------------------------------------------------------------- 1. data loss
OUT_STATES = (
    "user folder with manifest.json", "user folder", "working directory", "dot", "parent of cwd",
    "earlier results", "earlier results + user file, --overwrite", "other kind's results",
    "symlink to a user folder", "dangling symlink", "symlink loop", "a file", "below a file",
)  # fmt: skip


def _out_state(command: str, state: str):
    def check(work: Path) -> list[str]:
        out = work / "out"
        argv_out, flags = str(out), []
        if state in ("user folder with manifest.json", "user folder"):
            (out / "src").mkdir(parents=True)
            (out / "thesis.tex").write_bytes(USER + b"thesis")
            (out / "src" / "model.py").write_bytes(USER + b"code")
            if state.endswith("manifest.json"):
                (out / "manifest.json").write_bytes(USER + b"{}")
            flags = ["--overwrite"]
        elif state == "working directory":
            (work / "keep.txt").write_bytes(USER + b"keep")
            argv_out, flags = str(work), ["--overwrite"]
        elif state == "dot":
            (work / "keep.txt").write_bytes(USER + b"keep")
            argv_out = "."
        elif state == "parent of cwd":
            argv_out = ".."
        elif state.startswith("earlier results"):
            first = nplsim([*smallest(command, work), "--out", str(out), "--quiet"], work)
            if first.code != 0:
                return [f"setup: {first.err[-200:]!r}"]
            if "user file" in state:
                (out / "notes.txt").write_bytes(USER + b"notes")
                flags = ["--overwrite"]
        elif state == "other kind's results":
            other = "run" if command != "run" else "compare"
            first = nplsim([*smallest(other, work), "--out", str(out), "--quiet"], work)
            if first.code != 0:
                return [f"setup: {first.err[-200:]!r}"]
            flags = ["--overwrite"]
        elif state == "symlink to a user folder":
            (work / "mine").mkdir()
            (work / "mine" / "keep.txt").write_bytes(USER + b"keep")
            out.symlink_to(work / "mine")
        elif state == "dangling symlink":
            out.symlink_to(work / "nowhere")
        elif state == "symlink loop":
            out.symlink_to(out)
        elif state == "a file":
            out.write_bytes(USER + b"a file")
        elif state == "below a file":
            (work / "afile").write_bytes(USER + b"a file")
            argv_out = str(work / "afile" / "out")
        before = user_files(work)
        result = nplsim([*smallest(command, work), "--out", argv_out, "--quiet", *flags], work)
        problems = one_line(result)
        if user_files(work) != before:
            problems.append("a user's file changed or vanished")
        return problems + no_staging(work)

    return check


for _command in COMMANDS:
    for _state in OUT_STATES:
        case("data loss", f"{_command} --out {_state}")(_out_state(_command, _state))


def _overwrite_own(command: str):
    def check(work: Path) -> list[str]:
        argv = [*smallest(command, work), "--out", str(work / "out"), "--quiet"]
        first, second = nplsim(argv, work), nplsim([*argv, "--overwrite"], work)
        marker = work / "out" / ".nplsim-results.json"
        kind = json.loads(marker.read_text())["kind"] if marker.is_file() else None
        return (
            ok(first)
            + ok(second)
            + ([] if kind == command else [f"marker {kind}"])
            + (no_staging(work))
        )

    return check


for _command in COMMANDS:
    case("data loss", f"{_command} --overwrite replaces its own results")(_overwrite_own(_command))


def _concurrent(commands: list[str]):
    def check(work: Path) -> list[str]:
        out = work / "out"
        procs = [start([*smallest(c, work), "--out", str(out), "--quiet"], work) for c in commands]
        results = [Result(p.wait(timeout=TIMEOUT_S), "", p.stderr.read()) for p in procs]
        winners = [r for r in results if r.code == 0]
        problems = [] if len(winners) == 1 else [f"{len(winners)} winners"]
        for r in results:
            if r.code != 0:
                problems += one_line(r)
        return problems + no_staging(work)

    return check


for _k, _commands in enumerate(
    [["run"] * 3, ["run"] * 3, ["run"] * 4, ["run", "compare", "run"], ["sweep"] * 3,
     ["validate", "validate"], ["sensitivity", "run"]]
):  # fmt: skip
    case("data loss", f"{len(_commands)} concurrent writers #{_k}: {', '.join(_commands)}")(
        _concurrent(_commands)
    )


@case("data loss", "600 commits by 4 processes at once: no race, nothing left")
def _commit_race(work: Path) -> list[str]:
    script = (
        "import sys\nfrom nplsim.experiments.store import write_directory\n"
        "from nplsim.market.errors import ConfigError\nbad = 0\n"
        "for k in range(150):\n    try:\n"
        "        write_directory(sys.argv[1], 'run', lambda d: (d / 'n').write_text('x'),"
        " overwrite=True)\n"
        "    except ConfigError as e:\n        bad += 'another nplsim process' not in str(e)\n"
        "    except OSError:\n        bad += 1\nprint(bad)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(work / "out")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(4)
    ]
    bad = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    problems = [f"{o.strip() or e[-200:]} failures" for o, e in bad if o.strip() != "0"]
    return problems + no_staging(work)


@case("data loss", "staging a SIGKILLed run left is cleaned by the next run")
def _killed_staging(work: Path) -> list[str]:
    out = work / "o"
    proc = start([*smallest("run", work, quarters=40), "--set", "n_loans=20000", "--out", str(out),
                  "--quiet"], work)  # fmt: skip
    wait_for(lambda: (work / ".o.lock").exists() or proc.poll() is not None)
    proc.kill()
    proc.wait(timeout=TIMEOUT_S)
    (work / ".o.stage-0123abcd").mkdir()  # as a kill during the writing leaves it
    result = nplsim([*smallest("run", work), "--out", str(out), "--quiet"], work)
    return ok(result) + no_staging(work) + complete_run(out)


# ---------------------------------------------------------------------- 2. silently wrong
def _set_ok(items: list[str], expect: dict[str, float], section: str = "regime"):
    def check(work: Path) -> list[str]:
        argv = ["run", "pilot_2005", "--quarters", "2", *SMALL, "--out", "o", "--quiet"]
        for item in items:
            argv += ["--set", item]
        result = nplsim(argv, work)
        if result.code != 0:
            return ok(result)
        held = json.loads((work / "o" / "manifest.json").read_text())[section]
        return [f"{k}: {held[k]} != {v}" for k, v in expect.items() if held[k] != v]

    return check


def _set_refused(items: list[str], says: str):
    def check(work: Path) -> list[str]:
        argv = ["run", "pilot_2005", "--set", "quarters=1", *SMALL, "--out", "o", "--quiet"]
        for item in items:  # a later --set of the same key wins
            argv += ["--set", item]
        return one_line(nplsim(argv, work), says=says) + (
            ["results written"] if (work / "o").exists() else []
        )

    return check


for _table, _section, _floats in (
    ("regime_overrides", "regime", REGIME_FLOATS),
    ("prudential_overrides", "prudential", PRUDENTIAL_FLOATS),
):
    for _field, (_good, _bad) in _floats.items():
        for _spelling in (
            f"{_table}.{_field}={{v}}",
            f"{_table}={{{{{_field}={{v}}}}}}",
            f"{_table}__{_field}={{v}}",
        ):
            case("silently wrong", f"--set {_spelling.format(v=_good)}")(
                _set_ok([_spelling.format(v=_good)], {_field: _good}, _section)
            )
            case("silently wrong", f"--set {_spelling.format(v=_bad)} (out of range)")(
                _set_refused([_spelling.format(v=_bad)], f"--set: {_table}")
            )
for _item, _says in [
    ("quarters=true", "expected a number, got a boolean"),
    ("n_loans=true", "expected a number, got a boolean"),
    ("disclosure_level=false", "expected a number, got a boolean"),
    ('quarters="2"', "expected a number, got text"),
    ("quarters=2\nquarters=9", "line break"),
    ("disclosure_level=0.5\x1b[31m", "control character"),
    ("regime=nope", "--set: regime: unknown preset"),
    ("regime_overrides.nope=1", "not a legal-regime field"),
    ("regime_overrides=3", "expected a table of regime fields"),
    ("regime_overrides={nope=1}", "not a legal-regime field"),
    ("events=[{quarter=1, overrides={spv_form=\"none\"}}]", "events.0.overrides"),
]:  # fmt: skip
    case("silently wrong", f"--set {_item!r} refused")(_set_refused([_item], _says))


def _events(events: str, expect: dict[str, float], sets: list[str]):
    def check(work: Path) -> list[str]:
        argv = ["run", "pilot_2005", "--quarters", "4", *SMALL, "--out", "o", "--quiet",
                "--set", f"events={events}"]  # fmt: skip
        for item in sets:
            argv += ["--set", item]
        result = nplsim(argv, work)
        if result.code != 0:
            return ok(result)
        last = json.loads((work / "o" / "manifest.json").read_text())["regime_schedule"][-1]
        return [f"{k}: {last['regime'][k]} != {v}" for k, v in expect.items()
                if last["regime"][k] != v]  # fmt: skip

    return check


case("silently wrong", "an event with only overrides keeps --set's regime overrides")(
    _events(
        "[{quarter=2, overrides={stamp_duty_bp=7.0}}]",
        {"disclosure_level": 0.05, "stamp_duty_bp": 7.0},
        ["disclosure_level=0.05"],
    )  # fmt: skip
)
case("silently wrong", "two events in one quarter both apply")(
    _events(
        "[{quarter=2, overrides={stamp_duty_bp=7.0}}, {quarter=2, overrides={risk_retention=0.1}}]",
        {"stamp_duty_bp": 7.0, "risk_retention": 0.1},
        [],
    )  # fmt: skip
)
case("silently wrong", "an event keeps the scenario file's regime overrides")(
    _events(
        "[{quarter=1, overrides={stamp_duty_bp=7.0}}]",
        {"stamp_duty_bp": 7.0, "investor_protection": 0.2},
        ["regime_overrides={investor_protection=0.2}"],
    )  # fmt: skip
)


def _sweep_runs(values: str, runs: int, field: str = "disclosure_level"):
    def check(work: Path) -> list[str]:
        (work / "s.toml").write_text(
            f'quarters = 1\noverrides = {{ n_loans = 500 }}\n[parameters."{field}"]\n'
            f"values = {values}\n"
        )
        result = nplsim(["sweep", "s.toml", "--out", "o", "--workers", "1", "--quiet"], work)
        if result.code != 0:
            return ok(result)
        count = len(list((work / "o" / "runs").glob("run_id=*")))
        configs = subprocess.run(
            [sys.executable, "-c", "import sys, pandas as pd; from nplsim.experiments.sweep "
             "import load_sweep; print(load_sweep(sys.argv[1])['config_hash'].nunique())",
             str(work / "o")], capture_output=True, text=True, timeout=TIMEOUT_S,
        ).stdout.strip()  # fmt: skip
        return ([] if count == runs else [f"{count} runs, expected {runs}"]) + (
            [] if configs == str(runs) else [f"{configs} config hashes, expected {runs}"]
        )

    return check


case("silently wrong", "sweep values [1, 1.0] are one run")(_sweep_runs("[1, 1.0]", 1))
case("silently wrong", "sweep values [0.0, -0.0] are one run")(_sweep_runs("[0.0, -0.0]", 1))
case("silently wrong", "sweep values [0.5, 0.5, 1, 1.0, 0] are three runs")(
    _sweep_runs("[0.5, 0.5, 1, 1.0, 0]", 3)
)
case("silently wrong", "a sweep over regime_overrides.stamp_duty_bp gives distinct simulations")(
    _sweep_runs("[1.0, 5.0, 10.0]", 3, "regime_overrides.stamp_duty_bp")
)
case("silently wrong", "a sweep over prudential_overrides.car_min gives distinct simulations")(
    _sweep_runs("[0.08, 0.1, 0.2]", 3, "prudential_overrides.car_min")
)


@case("silently wrong", "summary.json is strict JSON")
def _strict_summary(work: Path) -> list[str]:
    result = nplsim([*smallest("run", work, quarters=4), "--out", "o", "--quiet"], work)
    text = (work / "o" / "summary.json").read_text() if result.code == 0 else ""
    bad = [w for w in ("Infinity", "NaN") if w in text]
    return ok(result) + ([f"summary.json holds {bad}"] if bad else [])


# ---------------------------------------------------------------------- 3. manifests
def _tiny_run(work: Path) -> Path:
    result = nplsim([*smallest("run", work, quarters=2), "--out", str(work / "first"), "--quiet"],
                    work)  # fmt: skip
    if result.code != 0:
        raise RuntimeError(result.err)
    return work / "first" / "manifest.json"


def _edited_manifest(edit: Callable[[dict], None], says: str, allow: bool | None = None):
    """A manifest edited by ``edit`` is refused (``says``); with ``allow``, the flag re-runs it
    and the new manifest says so."""

    def check(work: Path) -> list[str]:
        path = _tiny_run(work)
        manifest = json.loads(path.read_text())
        edit(manifest)
        edited = work / "edited.json"
        edited.write_text(json.dumps(manifest))
        refused = nplsim(["run", "--from-manifest", str(edited), "--out", "a", "--quiet"], work)
        problems = one_line(refused, says=says)
        if allow:
            again = nplsim(["run", "--from-manifest", str(edited), "--out", "b", "--quiet",
                            "--allow-different-code"], work)  # fmt: skip
            problems += ok(again)
            if again.code == 0:
                note = json.loads((work / "b" / "manifest.json").read_text()).get("rerun_note", "")
                if not note.startswith("re-run under different code"):
                    problems.append(f"no 're-run under different code' in {note!r}")
        return problems + no_staging(work)

    return check


def _set_key(key, value):
    return lambda m: m.update({key: value})


_MANIFEST_EDITS = [
    ("the code changed", lambda m: m["code"].update(code_sha256="0" * 64), "the code differs",
     True),
    ("a preset changed", lambda m: m["presets"].update(pilot_2005="0" * 64), "preset pilot_2005",
     True),
    ("an older manifest without pins", lambda m: (m.pop("code"), m.pop("presets")),
     "does not pin the code", True),
    ("tampered seed", _set_key("seed", 7), "config_hash: does not match", None),
    ("tampered quarters", lambda m: (m.update(quarters=3), m["scenario"].update(quarters=3)),
     "config_hash: does not match", None),
    ("tampered n_loans", lambda m: m["scenario"].update(n_loans=900), "config_hash: does not match",
     None),
    ("tampered regime", lambda m: m["regime"].update(stamp_duty_bp=7.0),
     "config_hash: does not match",
     None),
    ("top-level quarters differs", _set_key("quarters", 9), "the manifest was edited", None),
    ("seed is text", _set_key("seed", "3"), "seed: expected integer", None),
    ("seed negative", _set_key("seed", -1), "seed: must not be negative", None),
    ("scenario is a list", _set_key("scenario", []), "scenario: expected object", None),
    ("no regime", lambda m: m.pop("regime"), "regime: missing", None),
    ("a compare manifest", _set_key("kind", "compare"), "a 'compare' manifest", None),
    ("unknown preset", lambda m: m["scenario"].update(regime="gone"), "unknown preset 'gone'",
     None),
    ("unknown scenario key", lambda m: m["scenario"].update(n_loanz=1), "unknown key", None),
]  # fmt: skip
for _name, _edit, _says, _allow in _MANIFEST_EDITS:
    case("manifests", f"--from-manifest: {_name}")(_edited_manifest(_edit, _says, _allow))


def _escaping_name(name: str):
    def check(work: Path) -> list[str]:
        (work / "s.toml").write_text(f"name = {json.dumps(name)}\nquarters = 1\nn_loans = 500\n")
        first = nplsim(["run", "s.toml", "--out", "first", "--quiet"], work)
        again = nplsim(["run", "--from-manifest", "first/manifest.json", "--quiet"], work)
        written = sorted(p.name for p in work.iterdir())
        inside = (work / "results").is_dir() and len(list((work / "results").iterdir())) == 1
        problems = ok(first) + ok(again)
        if written != ["first", "results", "s.toml"] or not inside:
            problems.append(f"written outside results/: {written}")
        return problems

    return check


for _name in ["../../escape", "/tmp/nplsim-hostile-absolute", "..", ".", ".hidden", "a/b/c",
              "x\ny", "~/home", "C:\\windows", "a" * 300]:  # fmt: skip
    case("manifests", f"a manifest's scenario name {_name[:30]!r} stays under results/")(
        _escaping_name(_name)
    )


@case("manifests", "sweep --resume under other code is refused, allowed on request")
def _resume_code(work: Path) -> list[str]:
    argv = [*smallest("sweep", work), "--out", "o", "--quiet"]
    problems = ok(nplsim(argv, work))
    path = work / "o" / "sweep.json"
    manifest = json.loads(path.read_text())
    manifest["code"]["code_sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    problems += one_line(nplsim([*argv, "--resume"], work), says="begun under other code")
    problems += ok(nplsim([*argv, "--resume", "--allow-different-code"], work))
    sessions = json.loads(path.read_text()).get("sessions", [])
    if len(sessions) != 2 or "re-run under different code" not in sessions[-1].get("note", ""):
        problems.append(f"sessions: {sessions}")
    return problems


@case("manifests", "manifest pins every preset, the code and the versions")
def _pins(work: Path) -> list[str]:
    reform = 'events=[{quarter=2, regime="strengthened"}]'
    argv = [*smallest("run", work, quarters=3), "--set", reform, "--out", "o", "--quiet"]
    result = nplsim(argv, work)
    if result.code != 0:
        return ok(result)
    manifest = json.loads((work / "o" / "manifest.json").read_text())
    problems = []
    if set(manifest.get("presets", {})) != {"pilot_2005", "strengthened"}:
        problems.append(f"presets: {manifest.get('presets')}")
    if {"git_commit", "git_dirty", "code_sha256"} - set(manifest.get("code", {})):
        problems.append("code not pinned")
    return problems


# ---------------------------------------------------------------------- 4. paths beside files
@case("paths", "a regime file named in a scenario is read beside the scenario")
def _beside_scenario(work: Path) -> list[str]:
    (work / "study").mkdir()
    (work / "elsewhere").mkdir()
    law = _preset("pilot_2005") | {"stamp_duty_bp": 7.0}
    (work / "study" / "law.toml").write_text(_toml(law))
    (work / "study" / "s.toml").write_text('regime = "law.toml"\nquarters = 1\nn_loans = 500\n')
    result = nplsim(["run", str(work / "study" / "s.toml"), "--out", "o", "--quiet"],
                    work / "elsewhere")  # fmt: skip
    if result.code != 0:
        return ok(result)
    regime = json.loads((work / "elsewhere" / "o" / "manifest.json").read_text())["regime"]
    return [] if regime["stamp_duty_bp"] == 7.0 else [f"stamp_duty_bp {regime['stamp_duty_bp']}"]


@case("paths", "a preset file in a sweep spec is read beside the spec")
def _beside_spec(work: Path) -> list[str]:
    (work / "study").mkdir()
    (work / "elsewhere").mkdir()
    (work / "study" / "law.toml").write_text(_toml(_preset("pilot_2005") | {"stamp_duty_bp": 7.0}))
    (work / "study" / "s.toml").write_text(
        'quarters = 1\noverrides = { n_loans = 500, regime = "law.toml" }\n'
    )
    return ok(nplsim(["sweep", str(work / "study" / "s.toml"), "--out", "o", "--workers", "1",
                      "--quiet"], work / "elsewhere"))  # fmt: skip


@case("paths", "a base scenario file in a sensitivity spec is read beside the spec")
def _beside_sensitivity(work: Path) -> list[str]:
    (work / "study").mkdir()
    (work / "elsewhere").mkdir()
    (work / "study" / "base.toml").write_text('regime = "pilot_2005"\nn_loans = 500\n')
    spec = work / "study" / "sens.toml"
    spec.write_text(
        'base = "base.toml"\nquarters = 1\nmethod = "morris"\nn = 2\noutcomes = ["car_final"]\n'
        "[parameters.disclosure_level]\nlow = 0.2\nhigh = 1.0\n"
    )
    return ok(nplsim(["sensitivity", str(spec), "--out", "o", "--workers", "1", "--quiet"],
                     work / "elsewhere"))  # fmt: skip


def _preset(name: str) -> dict:
    import tomllib

    return tomllib.loads((ROOT / "market" / "regimes" / f"{name}.toml").read_text())


def _toml(data: dict) -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    return "".join(f"{k} = {value(v)}\n" for k, v in data.items())


# ---------------------------------------------------------------------- 5. bounded parsing
INPUT_KINDS = ("fifo", "directory", "/dev/zero", "deep", "huge", "dangling symlink",
               "symlink loop", "binary", "unreadable", "under an unreadable folder")  # fmt: skip
FILE_INPUTS = {
    "scenario": lambda p: ["run", p],
    "sweep spec": lambda p: ["sweep", p],
    "sensitivity spec": lambda p: ["sensitivity", p],
    "facts": lambda p: ["validate", "--facts", p],
    "manifest": lambda p: ["run", "--from-manifest", p],
}


def _bounded(where: str, kind: str):
    def check(work: Path) -> list[str]:
        suffix = ".json" if where == "manifest" else ".toml"
        path = work / f"input{suffix}"
        unprivileged = kind in ("unreadable", "under an unreadable folder")
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "directory":
            path.mkdir()
        elif kind == "/dev/zero":
            path = Path("/dev/zero")
        elif kind == "deep":
            depth = 3000
            path.write_text(("a = " if suffix == ".toml" else "") + "[" * depth + "]" * depth)
        elif kind == "huge":
            with path.open("wb") as handle:
                handle.truncate(64 * 1024 * 1024)
        elif kind == "dangling symlink":
            path.symlink_to(work / "nowhere")
        elif kind == "symlink loop":
            path.symlink_to(path)
        elif kind == "binary":
            path.write_bytes(b"\xff\xfe\x00\x80garbage\xc3\x28 = [\n")
        elif kind == "unreadable":
            path.write_text("quarters = 1\n")
            path.chmod(0o000)
        else:
            (work / "locked").mkdir()
            path = work / "locked" / f"input{suffix}"
            path.write_text("quarters = 1\n")
            (work / "locked").chmod(0o000)
        argv = [*FILE_INPUTS[where](str(path)), "--out", str(work / "o"), "--quiet"]
        try:
            result = nplsim(argv, work, unprivileged=unprivileged)
        finally:
            if (work / "locked").exists():
                (work / "locked").chmod(0o755)
        problems = one_line(result, says=str(path))
        if "file not found" in result.err and kind not in ("dangling symlink",):
            problems.append("reported as file not found")
        return problems + (["results written"] if (work / "o").exists() else [])

    return check


for _where in FILE_INPUTS:
    for _kind in INPUT_KINDS:
        case("bounded parsing", f"{_where}: {_kind}")(_bounded(_where, _kind))


def _sweep_json(content: str, says: str):
    def check(work: Path) -> list[str]:
        argv = [*smallest("sweep", work), "--out", "o", "--quiet"]
        problems = ok(nplsim(argv, work))
        (work / "o" / "sweep.json").write_text(content)
        return problems + one_line(nplsim([*argv, "--resume"], work), says=says)

    return check


for _content, _says in [
    ("[1, 2]", "expected a JSON object"), ('{"spec": ', "malformed JSON"),
    ("{}", "spec_resolved"), ('{"spec_resolved": 3}', "spec_resolved"),
    ("[" * 5000 + "]" * 5000, "nested more than"), ('{"a": NaN}', "not strict JSON"),
    ("\xff", "malformed JSON"),
]:  # fmt: skip
    case("bounded parsing", f"sweep --resume with sweep.json {_content[:12]!r}")(
        _sweep_json(_content, _says)
    )


def _deep_set(depth: int):
    def check(work: Path) -> list[str]:
        value = "[" * depth + "]" * depth
        result = nplsim([*smallest("run", work), "--set", f"x={value}", "--out", "o", "--quiet"],
                        work)  # fmt: skip
        return one_line(result)

    return check


for _depth in (33, 1000, 3000, 60000):  # 60000: near the longest argument the OS passes
    case("bounded parsing", f"--set with a value nested {_depth} deep")(_deep_set(_depth))


# ---------------------------------------------------------------------- 6. write errors
def _read_only_results(command: str, existing: bool):
    def check(work: Path) -> list[str]:
        results = work / "results"
        results.mkdir()
        out = results / "x"
        if existing:
            first = nplsim([*smallest(command, work), "--out", str(out), "--quiet"], work)
            if first.code != 0:
                return [f"setup: {first.err[-200:]!r}"]
        results.chmod(0o555)
        try:
            flags = ["--overwrite"] if existing else []
            result = nplsim([*smallest(command, work), "--out", str(out), "--quiet", *flags],
                            work, unprivileged=True)  # fmt: skip
        finally:
            results.chmod(0o755)
        return one_line(result, says="Permission denied") + no_staging(work)

    return check


for _command in COMMANDS:
    case("write errors", f"{_command} into a read-only results folder")(
        _read_only_results(_command, False)
    )
    case("write errors", f"{_command} --overwrite in a read-only results folder")(
        _read_only_results(_command, True)
    )


def _disk_full(command: str):
    limit = 2048  # bytes a file may have: every command writes a larger result file

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    def check(work: Path) -> list[str]:
        argv = [*smallest(command, work, quarters=4), "--out", str(work / "o"), "--quiet"]
        result = nplsim(argv, work, preexec=small_files)
        problems = one_line(result, says="File too large")
        if "cannot write" not in result.err:
            problems.append("the message does not name what could not be written")
        return problems + no_staging(work)

    return check


for _command in COMMANDS:
    case("write errors", f"{_command} on a full disk (file size limit)")(_disk_full(_command))


@case("write errors", "sweep --resume with read-only runs/")
def _read_only_runs(work: Path) -> list[str]:
    argv = [*smallest("sweep", work), "--out", str(work / "o"), "--quiet"]
    problems = ok(nplsim(argv, work))
    (work / "o" / "runs").chmod(0o555)
    try:
        problems += one_line(nplsim([*argv, "--resume"], work, unprivileged=True),
                             says="Permission denied")  # fmt: skip
    finally:
        (work / "o" / "runs").chmod(0o755)
    return problems


@case("write errors", "a scenario under an unreadable folder")
def _unreadable_scenario(work: Path) -> list[str]:
    (work / "locked").mkdir()
    (work / "locked" / "s.toml").write_text("quarters = 1\n")
    (work / "locked").chmod(0o000)
    try:
        return one_line(nplsim(["run", str(work / "locked" / "s.toml"), "--out", "o"], work,
                               unprivileged=True), says="Permission denied")  # fmt: skip
    finally:
        (work / "locked").chmod(0o755)


# ---------------------------------------------------------------------- 7. signals, processes
def _tagged(tag: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"NPLSIM_HOSTILE_TAG={tag}".encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _signal_case(command: str, signum: int, status: int, started: int, group: bool):
    def check(work: Path) -> list[str]:
        tag = uuid.uuid4().hex
        out = work / "o"
        if command == "run":
            argv = [*smallest("run", work, quarters=400), "--set", "n_loans=20000"]
        else:
            (work / "s.toml").write_text("quarters = 40\noverrides = { n_loans = 20000 }\n"
                                         "replications = 8\n")  # fmt: skip
            argv = ["sweep", "s.toml", "--workers", "2"]
        proc = start([*argv, "--out", str(out), "--quiet"], work, env={"NPLSIM_HOSTILE_TAG": tag})
        if command == "run":  # the run is under way once it holds its lock
            wait_for(lambda: (work / ".o.lock").exists() or proc.poll() is not None)
        else:  # the command, the resource tracker, the fork server, then the workers
            wait_for(lambda: len(_tagged(tag)) >= started or proc.poll() is not None)
        (os.killpg if group else os.kill)(proc.pid, signum)
        result = Result(proc.wait(timeout=TIMEOUT_S), "", proc.stderr.read())
        if result.code == -signum and not result.err:  # before Python ran any of nplsim's code
            problems = []
        else:
            problems = one_line(result, code=status)
        if not wait_for(lambda: not _tagged(tag)):
            problems.append(f"processes left: {_tagged(tag)}")
        if command == "run" and out.exists():
            problems.append("a half-written results directory")
        return problems + no_staging(work)

    return check


for _command, _started in (("run", 1), ("sweep", 3), ("sweep", 5)):
    for _signum, _status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        for _group in (False, True):
            _who = "process group" if _group else "command"
            _when = "while it runs" if _command == "run" else f"once {_started} processes run"
            case("signals", f"{_command}: {signal.Signals(_signum).name} to the {_who} {_when}")(
                _signal_case(_command, _signum, _status, _started, _group)
            )


@case("signals", "SIGKILL of a sweep leaves no worker, fork server or resource tracker")
def _sigkill_sweep(work: Path) -> list[str]:
    tag = uuid.uuid4().hex
    (work / "s.toml").write_text(
        "quarters = 40\noverrides = { n_loans = 20000 }\nreplications = 8\n"
    )
    proc = start(["sweep", "s.toml", "--workers", "2", "--out", "o", "--quiet"], work,
                 env={"NPLSIM_HOSTILE_TAG": tag})  # fmt: skip
    wait_for(lambda: len(_tagged(tag)) >= 5 or proc.poll() is not None)
    proc.kill()
    proc.wait(timeout=TIMEOUT_S)
    return [] if wait_for(lambda: not _tagged(tag)) else [f"left running: {_tagged(tag)}"]


def _killed_worker(kills: int):
    def check(work: Path) -> list[str]:
        tag = uuid.uuid4().hex
        (work / "s.toml").write_text("quarters = 12\noverrides = { n_loans = 20000 }\n"
                                     "replications = 12\n")  # fmt: skip
        proc = start(["sweep", "s.toml", "--workers", "2", "--out", "o", "--quiet"], work,
                     env={"NPLSIM_HOSTILE_TAG": tag})  # fmt: skip
        runs = work / "o" / "runs"
        for k in range(kills):
            wait_for(lambda k=k: (runs.is_dir() and len(list(runs.glob("run_id=*"))) > k)
                     or proc.poll() is not None)  # fmt: skip
            workers = [p for p in _tagged(tag) if p != proc.pid and _forked_by_server(p)]
            if workers:
                os.kill(workers[0], signal.SIGKILL)
        result = Result(proc.wait(timeout=TIMEOUT_S), "", proc.stderr.read())
        done = len(list(runs.glob("run_id=*"))) if runs.is_dir() else 0
        return ok(result) + ([] if done == 12 else [f"{done} of 12 runs finished"])

    return check


def _forked_by_server(pid: int) -> bool:
    try:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return b"forkserver" in Path(f"/proc/{parent}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return False


case("signals", "a killed worker costs no run")(_killed_worker(1))
case("signals", "two killed workers cost no run")(_killed_worker(2))


@case("signals", "a sweep with failed runs exits 1 and says how many and where")
def _failed_runs(work: Path) -> list[str]:
    (work / "s.toml").write_text(
        "quarters = 1\noverrides = { n_loans = 2000, provision_coverage_min = 3.0 }\n"
        "[parameters.initial_npl_ratio]\nvalues = [0.05, 0.95]\n"
    )
    result = nplsim(["sweep", "s.toml", "--out", "o", "--workers", "1", "--quiet"], work)
    return one_line(result, code=1, says="1 of 2 runs failed")


# ---------------------------------------------------------------------- 8. security
class _Lab:
    """One ``nplsim viz`` server for the cases below, started on first use (by one thread)."""

    port: int | None = None
    proc: subprocess.Popen | None = None
    starting = threading.Lock()

    @classmethod
    def url_port(cls) -> int:
        with cls.starting:
            return cls._started()

    @classmethod
    def _started(cls) -> int:
        if cls.proc is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                cls.port = sock.getsockname()[1]
            cls.proc = subprocess.Popen(
                [sys.executable, "-m", "nplsim", "viz", "--port", str(cls.port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            wait_for(lambda: _status(cls.port, f"127.0.0.1:{cls.port}") == 200)
        return cls.port

    @classmethod
    def stop(cls) -> None:
        if cls.proc is not None and cls.proc.poll() is None:
            os.killpg(cls.proc.pid, signal.SIGTERM)
            cls.proc.wait(timeout=30)


def _status(port: int, host: str, origin: str | None = None) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("GET", "/", skip_host=True)
        connection.putheader("Host", host)
        if origin:
            connection.putheader("Origin", origin)
        connection.endheaders()
        return connection.getresponse().status
    except OSError:
        return None


def _viz_request(host: str, origin: str | None, expected: int):
    def check(work: Path) -> list[str]:
        port = _Lab.url_port()
        got = _status(port, host.format(port=port), origin and origin.format(port=port))
        return [] if got == expected else [f"status {got}, expected {expected}"]

    return check


for _host, _origin, _expected in [
    ("evil.example", None, 403), ("evil.example:{port}", None, 403), ("127.0.0.1:1", None, 403),
    ("127.0.0.1:{port}", "http://evil.example", 403), ("127.0.0.1:{port}", "null", 403),
    ("localhost:{port}", "http://localhost:{port}", 200), ("127.0.0.1:{port}", None, 200),
]:  # fmt: skip
    case("security", f"viz: Host {_host} Origin {_origin} -> {_expected}")(
        _viz_request(_host, _origin, _expected)
    )


def _viz_websocket(origin: str, expected: str):
    def check(work: Path) -> list[str]:
        port = _Lab.url_port()
        request = (
            "GET /jupyter/api/kernels/k/channels?session_id=s HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin.format(port=port)}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(request.encode())
            line = sock.recv(1024).split(b"\r\n", 1)[0].decode()
        return [] if f" {expected} " in line else [f"{line!r}, expected {expected}"]

    return check


case("security", "viz: websocket from a foreign origin refused")(
    _viz_websocket("http://evil.example", "403")
)
case("security", "viz: websocket from its own page accepted")(
    _viz_websocket("http://127.0.0.1:{port}", "101")
)
for _port in ("99999", "0", "-1", "http"):
    case("security", f"viz --port {_port}")(
        lambda work, p=_port: one_line(nplsim(["viz", "--port", p], work))
    )


def _escaped(argv: list[str]):
    def check(work: Path) -> list[str]:
        return one_line(nplsim([*argv, "--out", str(work / "o"), "--quiet"], work))

    return check


for _text in ["\x1b[2J\x1b[31mcar_min", "car\u202emin", "car\u2066min", "a\x07b", "a\rb",
              "\u2028x", "x\x7f", "\x9bx"]:  # fmt: skip
    case("security", f"--set key {_text!r} escaped")(_escaped(["run", "--set", f"{_text}=1"]))
    case("security", f"scenario path {_text!r} escaped")(_escaped(["run", f"{_text}.toml"]))


@case("security", "docs/sweeps.md runs no open scheduler")
def _docs_tls(work: Path) -> list[str]:
    text = (ROOT / "docs" / "sweeps.md").read_text()
    commands = re.findall(r"^dask scheduler.*$", text, re.M)
    open_ones = [c for c in commands if "--protocol tls" not in c and "127.0.0.1" not in c]
    return [f"open scheduler: {open_ones}"] if open_ones or not commands else []


# ---------------------------------------------------------------------- 9. sizes
for _name, _argv in [
    ("sweep of 3,000,000 runs", None),
    ("compare --seeds 100000", ["compare", "pilot_2005", "restart_2016", "--seeds", "100000"]),
    ("validate --seeds 50000", ["validate", "--seeds", "50000"]),
    ("sensitivity of 65536 x 12 points", None),
]:

    def _size(work: Path, argv=_argv, name=_name) -> list[str]:
        if "sweep" in name:
            (work / "s.toml").write_text(
                '[parameters.regime]\nvalues = ["pilot_2005", "restart_2016", "strengthened"]\n'
                "[parameters.disclosure_level]\nlow = 0.0\nhigh = 1.0\n"
                '[sampling]\nmethod = "lhs"\nn = 1000000\n'
            )
            argv = ["sweep", "s.toml"]
        elif argv is None:
            fields = [f for f in REGIME_FLOATS if f != "enforcement_efficiency"]
            params = "".join(f"[parameters.{f}]\nlow = 0.05\nhigh = 0.1\n" for f in fields)
            (work / "s.toml").write_text(f'n = 65536\noutcomes = ["car_final"]\n{params}')
            argv = ["sensitivity", "s.toml"]
        result = nplsim([*argv, "--out", str(work / "o"), "--quiet"], work, stdin="")
        return one_line(result, says="--yes") + (["started"] if (work / "o").exists() else [])

    case("sizes", f"{_name} asks first")(_size)


# ====================================================================== the runner
def run_case(item: Case, scratch: Path) -> tuple[Case, list[str] | None]:
    work = Path(tempfile.mkdtemp(dir=scratch))
    work.chmod(0o755)
    try:
        return item, item.check(work)
    except Skip:
        return item, None
    except Exception as exc:  # a case that cannot even be checked has broken
        return item, [f"{type(exc).__name__}: {exc}"]
    finally:
        for path in (work, *work.rglob("*")):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="cases at once (default 4)")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    args = parser.parse_args(argv)
    chosen = [c for c in CASES if args.k in c.name]
    if args.list:
        for item in chosen:
            print(f"{item.family}: {item.name}")
        print(f"{len(chosen)} cases")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="nplsim-hostile-"))
    scratch.chmod(0o755)
    started = time.perf_counter()
    tried, held, broke, skipped = Counter(), Counter(), [], Counter()
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            for item, problems in pool.map(lambda c: run_case(c, scratch), chosen):
                if problems is None:
                    skipped[item.family] += 1
                    continue
                tried[item.family] += 1
                if problems:
                    broke.append((item, problems))
                    print(f"BROKE  {item.family}: {item.name}: {problems[0]}", flush=True)
                else:
                    held[item.family] += 1
    finally:
        _Lab.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{'family':<18} {'tried':>6} {'held':>6} {'broke':>6}")
    for family in dict.fromkeys(c.family for c in chosen):
        broken = sum(1 for item, _ in broke if item.family == family)
        print(f"{family:<18} {tried[family]:>6} {held[family]:>6} {broken:>6}")
    total_tried, total_held = sum(tried.values()), sum(held.values())
    print(f"{'all':<18} {total_tried:>6} {total_held:>6} {len(broke):>6}")
    if skipped:
        print(f"skipped (cannot run here): {sum(skipped.values())}")
    print(f"tried {total_tried}, held {total_held}, broke {len(broke)} "
          f"({time.perf_counter() - started:.0f} s, {args.jobs} at once)")  # fmt: skip
    return 0 if not broke else 1


if __name__ == "__main__":
    sys.exit(main())
