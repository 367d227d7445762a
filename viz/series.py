"""What the lab's charts show, as data: one definition per chart and tidy frames to draw.

A :class:`ChartDef` names a chart, its unit, how it is drawn (lines, stacked areas) and the
function that reads its series from the model: every series is a tidy frame with the columns
``quarter``, ``series`` and ``value``. The interactive charts (:mod:`nplsim.viz.charts`) and the
exported figures (:mod:`nplsim.viz.figures`) draw the same definitions. Columns are read where
they exist and NaN is a gap, so that a model with more or fewer output columns still draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from weakref import WeakKeyDictionary

import numpy as np
import pandas as pd

from nplsim.economy.model import NPLMarketModel
from nplsim.experiments.channels import CHANNEL_LABELS
from nplsim.viz.lab import LIMIT_FIELDS, PolicyLab, scheduled_reforms

TIDY = ["quarter", "series", "value"]
ALL_BANKS = "all banks"
LABEL_PX_PER_CHAR = 6.5  # reform labels: width of a character at 11 px
LABEL_ROW_PX = 14  # and the height of a row of labels
NARROWEST_PLOT_PX = 340  # the narrowest plot area a chart gets (one column at 1280 px)

# A part is a column of banks.parquet, or several joined by "+" (summed).
ASSET_PARTS = {
    "cash": "cash & reserves",
    "gov_bonds+policy_bonds": "government & policy bonds",
    "placements+investments": "placements & securities",
    "amc_bonds": "AMC bonds",
    "abs_and_pipeline": "retained ABS & pipeline",
    "performing_loans": "performing loans",
    "gross_npl": "gross NPLs",
}
FUNDING_PARTS = {
    "deposits_stable+deposits_other": "deposits",
    "interbank_borrowing+slf+mlf": "interbank & central bank",
    "equity+at1+sub_debt": "equity & capital instruments",
}
DISPOSAL_CHANNELS = CHANNEL_LABELS  # column -> label, one colour each (experiments/channels.py)
POWER_ROUTES = {"loan": "bank loan", "standalone": "stand-alone ABS", "pooled": "centre's pool"}
CAPEX_COLUMNS = ("power_capex_funded", "power_capex_unfunded")


_FRAMES: WeakKeyDictionary[NPLMarketModel, tuple[int, pd.DataFrame, pd.DataFrame]] = (
    WeakKeyDictionary()
)


def frames(model: NPLMarketModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``model.parquet`` and ``banks.parquet`` of the run so far, built once a quarter (every
    chart reads them; they change only when the model steps). Not to be changed in place."""
    cached = _FRAMES.get(model)
    if cached is None or cached[0] != model.steps:
        cached = (model.steps, model.model_frame(), model.bank_frame())
        _FRAMES[model] = cached
    return cached[1], cached[2]


def empty() -> pd.DataFrame:
    """A tidy frame without rows."""
    return pd.DataFrame(
        {
            "quarter": pd.Series(dtype="int64"),
            "series": pd.Series(dtype=object),
            "value": pd.Series(dtype=float),
        }
    )


def tidy(quarters: np.ndarray, names: list[str], values: list[np.ndarray]) -> pd.DataFrame:
    """A tidy frame of series that share their quarters, built in one go."""
    n = len(quarters)
    return pd.DataFrame(
        {
            "quarter": np.tile(np.asarray(quarters, dtype=np.int64), len(names)),
            "series": np.repeat(np.array(names, dtype=object), n),
            "value": np.concatenate(values) if values else np.empty(0),
        }
    )


def model_series(
    model: NPLMarketModel, columns: dict[str, str], scale: float = 1.0
) -> pd.DataFrame:
    """Columns of ``model.parquet`` (those that exist) as tidy series named by ``columns``."""
    frame = frames(model)[0]
    present = [c for c in columns if c in frame]
    if not present:
        return empty()
    values = [scale * frame[c].to_numpy(dtype=float) for c in present]
    return tidy(frame["quarter"].to_numpy(), [columns[c] for c in present], values)


def per_bank(model: NPLMarketModel, column: str, scale: float = 100.0) -> pd.DataFrame:
    """A ``banks.parquet`` column for each bank, and the system's from ``model.parquet``."""
    banks, system = frames(model)[1], frames(model)[0]
    if column not in banks:
        return empty()
    parts = [
        (banks["quarter"].to_numpy(dtype=np.int64), banks["bank"].to_numpy(dtype=object),
         scale * banks[column].to_numpy(dtype=float)),
    ]  # fmt: skip
    if column in system:
        quarters = system["quarter"].to_numpy(dtype=np.int64)
        parts.append((quarters, np.full(len(quarters), ALL_BANKS, dtype=object),
                      scale * system[column].to_numpy(dtype=float)))  # fmt: skip
    return pd.DataFrame({name: np.concatenate([p[k] for p in parts])
                         for k, name in enumerate(TIDY)})  # fmt: skip


def bank_sums(
    model: NPLMarketModel, parts: dict[str, str], bank: str | None = None, scale: float = 1.0
) -> pd.DataFrame:
    """Columns of ``banks.parquet`` summed over banks (or of one bank), as tidy series."""
    frame = frames(model)[1]
    if bank is not None:
        frame = frame[frame["bank"] == bank]
    quarters, index = np.unique(frame["quarter"].to_numpy(dtype=np.int64), return_inverse=True)
    names, values = [], []
    for column, label in parts.items():
        if column == "abs_and_pipeline":
            if "retained_abs" not in frame or "pending_securitisation" not in frame:
                continue
            raw = frame["retained_abs"].to_numpy(float) + frame["pending_securitisation"].to_numpy(
                float
            )
        elif all(part in frame for part in column.split("+")):
            raw = sum(frame[part].to_numpy(dtype=float) for part in column.split("+"))
        else:
            continue
        names.append(label)
        values.append(scale * np.bincount(index, weights=raw, minlength=len(quarters)))
    return tidy(quarters, names, values) if names else empty()


def disposal(model: NPLMarketModel) -> pd.DataFrame:
    """NPL face leaving the banks each quarter, by channel."""
    return bank_sums(model, DISPOSAL_CHANNELS)


def limits(lab: PolicyLab, metric: str, scale: float = 100.0) -> pd.DataFrame:
    """The supervisory limit on ``metric`` as it was in force each quarter (no rows where the
    rules have none)."""
    if metric not in LIMIT_FIELDS:
        return empty()
    values = [row.get(metric, math.nan) * scale for row in lab.limits]
    tidy = pd.DataFrame(
        {"quarter": np.arange(len(values)), "series": LIMIT_FIELDS[metric][1], "value": values}
    )
    return tidy[np.isfinite(tidy["value"])].reset_index(drop=True)


def reform_marks(model: NPLMarketModel) -> pd.DataFrame:
    """Every reform of the run (made or scheduled) with its label and the row its label takes:
    labels whose extent would meet at the narrowest plot width go one row down, so that no two
    overlap. Columns ``quarter``, ``label``, ``text``, ``row``, ``y`` (pixels from the top)."""
    marks = scheduled_reforms(model)
    horizon = max(model.config.quarters, 1)
    px_per_quarter = NARROWEST_PLOT_PX / horizon
    ends: list[float] = []  # per row, where its last label ends (in pixels)
    rows = []
    for quarter, law in sorted(marks):
        label = f"→ {law}"
        start = quarter * px_per_quarter
        end = start + 4 + LABEL_PX_PER_CHAR * len(label)
        row = next((r for r, last in enumerate(ends) if last + 4 <= start), len(ends))
        if row == len(ends):
            ends.append(end)
        else:
            ends[row] = end
        rows.append(
            {
                "quarter": quarter,
                "label": label,
                "row": row,
                "y": 2 + LABEL_ROW_PX * row,
                "text": f"reform at quarter {quarter}: {law}",
            }
        )
    return pd.DataFrame(rows, columns=["quarter", "label", "row", "y", "text"])


def columns_with_data(model: NPLMarketModel, columns: list[str]) -> bool:
    """Whether any of ``columns`` of ``model.parquet`` has a finite value yet."""
    frame = frames(model)[0]
    present = [c for c in columns if c in frame]
    return bool(present) and bool(np.isfinite(frame[present].to_numpy(dtype=float)).any())


# ====================================================================== the charts
Draw = Literal["line", "area"]


@dataclass(frozen=True)
class ChartDef:
    """One chart: its name (CSS class ``nplsim-<name>``), title, unit and way of drawing, the
    function that reads its series, the metric whose supervisory limit it draws (if any), the
    number format of its hover readout and whether its axis starts at zero."""

    name: str
    title: str
    unit: str
    draw: Draw
    series: Callable[[NPLMarketModel], pd.DataFrame]
    limit: str | None = None
    fmt: str = ",.2f"
    zero: bool = False

    def data(self, lab: PolicyLab) -> dict[str, pd.DataFrame]:
        """The chart's data sets: its series, the limit in force each quarter, the reforms."""
        model = lab.market
        assert model is not None
        data = {"series": self.series(model), "reforms": reform_marks(model)}
        if self.limit:
            data["limits"] = limits(lab, self.limit)
        return data


def _abs_primary(model: NPLMarketModel) -> pd.DataFrame:
    return model_series(model, {"abs_outstanding": "outstanding", "abs_issued": "issued"})


def power_yearly(model: NPLMarketModel, columns: dict[str, str], scale: float = 1.0):
    """Columns that the power plants set once a year, at the quarters they finance new capacity
    (where some capex was funded or found no route), so that a line joins one year to the next."""
    frame = frames(model)[0]
    tidy_frame = model_series(model, columns, scale)
    if not set(CAPEX_COLUMNS) <= set(frame.columns):
        return tidy_frame
    decided = frame["quarter"][frame[list(CAPEX_COLUMNS)].to_numpy(dtype=float).sum(axis=1) > 0]
    return tidy_frame[tidy_frame["quarter"].isin(decided)].reset_index(drop=True)


def _power_costs(model: NPLMarketModel) -> pd.DataFrame:
    columns = {f"power_quote_{r}_bp": f"{label} (quoted)" for r, label in POWER_ROUTES.items()}
    return power_yearly(model, {**columns, "power_cost_bp": "paid on funded capex"})


def _power_shares(model: NPLMarketModel) -> pd.DataFrame:
    columns = {f"power_share_{r}": label for r, label in POWER_ROUTES.items()}
    return power_yearly(model, columns, 100.0)


def _power_capex(model: NPLMarketModel) -> pd.DataFrame:
    """The year's new capacity, funded or not (roll-overs, a quarterly flow, are in Indicators)."""
    return power_yearly(model, {"power_capex_funded": "funded", "power_capex_unfunded": "unfunded"})


CHARTS: dict[str, ChartDef] = {
    c.name: c
    for c in (
        ChartDef(
            "npl-ratio",
            "NPL ratio by bank",
            "% of loans",
            "line",
            lambda m: per_bank(m, "npl_ratio"),
            limit="npl_ratio",
        ),
        ChartDef(
            "car",
            "Capital adequacy ratio by bank",
            "% of risk-weighted assets",
            "line",
            lambda m: per_bank(m, "car"),
            limit="car",
        ),
        ChartDef(
            "liquidity",
            "Liquidity ratio by bank",
            "% of short-term liabilities",
            "line",
            lambda m: per_bank(m, "liquidity_ratio"),
            limit="liquidity_ratio",
        ),
        ChartDef(
            "provision-coverage",
            "Provision coverage by bank",
            "% of gross NPLs",
            "line",
            lambda m: per_bank(m, "provision_coverage"),
        ),
        ChartDef(
            "disposal", "NPL disposal by channel, all banks", "CNY bn a quarter", "area", disposal
        ),
        ChartDef("abs-market", "ABS primary market", "CNY bn", "line", _abs_primary),
        ChartDef(
            "senior-spread",
            "Senior ABS spread (live deals)",
            "bp",
            "line",
            lambda m: model_series(m, {"senior_spread_bp": "senior spread"}),
            fmt=",.0f",
        ),
        ChartDef(
            "bid-ask",
            "Secondary market: quoted bid-ask spread",
            "bp",
            "line",
            lambda m: model_series(m, {"bid_ask_bp": "bid-ask"}),
            fmt=",.1f",
        ),
        ChartDef(
            "turnover",
            "Secondary market: turnover",
            "% of outstanding a quarter",
            "line",
            lambda m: model_series(m, {"turnover": "turnover"}, 100.0),
        ),
        ChartDef(
            "assets", "Assets", "CNY bn", "area", lambda m: bank_sums(m, ASSET_PARTS), fmt=",.0f"
        ),
        ChartDef(
            "funding",
            "Liabilities and equity",
            "CNY bn",
            "area",
            lambda m: bank_sums(m, FUNDING_PARTS),
            fmt=",.0f",
        ),
        ChartDef(
            "coal-price",
            "Coal price",
            "CNY a tonne",
            "line",
            lambda m: model_series(m, {"coal_price": "coal price"}),
            fmt=",.0f",
        ),
        ChartDef(
            "power-costs",
            "All-in cost of capex finance, quoted and paid",
            "bp a year",
            "line",
            _power_costs,
            fmt=",.0f",
        ),
        ChartDef(
            "power-shares",
            "Capex funded, share by route",
            "% of funded capex",
            "line",
            _power_shares,
            fmt=",.0f",
            zero=True,
        ),
        ChartDef(
            "power-capex",
            "Plants' capex finance",
            "CNY bn a year",
            "line",
            _power_capex,
            zero=True,
        ),
        ChartDef(
            "power-defaults",
            "Power plants in default",
            "plants",
            "line",
            lambda m: model_series(m, {"power_plants_in_default": "plants in default"}),
            fmt=",.0f",
        ),
        ChartDef(
            "power-npl",
            "Banks' bad assets from power loans",
            "CNY bn",
            "line",
            lambda m: model_series(
                m,
                {
                    "power_bank_npl": "power NPL stock",
                    "power_npl_new": "new power NPLs",
                    "power_abs_outstanding": "power ABS outstanding",
                },
            ),
        ),
    )
}

POWER_CHARTS = (
    "coal-price",
    "power-costs",
    "power-shares",
    "power-capex",
    "power-defaults",
    "power-npl",
)
SECONDARY_COLUMNS = ["bid_ask_bp", "turnover"]


def indicator_chart(column: str, per_bank_column: bool) -> ChartDef:
    """Any numeric output column as a chart: a column of ``banks.parquet`` by bank, else one of
    ``model.parquet`` (so that columns added to the model appear without changes here)."""
    if per_bank_column:
        return ChartDef(
            "indicator",
            column.replace("_", " ") + " by bank",
            column,
            "line",
            lambda m: per_bank(m, column, 1.0),
            fmt=",.4g",
        )
    return ChartDef(
        "indicator",
        column.replace("_", " "),
        column,
        "line",
        lambda m: model_series(m, {column: column}),
        fmt=",.4g",
    )


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric columns of an output frame other than the quarter."""
    return [c for c in frame.columns if c != "quarter" and pd.api.types.is_numeric_dtype(frame[c])]
