"""``nplsim validate``: the model against the stylised facts it speaks to, with error bars.

The facts are data (``experiments/facts.toml``): each names a scenario, how the model statistic is
computed from one run, the fact's value from the project's reference facts and a tolerance band.
Every scenario a fact needs is run over seeds ``1..N`` in a local process pool, with the scenario's
own number of loan slots (as ``nplsim compare`` runs it) unless ``--loans`` says otherwise; each
statistic is summarised by its median and 2.5–97.5 percentile range over seeds. A fact *holds*
when the median lies in its band; a floor or a ceiling (a band open on one side) holds only when
at least 95% of the seeds lie in it (``SEED_SHARE``). Deal statistics aggregate over every deal a
run issued; a seed without deals gives no value, and the report says in how many seeds there were
deals. Facts the model does not speak to yet are listed without a verdict, so the report shows the
gaps. The report
(``validation.md``, ``validation.csv``, ``manifest.json``) is written atomically; misses are
reported, never an error (exit 0). Only user mistakes exit 2.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, ValidationError, model_validator

from nplsim.economy.measurement import MODEL_COLUMNS
from nplsim.economy.outputs import DEAL_COLUMNS
from nplsim.experiments.options import add_output_flags, add_yes_flag, confirm_runs
from nplsim.experiments.pool import resolve_workers, run_tasks
from nplsim.experiments.provenance import pins
from nplsim.experiments.seeds import seed_range
from nplsim.experiments.store import RESULTS_ROOT, Claim, holding, json_text, write_directory
from nplsim.market.blotter import COLUMNS as TRADE_COLUMNS
from nplsim.market.errors import (
    ConfigError,
    StrictModel,
    config_error_from_validation,
    printable,
    read_bytes,
    read_toml,
)
from nplsim.market.loans import recovery_timing_factor
from nplsim.market.scenario import list_scenarios, load_scenario

FACTS_FILE = Path(__file__).with_name("facts.toml")
DEFAULT_OUT = RESULTS_ROOT / "validation"
REPORT_FILES = ("validation.md", "validation.csv", "manifest.json")

# Columns of the AMC table (agents.amc.AssetManagementCompany.record) plus the derived ones.
AMC_COLUMNS = (
    "cash", "npl_book", "npl_face", "funding_debt", "amc_bonds", "equity", "face_bought", "paid",
    "face_carved_out", "recoveries", "workout_costs", "cum_recoveries", "cum_face_in",
    "face_disposed", "recovery_per_face_disposed",
)  # fmt: skip
TRADE_NUMERIC = tuple(
    c for c in TRADE_COLUMNS if c not in ("quarter", "market", "seller", "buyer", "segment")
)
# Numeric columns of the deal table (market.model.DEAL_COLUMNS, deals.parquet).
DEAL_NUMERIC = tuple(
    c
    for c in DEAL_COLUMNS
    if c not in ("deal_id", "originator", "senior_rating", "mezz_rating", "guarantor", "servicer")
)
DEAL_OVER = ("ratio_of_sums", "mean", "median", "min", "max", "sum", "share")
UNIT_SCALE = {"percent": 100.0, "pp": 100.0, "cny_bn": 1.0, "cny_per_t": 1.0}
UNIT_SUFFIX = {"percent": "%", "pp": " pp", "cny_bn": " bn", "cny_per_t": " CNY/t"}
KIND_LABEL = {
    "output": "model output",
    "initial_condition": "initial condition",
    "calibration_input": "calibration input",
    "not_modelled": "not yet modelled",
}
CSV_COLUMNS = (
    "id", "kind", "description", "source", "scenario", "statistic", "unit", "model_median",
    "model_p2_5", "model_p97_5", "n_seeds", "seeds_with_deals", "share_in_band", "fact_value",
    "tolerance", "band_low", "band_high", "holds", "note",
)  # fmt: skip
SEED_SHARE = 0.95  # a floor or ceiling must hold in at least this share of the seeds


# ====================================================================== the facts file
class _Strict(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatisticSpec(_Strict):
    """How one run (one seed) is reduced to the number compared with a fact."""

    table: Literal["model", "amcs", "trades", "deals", "calibration"]
    column: str = Field(min_length=1)
    quarter: int | None = Field(default=None, ge=0)
    quarters: tuple[int, int] | None = None
    over: (
        Literal[
            "mean", "median", "min", "max", "sum", "face_weighted", "ratio_of_sums", "share",
            "max_abs_change",
        ]
        | None
    ) = None  # fmt: skip
    lag: int | None = Field(
        default=None, ge=1, description="max_abs_change: quarters between the values compared."
    )
    denominator: str | None = Field(
        default=None, min_length=1, description="deals, ratio_of_sums: the column summed below."
    )
    greater_than: float | None = Field(
        default=None, description="deals, share: the share of deals whose column exceeds this."
    )
    minus_quarter: int | None = Field(default=None, ge=0)
    agent: str | None = Field(default=None, min_length=1, description="One AMC (amcs table).")
    market: str | None = Field(default=None, min_length=1, description="Trades of one market.")
    published: tuple[float, float, float, float, float, float] | None = None

    @model_validator(mode="after")
    def _check(self) -> StatisticSpec:
        allowed = {
            "model": MODEL_COLUMNS,
            "amcs": AMC_COLUMNS,
            "trades": TRADE_NUMERIC,
            "deals": DEAL_NUMERIC,
            "calibration": ("recovery_timing_factor",),
        }[self.table]
        if self.column not in allowed:
            raise ValueError(f"column {self.column!r} not in {self.table} ({', '.join(allowed)})")
        if self.table != "deals" and (
            self.denominator is not None or self.greater_than is not None
        ):
            raise ValueError("denominator and greater_than apply to the deals table only")
        if self.table != "deals" and self.over in ("ratio_of_sums", "share"):
            raise ValueError(f"over = {self.over} applies to the deals table only")
        if self.quarters is not None and self.quarters[0] > self.quarters[1]:
            raise ValueError("quarters: first must not exceed last")
        if self.table == "calibration":
            if self.published is None:
                raise ValueError("a calibration statistic needs `published` (six values)")
            return self
        if self.table == "deals":
            return self._check_deals()
        if self.table == "trades":
            if self.quarter is not None or self.minus_quarter is not None:
                raise ValueError("trades statistics take `quarters` and `over`, not `quarter`")
            if self.over not in ("face_weighted", "mean", "median"):
                raise ValueError("trades: over must be face_weighted, mean or median")
            if self.over == "face_weighted" and self.column != "price_to_face":
                raise ValueError("over = face_weighted applies to column price_to_face only")
            return self
        if (self.quarter is None) == (self.quarters is None):
            raise ValueError("give exactly one of `quarter` or `quarters`")
        if self.quarters is not None and self.over in (None, "face_weighted"):
            raise ValueError("quarters needs over = mean, median, min, max, sum or max_abs_change")
        if (self.over == "max_abs_change") != (self.lag is not None):
            raise ValueError("over = max_abs_change needs `lag` (and only it takes one)")
        if self.lag is not None and self.quarters is not None and self.quarters[0] < self.lag:
            raise ValueError("max_abs_change: the first quarter must be at least `lag`")
        if self.quarter is not None and self.over is not None:
            raise ValueError("`over` goes with `quarters`, not with `quarter`")
        if self.minus_quarter is not None and self.quarter is None:
            raise ValueError("minus_quarter goes with `quarter`")
        if self.agent is not None and self.table != "amcs":
            raise ValueError("agent applies to the amcs table only")
        return self

    def _check_deals(self) -> StatisticSpec:
        """A deals statistic aggregates over every deal of the run: no quarters, no agent."""
        if any(v is not None for v in (self.quarter, self.quarters, self.minus_quarter)):
            raise ValueError("deals statistics aggregate over all deals: no quarter or quarters")
        if self.agent is not None or self.market is not None:
            raise ValueError("agent and market do not apply to the deals table")
        if self.over not in DEAL_OVER:
            raise ValueError(f"deals: over must be one of {', '.join(DEAL_OVER)}")
        if (self.over == "ratio_of_sums") != (self.denominator is not None):
            raise ValueError("over = ratio_of_sums needs `denominator` (and only it takes one)")
        if self.denominator is not None and self.denominator not in DEAL_NUMERIC:
            raise ValueError(
                f"denominator {self.denominator!r} not in deals ({', '.join(DEAL_NUMERIC)})"
            )
        if (self.over == "share") != (self.greater_than is not None):
            raise ValueError("over = share needs `greater_than` (and only it takes one)")
        return self

    @property
    def last_quarter(self) -> int:
        """The latest quarter the statistic reads (0 if none)."""
        values = [self.quarter, self.minus_quarter, *(self.quarters or ())]
        return max((v for v in values if v is not None), default=0)

    def describe(self, when: str = "") -> str:
        """How the statistic is computed, in words."""
        column = self.column
        if self.table == "calibration":
            text = f"max gap of 84.2·{column}(age) from the published table"
        elif self.table == "trades":
            what = "face-weighted" if self.over == "face_weighted" else self.over
            span = f", quarters {self.quarters[0]}–{self.quarters[1]}" if self.quarters else ""
            text = f"{what} {column} of {self.market or 'all'} trades{span}"
        elif self.table == "deals":
            if self.over == "ratio_of_sums":
                text = f"sum({column}) / sum({self.denominator}) over all deals"
            elif self.over == "share":
                text = f"share of deals with {column} > {self.greater_than:g}"
            else:
                text = f"{self.over} {column} over all deals"
        else:
            prefix = "" if self.table == "model" else f"AMC {self.agent or 'total'} "
            if self.over == "max_abs_change" and self.quarters is not None:
                text = f"largest |{prefix}{column}(q) − {column}(q−{self.lag})| over quarters "
                text += f"{self.quarters[0]}–{self.quarters[1]}"
            elif self.quarters is not None:
                text = f"{self.over} of {prefix}{column} over quarters "
                text += f"{self.quarters[0]}–{self.quarters[1]}"
            else:
                text = f"{prefix}{column} at quarter {self.quarter}"
                if self.minus_quarter is not None:
                    text += f" minus at quarter {self.minus_quarter}"
        return f"{text} ({when})" if when else text


class FactSpec(_Strict):
    """One stylised fact and how the model is compared with it."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: Literal["output", "initial_condition", "calibration_input", "not_modelled"]
    description: str = Field(min_length=1)
    source: str = Field(min_length=1)
    scenario: str = ""
    when: str = ""
    unit: Literal["percent", "pp", "cny_bn", "cny_per_t"]
    target: float | None = None
    target_range: tuple[float, float] | None = None
    target_text: str = ""
    tolerance: float = Field(default=0.0, ge=0)
    tolerance_kind: Literal["absolute", "relative"] = "absolute"
    note: str = ""
    statistic: StatisticSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> FactSpec:
        if not self.source.strip() or not self.description.strip():
            raise ValueError("description and source must not be blank")
        if self.target is not None and self.target_range is not None:
            raise ValueError("give `target` or `target_range`, not both")
        if self.target_range is not None and self.target_range[0] > self.target_range[1]:
            raise ValueError("target_range: low must not exceed high")
        if self.kind == "not_modelled":
            if self.statistic is not None:
                raise ValueError("a not_modelled fact has no statistic")
            return self
        if self.statistic is None:
            raise ValueError(f"a {self.kind} fact needs a [fact.statistic] table")
        if self.target is None and self.target_range is None:
            raise ValueError("give `target` or `target_range`")
        if self.statistic.table != "calibration" and not self.scenario:
            raise ValueError("the statistic needs a `scenario`")
        return self

    @property
    def one_sided(self) -> bool:
        """A floor or a ceiling: a band open on one side, judged over the seeds' share."""
        return self.target_range is not None and any(math.isinf(v) for v in self.target_range)

    @property
    def needs_run(self) -> bool:
        """Whether the fact's statistic comes from simulation runs."""
        return self.statistic is not None and self.statistic.table != "calibration"

    def band(self) -> tuple[float, float]:
        """The interval the model's median must fall in, in the fact's unit."""
        if self.target_range is not None:
            low, high = self.target_range
        else:
            low = high = float(self.target)  # type: ignore[arg-type]
        if self.tolerance_kind == "relative":
            return low - self.tolerance * abs(low), high + self.tolerance * abs(high)
        return low - self.tolerance, high + self.tolerance

    def fact_text(self) -> str:
        """The fact's value as shown in the report."""
        if self.target_text:
            return self.target_text
        suffix = UNIT_SUFFIX[self.unit]
        if self.target_range is not None:
            low, high = self.target_range
            return f"{_num(low, self.unit)}–{_num(high, self.unit)}{suffix}"
        if self.target is None:
            return "—"
        return f"{_num(self.target, self.unit)}{suffix}"

    def tolerance_text(self) -> str:
        """The band's rule, in words."""
        if self.kind == "not_modelled":
            return "—"
        if self.tolerance == 0:
            return "inside the range" if self.target_range is not None else "exact"
        if self.tolerance_kind == "relative":
            amount = f"±{self.tolerance * 100:g}% (relative)"
        else:
            unit = " pp" if self.unit in ("percent", "pp") else UNIT_SUFFIX[self.unit]
            amount = f"±{self.tolerance:g}{unit}"
        return f"range {amount}" if self.target_range is not None else amount


class FactsFile(_Strict):
    """The facts file: a list of ``[[fact]]`` tables."""

    fact: list[FactSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> FactsFile:
        ids = [f.id for f in self.fact]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"duplicate fact ids: {', '.join(duplicated)}")
        return self


def load_facts(path: str | Path = FACTS_FILE) -> list[FactSpec]:
    """Read and validate a facts file (structure only; see :func:`check_facts` for scenarios).

    Raises:
        ConfigError: missing file, malformed TOML, unknown key, wrong type or value.
    """
    data = read_toml(path, missing_key="--facts")
    try:
        return FactsFile.model_validate(data).fact
    except ValidationError as exc:
        raise config_error_from_validation(exc, str(path), ["fact"]) from None


def resolve_scenario(name: str, facts_path: Path) -> str:
    """A fact's scenario as something ``simulate`` accepts: a built-in name or a TOML path."""
    if name in list_scenarios():
        return name
    path = Path(name)
    if path.suffix == ".toml":
        path = path if path.is_absolute() else facts_path.parent / path
        if path.is_file():
            return str(path)
    raise ConfigError(str(facts_path), "scenario", f"unknown scenario {name!r}",
                      ", ".join(list_scenarios()) + " or a scenario TOML file")  # fmt: skip


def _slots(n_loans: int | None) -> dict[str, int]:
    """The loan-slot override of a run: none (the scenario's own count) or ``n_loans``."""
    return {} if n_loans is None else {"n_loans": n_loans}


def check_facts(facts: Sequence[FactSpec], facts_path: Path, n_loans: int | None) -> dict[str, str]:
    """Check every scenario exists, accepts ``n_loans`` (None: its own) and covers the quarters
    its facts read.

    Returns:
        The resolved scenario of each fact that needs runs, by fact id.
    """
    resolved: dict[str, str] = {}
    horizons: dict[str, int] = {}
    for index, fact in enumerate(facts):
        if not fact.scenario:
            continue
        scenario = resolve_scenario(fact.scenario, facts_path)
        if scenario not in horizons:
            config, _ = load_scenario(scenario, _slots(n_loans))
            horizons[scenario] = config.quarters
        if fact.needs_run:
            assert fact.statistic is not None
            if fact.statistic.last_quarter > horizons[scenario]:
                raise ConfigError(
                    str(facts_path), f"fact.{index}.statistic",
                    f"reads quarter {fact.statistic.last_quarter}, beyond the horizon of "
                    f"{fact.scenario}", f"<= {horizons[scenario]}",
                )  # fmt: skip
            resolved[fact.id] = scenario
    return resolved


# ====================================================================== one run
def amc_quarterly(amcs: pd.DataFrame, agent: str | None = None) -> pd.DataFrame:
    """The AMC table by quarter (one AMC or all summed), with cumulative recovery on disposals.

    ``recovery_per_face_disposed`` is cumulative cash recovered over cumulative face disposed
    (face taken in by purchase or carve-out and since resolved or written off): the ratio the
    AMCs reported (facts: amc-recovery-2006).
    """
    if agent is not None:
        amcs = amcs[amcs["amc"] == agent]
    table = amcs.drop(columns=["amc"]).groupby("quarter").sum().sort_index()
    table["cum_recoveries"] = table["recoveries"].cumsum()
    table["cum_face_in"] = (table["face_bought"] + table["face_carved_out"]).cumsum()
    table["face_disposed"] = table["cum_face_in"] - table["npl_face"]
    disposed = table["face_disposed"].where(table["face_disposed"] > 1e-9)
    table["recovery_per_face_disposed"] = table["cum_recoveries"] / disposed
    return table


def series_value(series: pd.Series, spec: StatisticSpec) -> float:
    """One run's statistic of a quarterly series (model or AMC table)."""
    if spec.over == "max_abs_change":
        assert spec.quarters is not None and spec.lag is not None
        first, last = spec.quarters
        change = series.astype(float) - series.astype(float).shift(spec.lag)
        window = change.loc[first:last].abs()
        return math.nan if window.isna().all() else float(window.max())
    if spec.quarters is not None:
        window = series.loc[spec.quarters[0] : spec.quarters[1]].astype(float)
        if window.isna().all():
            return math.nan
        return float(getattr(window, spec.over)())  # type: ignore[arg-type]
    value = float(series.loc[spec.quarter])
    if spec.minus_quarter is not None:
        value -= float(series.loc[spec.minus_quarter])
    return value


def _trades_value(trades: pd.DataFrame, spec: StatisticSpec) -> float:
    if spec.market is not None:
        trades = trades[trades["market"] == spec.market]
    if spec.quarters is not None:
        trades = trades[trades["quarter"].between(*spec.quarters)]
    if trades.empty:
        return math.nan
    if spec.over == "face_weighted":
        face = float(trades["face"].sum())
        return float(trades["price"].sum()) / face if face > 0 else math.nan
    return float(getattr(trades[spec.column].astype(float), spec.over)())  # type: ignore[arg-type]


def deals_value(deals: pd.DataFrame, spec: StatisticSpec) -> float:
    """One run's deals statistic: an aggregate over all its deals (NaN when it has none)."""
    if deals.empty:
        return math.nan
    values = deals[spec.column].astype(float)
    if spec.over == "ratio_of_sums":
        denominator = float(deals[spec.denominator].astype(float).sum())
        return float(values.sum()) / denominator if denominator > 0 else math.nan
    if spec.over == "share":
        return float((values > spec.greater_than).mean())
    if values.isna().all():
        return math.nan
    return float(getattr(values, spec.over)())  # type: ignore[arg-type]


def calibration_value(spec: StatisticSpec, max_age_q: int = 28) -> float:
    """Largest gap (as a fraction) between 84.2·timing factor and the published table."""
    assert spec.published is not None
    ages = np.arange(max_age_q)
    published = np.asarray(spec.published)[np.minimum(ages // 4, len(spec.published) - 1)]
    model = spec.published[0] * recovery_timing_factor(ages)
    return float(np.max(np.abs(model - published))) / 100.0


N_DEALS = "#deals"  # run_statistics' entry for the deal count (no fact id has a "#")


def run_statistics(
    scenario: str,
    seed: int,
    n_loans: int | None,
    specs: tuple[tuple[str, StatisticSpec], ...],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Run one scenario with one seed and compute the statistics of its facts (raw units).

    A top-level function, so that a process pool can pickle it. The entry ``N_DEALS`` is the
    number of deals the run issued. ``overrides`` change the scenario (a calibration's
    parameters); ``n_loans`` (if not None) sets the loan slots.
    """
    from nplsim.experiments.run import simulate

    model = simulate(scenario, seed, {**_slots(n_loans), **dict(overrides or {})})
    frame = model.model_frame().set_index("quarter")
    amcs = model.amc_frame()
    trades = model.trade_frame()
    deals = model.deal_frame()
    values: dict[str, float] = {N_DEALS: float(len(deals))}
    for fact_id, spec in specs:
        if spec.table == "deals":
            values[fact_id] = deals_value(deals, spec)
        elif spec.table == "model":
            values[fact_id] = series_value(frame[spec.column], spec)
        elif spec.table == "amcs":
            values[fact_id] = series_value(amc_quarterly(amcs, spec.agent)[spec.column], spec)
        else:
            values[fact_id] = _trades_value(trades, spec)
    return values


# ====================================================================== the report
def _num(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if unit in ("cny_bn", "cny_per_t"):
        return f"{value:,.0f}"
    return f"{value:.2f}"


def summarise(
    facts: Sequence[FactSpec],
    scenarios: dict[str, str],
    values: dict[str, list[float]],
    deal_counts: dict[str, list[int]] | None = None,
) -> pd.DataFrame:
    """One row per fact: the model's median and 95% range over seeds, the band and the verdict.

    ``deal_counts`` gives, per scenario, the number of deals each seed's run issued; a deals
    fact's row says in how many seeds there were deals (``seeds_with_deals``, "k of N").
    """
    deal_counts = deal_counts or {}
    rows = []
    for fact in facts:
        row: dict[str, object] = {
            "id": fact.id,
            "kind": KIND_LABEL[fact.kind],
            "description": fact.description,
            "source": fact.source,
            "scenario": fact.scenario,
            "statistic": "—",
            "unit": fact.unit,
            "model_median": math.nan,
            "model_p2_5": math.nan,
            "model_p97_5": math.nan,
            "n_seeds": 0,
            "seeds_with_deals": "",
            "share_in_band": math.nan,
            "fact_value": fact.fact_text(),
            "tolerance": fact.tolerance_text(),
            "band_low": math.nan,
            "band_high": math.nan,
            "holds": "",
            "note": fact.note,
        }
        if fact.statistic is not None:
            scale = UNIT_SCALE[fact.unit]
            sample = np.asarray(values[fact.id], dtype=float) * scale
            finite = sample[~np.isnan(sample)]
            low, high = fact.band()
            row.update(statistic=fact.statistic.describe(fact.when), band_low=low, band_high=high)
            row["n_seeds"] = int(finite.size)
            if finite.size:
                median = float(np.median(finite))
                row["model_median"] = median
                row["model_p2_5"] = float(np.percentile(finite, 2.5))
                row["model_p97_5"] = float(np.percentile(finite, 97.5))
                share = float(np.mean((low <= sample) & (sample <= high)))  # NaN: not in band
                row["share_in_band"] = share
                held = share >= SEED_SHARE if fact.one_sided else low <= median <= high
                row["holds"] = bool(held)
            else:
                row["holds"] = False
            if fact.statistic.table == "calibration":
                row["scenario"] = "— (all)"
            if fact.statistic.table == "deals":
                row.update(_deals_note(fact, deal_counts.get(scenarios.get(fact.id, ""), [])))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def _deals_note(fact: FactSpec, counts: Sequence[int]) -> dict[str, str]:
    """How many seeds had deals, said in the row's note (and "no deals" when none had any)."""
    with_deals = sum(1 for c in counts if c > 0)
    if with_deals == 0:
        said = (
            f"No deals in any of the {len(counts)} seeds: the statistic is undefined, so the "
            "fact does not hold."
        )
    else:
        said = f"Deals in {with_deals} of {len(counts)} seeds (seeds without deals give no value)."
    return {
        "seeds_with_deals": f"{with_deals} of {len(counts)}",
        "note": f"{said} {fact.note}".strip(),
    }


def _model_text(row: pd.Series) -> tuple[str, str]:
    if row["statistic"] == "—":
        return "—", "—"
    if row["n_seeds"] == 0:
        return "no data", "—"
    unit = row["unit"]
    suffix = UNIT_SUFFIX[unit]
    median = f"{_num(row['model_median'], unit)}{suffix}"
    span = f"{_num(row['model_p2_5'], unit)}–{_num(row['model_p97_5'], unit)}"
    return median, span


def _band_text(row: pd.Series) -> str:
    if row["statistic"] == "—":
        return "—"
    unit = row["unit"]
    return f"[{_num(row['band_low'], unit)}, {_num(row['band_high'], unit)}]"


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The summary with numbers formatted, as shown on screen and in the Markdown."""
    shown = []
    for _, row in table.iterrows():
        median, span = _model_text(row)
        shown.append(
            {
                "id": row["id"],
                "kind": row["kind"],
                "description": row["description"],
                "source (docs/facts.md)": row["source"],
                "scenario": row["scenario"] or "—",
                "model statistic (per seed)": row["statistic"]
                + (
                    f"; deals in {row['seeds_with_deals']} seeds" if row["seeds_with_deals"] else ""
                ),
                "model median": median,
                "model 95% range": span,
                "seeds in band": "—"
                if math.isnan(row["share_in_band"])
                else f"{100 * row['share_in_band']:.0f}%",
                "fact": row["fact_value"],
                "tolerance": row["tolerance"],
                "band": _band_text(row),
                "holds": "—" if row["holds"] == "" else str(row["holds"]),
            }
        )
    return pd.DataFrame(shown)


def misses_paragraph(table: pd.DataFrame) -> str:
    """Plain words on every fact the model misses, and on what it does not model yet."""
    checked = table[table["holds"] != ""]
    missed = checked[checked["holds"] != True]  # noqa: E712 — column mixes bools and ""
    outputs = checked[checked["kind"] == KIND_LABEL["output"]]
    outputs_held = int((outputs["holds"] == True).sum())  # noqa: E712
    text = [
        f"{len(checked) - len(missed)} of {len(checked)} checked facts hold "
        f"({outputs_held} of {len(outputs)} model outputs; the rest check initial conditions and "
        f"calibration inputs)."
    ]
    if missed.empty:
        text.append("The model misses none of the checked facts.")
    else:
        text.append("The model misses:")
        parts = []
        for _, row in missed.iterrows():
            unit = row["unit"]
            suffix = UNIT_SUFFIX[unit]
            if row["n_seeds"] == 0:
                why = "no deals" if row["seeds_with_deals"].startswith("0 of") else "no data"
                parts.append(
                    f"**{row['id']}** ({row['description']}; {row['scenario']}): the statistic "
                    f"is undefined in every seed ({why}), fact {row['fact_value']}"
                )
                continue
            median = row["model_median"]
            gap_unit = " pp" if unit in ("percent", "pp") else suffix
            if median < row["band_low"]:
                gap = f"{_num(row['band_low'] - median, unit)}{gap_unit} below the band"
            else:
                gap = f"{_num(median - row['band_high'], unit)}{gap_unit} above the band"
            parts.append(
                f"**{row['id']}** ({row['description']}; {row['scenario']}): model median "
                f"{_num(median, unit)}{suffix} (95% range {_num(row['model_p2_5'], unit)}–"
                f"{_num(row['model_p97_5'], unit)}{suffix}) against {row['fact_value']}, "
                f"{gap} {_band_text(row)}"
            )
        text.append("; ".join(parts) + ".")
    gaps = table[table["holds"] == ""]
    if not gaps.empty:
        text.append(
            "Not yet modelled, so without a verdict: "
            + ", ".join(f"{r['id']} ({r['description']})" for _, r in gaps.iterrows())
            + "."
        )
    return " ".join(text)


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _slots_text(meta: dict) -> str:
    if meta["n_loans"] is not None:
        return f"{meta['n_loans']:,} loans"
    slots = ", ".join(f"{name} {n:,}" for name, n in meta["loan_slots"].items())
    return f"each scenario's own loan slots, as `nplsim compare` runs it ({slots})"


def markdown_report(table: pd.DataFrame, facts: Sequence[FactSpec], meta: dict) -> str:
    """``validation.md``: how to read it, the table, where the model misses, and notes."""
    shown = display_table(table)
    lines = [
        "# nplsim validation against stylised facts",
        "",
        f"Scenarios {', '.join(meta['scenarios']) or '—'}, each run with seeds "
        f"{meta['seeds'][0]}–{meta['seeds'][-1]} ({len(meta['seeds'])} seeds) and "
        f"{_slots_text(meta)}; facts from `{meta['facts_file']}` (sha256 "
        f"{meta['facts_sha256'][:12]}), values from the project's reference facts (docs/facts.md).",
        "",
        "Each statistic is computed once per seed; *model median* and *95% range* are the median "
        "and the 2.5–97.5 percentiles over seeds. A fact **holds** when the model median lies in "
        "the band (the fact's value or range widened by the tolerance); a floor or a ceiling "
        f"(a band open on one side) holds only when at least {100 * SEED_SHARE:.0f}% of the seeds "
        "lie in it (*seeds in band*). *Initial condition* and "
        "*calibration input* rows check what the model is built from, not what it produces; "
        "*not yet modelled* rows have no verdict and show the gaps. Misses are reported as they "
        "are: neither the model nor the scenarios were tuned to pass.",
        "",
        "| " + " | ".join(shown.columns) + " |",
        "|" + "|".join("---" for _ in shown.columns) + "|",
    ]
    for _, row in shown.iterrows():
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    lines += ["", "## Where the model misses", "", misses_paragraph(table), "", "## Notes", ""]
    lines += [f"- **{r['id']}**: {r['note']}" for _, r in table.iterrows() if r["note"]]
    return "\n".join(lines) + "\n"


# ====================================================================== running it
def collect_values(
    facts: Sequence[FactSpec],
    scenarios: dict[str, str],
    seeds: Sequence[int],
    n_loans: int | None,
    workers: int,
    on_done: Callable[[], None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Every fact's statistic for every seed (raw units), runs spread over a process pool.

    Results are gathered by (scenario, seed) and read back in seed order, so the output does not
    depend on which worker finishes first.

    Returns:
        The statistics by fact id, and the number of deals of each seed's run by scenario.
    """
    by_scenario: dict[str, list[tuple[str, StatisticSpec]]] = {}
    for fact in facts:
        if fact.id in scenarios:
            assert fact.statistic is not None
            by_scenario.setdefault(scenarios[fact.id], []).append((fact.id, fact.statistic))
    jobs = [
        (scenario, seed, n_loans, tuple(by_scenario[scenario]))
        for scenario in by_scenario
        for seed in seeds
    ]
    results: dict[tuple[str, int], dict[str, float]] = {}
    for outcome in run_tasks(_run_job, jobs, workers=workers):
        if outcome.error is not None:
            raise outcome.error
        scenario, seed = jobs[outcome.index][:2]
        results[scenario, seed] = outcome.value
        if on_done is not None:
            on_done()
    values: dict[str, list[float]] = {}
    for fact in facts:
        if fact.id in scenarios:
            values[fact.id] = [results[scenarios[fact.id], seed][fact.id] for seed in seeds]
        elif fact.statistic is not None and fact.statistic.table == "calibration":
            values[fact.id] = [calibration_value(fact.statistic)]
    deal_counts = {
        scenario: [int(results[scenario, seed][N_DEALS]) for seed in seeds]
        for scenario in by_scenario
    }
    return values, deal_counts


def _run_job(job: tuple[Any, ...]) -> dict[str, float]:
    """:func:`run_statistics` of one ``(scenario, seed, n_loans, specs)`` job (for the pool)."""
    return run_statistics(*job)


def _shown_path(path: Path) -> str:
    """The built-in facts file by its place in the project (the report stays machine-free)."""
    if path.resolve() == FACTS_FILE.resolve():
        return "experiments/facts.toml"
    return str(path)


def write_report(
    out_dir: str | Path | Claim, files: dict[str, str], overwrite: bool = False
) -> Path:
    """Write the report files through :mod:`nplsim.experiments.store` (complete or not at all;
    an earlier report is replaced only with ``overwrite``)."""

    def write(staging: Path) -> None:
        for name, text in files.items():
            (staging / name).write_text(text)

    return write_directory(out_dir, "validate", write, overwrite=overwrite)


def validate(
    facts_path: str | Path = FACTS_FILE,
    seeds: int = 10,
    n_loans: int | None = None,
    out_dir: str | Path | Claim = DEFAULT_OUT,
    workers: int | None = None,
    progress: bool = False,
    command: Iterable[str] | None = None,
    *,
    overwrite: bool = False,
    yes: bool = True,
) -> pd.DataFrame:
    """Run the validation and write ``validation.md``, ``validation.csv`` and ``manifest.json``.

    Everything the user gave is checked, and the output directory claimed, before any run starts;
    an earlier report there is replaced only with ``overwrite``. Without ``yes``, more than
    :data:`~nplsim.experiments.options.LARGE_RUNS` runs are confirmed first.

    Returns:
        The summary table, one row per fact (as in ``validation.csv``).

    Raises:
        ConfigError: a bad seed count, worker count, loan count, facts file or output directory.
    """
    seed_list = seed_range(1, seeds, "--seeds", "--seeds", str(seeds))
    if workers is not None:
        resolve_workers(workers)
    facts_path = Path(facts_path)
    facts_bytes = read_bytes(facts_path, "--facts")
    facts = load_facts(facts_path)
    scenarios = check_facts(facts, facts_path, n_loans)
    n_jobs = len(set(scenarios.values())) * len(seed_list)
    workers = max(1, min(resolve_workers(workers), n_jobs))
    confirm_runs(n_jobs, yes, "validate")

    from tqdm import tqdm

    with holding(out_dir, "validate", overwrite=overwrite) as claimed:
        with tqdm(total=n_jobs, desc="validate", unit="run", disable=not progress) as bar:
            values, deal_counts = collect_values(
                facts, scenarios, seed_list, n_loans, workers, bar.update
            )
        table = summarise(facts, scenarios, values, deal_counts)
        scenario_names = list(dict.fromkeys(f.scenario for f in facts if f.id in scenarios))
        scenarios_by_name = {f.scenario: scenarios[f.id] for f in facts if f.id in scenarios}
        meta = {
            "kind": "nplsim validate",
            "facts_file": _shown_path(facts_path),
            "facts_sha256": hashlib.sha256(facts_bytes).hexdigest(),
            "scenarios": scenario_names,
            "seeds": seed_list,
            "n_loans": n_loans,
            "loan_slots": {
                name: load_scenario(scenarios_by_name[name], _slots(n_loans))[0].n_loans
                for name in scenario_names
            },
            "workers": workers,
            **_pins(set(scenarios.values())),
            "command": list(command) if command is not None else sys.argv,
        }
        files = {
            "validation.md": markdown_report(table, facts, meta),
            "validation.csv": table.to_csv(index=False),
            "manifest.json": json_text(meta),
        }
        write_report(claimed, files)
    return table


def _pins(scenarios: Iterable[str]) -> dict[str, Any]:
    """The code, package versions and every preset the facts' scenarios use."""
    found = pins()
    for scenario in sorted(scenarios):
        found["presets"].update(pins(load_scenario(scenario)[0])["presets"])
    return found


# ====================================================================== command line
def _cmd_validate(args: argparse.Namespace) -> int:
    table = validate(
        facts_path=args.facts,
        seeds=args.seeds,
        n_loans=args.loans,
        out_dir=args.out,
        workers=args.workers,
        progress=not args.quiet,
        overwrite=args.overwrite,
        yes=args.yes,
    )
    with pd.option_context(
        "display.width", 400, "display.max_colwidth", 90, "display.max_columns", 20
    ):
        print(display_table(table).to_string(index=False))
    checked = table[table["holds"] != ""]
    missed = checked[checked["holds"] != True]  # noqa: E712
    print(
        f"{len(checked) - len(missed)} of {len(checked)} checked facts hold"
        + (f"; misses: {', '.join(missed['id'])}" if len(missed) else "")
        + f"; {int((table['holds'] == '').sum())} not yet modelled"
    )
    print(f"report: {printable(Path(args.out) / 'validation.md')}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``nplsim validate`` to the command line."""
    parser = sub.add_parser(
        "validate",
        help="compare the model with the stylised facts (writes validation.md and .csv)",
        description="Run the scenarios the stylised facts need over seeds and report, per fact, "
        "the model's median and 95%% range against the fact's value and tolerance.",
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N per scenario (10)")
    parser.add_argument(
        "--loans", type=int, help="loan slots per run (default: each scenario's own, as compare)"
    )
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    add_output_flags(parser, "validation", str(DEFAULT_OUT))
    parser.set_defaults(out=str(DEFAULT_OUT))
    parser.add_argument("--facts", default=str(FACTS_FILE), help="facts TOML file (built-in)")
    add_yes_flag(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_cmd_validate)
