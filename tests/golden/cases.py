"""The golden runs and how their outputs are pinned and compared.

Four small runs with fixed seeds that between them exercise every channel of the model: the 1999
carve-out, AMC auctions, securitisation with a private and with a state guarantee, the primary
and secondary ABS markets, recharacterisation, a macro shock, a legal reform, and the power
sector. Each is run the way ``nplsim run`` runs it
(:func:`nplsim.experiments.run.run_to_directory`).

Two things are pinned per run (procedure in ``docs/golden.md``):

* **values** — every output table as CSV in ``tests/golden/<case>/`` at ``SIGNIFICANT_DIGITS``
  significant digits, except ``trades``, which has thousands of rows and is pinned as totals per
  quarter and market (``trades_by_quarter.csv``). Values are compared with a relative tolerance of
  ``RTOL`` (and ``ATOL`` near zero), so the check survives a pandas or pyarrow upgrade;
* **bytes** — the SHA-256 of every Parquet file, in ``tests/golden/golden.json`` with the pandas
  and pyarrow versions that wrote them; a change of those versions changes bytes but not values.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments.run import run_to_directory

GOLDEN_DIR = Path(__file__).parent
PINS = GOLDEN_DIR / "golden.json"
SIGNIFICANT_DIGITS = 10
RTOL = 1e-9  # ten stored digits: a value that did not change differs by at most ~5e-10
ATOL = 1e-12  # CNY bn: a thousandth of a yuan, for values that are zero up to rounding noise
# The through-the-cycle credit factor (s.d. 1, not the calm 2016-23 calibration) and sales after a
# year: a credit cycle that pushes banks into securitisation, so the deal channels are exercised.
CYCLE = {"macro.credit_factor_sd": 1.0, "disposal_lag_q": 4}
BYTE_PACKAGES = ("pandas", "pyarrow")  # whose versions decide a Parquet file's bytes
# Columns that name a row of each pinned table in a failure message.
ROW_KEYS = {
    "model": ("quarter",),
    "banks": ("quarter", "bank"),
    "amcs": ("quarter", "amc"),
    "deals": ("deal_id",),
    "trades_by_quarter": ("quarter", "market"),
    "events": ("quarter", "kind", "agent"),
    "power": ("quarter", "plant"),
}

Tables = Mapping[str, pd.DataFrame]


def _event(kind: str) -> Callable[[Tables], bool]:
    return lambda t: kind in set(t["events"]["kind"])


def _market(market: str) -> Callable[[Tables], bool]:
    return lambda t: market in set(t["trades"]["market"])


def _positive(table: str, column: str) -> Callable[[Tables], bool]:
    return lambda t: table in t and float(t[table][column].fillna(0.0).abs().sum()) > 0


def _guarantor(prefix: str) -> Callable[[Tables], bool]:
    return lambda t: t["deals"]["guarantor"].astype(str).str.startswith(prefix).any()


@dataclass(frozen=True)
class Case:
    """One golden run: a scenario, a seed, overrides, and the channels it must exercise."""

    name: str
    scenario: str
    seed: int
    overrides: dict[str, Any]
    exercises: dict[str, Callable[[Tables], bool]] = field(compare=False)

    def definition(self) -> dict[str, Any]:
        """What is recorded in ``golden.json`` to tell whether the pins belong to this case."""
        return {"scenario": self.scenario, "seed": self.seed, "overrides": self.overrides}


CASES: tuple[Case, ...] = (
    Case(
        "carveout_1999",
        "amc_only_1999",
        7,
        {"n_loans": 5000, "quarters": 12},
        {
            "policy carve-out at book value": _event("policy_carveout"),
            "AMC bonds held by banks": _positive("banks", "amc_bonds"),
            "AMC workout recoveries": _positive("model", "amc_recovery_to_date"),
        },
    ),
    Case(
        "restart_2016_stress",
        "restart_2016",
        3,  # a seed whose cycle makes a bank distressed enough for a recharacterisation
        {
            "n_loans": 20_000,
            "quarters": 20,
            **CYCLE,
            "macro.shocks": [{"quarter": 10, "z": -4.0}],
            "events": [{"quarter": 14, "regime": "strengthened", "label": "reform"}],
        },
        {
            "AMC auctions": _market("amc_auction"),
            "securitisation": _event("deal_issued"),
            "private guarantee": _guarantor("Guarantor"),
            "primary ABS market": _market("primary"),
            "secondary ABS market": _market("secondary"),
            "macro shock": _event("macro_shock"),
            "recharacterisation": _event("recharacterisation"),
            "investor losses": _positive("model", "investor_losses"),
            "legal reform": _event("reform"),
        },
    ),
    Case(
        "state_guarantee",
        "mature_market",
        1,
        {"n_loans": 20_000, "quarters": 20, **CYCLE},
        {
            "state guarantee scheme": _guarantor("State guarantee scheme"),
            "secondary ABS market": _market("secondary"),
        },
    ),
    Case(
        "shanxi_power",
        "shanxi_power",
        1,
        {"n_loans": 8000, "quarters": 28},  # the full fleet: a pool forms past the screen
        {
            "power plants": _positive("power", "capacity_mw"),
            "pooled Securitization Center issue": _positive("model", "power_share_pooled"),
            "tariff ABS issued": _event("power_abs_issued"),
            "coal shock": _event("coal_shock"),
            "plant default": _event("plant_default"),
        },
    ),
)


def run_case_in_process(case: Case, out_dir: Path) -> Path:
    """Run a golden case into ``out_dir`` exactly as ``nplsim run`` would; return ``out_dir``."""
    run_to_directory(case.scenario, case.seed, out_dir, case.overrides, command=[])
    return out_dir


def portable_numpy_env() -> dict[str, str]:
    """The environment of a process whose numpy uses the same kernels on every x86-64 machine with
    AVX2: numpy picks its SIMD kernels by CPU when it is imported, and its AVX-512 kernels round
    some sums, exponentials and logarithms differently in the last bit, which reaches the pinned
    bytes (and, through thresholds, an occasional value)."""
    env = dict(os.environ)
    if platform.machine().lower() in ("x86_64", "amd64"):
        env["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"
    return env


def run_case(case: Case, out_dir: Path) -> Path:
    """Run a golden case into ``out_dir`` in a fresh process with numpy's portable kernels (see
    :func:`portable_numpy_env`), exactly as ``nplsim run`` would; return ``out_dir``."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.golden.cases", case.name, str(out_dir)],
        cwd=GOLDEN_DIR.parents[1], env=portable_numpy_env(), capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"golden run {case.name} failed:\n{done.stderr[-3000:]}")
    return out_dir


def read_outputs(run_dir: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet table of a results directory, by name."""
    return {p.stem: pd.read_parquet(p) for p in sorted(run_dir.glob("*.parquet"))}


def parquet_hashes(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every Parquet file of a results directory, by file name."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.glob("*.parquet"))
    }


def unexercised(case: Case, tables: Tables) -> list[str]:
    """The channels a case should exercise but whose outputs show no sign of."""
    return [channel for channel, seen in case.exercises.items() if not seen(tables)]


def _trades_by_quarter(trades: pd.DataFrame) -> pd.DataFrame:
    keys = ["quarter", "market"]
    numeric = [
        c for c in trades.columns if c not in keys and pd.api.types.is_numeric_dtype(trades[c])
    ]
    grouped = trades.groupby(keys, sort=True)
    totals = (
        grouped[numeric].sum(min_count=1) if numeric else pd.DataFrame(index=grouped.size().index)
    )
    totals.insert(0, "trades", grouped.size())
    return totals.reset_index()


def pinned_form(tables: Tables) -> dict[str, str]:
    """The CSV text pinned for each table of a run, by file stem."""
    forms = {
        ("trades_by_quarter" if name == "trades" else name): (
            _trades_by_quarter(frame) if name == "trades" else frame
        )
        for name, frame in tables.items()
    }
    return {
        name: frame.to_csv(
            index=False, float_format=f"%.{SIGNIFICANT_DIGITS}g", lineterminator="\n"
        )
        for name, frame in forms.items()
    }


def parse(text: str) -> pd.DataFrame:
    """A pinned CSV table as a frame (both sides of a comparison go through this)."""
    return pd.read_csv(io.StringIO(text)) if text.strip() else pd.DataFrame()


def _label(frame: pd.DataFrame, table: str, row: int) -> str:
    keys = [k for k in ROW_KEYS.get(table, ()) if k in frame.columns]
    return " ".join(f"{k}={frame[k].iloc[row]}" for k in keys) or f"row {row}"


def _show(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    return repr(value.item() if isinstance(value, np.generic) else value)


def compare(table: str, pinned: pd.DataFrame, now: pd.DataFrame, max_rows: int = 5) -> list[str]:
    """How ``now`` differs from the ``pinned`` table, as lines of text; empty if it does not.

    Numeric columns are compared within ``RTOL``/``ATOL`` (NaN equals NaN), others exactly. For
    each differing column: how many rows differ, the largest difference, and the first rows.
    """
    lines = []
    added = [c for c in now.columns if c not in pinned.columns]
    removed = [c for c in pinned.columns if c not in now.columns]
    if added or removed:
        lines.append(f"{table}: columns added {added}, removed {removed}")
    if len(now) != len(pinned):
        lines.append(f"{table}: {len(pinned)} rows pinned, {len(now)} now")
    n = min(len(now), len(pinned))
    for column in (c for c in pinned.columns if c in now.columns):
        old, new = pinned[column].iloc[:n], now[column].iloc[:n]
        numeric = pd.api.types.is_numeric_dtype(old) and pd.api.types.is_numeric_dtype(new)
        if numeric:
            a, b = old.to_numpy(float), new.to_numpy(float)
            differs = ~np.isclose(b, a, rtol=RTOL, atol=ATOL, equal_nan=True)
        else:
            differs = (old.fillna("").astype(str) != new.fillna("").astype(str)).to_numpy()
        rows = np.flatnonzero(differs)
        if rows.size == 0:
            continue
        head = f"{table}.{column}: {rows.size} of {n} rows differ"
        both = rows[np.isfinite(a[rows]) & np.isfinite(b[rows])] if numeric else rows[:0]
        if both.size:
            gap = np.abs(b[both] - a[both])
            relative = gap / np.maximum(np.abs(a[both]), ATOL)
            head += f", largest |diff| {gap.max():.3g} (relative {relative.max():.3g})"
        if both.size < rows.size and numeric:
            head += f", {rows.size - both.size} NaN or infinite on one side"
        lines.append(head)
        for row in rows[:max_rows]:
            lines.append(
                f"    {_label(pinned, table, row)}: pinned {_show(old.iloc[row])},"
                f" now {_show(new.iloc[row])}"
            )
    return lines


if __name__ == "__main__":  # python -m tests.golden.cases CASE OUT_DIR (what run_case starts)
    name, out = sys.argv[1:]
    run_case_in_process(next(c for c in CASES if c.name == name), Path(out))
