"""Fuzzed input (issue 9, item 3): malformed and extreme scenario files, sweep and sensitivity
specs, ``--set`` pairs and whole command lines, run through ``nplsim.experiments.cli.main``.

The property, for every generated case: the exit status is 0 or 2 (argparse's own usage errors
count as 2). On 2, stderr is exactly one line and holds no traceback, and nothing is left in the
case's working directory: no results directory and no hidden staging sibling (``.out.*``,
``.tmp-*``). On 0, the results directory is complete. Valid cases are kept cheap by forcing
``--quarters`` 1-3 and ``n_loans`` <= 3000 (the forcing flags come last, so they win).

Commands whose valid form would start minutes of work (compare, sensitivity, validate, a sweep
from the command-line fuzzer, viz) run in-process with the function that would start that work
replaced by one raising ``_StartedError``: the case then counts as "accepted", and everything
before it (parsing, validation, output checks) has been exercised. Sweep-spec cases run for real
on an in-process executor. A few cases run as ``python -m nplsim.experiments.cli`` subprocesses. In
five of six in-process runs the figures are a placeholder PNG (matplotlib is ~90% of a tiny
run's time; the figures have their own tests).

Since issue 14 the fuzzing also covers, in sections 5-7: nested structures in every file input
and in ``--set`` (up to 3,000 levels); ``--out`` as symbolic links (dangling, loops, to folders),
files, the working directory, earlier results and users' folders, with the property that no file
a user put there changes and no staging is left; and real processes bound by permission bits
(``setpriv`` for root), concurrent writers to one directory (exactly one wins), and signals
(SIGINT, SIGTERM, SIGKILL at random moments: one line and exit 130/143, nothing half-written).

Bugs this fuzzing found are pinned at the end of the file by regression tests; an open one would
be pinned there by a strict ``xfail`` test (a fix shows as XPASS: remove the marker). None is open.

Case counts: each fuzz test prints its count and outcomes to the terminal (also without ``-s``),
and ``test_zz_fuzz_case_counts`` prints the session's totals.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal, get_args, get_origin
from unittest import mock

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import nplsim.experiments.compare
import nplsim.experiments.figures
import nplsim.experiments.sensitivity
import nplsim.experiments.store
import nplsim.experiments.sweep
import nplsim.experiments.validate
from nplsim.experiments.cli import main
from nplsim.market.errors import ConfigError
from nplsim.market.loans import SEGMENTS
from nplsim.market.regime import LegalRegime, list_presets
from nplsim.market.scenario import (
    AMCSpec,
    BankSpec,
    EnhancerSpec,
    InvestorSpec,
    ScenarioConfig,
    list_scenarios,
)

ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
COUNTS: dict[str, Counter] = {}
RUN_FILES = {
    "manifest.json", "model.parquet", "banks.parquet", "amcs.parquet", "deals.parquet",
    "trades.parquet", "events.parquet", "summary.json", "figures",
}  # fmt: skip
GARBAGE = b"\xff\xfe\x00\x80garbage\xc3\x28 = [\n"


# ====================================================================== TOML writing
def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def toml_value(value: Any) -> str:
    """One TOML value on one line (inline tables and arrays nest)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_document(doc: dict[str, Any], dotted: bool = False) -> str:
    """A document of ``key = value`` lines; with ``dotted``, top-level tables become dotted keys
    (``macro.z_initial = 1.0``), exercising TOML's own nesting."""
    lines = []
    for key, value in doc.items():
        if dotted and isinstance(value, dict) and value:
            for sub, inner in value.items():
                lines.append(f"{_toml_key(key)}.{_toml_key(sub)} = {toml_value(inner)}")
        else:
            lines.append(f"{_toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


# ====================================================================== value strategies
def _weighted(*pairs: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    return st.sampled_from([s for weight, s in pairs for _ in range(weight)]).flatmap(lambda s: s)


def text(**size: int) -> st.SearchStrategy[str]:
    """Any unicode text, newlines and control characters included (not surrogates)."""
    return st.text(**size)


SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e308, -1e308, float("nan"), float("inf")]),
    text(max_size=12),
    st.sampled_from(["", "ü", "🦜", "null", "None", "true", "1", "nan", "restart_2016"]),
)
GENERIC = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _bounds(info) -> tuple[Any, Any, bool, bool]:
    lo = hi = None
    lo_strict = hi_strict = False
    for item in info.metadata:
        if getattr(item, "ge", None) is not None:
            lo = item.ge
        if getattr(item, "gt", None) is not None:
            lo, lo_strict = item.gt, True
        if getattr(item, "le", None) is not None:
            hi = item.le
        if getattr(item, "lt", None) is not None:
            hi, hi_strict = item.lt, True
    return lo, hi, lo_strict, hi_strict


def field_values(info) -> st.SearchStrategy:
    """Values for one pydantic field: mostly valid (inside the range, at its bounds), some just
    outside, some of the wrong type or not finite.

    Every numeric field has an upper bound (``test_every_numeric_field_has_a_finite_range``), so
    the largest valid value is tried too; the fallback for a field without one is 1e4 (an
    integer: 1000 above the lower bound)."""
    ann = info.annotation
    if ann is bool:
        return _weighted((6, st.booleans()), (1, st.sampled_from([0, 1, "true", "yes"])))
    if get_origin(ann) is Literal:
        choices = list(get_args(ann))
        return _weighted((6, st.sampled_from(choices)), (1, text(max_size=8)), (1, SCALARS))
    if get_origin(ann) is tuple:
        kinds = list(get_args(get_args(ann)[0]))
        return _weighted(
            (5, st.lists(st.sampled_from(kinds), min_size=1, max_size=4)),
            (1, st.lists(st.sampled_from([*kinds, "nobody", ""]), max_size=3)),
            (1, SCALARS),
        )
    if ann in (int, float) or ann == (float | None):
        integer = ann is int
        lo, hi, lo_strict, hi_strict = _bounds(info)
        lo = 0 if lo is None else lo
        top = hi if hi is not None else (lo + 1000 if integer else 1e4)
        if integer:
            inside = st.integers(lo + lo_strict, top - hi_strict)
            edges = [lo + lo_strict, top - hi_strict]
            outside = [lo - 1 + lo_strict, -(2**63)] + ([hi + 1 - hi_strict, 2**64] if hi else [])
            odd = [float(lo) + 0.5, str(lo), float("nan")]
        else:
            inside = st.floats(lo, top, exclude_min=lo_strict, exclude_max=hi_strict)
            edges = [
                v for v in (lo, top) if not ((v == lo and lo_strict) or (v == top and hi_strict))
            ]
            outside = [math.nextafter(lo, -math.inf), -math.inf, math.inf, float("nan")]
            if hi is not None:
                outside += [math.nextafter(hi, math.inf), 1e308]
            odd = ["0.5", True, [lo], {"v": lo}]
        return _weighted(
            (6, inside),
            (3, st.sampled_from(edges or [lo])),
            (2, st.sampled_from(outside)),
            (1, st.sampled_from(odd)),
        )
    if ann is str:
        return _weighted((3, text(min_size=1, max_size=12)), (1, st.just("")), (1, SCALARS))
    return GENERIC


def _scalar_fields(model) -> dict[str, Any]:
    return {
        name: info
        for name, info in model.model_fields.items()
        if info.annotation in (int, float, bool, str)
        or get_origin(info.annotation) in (Literal, tuple)
        or info.annotation == (float | None)
    }


NAMES = text(min_size=1, max_size=8)
REGIME_FIELDS = _scalar_fields(LegalRegime)
SCENARIO_FIELDS = {
    k: v for k, v in _scalar_fields(ScenarioConfig).items() if k not in ("name", "description")
}
NESTED_FIELDS = {
    block: _scalar_fields(ScenarioConfig.model_fields[block].annotation)
    for block in ("securitisation", "secondary", "macro")
}


def spec_dict(model):
    """A list entry (bank, AMC, investor, enhancer): every field, some of them mutated."""
    fields = _scalar_fields(model)
    required = {k: (NAMES if k == "name" else field_values(v)) for k, v in fields.items()}
    return st.fixed_dictionaries(
        {k: s for k, s in required.items() if model.model_fields[k].is_required()},
        optional={k: s for k, s in required.items() if not model.model_fields[k].is_required()},
    )


def _nested(block: str) -> st.SearchStrategy:
    fields = NESTED_FIELDS[block]
    entries = st.sampled_from(sorted(fields)).flatmap(
        lambda k: st.tuples(st.just(k), field_values(fields[k]))
    )
    return st.lists(entries, max_size=3).map(dict)


def regime_overrides() -> st.SearchStrategy:
    entry = st.sampled_from(sorted(REGIME_FIELDS)).flatmap(
        lambda k: st.tuples(st.just(k), field_values(REGIME_FIELDS[k]))
    )
    return st.lists(entry, max_size=3).map(dict) | st.just({"no_such_field": 1})


PRESET_NAMES = st.sampled_from(
    [*list_presets(), "nope", "", "x.toml", "garbage.toml", "../garbage.toml"]
)
SHOCKS = st.lists(
    st.fixed_dictionaries(
        {"quarter": st.sampled_from([0, 1, 2, -1, 10**6]), "z": st.sampled_from([-6, 6, -6.5, 0.5])}
    ),
    max_size=3,
)
EVENTS = st.lists(
    st.fixed_dictionaries(
        {"quarter": st.sampled_from([0, 1, 2, -1, 10**9])},
        optional={
            "regime": PRESET_NAMES,
            "overrides": regime_overrides(),
            "label": text(max_size=8),
        },
    ),
    max_size=2,
)
LIST_BLOCKS = {
    "banks": st.lists(spec_dict(BankSpec), max_size=3),
    "amcs": st.lists(spec_dict(AMCSpec), max_size=3),
    "investors": st.lists(spec_dict(InvestorSpec), max_size=3),
    "enhancers": st.lists(spec_dict(EnhancerSpec), max_size=2),
}
SPECIAL_ENTRIES = st.one_of(
    st.tuples(st.just("regime"), PRESET_NAMES),
    st.tuples(st.just("regime_overrides"), regime_overrides()),
    st.tuples(st.just("events"), EVENTS),
    st.tuples(st.just("macro"), _nested("macro") | st.just({"shocks": []})),
    st.tuples(st.just("macro"), SHOCKS.map(lambda s: {"shocks": s})),
    st.tuples(st.just("securitisation"), _nested("securitisation")),
    st.tuples(st.just("secondary"), _nested("secondary")),
    st.tuples(
        st.just("commercial_mix"),
        st.dictionaries(
            st.sampled_from([*SEGMENTS, "gold"]), st.sampled_from([0.5, 1.0, 0.0]), max_size=3
        ),
    ),
    st.tuples(st.just("segments"), st.just({"private": {"pd_annual": 0.02}})),
    st.tuples(
        st.just("power"),
        st.sampled_from(
            [
                {},
                {"n_plants": 3},
                {"n_plants": 0},
                {"centre": False},
                {"coal": {"shocks": [{"quarter": 1, "log_jump": 3}]}},
            ]
        ),
    ),
    st.sampled_from(sorted(LIST_BLOCKS)).flatmap(lambda k: st.tuples(st.just(k), LIST_BLOCKS[k])),
)
FIELD_ENTRIES = st.sampled_from(sorted(SCENARIO_FIELDS)).flatmap(
    lambda k: st.tuples(st.just(k), field_values(SCENARIO_FIELDS[k]))
)
UNKNOWN_ENTRIES = st.tuples(
    text(max_size=10) | st.sampled_from(["quartres", "Quarters", "macro.z", "ü", ""]), GENERIC
)
SCENARIO_DOCS = _weighted(
    (4, st.lists(FIELD_ENTRIES, max_size=4)),
    (4, st.lists(SPECIAL_ENTRIES, min_size=1, max_size=2)),
    (2, st.lists(st.one_of(FIELD_ENTRIES, SPECIAL_ENTRIES, UNKNOWN_ENTRIES), max_size=5)),
).map(dict)


@st.composite
def scenario_file(draw) -> bytes:
    """The bytes of a scenario file: structured (possibly mutated), garbage, text or empty."""
    kind = draw(
        _weighted(
            (8, st.just("doc")), (1, st.just("bytes")), (1, st.just("text")), (1, st.just("empty"))
        )
    )
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8")
    if kind == "empty":
        return b""
    text = toml_document(draw(SCENARIO_DOCS), dotted=draw(st.booleans()))
    mutation = draw(
        _weighted((6, st.just("none")), (1, st.sampled_from(["cut", "dup", "junk", "bom"])))
    )
    if mutation == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif mutation == "dup":
        text = text + text
    elif mutation == "junk":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(min_size=1, max_size=5)) + text[at:]
    elif mutation == "bom":
        text = "\ufeff" + text
    return text.encode("utf-8")


# ====================================================================== running a case
class _StartedError(Exception):
    """Raised in place of starting a long computation: the case was accepted."""


class InlineExecutor(Executor):
    """Runs each task at submit, in this process (sweep cases without a process pool)."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller like a pool would
            future.set_exception(exc)
        return future


def _start_nothing(*args, **kwargs):
    raise _StartedError


@contextlib.contextmanager
def stubbed(sweep_inline: bool = False) -> Iterator[None]:
    """Replace the start of long work (pools, validation runs, the viz server) by raising
    ``_StartedError``."""
    executor = (lambda *a, **k: InlineExecutor()) if sweep_inline else _start_nothing
    with contextlib.ExitStack() as stack:
        for target, name, new in (
            (nplsim.experiments.compare, "run_many", _start_nothing),
            (nplsim.experiments.sensitivity, "run_many", _start_nothing),
            (nplsim.experiments.validate, "collect_values", _start_nothing),
            (nplsim.experiments.sweep, "_executor", executor),
            (os, "execv", _start_nothing),
        ):
            stack.enter_context(mock.patch.object(target, name, new))
        yield


@contextlib.contextmanager
def figures(real: bool) -> Iterator[None]:
    """Real figures, or (for speed: matplotlib is ~90% of a tiny run) a placeholder PNG."""
    if real:
        yield
        return
    placeholder = lambda *args, **kw: Path(args[3]).write_bytes(b"\x89PNG placeholder")  # noqa: E731
    with (
        mock.patch.object(nplsim.experiments.figures, "dashboard", placeholder),
        mock.patch.object(nplsim.experiments.figures, "power_figures", lambda *a, **kw: None),
    ):
        yield


REAL_FIGURES = _weighted((5, st.just(False)), (1, st.just(True)))


def call(argv: list[str], cwd: Path) -> tuple[int | str, str, str]:
    """Run the CLI in-process in ``cwd``; the exit status (or ``"started"``), stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: int | str = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except _StartedError:
            code = "started"
    return code, out.getvalue(), err.getvalue()


def leftovers(workdir: Path, inputs: set[str]) -> list[str]:
    """Everything in ``workdir`` that is not one of the case's inputs."""
    return sorted(
        str(p.relative_to(workdir))
        for p in workdir.rglob("*")
        if p.relative_to(workdir).parts[0] not in inputs
    )


def check_outcome(argv, code, err, workdir: Path, inputs: set[str]) -> str:
    """Assert the property; return the outcome's name for the counts."""
    assert code in (0, 2, "started"), f"exit {code} for {argv}\n{err[-3000:]}"
    if code == 2:
        assert "Traceback" not in err, f"{argv}\n{err}"
        assert err.count("\n") == 1 and err.endswith("\n"), (
            f"stderr not one line for {argv}: {err!r}"
        )
        assert leftovers(workdir, inputs) == [], f"{argv} left {leftovers(workdir, inputs)}"
        return "exit 2 (usage)" if "(see 'nplsim" in err or "usage:" in err else "exit 2"
    if code == "started":
        assert leftovers(workdir, inputs) == [], f"{argv} left {leftovers(workdir, inputs)}"
        return "accepted (work stubbed)"
    return "exit 0"


def check_run_directory(out: Path, quarters: int | None = None) -> None:
    """A complete results directory of ``nplsim run`` (of ``quarters``, if given), and no staging
    sibling beside it."""
    assert out.is_dir(), out
    names = {p.name for p in out.iterdir()}
    assert names >= RUN_FILES, names
    assert (out / "figures" / "dashboard.png").stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    quarters = manifest["quarters"] if quarters is None else quarters
    assert manifest["quarters"] == quarters
    assert len(pd.read_parquet(out / "model.parquet")) == quarters + 1
    staging = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert staging == [], staging


def record(name: str, outcomes: Counter, capsys) -> None:
    """Keep and print a fuzz test's outcomes; a fuzz test that tried no case fails."""
    assert sum(outcomes.values()) > 0, f"{name}: no case ran"
    COUNTS[name] = outcomes
    with capsys.disabled():
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
        print(f"\n[fuzz] {name}: {sum(outcomes.values())} cases ({detail})")


def new_workdir(base: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=base))


# ====================================================================== 1. scenario files
@pytest.mark.slow
def test_fuzz_scenario_files(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("scenario-files")
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=150)
    @given(
        content=scenario_file(),
        quarters=st.integers(1, 3),
        n_loans=st.integers(100, 3000),
        real=REAL_FIGURES,
        quiet=st.booleans(),
    )
    def case(content, quarters, n_loans, real, quiet):
        workdir = new_workdir(base)
        (workdir / "in").mkdir()
        path = workdir / "in" / "scenario.toml"
        path.write_bytes(content)
        (workdir / "in" / "garbage.toml").write_bytes(GARBAGE)
        out = workdir / "res" / "out"
        argv = ["run", str(path), "--out", str(out), "--quarters", str(quarters),
                "--set", f"n_loans={n_loans}", *(["--quiet"] if quiet else [])]  # fmt: skip
        with figures(real):
            code, _, err = call(argv, workdir / "in")
        outcome = check_outcome(argv, code, err, workdir, {"in"})
        if code == 0:
            check_run_directory(out, quarters)
        outcomes[outcome] += 1

    case()
    record("scenario files (nplsim run FILE)", outcomes, capsys)
    assert outcomes["exit 0"] > 0 and outcomes["exit 2"] > 0


# ====================================================================== 2. --set pairs
ALL_KEYS = sorted(
    [*SCENARIO_FIELDS, *REGIME_FIELDS, "banks", "amcs", "investors", "enhancers", "events",
     "regime_overrides", "commercial_mix", "segments", "power", "macro", "securitisation"]
    + [f"{block}.{name}" for block, fields in NESTED_FIELDS.items() for name in fields]
    + [f"{block}__{name}" for block, fields in NESTED_FIELDS.items() for name in list(fields)[:3]]
    + ["power.n_plants", "power.coal.persistence_q", "macro.shocks", "regime_overrides.car_min"]
)  # fmt: skip
JUNK_KEYS = st.sampled_from(
    ["", " ", ".", "..", "a.b.c", "macro.", ".macro", "macro..z_initial", "__", "ü", "x=y", "=",
     "no_such_key", "quarters.x", "banks.0", "name.x", "macro.shocks.0"]
) | text(max_size=10)  # fmt: skip


@st.composite
def set_pair(draw) -> str:
    key = draw(_weighted((6, st.sampled_from(ALL_KEYS)), (2, JUNK_KEYS)))
    name = key.replace("__", ".").split(".")[-1]
    info = (
        REGIME_FIELDS.get(key)
        or SCENARIO_FIELDS.get(key)
        or next((f[name] for f in NESTED_FIELDS.values() if name in f), None)
    )
    value = draw(field_values(info)) if info is not None else draw(GENERIC)
    if key in ("n_loans", "quarters") and isinstance(value, int) and value > 3000:
        value = 3000  # forced small below anyway; keeps an over-large value from mattering
    raw = draw(
        _weighted(
            (6, st.just(toml_value(value))),
            (1, text(max_size=10)),
            (1, st.sampled_from(["", "=", "[", "{", "'x", "1e", "0x", "inf", "-nan", "1_000"])),
        )
    )
    sep = draw(_weighted((8, st.just("=")), (1, st.sampled_from(["", " = ", "=="]))))
    return f"{key}{sep}{raw}"


@pytest.mark.slow
def test_fuzz_set_pairs(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("set-pairs")
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=120)
    @given(
        scenario=st.sampled_from(list_scenarios()),
        pairs=st.lists(set_pair(), min_size=1, max_size=3),
        quarters=st.integers(1, 3),
        n_loans=st.integers(200, 3000),
        real=REAL_FIGURES,
        quiet=st.booleans(),
    )
    def case(scenario, pairs, quarters, n_loans, real, quiet):
        pairs = [*pairs, f"n_loans={n_loans}"]
        workdir = new_workdir(base)
        out = workdir / "res" / "out"
        argv = ["run", scenario, "--out", str(out), "--quarters", str(quarters)]
        argv += ["--quiet"] if quiet else []
        for pair in pairs:
            argv += ["--set", pair]
        with figures(real):
            code, _, err = call(argv, workdir)
        outcome = check_outcome(argv, code, err, workdir, set())
        if code == 0:
            check_run_directory(out, quarters)
        outcomes[outcome] += 1

    case()
    record("--set pairs (nplsim run NAME --set K=V ...)", outcomes, capsys)
    assert outcomes["exit 0"] > 0 and outcomes["exit 2"] > 0


# ====================================================================== 3. command lines
SUBCOMMANDS = ["run", "regimes", "sweep", "compare", "sensitivity", "validate", "viz"]
# Metric lists and windows of ``compare``: known names, unknown ones, and malformed lists.
METRIC_LISTS = st.sampled_from(
    ["abs_issued_sum", "car_mean,npl_ratio_final", "nope", "", ",", "abs_issued_sum,nope",
     "car_mean,car_mean"]
)  # fmt: skip
WINDOWS = st.sampled_from(["post", "all", "1:4", "4:1", "0:2", "x", "1:", ":", "", "-1:3"])
FLAGS = [
    "--seed",
    "--quarters",
    "--out",
    "--set",
    "--quiet",
    "--workers",
    "--resume",
    "--scheduler",
    "--seeds",
    "--seed-start",
    "--set-a",
    "--set-b",
    "--reform-at",
    "--reform-to",
    "--loans",
    "--facts",
    "--port",
    "--help",
    "-h",
    "--",
    "-x",
    "--nope",
    "--quarters=2",
    "--seed=abc",
    "--from-manifest",
    "--metrics",
    "--window",
    "--posterior",
    "--draws",
]


def _value_tokens(workdir: Path, extra_files: list[str]) -> st.SearchStrategy:
    files = [
        *extra_files,
        str(workdir / "garbage.toml"),
        str(workdir / "empty.toml"),
        str(workdir / "missing.toml"),
        str(workdir / "afile"),
        str(ROOT / "experiments/specs/sweep_example.toml"),
        str(ROOT / "experiments/specs/sensitivity_example.toml"),
        str(ROOT / "experiments/facts.toml"),
        str(ROOT / "market/regimes/pilot_2005.toml"),
        str(ROOT / "market/scenarios/pilot_2005.toml"),
    ]
    return st.one_of(
        st.sampled_from([*list_scenarios(), *list_presets(), "list", "show", "diff", "nope"]),
        st.sampled_from(files),
        st.sampled_from(["0", "1", "2", "-1", "3", "400", "401", "99999999999999999999", "1.5",
                         "abc", "", "nan", "tcp://127.0.0.1:1", "n_loans=500", "car_min=2",
                         "quarters.x=1", "out", "res/out", ".", "/", "/dev/null"]),
        text(max_size=8),
    )  # fmt: skip


INTS = st.sampled_from(["0", "1", "2", "3", "-1", "400", "401", "99999999999999999999", "1.5", "x"])


def _grammar(workdir: Path, extra_files: list[str]) -> dict[str, Any]:
    """Per subcommand: its positional arguments and its flags with the kind of value each takes
    (so that most generated command lines get past argparse to the checks behind it)."""
    files = st.sampled_from(
        [*extra_files, str(workdir / "garbage.toml"), str(workdir / "empty.toml"),
         str(workdir / "missing.toml"), str(workdir / "afile")]
    )  # fmt: skip
    path = st.sampled_from(["res/out", "out", ".", "/", "/dev/null", "afile", "", "res/ü"]) | text(
        max_size=6
    )
    names = st.sampled_from([*list_scenarios(), "nope", ""]) | files
    presets = st.sampled_from([*list_presets(), "nope"]) | files
    spec = st.sampled_from(
        [str(ROOT / "experiments/specs/sweep_example.toml"),
         str(ROOT / "experiments/specs/sensitivity_example.toml")]
    ) | files  # fmt: skip
    pair = set_pair()
    return {
        "run": (st.lists(names, max_size=1), {
            "--seed": INTS, "--quarters": INTS, "--out": path, "--set": pair, "--quiet": None,
            "--from-manifest": files}),
        "regimes": (st.tuples(st.sampled_from(["list", "show", "diff", "x"]))
                    .flatmap(lambda a: st.lists(presets, max_size=3).map(lambda n: [*a, *n])), {}),
        "sweep": (st.tuples(spec, path).map(lambda sp: [sp[0], "--out", sp[1]]), {
            "--out": path, "--workers": INTS, "--resume": None, "--quiet": None,
            "--scheduler": st.sampled_from(["tcp://127.0.0.1:1", "nope", ""])}),
        "compare": (st.lists(names, min_size=1, max_size=2), {
            "--seeds": INTS, "--seed-start": INTS, "--quarters": INTS, "--set-a": pair,
            "--set-b": pair, "--reform-at": INTS, "--reform-to": presets, "--out": path,
            "--workers": INTS, "--quiet": None, "--metrics": METRIC_LISTS, "--window": WINDOWS,
            "--posterior": path, "--draws": INTS, "--overwrite": None, "--yes": None}),
        "sensitivity": (st.lists(spec, min_size=1, max_size=1), {
            "--out": path, "--workers": INTS, "--quiet": None}),
        "validate": (st.just([]), {
            "--seeds": INTS, "--loans": st.sampled_from(["500", "99", "x", "0"]),
            "--workers": INTS, "--out": path, "--facts": files | spec, "--quiet": None}),
        "viz": (st.just([]), {"--port": INTS}),
    }  # fmt: skip


@st.composite
def command_line(draw, workdir: Path, extra_files: list[str]) -> list[str]:
    """Mostly well-formed command lines of a subcommand, some mutated; some random tokens."""
    grammar = _grammar(workdir, extra_files)
    sub = draw(_weighted((9, st.sampled_from(SUBCOMMANDS)), (1, text(max_size=6))))
    if sub not in grammar or draw(_weighted((4, st.just(False)), (1, st.just(True)))):
        tokens = st.sampled_from(FLAGS) | _value_tokens(workdir, extra_files)
        return [sub, *draw(st.lists(tokens, max_size=7))]
    positional, flags = grammar[sub]
    argv = [sub, *draw(positional)]
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=5)) if flags else []:
        argv += [flag] if flags[flag] is None else [flag, draw(flags[flag])]
    mutation = draw(_weighted((5, st.just("none")), (1, st.sampled_from(["drop", "add", "help"]))))
    if mutation == "drop" and len(argv) > 1:
        del argv[draw(st.integers(1, len(argv) - 1))]
    elif mutation == "add":
        token = draw(st.sampled_from(FLAGS) | _value_tokens(workdir, extra_files))
        argv.insert(draw(st.integers(1, len(argv))), token)
    elif mutation == "help":
        argv.append("--help")
    return argv


def _manifests(base: Path) -> list[str]:
    """A tiny run's manifest.json (``run --from-manifest`` repeats it cheaply) and two broken
    ones, for the command-line fuzzer."""
    tiny = base / "tiny-run"
    argv = ["run", "pilot_2005", "--quarters", "1", "--set", "n_loans=500", "--quiet"]
    with figures(False):
        code, _, err = call([*argv, "--out", str(tiny)], base)
    assert code == 0, err
    manifest = json.loads((tiny / "manifest.json").read_text())
    manifest["regime"]["car_min"] = 9.0
    (base / "edited-manifest.json").write_text(json.dumps(manifest))
    (base / "broken-manifest.json").write_text('{"kind": "run", "seed": -1, "scenario": []}')
    return [
        str(tiny / "manifest.json"),
        *(str(base / f"{k}-manifest.json") for k in ("edited", "broken")),
    ]


@pytest.mark.slow
def test_fuzz_command_lines(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("command-lines")
    manifests = _manifests(base)
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=250)
    @given(data=st.data())
    def case(data):
        workdir = new_workdir(base)
        inputs = {"garbage.toml", "empty.toml", "afile"}
        (workdir / "garbage.toml").write_bytes(GARBAGE)
        (workdir / "empty.toml").write_bytes(b"")
        (workdir / "afile").write_text("not a directory\n")
        argv = data.draw(command_line(workdir, manifests))
        if argv[0] == "run":  # a run that starts must stay tiny
            tiny = ["--quarters", "2", "--set", "n_loans=1000"]
            argv += [] if "--from-manifest" in argv else tiny
        with stubbed(), figures(data.draw(REAL_FIGURES)):
            code, _, err = call(argv, workdir)
        outcome = check_outcome(argv, code, err, workdir, inputs)
        if code == 0 and argv[0] == "run" and "--help" not in argv and "-h" not in argv:
            written = [p.parent for p in workdir.rglob("manifest.json")]
            assert len(written) == 1, written
            check_run_directory(written[0])
        outcomes[f"{argv[0] if argv[0] in SUBCOMMANDS else 'other'}: {outcome}"] += 1

    case()
    record("command lines (nplsim ...)", outcomes, capsys)
    assert sum(outcomes.values()) > 100


# ====================================================================== 4. sweep specs
PARAM_NAMES = [
    "disclosure_level",
    "enforcement_efficiency",
    "car_min",
    "bulk_threshold",
    "regime",
    "notice_delay_q",
    "macro.z_persistence",
    "nope",
    "seed",
    "quarters",
]


@st.composite
def sweep_spec(draw) -> dict[str, Any]:
    """A sweep spec, valid or not; valid ones stay at <= 6 tiny runs."""
    spec: dict[str, Any] = {}
    optional = {
        "base": st.sampled_from(
            [
                "restart_2016",
                "pilot_2005",
                "scenario.toml",
                "garbage.toml",
                "missing.toml",
                "nope",
                "",
                ".",
            ]
        ),
        "quarters": st.sampled_from([1, 2, 0, -1, 401, 1.5, "2", 2**64]),
        "seeds": st.sampled_from([[1], [0, 1], [], [1, 1], [-1], [1.5], "1", [2**31]]),
        "replications": st.sampled_from([1, 2, 0, -3, 2.0]),
        "seed_start": st.sampled_from([0, 5, -1]),
        "outputs": st.lists(
            st.sampled_from(["model", "summary", "banks", "deals", "trades", "x"]), max_size=3
        ),
        "sampling": st.fixed_dictionaries(
            {},
            optional={
                "method": st.sampled_from(["grid", "lhs", "sobol", "x"]),
                "n": st.sampled_from([1, 2, 3, 4, 0, -1, 1.5]),
                "seed": st.sampled_from([0, 1, -1, 2**40]),
            },
        ),
        "junk": GENERIC,
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), max_size=6, unique=True)):
        spec["extra_key" if key == "junk" else key] = draw(optional[key])
    overrides = draw(
        _weighted(
            (5, st.just({})),
            (2, regime_overrides()),
            (1, st.sampled_from([{"n_loans": 50}, {"quarters.x": 1}, [1], "x", {"nope": 1}])),
        )
    )
    if isinstance(overrides, dict) and "quarters.x" not in overrides:
        overrides = {**overrides, "n_loans": overrides.get("n_loans", 1000)}
    spec["overrides"] = overrides
    params = {}
    for name in draw(st.lists(st.sampled_from(PARAM_NAMES), max_size=2, unique=True)):
        info = REGIME_FIELDS.get(name)
        values = st.lists(field_values(info) if info else GENERIC, min_size=0, max_size=3)
        if name == "regime":
            values = st.lists(PRESET_NAMES, max_size=3)
        params[name] = draw(
            st.one_of(
                values.map(lambda v: {"values": v}),
                st.fixed_dictionaries(
                    {
                        "low": st.sampled_from([0, 0.1, 1, -1, float("nan")]),
                        "high": st.sampled_from([0.5, 1, 2, 0.0, float("inf")]),
                    }  # fmt: skip
                ),
                GENERIC,
            )
        )
    if params or draw(st.booleans()):
        spec["parameters"] = params
    return spec


def _sweep_runs_bounded(spec: dict[str, Any]) -> bool:
    """Whether a spec, if valid, stays small (<= 6 runs): keeps the fuzz fast, not a bug."""
    seeds = spec.get("seeds") if isinstance(spec.get("seeds"), list) else [0]
    reps = spec.get("replications") if isinstance(spec.get("replications"), int) else 1
    points = 1
    for p in (
        (spec.get("parameters") or {}).values() if isinstance(spec.get("parameters"), dict) else []
    ):
        if isinstance(p, dict) and isinstance(p.get("values"), list):
            points *= max(len(p["values"]), 1)
    sampling = spec.get("sampling") if isinstance(spec.get("sampling"), dict) else {}
    n = sampling.get("n", 1) if isinstance(sampling.get("n", 1), int) else 1
    return points * max(n, 1) * max(len(seeds), 1) * max(reps, 1) <= 6


@pytest.mark.slow
def test_fuzz_sweep_specs(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("sweep-specs")
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=100)
    @given(
        spec=sweep_spec(),
        garbage=_weighted((9, st.just(False)), (1, st.just(True))),
        quiet=st.booleans(),
    )
    def case(spec, garbage, quiet):
        assume(_sweep_runs_bounded(spec))
        workdir = new_workdir(base)
        (workdir / "in").mkdir()
        (workdir / "in" / "garbage.toml").write_bytes(GARBAGE)
        (workdir / "in" / "scenario.toml").write_text('regime = "pilot_2005"\nquarters = 2\n')
        path = workdir / "in" / "spec.toml"
        path.write_bytes(GARBAGE if garbage else toml_document(spec).encode())
        out = workdir / "res" / "out"
        argv = ["sweep", str(path), "--out", str(out), *(["--quiet"] if quiet else [])]
        with stubbed(sweep_inline=True):
            code, _, err = call(argv, workdir / "in")
        if code == 0 and not quiet:  # the progress bar goes to stderr; nothing more to check
            err = ""
        outcome = check_outcome(argv, code, err, workdir, {"in"})
        if code == 0:
            manifest = json.loads((out / "sweep.json").read_text())
            finished = list((out / "runs").glob("run_id=*"))
            failed = list((out / "failures").glob("*.json"))
            assert len(finished) + len(failed) == manifest["runs"]
            assert manifest["status"] == {"finished": len(finished), "failed": len(failed)}
            assert not [p for p in out.rglob(".tmp-*")]
            assert [p.name for p in out.parent.iterdir()] == ["out"]
            outcome += " (all runs finished)" if not failed else " (some runs failed)"
        outcomes[outcome] += 1

    case()
    record("sweep specs (nplsim sweep SPEC)", outcomes, capsys)
    assert outcomes["exit 2"] > 0


# ====================================================================== 5. sensitivity specs
@st.composite
def sensitivity_spec(draw) -> dict[str, Any]:
    """A valid tiny spec with up to four keys replaced by fuzzed values or removed."""
    optional = {
        "base": st.sampled_from(["pilot_2005", "nope", "garbage.toml", ""]),
        "quarters": st.sampled_from([1, 0, 401, "x"]),
        "overrides": regime_overrides() | st.sampled_from([{"quarters.x": 2}, {"n_loans": 1000}]),
        "method": st.sampled_from(["sobol", "morris", "x"]),
        "n": st.sampled_from([2, 4, 3, 1, 1 << 17, -1]),
        "num_levels": st.sampled_from([2, 4, 1, 21]),
        "seeds": st.sampled_from([[1], [], [-1], [1, 1], "x"]),
        "sample_seed": st.sampled_from([0, -1, 2**40]),
        "outcomes": st.lists(st.sampled_from(["npl_ratio_final", "car_final", "x"]), max_size=2),
        "parameters": st.dictionaries(
            st.sampled_from(
                [*list(REGIME_FIELDS)[:8], "nope", "bulk_threshold", "securitisation_allowed"]
            ),
            st.fixed_dictionaries(
                {
                    "low": st.sampled_from([0.0, 0.2, -1.0, float("nan")]),
                    "high": st.sampled_from([0.5, 1.0, 5.0, float("inf")]),
                }
            )
            | GENERIC,
            max_size=3,
        ),
    }
    spec = {
        "base": "pilot_2005", "quarters": 1, "method": "morris", "n": 2, "seeds": [1],
        "outcomes": ["car_final"], "overrides": {"n_loans": 500},
        "parameters": {"disclosure_level": {"low": 0.2, "high": 1.0}},
    }  # fmt: skip
    for key in draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True)):
        if draw(_weighted((5, st.just(True)), (1, st.just(False)))):
            spec[key] = draw(optional[key])
        else:
            spec.pop(key, None)
    return spec


def test_fuzz_sensitivity_specs(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("sensitivity-specs")
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=80)
    @given(spec=sensitivity_spec())
    def case(spec):
        workdir = new_workdir(base)
        (workdir / "in").mkdir()
        (workdir / "in" / "garbage.toml").write_bytes(GARBAGE)
        path = workdir / "in" / "spec.toml"
        path.write_text(toml_document(spec))
        argv = ["sensitivity", str(path), "--out", str(workdir / "res" / "out"), "--quiet"]
        with stubbed():
            code, _, err = call(argv, workdir / "in")
        outcomes[check_outcome(argv, code, err, workdir, {"in"})] += 1

    case()
    record("sensitivity specs (nplsim sensitivity SPEC)", outcomes, capsys)
    assert outcomes["exit 2"] > 0 and outcomes["accepted (work stubbed)"] > 0


# ====================================================================== 6. as a process
def _process_cases(tmp: Path) -> list[tuple[str, list[str], int]]:
    inputs, res = tmp / "in", tmp / "res"
    inputs.mkdir()
    (inputs / "garbage.toml").write_bytes(GARBAGE)
    (inputs / "nested.toml").write_text('[macro]\nz_initial = "deep"\n[[banks]]\nname = 1\n')
    (inputs / "spec.toml").write_text(
        'base = "restart_2016"\nquarters = 1\n[parameters.car_min]\nvalues = [9]\n'
    )
    tiny = ["--quarters", "1", "--set", "n_loans=500", "--quiet"]
    return [
        ("garbage bytes", ["run", str(inputs / "garbage.toml"), "--out", str(res / "o1")], 2),
        ("nested wrong types", ["run", str(inputs / "nested.toml"), "--out", str(res / "o2")], 2),
        ("inf override", ["run", "--set", "quarters=inf", "--out", str(res / "o3")], 2),
        ("argparse", ["run", "--seed", "x", "--out", str(res / "o4")], 2),
        ("unknown subcommand", ["frobnicate"], 2),
        ("bad sweep value", ["sweep", str(inputs / "spec.toml"), "--out", str(res / "o5")], 2),
        ("tiny valid run", ["run", "pilot_2005", *tiny, "--out", str(res / "ok")], 0),
    ]


def _processes(cases: list[tuple[str, list[str], int]], cwd: Path):
    """Start every case at once (they mostly wait on imports), then collect them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = [
        (name, expected, subprocess.Popen(
            [sys.executable, "-m", "nplsim.experiments.cli", *argv], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
        for name, argv, expected in cases
    ]  # fmt: skip
    for name, expected, proc in started:
        _, err = proc.communicate(timeout=120)
        yield name, expected, proc.returncode, err


@pytest.mark.slow
def test_process_level_exit_status_and_one_line(tmp_path, capsys):
    outcomes: Counter = Counter()
    for name, expected, code, err in _processes(_process_cases(tmp_path), tmp_path):
        assert code == expected, f"{name}: exit {code}\n{err}"
        if expected == 2:
            assert "Traceback" not in err and err.count("\n") == 1, f"{name}: {err!r}"
        outcomes[f"exit {code}"] += 1
    assert [p.name for p in (tmp_path / "res").iterdir()] == ["ok"]
    check_run_directory(tmp_path / "res" / "ok", 1)
    record("subprocess (python -m nplsim.experiments.cli)", outcomes, capsys)


# ====================================================================== 5. nested structures
@st.composite
def nested_value(draw) -> str:
    """A TOML value nested ``depth`` levels deep in arrays and inline tables, mostly near the
    nesting limit, some far beyond it (3,000 levels: was a RecursionError everywhere)."""
    depth = draw(_weighted((3, st.integers(0, 40)), (1, st.sampled_from([31, 32, 33, 3000]))))
    shapes = draw(st.lists(st.sampled_from("[{"), min_size=depth, max_size=depth))
    core = draw(st.sampled_from(["1", "0.5", '"x"', "true", "[]", "{}"]))
    for shape in reversed(shapes):
        core = f"[{core}]" if shape == "[" else f"{{k = {core}}}"
    return core


def test_fuzz_nested_structures(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("nested")
    manifest = json.loads(Path(_manifests(base)[0]).read_text())
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=80)
    @given(
        where=st.sampled_from(["--set", "scenario", "sweep", "sensitivity", "facts", "manifest"]),
        key=st.sampled_from(["regime_overrides", "events", "macro", "banks", "car_min", "x"]),
        value=nested_value(),
    )
    def case(where, key, value):
        workdir = new_workdir(base)
        out = ["--out", str(workdir / "res" / "o"), "--quiet"]
        path = workdir / "in.toml"
        if where == "--set":
            argv = ["run", "--quarters", "1", "--set", "n_loans=500", "--set", f"{key}={value}"]
        elif where == "scenario":
            path.write_text(f"quarters = 1\nn_loans = 500\n{key} = {value}\n")
            argv = ["run", str(path)]
        elif where == "sweep":
            path.write_text(f"quarters = 1\noverrides = {{ n_loans = 500, {key} = {value} }}\n")
            argv = ["sweep", str(path)]
        elif where == "sensitivity":
            path.write_text(f'n = 2\noutcomes = ["car_final"]\n{key} = {value}\n')
            argv = ["sensitivity", str(path)]
        elif where == "facts":
            path.write_text(f'[[fact]]\nid = "x"\n{key} = {value}\n')
            argv = ["validate", "--facts", str(path)]
        else:
            path = workdir / "manifest.json"
            text = json.dumps({**manifest, "scenario": "PLACEHOLDER"})
            nested = value.replace("{k = ", '{"k": ').replace("true", "true")
            path.write_text(text.replace('"PLACEHOLDER"', nested))
            argv = ["run", "--from-manifest", str(path)]
        with stubbed(sweep_inline=True), figures(False):
            code, _, err = call([*argv, *out], workdir)
        outcomes[
            f"{where}: {check_outcome(argv, code, err, workdir, {'in.toml', 'manifest.json'})}"
        ] += 1

    case()
    record("nested structures (every file input, --set)", outcomes, capsys)
    assert sum(outcomes.values()) >= 80


# ====================================================================== 6. output paths
OUT_STATES = [
    "new", "empty dir", "file", "symlink to new", "symlink to dir", "dangling symlink",
    "symlink loop", "parent through symlink", "our results", "our results + user file",
    "other kind's results", "user folder with manifest.json", "working directory", "parent of cwd",
]  # fmt: skip
OUT_COMMANDS = ["run", "compare", "sweep", "sensitivity", "validate"]


def _prepare_out(workdir: Path, state: str, command: str) -> str:
    """Make ``state`` at ``workdir/out`` (or name it); return what to pass as --out."""
    out = workdir / "out"
    if state in ("our results", "our results + user file", "other kind's results"):
        kind = (
            command if state != "other kind's results" else ("run" if command != "run" else "sweep")
        )
        argv = [*(_SMALLEST[kind](workdir)), "--out", str(out), "--quiet"]
        with stubbed(sweep_inline=True), figures(False):
            code, _, err = call(argv, workdir)
        assert code in (0, "started"), err
        if code == "started":  # the stubbed work wrote nothing: make the results by hand
            out.mkdir(exist_ok=True)
            marker = {"tool": "nplsim", "kind": kind, "files": ["result.txt"]}
            (out / ".nplsim-results.json").write_text(json.dumps(marker))
            (out / "result.txt").write_text("earlier results")
        if state == "our results + user file":
            (out / "my-notes.txt").write_bytes(USER + b"notes")
    elif state == "empty dir":
        out.mkdir()
    elif state == "file":
        out.write_bytes(USER + b"out")
    elif state == "symlink to new":
        out.symlink_to(workdir / "elsewhere")
    elif state == "symlink to dir":
        (workdir / "target").mkdir()
        (workdir / "target" / "keep.txt").write_bytes(USER + b"keep")
        out.symlink_to(workdir / "target")
    elif state == "dangling symlink":
        out.symlink_to(workdir / "nowhere")
    elif state == "symlink loop":
        out.symlink_to(out)
    elif state == "parent through symlink":
        (workdir / "real").mkdir()
        (workdir / "via").symlink_to(workdir / "real")
        return str(workdir / "via" / "out")
    elif state == "user folder with manifest.json":
        (out / "src").mkdir(parents=True)
        (out / "manifest.json").write_bytes(USER + b'{"kind": "run"}')
        (out / "thesis.tex").write_bytes(USER + b"thesis")
    elif state == "working directory":
        return "."
    elif state == "parent of cwd":
        return ".."
    return str(out)


USER = b"a user's file: "  # how the files a user put there begin
SENSITIVITY_EXAMPLE = ROOT / "experiments/specs/sensitivity_example.toml"
_SMALLEST = {
    "run": lambda w: ["run", "pilot_2005", "--quarters", "1", "--set", "n_loans=500"],
    "compare": lambda w: ["compare", "pilot_2005", "restart_2016", "--seeds", "2", "--quarters",
                          "1", "--workers", "1"],
    "sweep": lambda w: ["sweep", str(_write(w / "spec.toml", "quarters = 1\n"
                                            "overrides = { n_loans = 500 }\n"))],
    "sensitivity": lambda w: ["sensitivity", str(SENSITIVITY_EXAMPLE)],
    "validate": lambda w: ["validate", "--seeds", "1", "--loans", "500"],
}  # fmt: skip


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _user_files(workdir: Path) -> dict[str, bytes]:
    """Every file a user put there (written with :data:`USER`), with its bytes."""
    found = {}
    for path in workdir.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.read_bytes().startswith(USER):
            found[str(path.relative_to(workdir))] = path.read_bytes()
    return found


@pytest.mark.slow
def test_fuzz_output_paths(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("output-paths")
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=70)
    @given(
        state=st.sampled_from(OUT_STATES),
        command=st.sampled_from(OUT_COMMANDS),
        overwrite=st.booleans(),
    )
    def case(state, command, overwrite):
        workdir = new_workdir(base)
        out = _prepare_out(workdir, state, command)
        before = _user_files(workdir)
        argv = [*_SMALLEST[command](workdir), "--out", out, "--quiet"]
        argv += ["--overwrite"] if overwrite else []
        with stubbed(sweep_inline=True), figures(False):
            code, _, err = call(argv, workdir)
        assert code in (0, 2, "started"), f"{argv}: {err[-2000:]}"
        if code == 2:
            assert "Traceback" not in err and err.count("\n") == 1, err
        assert _user_files(workdir) == before, f"{state} {argv}: a user's file changed"
        staging = [
            str(p.relative_to(workdir)) for p in workdir.rglob("*")
            if re.search(r"\.(stage|old)-[0-9a-f]{8}$|\.partial-|\.lock$", p.name)
        ]  # fmt: skip
        assert staging == [], staging
        outcomes[f"{state}: {code}"] += 1

    case()
    record("output paths (symlinks, existing results, user folders)", outcomes, capsys)
    assert sum(outcomes.values()) >= 70


# ====================================================================== 7. processes: permissions,
# concurrent writers, signals (each case is one or more real processes)
def _nplsim(argv: list[str], cwd: Path, prefix: list[str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [*(prefix or []), sys.executable, "-m", "nplsim", *argv], cwd=cwd, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def _without_file_powers() -> list[str] | None:
    """A prefix that binds root by permission bits (setpriv), [] for others, None if neither."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"] if setpriv else None


MODES = [0o000, 0o444, 0o500, 0o555, 0o700, 0o755]
SWEEP_TINY = "quarters = 1\noverrides = { n_loans = 500 }\n"


@pytest.mark.slow
def test_fuzz_permissions(tmp_path_factory, capsys):
    prefix = _without_file_powers()
    if prefix is None:
        pytest.skip("root without setpriv: permission bits bind no one")
    base = tmp_path_factory.mktemp("permissions")
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=8)
    @given(
        scenario_dir=st.sampled_from(MODES), scenario_file=st.sampled_from(MODES),
        results=st.sampled_from(MODES), earlier=st.sampled_from([None, *MODES]),
        runs=st.sampled_from(MODES), command=st.sampled_from(["run", "sweep --resume"]),
    )  # fmt: skip
    def case(scenario_dir, scenario_file, results, earlier, runs, command):
        workdir = new_workdir(base)
        workdir.chmod(0o755)
        (workdir / "in").mkdir()
        scenario = _write(workdir / "in" / "s.toml", "quarters = 1\nn_loans = 500\n")
        (workdir / "results").mkdir()
        out = workdir / "results" / "out"
        if command == "run":
            argv = ["run", str(scenario)]
        else:
            spec = _write(
                workdir / "in" / "spec.toml", "quarters = 1\noverrides = { n_loans = 500 }\n"
            )
            argv = ["sweep", str(spec), "--workers", "1", "--resume"]
        if earlier is not None or command != "run":
            proc = _nplsim([*argv[:2], *argv[2:-1], "--out", str(out), "--quiet"], workdir)
            assert proc.wait(timeout=300) == 0, proc.stderr.read()
            if command != "run":
                (out / "runs").chmod(runs)
            else:
                out.chmod(earlier)
        scenario.chmod(scenario_file)
        (workdir / "in").chmod(scenario_dir)
        (workdir / "results").chmod(results)
        try:
            proc = _nplsim([*argv, "--out", str(out), "--quiet", "--overwrite"]
                           if command == "run" else [*argv, "--out", str(out), "--quiet"],
                           workdir, prefix)  # fmt: skip
            code = proc.wait(timeout=300)
            err = proc.stderr.read()
        finally:
            for path in (workdir / "in", workdir / "results", out, out / "runs"):
                if path.exists():
                    path.chmod(0o755)
        assert code in (0, 2), f"exit {code}: {err[-2000:]}"
        if code == 2:
            assert "Traceback" not in err and err.count("\n") == 1, err
        outcomes[f"{command}: exit {code}"] += 1

    case()
    record("permissions (processes bound by permission bits)", outcomes, capsys)


@pytest.mark.slow
def test_fuzz_concurrent_writers(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("concurrent")
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=3)
    @given(writers=st.integers(2, 3), earlier=st.booleans())
    def case(writers, earlier):
        workdir = new_workdir(base)
        out = workdir / "out"
        argv = [*_SMALLEST["run"](workdir), "--out", str(out), "--quiet", "--overwrite"]
        if earlier:
            assert _nplsim(argv, workdir).wait(timeout=300) == 0
        procs = [_nplsim(argv, workdir) for _ in range(writers)]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        codes = [code for code, _ in results]
        assert set(codes) <= {0, 2} and codes.count(0) >= 1, results
        for code, err in results:
            if code == 2:
                assert err.count("\n") == 1 and "another nplsim process" in err, err
        check_run_directory(out, 1)
        assert sorted(p.name for p in workdir.iterdir()) == ["out"]
        outcomes[f"{writers} writers: {codes.count(0)} won"] += 1

    case()
    record("concurrent writers (processes)", outcomes, capsys)


@pytest.mark.slow
def test_fuzz_signals(tmp_path_factory, capsys):
    base = tmp_path_factory.mktemp("signals")
    outcomes: Counter = Counter()

    @settings(FUZZ, max_examples=8)
    @given(
        signum=st.sampled_from([signal.SIGINT, signal.SIGTERM, signal.SIGKILL]),
        polls=st.integers(0, 60),
        command=st.sampled_from(["run", "sweep"]),
    )
    def case(signum, polls, command):
        workdir = new_workdir(base)
        out = workdir / "out"
        if command == "run":
            argv = ["run", "--quarters", "20", "--set", "n_loans=20000"]
        else:
            spec = _write(
                workdir / "spec.toml",
                "quarters = 12\noverrides = { n_loans = 20000 }\nreplications = 6\n",
            )
            argv = ["sweep", str(spec), "--workers", "2"]
        proc = _nplsim([*argv, "--out", str(out), "--quiet"], workdir)
        for _ in range(polls):
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        code = proc.wait(timeout=300)
        err = proc.stderr.read()
        assert code in (0, 1, 130, 143, -signal.SIGKILL, -signal.SIGINT, -signal.SIGTERM), (
            f"exit {code}: {err[-2000:]}"
        )
        if code in (130, 143):
            assert err.count("\n") == 1 and "Traceback" not in err, err
        if code in (-signal.SIGINT, -signal.SIGTERM, 1) and "nplsim:" not in err:
            # during Python's own start-up, before nplsim's first line: Python's default
            # (killed silently, or its traceback), and nothing written
            assert not out.exists(), err
            assert err == "" or err.rstrip().endswith("KeyboardInterrupt") or "Fatal Python" in err
        if code == 0 and command == "run":
            check_run_directory(out, 20)
        if command == "run" and code not in (0,):  # nothing half-written, or cleaned next time
            held = nplsim.experiments.store.claim(out, "run", overwrite=True)
            held.release(failed=True)
            assert not out.exists() or (out / "manifest.json").is_file()
        staging = [p.name for p in workdir.iterdir() if re.search(r"\.(stage|old)-", p.name)]
        assert staging == [], staging
        outcomes[f"{command} {signal.Signals(signum).name}: exit {code}"] += 1

    case()
    record("signals (processes)", outcomes, capsys)


# ====================================================================== found bugs
# Regressions: bugs this fuzzing found that have since been fixed; each test is the minimal case.
def _one_line_exit_2(argv: list[str], cwd: Path) -> None:
    code, _, err = call(argv, cwd)
    assert code == 2, f"exit {code}: {err[-1500:]}"
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert leftovers(cwd, {"afile", "spec.toml", "sens.toml"}) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_command_ended_leaves_its_status(tmp_path, signum):
    # was: Ctrl-C after a run had written its results, while the interpreter shut down, ended
    # the process by Python's default (status -2, a traceback) although the run was complete
    script = (
        "import os, signal, sys, time\n"
        "from nplsim.__main__ import main\n"
        "status = main(['regimes', 'list'])\n"
        f"os.kill(os.getpid(), {int(signum)})\n"
        "time.sleep(0.2)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-1500:]
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    "key", ["quarters.x", "banks.0", "name.x", "macro.shocks.0", "quarters__x"]
)
def test_set_into_a_scalar_or_list_is_one_line_exit_2(tmp_path, key):
    # was: TypeError in market/scenario.py _set_dotted (node[last] = value on a non-table)
    _one_line_exit_2(
        ["run", "--set", f"{key}=1", "--out", str(tmp_path / "o"), "--quiet"], tmp_path
    )


def test_sweep_override_into_a_scalar_is_one_line_exit_2(tmp_path):
    # was: the same TypeError through experiments/sweep.py _check_runs -> load_scenario
    spec = tmp_path / "spec.toml"
    spec.write_text('quarters = 1\noverrides = { n_loans = 1000, "quarters.x" = 1 }\n')
    _one_line_exit_2(["sweep", str(spec), "--out", str(tmp_path / "o"), "--quiet"], tmp_path)


@pytest.mark.parametrize("command", ["run", "compare"])
def test_negative_seed_is_one_line_exit_2(tmp_path, command):
    # was: numpy's "ValueError: expected non-negative integer" from mesa.Model(rng=-1)
    small = ["--quarters", "1", "--quiet", "--out", str(tmp_path / "o")]
    argv = {
        "run": ["run", "--seed", "-1", "--set", "n_loans=500", *small],
        "compare": ["compare", "pilot_2005", "restart_2016", "--seeds", "2", "--seed-start", "-1",
                    "--workers", "1", "--set-a", "n_loans=500", "--set-b", "n_loans=500", *small],
    }[command]  # fmt: skip
    _one_line_exit_2(argv, tmp_path)


def _out_argv(tmp_path: Path, command: str, out: str) -> list[str]:
    (tmp_path / "afile").write_text("x\n")
    (tmp_path / "spec.toml").write_text("quarters = 1\noverrides = { n_loans = 500 }\n")
    (tmp_path / "sens.toml").write_text(
        'base = "pilot_2005"\nquarters = 1\nmethod = "morris"\nn = 2\noutcomes = ["car_final"]\n'
        "[overrides]\nn_loans = 500\n[parameters.disclosure_level]\nlow = 0.2\nhigh = 1.0\n"
    )
    flags = ["--out", out, "--quiet"]
    return {
        "run": ["run", "--quarters", "1", "--set", "n_loans=500", *flags],
        "sweep": ["sweep", str(tmp_path / "spec.toml"), "--workers", "1", *flags],
        "compare": ["compare", "pilot_2005", "restart_2016", "--seeds", "2", "--quarters", "1",
                    "--workers", "1", "--set-a", "n_loans=500", "--set-b", "n_loans=500", *flags],
        "validate": ["validate", "--seeds", "1", "--loans", "500", "--workers", "1", *flags],
        "sensitivity": ["sensitivity", str(tmp_path / "sens.toml"), "--workers", "1", *flags],
    }[command]  # fmt: skip


@pytest.mark.parametrize("command", ["run", "sweep", "compare", "validate", "sensitivity"])
def test_out_below_a_file_is_one_line_exit_2(tmp_path, command):
    # was: FileExistsError from the final mkdir (for run, after the whole simulation)
    _one_line_exit_2(_out_argv(tmp_path, command, str(tmp_path / "afile" / "x")), tmp_path)


@pytest.mark.parametrize("length", [245, 300])
@pytest.mark.parametrize("command", ["run", "sweep", "compare", "validate", "sensitivity"])
def test_out_with_a_name_too_long_for_the_file_system_is_one_line_exit_2(tmp_path, command, length):
    # was: OSError "File name too long" (245: for run, from the staging directory after the
    # whole simulation; 300: at the first look at the path)
    _one_line_exit_2(_out_argv(tmp_path, command, str(tmp_path / ("z" * length))), tmp_path)


def test_sweep_range_with_an_infinite_end_names_the_parameter(tmp_path):
    # was: "sampling.n: two samples are identical ({'disclosure_level': inf})"
    spec = tmp_path / "spec.toml"
    spec.write_text(
        "quarters = 1\noverrides = { n_loans = 500 }\n[parameters.disclosure_level]\n"
        'low = 0.0\nhigh = inf\n[sampling]\nmethod = "lhs"\nn = 4\n'
    )
    code, _, err = call(["sweep", str(spec), "--out", str(tmp_path / "o"), "--quiet"], tmp_path)
    assert code == 2 and err.count("\n") == 1 and "high" in err and "finite" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("problem", ["non-empty --out", "opening balance sheet"])
def test_error_after_the_progress_bar_started_is_still_one_line(tmp_path, problem):
    # was: without --quiet the tqdm bar's line came before the error line
    argv = ["run", "--quarters", "1", "--set", "n_loans=500", "--out", str(tmp_path / "o")]
    if problem == "non-empty --out":
        (tmp_path / "o").mkdir()
        (tmp_path / "o" / "mine.txt").write_text("keep me\n")
    else:  # restart_2016's provisions on a 95% NPL book exceed the funding: ConfigError at init
        argv += ["--set", "initial_npl_ratio=0.95", "--set", "gov_directed_share=1"]
    code, _, err = call(argv, tmp_path)
    assert code == 2
    assert err.count("\n") == 1, err


def test_config_error_survives_a_process_pool(tmp_path):
    # was: ConfigError pickled as ConfigError(message) and broke the pool (BrokenProcessPool)
    error = pickle.loads(pickle.dumps(ConfigError("file.toml", "key", "problem", "allowed")))
    assert str(error) == "file.toml: key: problem (allowed: allowed)"
    argv = ["compare", "restart_2016", "pilot_2005", "--seeds", "2", "--quarters", "1",
            "--set-a", "n_loans=1000", "--set-a", "initial_npl_ratio=0.95",
            "--set-a", "gov_directed_share=1", "--set-b", "n_loans=1000", "--workers", "2",
            "--quiet", "--out", str(tmp_path / "o")]  # fmt: skip
    _one_line_exit_2(argv, tmp_path)


def test_power_abs_whose_fixed_costs_exceed_the_issue_does_not_crash(tmp_path):
    # was: "ValueError: transfer 'plant_standalone': amount must be >= 0" (also n_loans=500 with
    # fixed_cost_cny_bn=0.5)
    cost = "securitisation.fixed_cost_cny_bn=1.0"
    argv = ["run", "shanxi_centre_reformed", "--quarters", "1", "--set", "n_loans=200", "--quiet",
            "--set", cost, "--out", str(tmp_path / "o")]  # fmt: skip
    with figures(False):
        code, _, err = call(argv, tmp_path)
    assert code == 0, err[-1500:]  # a deal that cannot pay its fixed costs is not made
    assert (tmp_path / "o" / "manifest.json").is_file()


@pytest.mark.parametrize(
    "argv",
    [["run", "--set", "a\nb=1"], ["run", "no\nsuch.toml"], ["sweep", "no\nsuch.toml"]],
    ids=["--set key", "scenario path", "sweep spec path"],
)
def test_a_newline_in_user_text_keeps_the_error_on_one_line(tmp_path, argv):
    # was: the key or path went into the message verbatim, splitting it over two lines
    _one_line_exit_2([*argv, "--out", str(tmp_path / "o"), "--quiet"], tmp_path)


@pytest.mark.parametrize(
    ("scenario", "override"),
    [
        ("restart_2016", 'banks=[{name="A", loans_cny_bn=inf, internal_control=0.5, '
                         "workout_skill=1, equity_ratio=0.1, bond_share=0.1}]"),
        ("pilot_2005", "notice_cost_per_borrower_cny=inf"),
        ("pilot_2005", "securitisation.max_pool_cny_bn=inf"),
        ("pilot_2005", "securitisation.underwriter_capital_cny_bn=inf"),
    ],
)  # fmt: skip
def test_infinite_values_are_refused(tmp_path, scenario, override):
    # was: accepted by fields with only a lower bound, then ValueError (nan) in the ledger
    argv = ["run", scenario, "--quarters", "1", "--set", "n_loans=500", "--set", override]
    _one_line_exit_2([*argv, "--quiet", "--out", str(tmp_path / "o")], tmp_path)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("seeds = [99999999999999999999]\n", "seeds"),
        ("seeds = [9223372036854775808]\n", "seeds"),
        ("seed_start = 9223372036854775807\nreplications = 2\n", "seed_start"),
        ("[parameters.bulk_threshold]\nvalues = [3, 18446744073709551616]\n",
         "parameters.bulk_threshold.values"),
        ('[parameters.bulk_threshold]\nlow = 1\nhigh = 18446744073709551616\n[sampling]\n'
         'method = "lhs"\nn = 2\n', "parameters.bulk_threshold.high"),
    ],
)  # fmt: skip
def test_sweep_values_beyond_int64_are_one_line_exit_2(tmp_path, spec, key):
    # was: accepted, then every run failed with "OverflowError: Python int too large to convert
    # to C long" in experiments/sweep.py _tagged (the seed and parameter columns are int64)
    (tmp_path / "spec.toml").write_text("quarters = 1\noverrides = { n_loans = 500 }\n" + spec)
    argv = ["sweep", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "o"), "--quiet"]
    with stubbed(sweep_inline=True):
        code, _, err = call(argv, tmp_path)
    assert code == 2 and f": {key}: " in err and "(allowed: integers from " in err, err
    assert err.count("\n") == 1 and leftovers(tmp_path, {"spec.toml"}) == []


def test_the_largest_sweep_seed_runs(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text("quarters = 1\noverrides = { n_loans = 500 }\nseeds = [9223372036854775807]\n")
    with stubbed(sweep_inline=True):
        code, out, err = call(
            ["sweep", str(spec), "--out", str(tmp_path / "o"), "--quiet"], tmp_path
        )
    assert code == 0 and re.search(r"^failed\s+0$", out, re.MULTILINE), out + err
    assert (
        pd.read_parquet(next((tmp_path / "o" / "runs").glob("*/model.parquet")))["seed"]
        .eq(2**63 - 1)
        .all()
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", ["run", "sweep", "compare", "validate", "sensitivity"])
@pytest.mark.parametrize("out", ["/proc/nplsim-out", "/proc/nplsim-out/deeper"])
def test_out_in_a_directory_nothing_can_be_created_in_is_one_line_exit_2(tmp_path, command, out):
    # was: FileNotFoundError from tempfile.mkdtemp in atomic_directory (run: after the whole
    # simulation) or from _create_store (sweep); any read-only or permission-denied directory
    # of a normal user is the same case
    with stubbed():  # refused before any work starts, or this shows as "started"
        _one_line_exit_2(_out_argv(tmp_path, command, out), tmp_path)


@pytest.mark.parametrize(
    ("quarters", "override"),
    [
        (2, "notice_cost_per_borrower_cny=1e308"),
        (2, "securitisation.max_pool_cny_bn=1e308"),
        (16, 'banks=[{name="A", loans_cny_bn=1e308, internal_control=0.5, workout_skill=1, '
             "equity_ratio=0.1, bond_share=0.1}]"),
    ],
)  # fmt: skip
def test_huge_finite_values_are_refused(tmp_path, quarters, override):
    # was: accepted by fields with only a lower bound; the notice cost overflowed to inf and
    # quarter 1 raised "ValueError: transfer 'amc_debt_repay': amount must be >= 0, got nan"
    # (loans_cny_bn: 'operating_cost' nan at quarter 15)
    argv = ["run", "pilot_2005", "--quarters", str(quarters), "--set", "n_loans=6000",
            "--set", override, "--quiet", "--out", str(tmp_path / "o")]  # fmt: skip
    _one_line_exit_2(argv, tmp_path)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _numeric_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every int or float field of a pydantic model and of the models it holds, with something
    ``_bounds`` reads (the values of a table of numbers, e.g. ``commercial_mix``, as ``name.*``)."""
    for name, info in model.model_fields.items():
        for sub in _models_in(info.annotation):
            yield from _numeric_fields(sub, f"{prefix}{name}.")
        kind, metadata = info.annotation, info.metadata
        if get_origin(kind) is dict:
            name, kind = f"{name}.*", get_args(kind)[1]
            if get_origin(kind) is Annotated:
                kind, metadata = get_args(kind)[0], get_args(kind)[1].metadata
        if kind in (int, float, int | None, float | None):
            yield prefix + name, SimpleNamespace(metadata=metadata)


def test_every_numeric_field_has_a_finite_range():
    # was: fields with only a lower bound accepted 1e308 (see test_huge_finite_values_are_refused)
    fields = dict([*_numeric_fields(LegalRegime), *_numeric_fields(ScenarioConfig)])
    expected = {"bulk_threshold", "banks.loans_cny_bn", "commercial_mix.*", "macro.shocks.quarter",
                "power.coal.shocks.quarter", "securitisation.max_pool_cny_bn",
                "package_cny_bn", "segments.borrower_balance_cny"}  # fmt: skip
    assert expected <= set(fields), sorted(fields)
    unbounded = [
        name
        for name, info in fields.items()
        if not all(b is not None and math.isfinite(b) for b in _bounds(info)[:2])
    ]
    assert unbounded == [], f"give these fields a finite range: {unbounded}"


@pytest.mark.slow
def test_a_sweep_error_after_a_sampling_warning_is_one_line_in_a_process(tmp_path):
    # was: _unit_samples logged "sobol: n=3 is not a power of 2" while expanding the spec, before
    # _check_runs refused a value: two lines on stderr for one error
    spec = tmp_path / "spec.toml"
    spec.write_text(
        "quarters = 1\noverrides = { n_loans = 500 }\n[parameters.car_min]\nlow = 0.3\n"
        'high = 0.5\n[sampling]\nmethod = "sobol"\nn = 3\n'
    )  # car_min <= 0.25: every sample is out of range
    argv = ["sweep", str(spec), "--out", str(tmp_path / "o"), "--quiet"]
    ((_, _, code, err),) = _processes([("sobol", argv, 2)], tmp_path)
    assert code == 2 and err.count("\n") == 1, err


def test_the_sampling_warning_of_an_accepted_sweep_is_still_logged(tmp_path, caplog):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        "quarters = 1\noverrides = { n_loans = 500 }\n[parameters.car_min]\nlow = 0.08\n"
        'high = 0.12\n[sampling]\nmethod = "sobol"\nn = 3\n'
    )
    with stubbed(sweep_inline=True), caplog.at_level("WARNING", logger="nplsim.experiments.sweep"):
        code, _, err = call(["sweep", str(spec), "--out", str(tmp_path / "o"), "--quiet"], tmp_path)
    assert code == 0, err
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "sobol: n=3 is not a power of 2, so the sample is less balanced"
    ]


@pytest.mark.parametrize(
    "command",
    ["compare", "validate"],
)  # fmt: skip
def test_a_seed_count_beyond_any_machine_is_one_line_exit_2(tmp_path, command):
    argv = {
        "compare": ["compare", "pilot_2005", "restart_2016", "--quarters", "1", "--workers", "1"],
        "validate": ["validate", "--loans", "500", "--workers", "1"],
    }[command]
    huge = ["--seeds", "99999999999999999999", "--quiet", "--out", str(tmp_path / "o")]
    with stubbed():  # a version that accepts it and starts work is not this bug
        code, _, err = call([*argv, *huge], tmp_path)
    assert code in (2, "started"), err
    if code == 2:
        assert err.count("\n") == 1 and not (tmp_path / "o").exists()
