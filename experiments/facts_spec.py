"""The facts file of ``nplsim validate`` (``experiments/facts.toml``): its schema, how it is read,
and the check that every fact's scenario exists and covers the quarters the fact reads.

Each fact names a scenario, how the model statistic is computed from one run
(:class:`StatisticSpec`), the fact's value from the project's reference facts (docs/facts.md) and
a tolerance band (:class:`FactSpec`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from nplsim.economy.measurement import MODEL_COLUMNS
from nplsim.economy.outputs import DEAL_COLUMNS
from nplsim.market.blotter import COLUMNS as TRADE_COLUMNS
from nplsim.market.errors import (
    ConfigError,
    StrictModel,
    config_error_from_validation,
    read_toml,
)
from nplsim.market.scenario import list_scenarios, load_scenario

FACTS_FILE = Path(__file__).with_name("facts.toml")

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


def _num(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if unit in ("cny_bn", "cny_per_t"):
        return f"{value:,.0f}"
    return f"{value:.2f}"
