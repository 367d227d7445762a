"""Views of the policy lab: KPI cards, bank balance sheets and ratios, disposal flows, the ABS
market, the deals table, the who-holds-what network, and the "reform now" control.

Every view is a Solara component that takes a running :class:`~market.model.NPLMarketModel`.
Figures are drawn with matplotlib's object API (``matplotlib.figure.Figure``, never ``pyplot``
state) by plain ``*_figure`` functions that the tests and ``benchmarks/render.py`` call directly;
the components only turn them into PNG images, re-drawn when the model's quarter or its reforms
change. Every time-series chart marks each reform quarter with a vertical line.
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import reacton.ipywidgets as widgets
import solara
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mesa.visualization.utils import force_update, update_counter

from nplsim.agents.spv import LIVE
from nplsim.economy.model import NPLMarketModel
from nplsim.economy.reforms import apply_regime
from nplsim.market.regime import list_presets, load_regime

FIGURE_DPI = 80
FIGURE_SIZE = (6.0, 3.3)  # inches: fits one cell of Mesa's grid (half the page, ~390 px high)
REFORM_COLOR = "#c0392b"
DEFAULT_REFORM = "strengthened"  # the study's recommended law, offered first
NETWORK_EVERY_Q = 4  # the network is redrawn every few quarters (and at every reform)
NETWORK_MAX_SPVS = 24  # most recent live deals drawn; older ones are counted in the title

ASSET_PARTS = (
    ("cash", "cash & reserves"),
    ("liquid_bonds", "government & policy bonds"),
    ("other_securities", "placements & securities"),
    ("amc_bonds", "AMC bonds"),
    ("abs_and_pipeline", "retained ABS & pipeline"),
    ("performing_loans", "performing loans"),
    ("gross_npl", "gross NPLs"),
)
FUNDING_PARTS = (
    ("deposits", "deposits"),
    ("wholesale", "interbank & central bank"),
    ("equity", "equity & capital instruments"),
)
DISPOSAL_CHANNELS = (
    ("npl_resolved", "worked out"),
    ("npl_sold_amc", "sold to AMCs"),
    ("npl_securitised", "securitised"),
    ("npl_carved_out", "policy carve-out"),
    ("written_off", "written off"),
)
DEAL_COLUMNS = {
    "deal_id": "deal",
    "originator": "originator",
    "quarter_issued": "issued q",
    "pool_principal": "pool CNY bn",
    "issued_total": "ABS CNY bn",
    "senior_share": "senior %",
    "senior_rating": "rating",
    "senior_spread_bp": "spread bp",
    "senior_bid_to_cover": "bid/cover",
    "retained": "retained CNY bn",
    "guarantor": "guarantor",
}
REGIME_LEVERS = (
    ("bankruptcy_remoteness", "bankruptcy remoteness"),
    ("investor_protection", "investor protection"),
    ("disclosure_level", "disclosure"),
    ("debtor_notice", "debtor notice"),
    ("risk_retention", "risk retention"),
    ("derecognition_allowed", "derecognition"),
    ("investor_classes_allowed", "investor classes"),
    ("state_guarantee_scheme", "state guarantee"),
    ("enforcement_efficiency", "enforcement"),
)


# ====================================================================== model read-outs
def reforms(model: NPLMarketModel) -> list[tuple[int, str]]:
    """(quarter, detail) of every regime reform logged so far, scheduled or made in the lab."""
    return [(e["quarter"], e["detail"]) for e in model.world.events.rows if e["kind"] == "reform"]


def refresh_key(model: NPLMarketModel, every_q: int = 1) -> tuple[NPLMarketModel, int, int]:
    """What a view depends on: the model, its quarter (rounded down to ``every_q``), reforms."""
    return model, model.steps // every_q, len(reforms(model))


def apply_reform(model: NPLMarketModel, preset: str) -> None:
    """Put ``preset`` in force from the next quarter on, as a scheduled reform would (the same
    ``apply_regime``); the reform is logged at the current quarter.

    Raises:
        ConfigError: ``preset`` is not a known regime preset.
    """
    apply_regime(model.world, preset, load_regime(preset), f"{preset} (reform now)")


def format_lever(value: object) -> str:
    """A regime field value as the law panel shows it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    return str(value)


@dataclass(frozen=True)
class Kpi:
    """One headline number of the current quarter."""

    label: str
    value: str
    note: str
    ok: bool = True


def kpis(model: NPLMarketModel) -> list[Kpi]:
    """NPL ratio, CAR, liquidity ratio, ABS outstanding and senior spread, with their limits."""
    m, rules = model.metrics, model.prudential
    car_required = rules.requirements(systemic=True)["total"]
    frame = model.model_frame()
    before = frame.iloc[-2] if len(frame) > 1 else frame.iloc[-1]

    def change(column: str, scale: float, unit: str) -> str:
        delta = (m[column] - before[column]) * scale
        return "" if not math.isfinite(delta) else f"{delta:+.2f} {unit} on quarter"

    def pct(x: float) -> str:
        return "—" if not math.isfinite(x) else f"{100 * x:.2f}%"

    spread = m["senior_spread_bp"]
    return [
        Kpi(
            "NPL ratio",
            pct(m["npl_ratio"]),
            f"target ≤ {rules.npl_ratio_target:.0%}; {change('npl_ratio', 100, 'pp')}",
            not m["npl_ratio"] > rules.npl_ratio_target,
        ),
        Kpi(
            "CAR",
            pct(m["car"]),
            f"requirement {car_required:.1%}; {change('car', 100, 'pp')}",
            not m["car"] < car_required,
        ),
        Kpi(
            "Liquidity ratio",
            pct(m["liquidity_ratio"]),
            f"minimum {rules.liquidity_ratio_min:.0%}; {change('liquidity_ratio', 100, 'pp')}",
            not m["liquidity_ratio"] < rules.liquidity_ratio_min,
        ),
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


# ====================================================================== figures
def _new_figure(size: tuple[float, float], left: float, right: float, bottom: float) -> Figure:
    """A figure with its own Agg canvas and fixed margins (constrained layout would double the
    drawing time of these small figures)."""
    fig = Figure(figsize=size, dpi=FIGURE_DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left, right=right, bottom=bottom, top=0.9, wspace=0.3)
    return fig


def _wipe(fig: Figure) -> None:
    """Remove a figure's data, keeping its axes, tick machinery and Agg renderer (with its
    text-metrics cache): drawing into it again saves about a third of the time."""
    for legend in list(fig.legends):
        legend.remove()
    for ax in fig.axes:
        for artist in (*ax.lines, *ax.collections, *ax.patches, *ax.texts):
            artist.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.relim()  # forget the old data limits
        ax.set_prop_cycle(None)  # the same colours for the same series every time


def chart_axes(
    fig: Figure | None,
    ncols: int = 1,
    size: tuple[float, float] = FIGURE_SIZE,
    right: float = 0.98,
    twin: bool = False,
    left: float = 0.11,
    bottom: float = 0.15,
) -> tuple[Figure, list[Axes]]:
    """The axes of a one-row chart: ``fig`` wiped for drawing again when it has that layout,
    else a new figure. ``twin`` adds a right-hand y axis to the first axes (returned last)."""
    if fig is not None and len(fig.axes) == ncols + twin:
        _wipe(fig)
        return fig, list(fig.axes)
    fig = _new_figure(size, left, right, bottom)
    axes = list(fig.subplots(1, ncols, squeeze=False)[0])
    if twin:
        axes.append(axes[0].twinx())
    return fig, axes


def _time_axis(ax: Axes, model: NPLMarketModel, marks: list[tuple[int, str]]) -> None:
    """Quarter axis over the whole horizon, with a marker at every reform."""
    ax.set_xlim(0, max(model.config.quarters, model.steps, 1))
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_xlabel("quarter", fontsize=8, labelpad=1)
    ax.grid(alpha=0.3, linewidth=0.6)
    ax.tick_params(labelsize=7)
    for quarter, detail in marks:
        ax.axvline(quarter, color=REFORM_COLOR, linestyle="--", linewidth=1.4)
        ax.annotate(
            "reform: " + detail.split(" ")[0],
            xy=(quarter, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            va="top",
            fontsize=7,
            color=REFORM_COLOR,
        )


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
    return buffer.getvalue()


def balance_sheet_figure(
    model: NPLMarketModel, bank: str | None = None, fig: Figure | None = None
) -> Figure:
    """Stacked assets (provisions below zero) and funding over time, of one bank or all."""
    frame = model.bank_frame()
    frame["abs_and_pipeline"] = frame["retained_abs"] + frame["pending_securitisation"]
    frame["liquid_bonds"] = frame["gov_bonds"] + frame["policy_bonds"]
    frame["other_securities"] = frame["placements"] + frame["investments"]
    frame["deposits"] = frame["deposits_stable"] + frame["deposits_other"]
    frame["wholesale"] = frame["interbank_borrowing"] + frame["slf"] + frame["mlf"]
    frame["equity"] = frame["equity"] + frame["at1"] + frame["sub_debt"]
    if bank is not None:
        frame = frame[frame["bank"] == bank]
    columns = [c for c, _ in ASSET_PARTS] + [c for c, _ in FUNDING_PARTS] + ["provisions"]
    by_q = frame.groupby("quarter")[columns].sum() / 1e3
    fig, (assets, funding) = chart_axes(fig, 2, (6.0, 3.6), bottom=0.25)
    quarters = by_q.index.to_numpy()
    assets.stackplot(
        quarters,
        *(by_q[c].to_numpy() for c, _ in ASSET_PARTS),
        labels=[label for _, label in ASSET_PARTS],
        alpha=0.85,
    )
    assets.fill_between(
        quarters, -by_q["provisions"].to_numpy(), 0, color="0.45", label="provisions (−)"
    )
    funding.stackplot(
        quarters,
        *(by_q[c].to_numpy() for c, _ in FUNDING_PARTS),
        labels=[label for _, label in FUNDING_PARTS],
        colors=["#5dade2", "#f5b041", "#58d68d"],
        alpha=0.85,
    )
    marks = reforms(model)
    for ax, title in ((assets, "assets"), (funding, "liabilities & equity")):
        _time_axis(ax, model, marks)
        ax.set_title(f"{bank or 'all banks'}: {title}", fontsize=9)
    assets.set_ylabel("CNY trn", fontsize=8)
    handles, labels = assets.get_legend_handles_labels()
    more_handles, more_labels = funding.get_legend_handles_labels()
    fig.legend(
        handles + more_handles, labels + more_labels, loc="lower center", ncol=5, fontsize=6,
        frameon=False,
    )  # fmt: skip
    return fig


def bank_ratios_figure(model: NPLMarketModel, fig: Figure | None = None) -> Figure:
    """NPL ratio and CAR of each bank, with the supervisory target and minimum."""
    frame = model.bank_frame()
    fig, (npl, car) = chart_axes(fig, 2)
    for name, rows in frame.groupby("bank", sort=False):
        npl.plot(rows["quarter"], 100 * rows["npl_ratio"], label=name, linewidth=1.4)
        car.plot(rows["quarter"], 100 * rows["car"], label=name, linewidth=1.4)
    rules = model.prudential
    npl.axhline(100 * rules.npl_ratio_target, color="0.3", linestyle=":", label="target")
    car.axhline(
        100 * rules.requirements(systemic=True)["total"], color="0.3", linestyle=":",
        label="requirement",
    )  # fmt: skip
    marks = reforms(model)
    for ax, title in ((npl, "NPL ratio, % of loans"), (car, "capital adequacy ratio, % of RWA")):
        _time_axis(ax, model, marks)
        ax.set_title(title, fontsize=9)
    npl.set_ylabel("%", fontsize=8)
    npl.legend(fontsize=6, loc="upper right", framealpha=0.8)
    return fig


def disposal_figure(model: NPLMarketModel, fig: Figure | None = None) -> Figure:
    """NPL face leaving the banks each quarter, by disposal channel (stacked)."""
    frame = model.bank_frame()
    by_q = frame.groupby("quarter")[[c for c, _ in DISPOSAL_CHANNELS]].sum()
    by_q = by_q[by_q.index > 0]
    fig, (ax,) = chart_axes(fig)
    # stacked steps, one polygon per channel: 40 quarters x 5 channels of bars draw 5x slower
    ax.stackplot(
        by_q.index.to_numpy(),
        *(by_q[column].to_numpy() for column, _ in DISPOSAL_CHANNELS),
        labels=[label for _, label in DISPOSAL_CHANNELS],
        step="mid",
        alpha=0.9,
    )
    _time_axis(ax, model, reforms(model))
    ax.set_title("NPL disposal by channel, all banks", fontsize=9)
    ax.set_ylabel("CNY bn per quarter", fontsize=8)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.8)
    return fig


def has_secondary_market(model: NPLMarketModel) -> bool:
    """Whether the model has produced any bid-ask or turnover observation yet."""
    frame = model.model_frame()
    observed = frame[["bid_ask_bp", "turnover"]].to_numpy(dtype=float)
    return bool(np.isfinite(observed).any())


def abs_market_figure(model: NPLMarketModel, fig: Figure | None = None) -> Figure:
    """ABS issued (bars) and outstanding (line) with the senior spread (right axis); below, once
    the secondary market exists, its quoted bid-ask spread and turnover."""
    frame = model.model_frame()
    secondary = has_secondary_market(model)
    if fig is not None and len(fig.axes) == (4 if secondary else 2):
        _wipe(fig)
        axes = fig.axes
    elif secondary:
        fig = _new_figure((6.0, 4.6), left=0.11, right=0.88, bottom=0.1)
        grid = fig.add_gridspec(2, 2, height_ratios=(1.5, 1.0), hspace=0.6)
        primary = fig.add_subplot(grid[0, :])
        axes = [primary, primary.twinx(), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])]
    else:
        fig, axes = chart_axes(None, size=(6.0, 3.0), right=0.88, twin=True)
    ax, spread = axes[0], axes[1]
    marks = reforms(model)
    ax.vlines(frame["quarter"], 0, frame["abs_issued"], color="#85c1e9", lw=4, label="issued")
    ax.plot(frame["quarter"], frame["abs_outstanding"], color="#1f618d", label="outstanding")
    ax.set_ylabel("CNY bn", fontsize=8)
    spread.plot(
        frame["quarter"], frame["senior_spread_bp"], color="#d35400", marker=".", label="spread"
    )
    spread.set_ylabel("senior spread, bp", fontsize=8)
    spread.tick_params(labelsize=7)
    _time_axis(ax, model, marks)
    ax.set_title("ABS primary market", fontsize=9)
    lines, labels = ax.get_legend_handles_labels()
    more_lines, more_labels = spread.get_legend_handles_labels()
    ax.legend(lines + more_lines, labels + more_labels, fontsize=7, loc="upper left")
    if secondary:
        bid_ask, turnover = axes[2], axes[3]
        bid_ask.plot(frame["quarter"], frame["bid_ask_bp"], color="#7d3c98", marker=".")
        bid_ask.set_title("secondary market: bid-ask spread, bp", fontsize=8)
        turnover.plot(frame["quarter"], 100 * frame["turnover"], color="#117a65", marker=".")
        turnover.set_title("turnover, % of outstanding a quarter", fontsize=8)
        for small in (bid_ask, turnover):
            _time_axis(small, model, marks)
    return fig


def holdings_graph(model: NPLMarketModel) -> nx.DiGraph:
    """Who holds what: originators → live SPVs (pool face) → holder groups (tranche notional),
    and banks → AMCs (NPL face sold in auctions so far). Edge weights in CNY bn."""
    graph = nx.DiGraph()
    for bank in model.banks:
        graph.add_node(bank.name, layer=0, kind="bank")
    sold: dict[tuple[str, str], float] = defaultdict(float)
    for trade in model.blotter.rows:
        if trade["market"] == "amc_auction":
            sold[trade["seller"], trade["buyer"]] += trade["face"]
    for (seller, buyer), face in sold.items():
        graph.add_node(buyer, layer=1, kind="amc")
        graph.add_edge(seller, buyer, weight=face)
    live = [spv for spv in model.spvs if spv.state == LIVE][-NETWORK_MAX_SPVS:]
    for spv in live:
        graph.add_node(spv.name, layer=2, kind="spv")
        origin = spv.originator.name
        if origin not in graph:
            graph.add_node(origin, layer=1, kind="amc")
        graph.add_edge(origin, spv.name, weight=spv.pool.face)
        for tranche, owners in spv.holders.items():
            for account, notional in owners.items():
                if notional <= 1e-9:
                    continue
                group = _holder_group(model, account)
                graph.add_node(group, layer=3, kind="holder")
                previous = graph.get_edge_data(spv.name, group, {"weight": 0.0})["weight"]
                graph.add_edge(spv.name, group, weight=previous + notional, tranche=tranche)
    graph.graph["spvs_hidden"] = sum(spv.state == LIVE for spv in model.spvs) - len(live)
    return graph


def _holder_group(model: NPLMarketModel, account: int) -> str:
    investor = next((i for i in model.investors if i.account == account), None)
    if investor is not None:
        return investor.spec.investor_class.replace("_", " ")
    if any(o.account == account for o in (*model.banks, *model.amcs)):
        return "originator (retained)"
    if account == model.underwriter.account:
        return "underwriter"
    return model.ledger.names[account]


NODE_COLORS = {"bank": "#1f618d", "amc": "#7d3c98", "spv": "#d35400", "holder": "#117a65"}


def network_figure(model: NPLMarketModel, fig: Figure | None = None) -> Figure:
    """The holdings graph in four columns: banks, AMCs, SPVs, holders."""
    graph = holdings_graph(model)
    fig, (ax,) = chart_axes(fig, size=(6.0, 3.6), left=0.01, right=0.99)
    ax.set_axis_off()
    hidden = graph.graph["spvs_hidden"]
    title = "who holds what: banks → AMCs / SPVs → investors"
    ax.set_title(title + (f" (+{hidden} older live deals)" if hidden else ""), fontsize=9)
    if graph.number_of_edges() == 0:
        ax.text(0.5, 0.5, "no sales or deals yet", ha="center", va="center", fontsize=9)
        return fig
    pos = nx.multipartite_layout(graph, subset_key="layer")
    weights = np.array([w for _, _, w in graph.edges(data="weight")], dtype=float)
    widths = 0.4 + 4.0 * np.sqrt(weights / weights.max())
    segments = [(pos[u], pos[v]) for u, v in graph.edges()]
    ax.add_collection(LineCollection(segments, linewidths=widths, colors="0.6", alpha=0.6))
    nodes = list(graph.nodes)
    xy = np.array([pos[n] for n in nodes])
    colors = [NODE_COLORS[graph.nodes[n]["kind"]] for n in nodes]
    ax.scatter(xy[:, 0], xy[:, 1], s=40, c=colors, zorder=3)
    for name, (x, y) in zip(nodes, xy, strict=True):
        kind = graph.nodes[name]["kind"]
        if kind == "spv" and len(nodes) > 30:
            continue  # many deals: the SPV column speaks for itself
        ax.annotate(
            name, (x, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=6
        )
    ax.set_xlim(xy[:, 0].min() - 0.05, xy[:, 0].max() + 0.4)
    ax.set_ylim(xy[:, 1].min() - 0.08, xy[:, 1].max() + 0.08)
    return fig


def deals_table(model: NPLMarketModel, limit: int = 50) -> pd.DataFrame:
    """The most recent deals, newest first, rounded for reading."""
    frame = model.deal_frame()
    frame["senior_share"] = (
        100 * frame["senior_size"] / frame["issued_total"].where(frame["issued_total"] > 0)
    )
    table = frame[list(DEAL_COLUMNS)].rename(columns=DEAL_COLUMNS).iloc[::-1].head(limit)
    return table.round(2).reset_index(drop=True)


# ====================================================================== components
@solara.component
def FigureView(
    draw: Callable[[Figure | None], Figure], key: object, name: str, max_height_px: int = 360
) -> None:
    """A chart as a PNG image, drawn again (into the same figure) only when ``key`` changes.

    The image fills the width of its cell but never grows taller than ``max_height_px``, so a view
    stays inside its cell of Mesa's grid whatever the window size.
    """
    figure = solara.use_memo(lambda: [None], [])  # this view's figure, kept between renders

    def render() -> bytes:
        figure[0] = draw(figure[0])
        return figure_png(figure[0])

    png = solara.use_memo(render, [key])
    widgets.Image(
        value=png,
        format="png",
        layout={"width": "100%", "max_height": f"{max_height_px}px", "object_fit": "contain"},
        _dom_classes=["nplsim-figure", f"nplsim-{name}"],
    )


@solara.component
def KpiCards(model: NPLMarketModel) -> None:
    """Headline numbers of the current quarter; red where a supervisory limit is breached."""
    update_counter.get()  # re-rendered by Mesa's force_update (Step, Play, a reform)
    with solara.Column(gap="6px", classes=["nplsim-kpis"]):
        solara.Text(
            f"Quarter {model.quarter} of {model.config.quarters} · {model.config.name}",
            style={"font-weight": "600"},
            classes=["nplsim-quarter"],
        )
        with solara.Row(gap="6px", style={"flex-wrap": "wrap"}):
            for kpi in kpis(model):
                card = solara.Card(margin=0, style={"min-width": "150px", "flex": "1 1 150px"})
                with card, solara.Column(gap="0px"):
                    solara.Text(kpi.label, style={"font-size": "12px", "color": "#555"})
                    solara.Text(
                        kpi.value,
                        style={
                            "font-size": "20px",
                            "font-weight": "600",
                            "color": "#1e8449" if kpi.ok else REFORM_COLOR,
                        },
                        classes=["nplsim-kpi-value"],
                    )
                    solara.Text(kpi.note, style={"font-size": "11px", "color": "#777"})


@solara.component
def LawPanel(model: NPLMarketModel, on_reform: Callable[[], None] = force_update) -> None:
    """The regime in force, its key levers, and the "reform now" control with its history."""
    update_counter.get()  # re-rendered by Mesa's force_update (Step, Play, a reform)
    presets = list_presets()
    others = [p for p in presets if p != model.regime_name] or presets
    default = DEFAULT_REFORM if DEFAULT_REFORM in others else others[0]
    choice, set_choice = solara.use_state(default)

    def reform() -> None:
        apply_reform(model, choice)
        on_reform()

    overridden = model.config.regime_overrides and model.regime is model.initial_regime
    custom = " + overrides" if overridden else ""
    with solara.Column(gap="4px", classes=["nplsim-law"]):
        solara.Text(
            f"Regime in force: {model.regime_name}{custom}",
            style={"font-weight": "600"},
            classes=["nplsim-regime-name"],
        )
        for field, label in REGIME_LEVERS:
            solara.Text(
                f"{label}: {format_lever(getattr(model.regime, field))}",
                style={"font-size": "12px"},
                classes=["nplsim-lever", f"nplsim-lever-{field}"],
            )
        with solara.Row(gap="8px", style={"align-items": "center"}):
            solara.Select("Reform to", values=presets, value=choice, on_value=set_choice)
            solara.Button(
                "Reform now", color="warning", on_click=reform, classes=["nplsim-reform-now"]
            )
        for quarter, detail in reforms(model):
            solara.Text(
                f"reform at quarter {quarter}: {detail}",
                style={"font-size": "12px", "color": REFORM_COLOR},
                classes=["nplsim-reform-log"],
            )


@solara.component
def BalanceSheetView(model: NPLMarketModel) -> None:
    """Balance-sheet composition over time, for all banks or one chosen bank."""
    update_counter.get()  # re-rendered by Mesa's force_update (Step, Play, a reform)
    names = ["all banks"] + [bank.name for bank in model.banks]
    bank, set_bank = solara.use_state("all banks")
    solara.Select("Bank", values=names, value=bank, on_value=set_bank)
    chosen = None if bank == "all banks" else bank
    FigureView(
        lambda fig: balance_sheet_figure(model, chosen, fig),
        (refresh_key(model), chosen),
        "balance-sheet",
        max_height_px=300,
    )


@solara.component
def BankRatiosView(model: NPLMarketModel) -> None:
    """NPL ratio and CAR per bank."""
    update_counter.get()  # re-rendered by Mesa's force_update (Step, Play, a reform)
    FigureView(lambda fig: bank_ratios_figure(model, fig), refresh_key(model), "bank-ratios")


@solara.component
def DisposalView(model: NPLMarketModel) -> None:
    """NPL disposal flows by channel."""
    update_counter.get()  # re-rendered by Mesa's force_update (Step, Play, a reform)
    FigureView(lambda fig: disposal_figure(model, fig), refresh_key(model), "disposal")


@solara.component
def AbsMarketView(model: NPLMarketModel) -> None:
    """Primary ABS market; the secondary market's bid-ask and turnover once it exists."""
    update_counter.get()  # re-rendered by Mesa's force_update (Step, Play, a reform)
    FigureView(lambda fig: abs_market_figure(model, fig), refresh_key(model), "abs-market")
    if not has_secondary_market(model):
        solara.Info(
            "No secondary market yet: bid-ask spread and turnover appear once tranches trade.",
            dense=True,
            classes=["nplsim-no-secondary"],
        )


@solara.component
def DealsView(model: NPLMarketModel) -> None:
    """A table of the deals issued so far (newest first)."""
    update_counter.get()  # re-rendered by Mesa's force_update (Step, Play, a reform)
    table = solara.use_memo(lambda: deals_table(model), [refresh_key(model)])
    solara.Text(
        f"{len(model.desk.deal_rows)} deal{'' if len(model.desk.deal_rows) == 1 else 's'} issued",
        style={"font-weight": "600"},
        classes=["nplsim-deal-count"],
    )
    if len(table):
        solara.DataFrame(table, items_per_page=8, scrollable=True)
    else:
        solara.Text("No deal issued yet.", classes=["nplsim-no-deals"])


@solara.component
def NetworkView(model: NPLMarketModel) -> None:
    """Who holds what; redrawn every few quarters and at every reform."""
    update_counter.get()  # re-rendered by Mesa's force_update (Step, Play, a reform)
    FigureView(
        lambda fig: network_figure(model, fig), refresh_key(model, NETWORK_EVERY_Q), "network"
    )
