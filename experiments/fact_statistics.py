"""The statistics of ``nplsim validate``: one run (one scenario, one seed) reduced to the number
compared with each fact, as its :class:`~nplsim.experiments.facts_spec.StatisticSpec` says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments.facts_spec import StatisticSpec, _slots
from nplsim.market.loans import recovery_timing_factor


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
