"""Views of the policy lab: KPI cards, the law in force with "Reform now", the chart grids of each
tab, the deals table and the holdings network.

Every view takes a :class:`~nplsim.viz.lab.PolicyLab` whose ``market`` is running, and ``tick``,
Mesa's update counter: the page reads the counter once and passes it down, so that a step (Step,
Play, a reform) re-renders the tab on screen in one pass. Charts are interactive Vega-Lite charts
(:mod:`nplsim.viz.charts`); the network is an image. Which tabs and charts appear depends on what
the scenario has: power plants, a secondary market, deals.
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import reacton.ipyvuetify as rv
import reacton.ipywidgets as widgets
import solara
from mesa.visualization.utils import force_update

from nplsim.market.errors import ConfigError
from nplsim.market.regime import LegalRegime, list_presets, load_regime
from nplsim.viz import series
from nplsim.viz.charts import ChartCard
from nplsim.viz.figures import figure_bytes, network_figure
from nplsim.viz.lab import LEVER_FIELDS, PolicyLab, scheduled_reforms
from nplsim.viz.series import CHARTS

DEFAULT_REFORM = "strengthened"  # the study's recommended law, offered first
NETWORK_EVERY_Q = 4  # the network is redrawn every few quarters (and at every reform)
DEAL_COLUMNS = {
    "deal_id": ("deal", 0),
    "originator": ("originator", None),
    "quarter_issued": ("issued q", 0),
    "pool_principal": ("pool CNY bn", 2),
    "issued_total": ("ABS CNY bn", 2),
    "senior_share": ("senior %", 1),
    "senior_rating": ("rating", None),
    "senior_spread_bp": ("spread bp", 0),
    "senior_bid_to_cover": ("bid/cover", 2),
    "retained": ("retained CNY bn", 2),
    "guarantor": ("guarantor", None),
}
DEALS_PER_PAGE = 10


# ====================================================================== read-outs
@dataclass(frozen=True)
class Kpi:
    """One headline number of the current quarter."""

    label: str
    value: str
    note: str
    ok: bool = True


def _pct(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{100 * x:.2f}%"


def kpis(lab: PolicyLab) -> list[Kpi]:
    """NPL ratio, CAR, liquidity ratio, ABS outstanding and senior spread, with their limits."""
    model = lab.market
    assert model is not None
    m = model.metrics
    limits = lab.limits[-1]
    frame = series.frames(model)[0]
    before = frame.iloc[-2] if len(frame) > 1 else frame.iloc[-1]

    def change(column: str) -> str:
        delta = 100 * (m[column] - before[column])
        return "" if not math.isfinite(delta) else f"; {delta:+.2f} pp on quarter"

    def bounded(label: str, column: str, what: str, above_is_bad: bool) -> Kpi:
        limit, value = limits[column], m[column]
        breached = value > limit if above_is_bad else value < limit
        note = f"{what} {_pct(limit)}" if math.isfinite(limit) else "no limit in force"
        return Kpi(label, _pct(value), note + change(column), not breached)

    spread = m["senior_spread_bp"]
    return [
        bounded("NPL ratio", "npl_ratio", "target ≤", True),
        bounded("CAR", "car", "minimum", False),
        bounded("Liquidity ratio", "liquidity_ratio", "minimum", False),
        Kpi(
            "ABS outstanding",
            f"CNY {m['abs_outstanding']:,.1f} bn",
            f"issued this quarter CNY {m['abs_issued']:,.1f} bn",
        ),
        Kpi(
            "Senior spread",
            "—" if not math.isfinite(spread) else f"{spread:,.0f} bp",
            "balance-weighted, live deals" if math.isfinite(spread) else "no live deal",
        ),
    ]


def format_value(value: object) -> str:
    """A regime field value as the law panel shows it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    return str(value)


def law_rows(lab: PolicyLab) -> list[tuple[str, str, str]]:
    """(field, value in force, the preset's value where it differs) for the key levers and every
    other field in which the law in force differs from its preset."""
    model = lab.market
    assert model is not None
    regime = model.regime
    try:
        preset: LegalRegime | None = load_regime(model.regime_name)
    except ConfigError:
        preset = None
    shown = [f for f in LEVER_FIELDS if f in LegalRegime.model_fields]
    shown += [
        f
        for f in LegalRegime.model_fields
        if f not in shown and preset is not None and getattr(preset, f) != getattr(regime, f)
    ]
    rows = []
    for name in shown:
        now = getattr(regime, name)
        before = getattr(preset, name) if preset is not None else now
        rows.append((name, format_value(now), "" if before == now else format_value(before)))
    return rows


def law_key(lab: PolicyLab) -> tuple:
    """What the law panel shows, in short: the law in force, the reforms and which of them have
    happened, whether the run is over."""
    model = lab.market
    assert model is not None
    reforms = tuple(scheduled_reforms(model))
    return (id(model), model.regime_name, reforms,
            tuple(q <= model.quarter for q, _ in reforms),
            model.quarter >= model.config.quarters)  # fmt: skip


def deals_table(lab: PolicyLab, limit: int = 200) -> pd.DataFrame:
    """The most recent deals, newest first, rounded for reading."""
    model = lab.market
    assert model is not None
    frame = model.deal_frame()
    if frame.empty:
        return pd.DataFrame(columns=[label for label, _ in DEAL_COLUMNS.values()])
    frame["senior_share"] = (
        100 * frame["senior_size"] / frame["issued_total"].where(frame["issued_total"] > 0)
    )
    present = [c for c in DEAL_COLUMNS if c in frame]
    table = frame[present].iloc[::-1].head(limit).reset_index(drop=True)
    for column in present:
        digits = DEAL_COLUMNS[column][1]
        if digits is not None:
            table[column] = table[column].astype(float).round(digits)
    return table.rename(columns={c: DEAL_COLUMNS[c][0] for c in present})


# ====================================================================== components
@solara.component
def KpiCards(lab: PolicyLab, tick: int = 0) -> None:
    """Headline numbers of the current quarter; red where a supervisory limit is breached."""
    with solara.Row(gap="8px", style={"flex-wrap": "wrap"}, classes=["nplsim-kpis"]):
        for kpi in kpis(lab):
            card = solara.Card(
                margin=0,
                classes=["nplsim-kpi"],
                style={"min-width": "150px", "flex": "1 1 150px"},
            )
            with card, solara.Column(gap="0px"):
                solara.Text(
                    kpi.label,
                    classes=["nplsim-kpi-label", "nplsim-muted"],
                    style={"font-size": "13px"},
                )
                solara.Text(
                    kpi.value,
                    style={"font-size": "20px", "font-weight": "600"},
                    classes=["nplsim-kpi-value", "nplsim-ok" if kpi.ok else "nplsim-bad"],
                )
                solara.Text(
                    kpi.note,
                    classes=["nplsim-kpi-note", "nplsim-muted"],
                    style={"font-size": "12px"},
                )


@solara.component
def LawPanel(
    lab: PolicyLab, on_reform: Callable[[], None] = force_update, state: object = None
) -> None:
    """The law in force: its key levers and every field that differs from its preset, with the
    preset's value; the "Reform now" control and the run's reforms. ``state`` (see
    :func:`law_key`) changes when any of that does: the panel is drawn again only then."""
    model = lab.market
    assert model is not None
    presets = list_presets()
    others = [p for p in presets if p != model.regime_name] or presets
    default = DEFAULT_REFORM if DEFAULT_REFORM in others else others[0]
    choice, set_choice = solara.use_state(default)
    choice = choice if choice in others else default  # not the law already in force
    at_horizon = model.quarter >= model.config.quarters

    def reform() -> None:
        lab.reform_now(choice)
        on_reform()

    changed = [row for row in law_rows(lab) if row[2]]
    note = f" ({len(changed)} field{'s' * (len(changed) != 1)} changed)" if changed else ""
    with solara.Card(margin=0, classes=["nplsim-card", "nplsim-law"]):
        solara.Text(
            f"Law in force: {model.regime_name}{note}",
            classes=["nplsim-regime-name"],
            style={"font-weight": "600"},
        )
        with solara.Div(classes=["nplsim-law-grid"]):
            for name, now, before in law_rows(lab):
                text = f"{name.replace('_', ' ')}: {now}"
                solara.Text(
                    text + (f" (preset {before})" if before else ""),
                    classes=["nplsim-lever", f"nplsim-lever-{name}"]
                    + (["nplsim-lever-changed"] if before else []),
                    style={"font-size": "13px", "font-weight": "600" if before else "normal"},
                )
        with solara.Row(gap="8px", style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.Select(
                "Reform to",
                values=presets,
                value=choice,
                on_value=set_choice,
                style={"max-width": "260px"},
            )
            solara.Button(
                "Reform now",
                color="warning",
                on_click=reform,
                disabled=at_horizon,
                classes=["nplsim-reform-now"],
            )
            solara.Text(
                "takes effect next quarter", classes=["nplsim-muted"], style={"font-size": "12px"}
            )
        for quarter, law in scheduled_reforms(model):
            when = "scheduled for" if quarter > model.quarter else "at"
            solara.Text(
                f"reform {when} quarter {quarter}: {law}",
                classes=["nplsim-reform-log"],
                style={"font-size": "13px"},
            )


@solara.component
def ChartGrid(lab: PolicyLab, names: list[str], tick: int = 0) -> None:
    """Charts in a grid of cards: two columns where the page is wide enough, else one."""
    with solara.Div(classes=["nplsim-grid"]):
        for name in names:
            ChartCard(CHARTS[name], lab, tick=tick)


@solara.component
def OverviewTab(lab: PolicyLab, tick: int = 0) -> None:
    """Headline numbers, the main charts and the law."""
    KpiCards(lab, tick=tick)
    ChartGrid(lab, ["npl-ratio", "car", "disposal", "abs-market"], tick=tick)
    LawPanel(lab, state=law_key(lab))


@solara.component
def BanksTab(lab: PolicyLab, tick: int = 0) -> None:
    """Balance sheets (all banks or one) and the banks' ratios."""
    model = lab.market
    assert model is not None
    names = [series.ALL_BANKS] + [bank.name for bank in model.banks]
    bank, set_bank = solara.use_state(series.ALL_BANKS)
    chosen = None if bank == series.ALL_BANKS else bank
    solara.Select(
        "Balance sheet of",
        values=names,
        value=bank,
        on_value=set_bank,
        style={"max-width": "320px"},
    )
    with solara.Div(classes=["nplsim-grid"]):
        for name, parts in (("assets", series.ASSET_PARTS), ("funding", series.FUNDING_PARTS)):
            definition = CHARTS[name]
            one = series.ChartDef(
                name,
                f"{definition.title}: {bank}",
                definition.unit,
                "area",
                lambda m, p=parts: series.bank_sums(m, p, chosen),
                fmt=definition.fmt,
            )
            ChartCard(one, lab, key_extra=bank, tick=tick)
        for name in ("liquidity", "provision-coverage"):
            ChartCard(CHARTS[name], lab, tick=tick)


@solara.component
def AbsTab(lab: PolicyLab, tick: int = 0) -> None:
    """The ABS primary and secondary markets and the deals."""
    model = lab.market
    assert model is not None
    secondary = series.columns_with_data(model, series.SECONDARY_COLUMNS)
    names = ["abs-market", "senior-spread"] + (["bid-ask", "turnover"] if secondary else [])
    ChartGrid(lab, names, tick=tick)
    if not secondary:
        solara.Info(
            "No secondary market yet: bid-ask spread and turnover appear once tranches trade.",
            dense=True,
            classes=["nplsim-no-secondary"],
        )
    DealsTable(lab, tick=tick)


@solara.component
def DealsTable(lab: PolicyLab, tick: int = 0) -> None:
    """The deals issued so far, newest first, in pages of ten."""
    model = lab.market
    assert model is not None
    table = deals_table(lab)
    count = len(model.desk.deal_rows)
    with solara.Card(margin=0, classes=["nplsim-card", "nplsim-deals"]), solara.Column(gap="4px"):
        solara.Text(
            f"{count} deal{'' if count == 1 else 's'} issued",
            style={"font-weight": "600"},
            classes=["nplsim-deal-count"],
        )
        if not len(table):
            solara.Text("No deal issued yet.", classes=["nplsim-no-deals"])
            return
        headers = [
            {"text": c, "value": c, "align": "start" if table[c].dtype == object else "end"}
            for c in table.columns
        ]
        items = table.astype(object).where(table.notna(), "—").to_dict("records")
        rv.DataTable(
            headers=headers,
            items=items,
            items_per_page=DEALS_PER_PAGE,
            dense=True,
            footer_props={"items-per-page-options": [DEALS_PER_PAGE]},
            class_="nplsim-deals-table",
        )


@solara.component
def HoldingsTab(lab: PolicyLab, tick: int = 0) -> None:
    """Who holds what; redrawn every few quarters and at every reform."""
    model = lab.market
    assert model is not None
    key = (id(model), model.quarter // NETWORK_EVERY_Q, len(model.config.events))
    pngs = solara.use_memo(
        lambda: [figure_bytes(network_figure(model, dark), dpi=110) for dark in (False, True)],
        [key],
    )
    with solara.Card(margin=0, classes=["nplsim-card"]):
        for png, theme_name in zip(pngs, ("light", "dark"), strict=True):
            widgets.Image(
                value=png,
                format="png",
                layout={"width": "100%", "max_width": "990px", "height": "auto"},
                _dom_classes=["nplsim-figure", "nplsim-network", f"nplsim-{theme_name}-only"],
            )


@solara.component
def PowerTab(lab: PolicyLab, tick: int = 0) -> None:
    """The power plants: coal price, route costs and shares, capex finance, defaults, NPLs."""
    model = lab.market
    assert model is not None
    solara.Text(
        f"{len(model.plants)} power plants; financing is chosen once a year.",
        classes=["nplsim-power-note"],
    )
    ChartGrid(lab, list(series.POWER_CHARTS), tick=tick)


@solara.component
def IndicatorsTab(lab: PolicyLab, tick: int = 0) -> None:
    """Any output column over time: of the system (``model.parquet``) or by bank."""
    model = lab.market
    assert model is not None
    model_frame, bank_frame = series.frames(model)
    system = series.numeric_columns(model_frame)
    by_bank = [f"{c} (by bank)" for c in series.numeric_columns(bank_frame) if c != "bank"]
    choice, set_choice = solara.use_state(system[0])
    if choice not in system + by_bank:
        choice = system[0]
    solara.Select(
        "Indicator",
        values=system + by_bank,
        value=choice,
        on_value=set_choice,
        style={"max-width": "420px"},
    )
    per_bank = choice.endswith(" (by bank)")
    column = choice.removesuffix(" (by bank)")
    ChartCard(series.indicator_chart(column, per_bank), lab, key_extra=choice, tick=tick)


TABS: list[tuple[str, Callable[[PolicyLab], bool], Callable[..., object]]] = [
    ("Overview", lambda lab: True, OverviewTab),
    ("Banks", lambda lab: True, BanksTab),
    ("ABS market & deals", lambda lab: True, AbsTab),
    ("Holdings", lambda lab: True, HoldingsTab),
    ("Power", lambda lab: bool(lab.market.plants), PowerTab),
    ("Indicators", lambda lab: True, IndicatorsTab),
]
