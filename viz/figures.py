"""Static figures of the lab's charts and holdings network: high-resolution PNG and SVG files.

The export writes every chart the run has as a figure drawn from the same definitions and data
as the interactive chart (:mod:`nplsim.viz.series`): the same series, the supervisory limit as it
was in force each quarter, and reform labels in the same non-overlapping rows. The holdings
network is drawn here too (it is shown in the page as an image). Figures use matplotlib's object
API, never pyplot's global state.
"""

from __future__ import annotations

import io
from collections import defaultdict

import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nplsim.agents.spv import LIVE
from nplsim.economy.model import NPLMarketModel
from nplsim.viz.charts import series_colours, series_names, theme
from nplsim.viz.lab import PolicyLab
from nplsim.viz.series import ALL_BANKS, LABEL_ROW_PX, ChartDef
from nplsim.viz.series import empty as series_empty

EXPORT_DPI = 200
FIGURE_SIZE = (7.0, 3.8)  # inches
NETWORK_MAX_SPVS = 24  # most recent live deals drawn; older ones are counted in the title
NODE_COLORS = {"bank": "#1f618d", "amc": "#7d3c98", "spv": "#d35400", "holder": "#117a65"}


def new_figure(size: tuple[float, float] = FIGURE_SIZE, dpi: int = EXPORT_DPI) -> Figure:
    """A figure with its own Agg canvas and constrained layout."""
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def chart_figure(definition: ChartDef, lab: PolicyLab, dark: bool = False) -> Figure:
    """One chart of the lab as a matplotlib figure, with limits and reform labels."""
    market = lab.market
    assert market is not None
    data = definition.data(lab)
    colors = theme(dark)
    fig = new_figure()
    if dark:
        fig.set_facecolor("#1e1e1e")
    ax = fig.subplots()
    ax.set_facecolor("none")
    tidy = data["series"]
    names = series_names(tidy)
    colours = dict(zip(names, series_colours(names, colors["strong"]), strict=True))
    wide = tidy.pivot_table(index="quarter", columns="series", values="value", dropna=False)
    if definition.draw == "area" and len(wide):
        ax.stackplot(
            wide.index.to_numpy(),
            *(wide[n].fillna(0.0).to_numpy() for n in names),
            labels=list(names),
            colors=series_colours(names, colors["strong"]),
            alpha=0.85,
        )
    else:
        for name in names:
            strong = name == ALL_BANKS
            ax.plot(
                wide.index,
                wide[name],
                label=name,
                lw=2.4 if strong else 1.6,
                color=colours[name],
            )
    for name, rows in data.get("limits", series_empty()).groupby("series"):
        ax.step(
            rows["quarter"],
            rows["value"],
            where="post",
            ls="--",
            lw=1.4,
            color=colors["muted"],
            label=name,
        )
    for mark in data["reforms"].itertuples():
        ax.axvline(mark.quarter, color=colors["reform"], ls="--", lw=1.4)
        ax.annotate(
            mark.label,
            xy=(mark.quarter, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -2 - LABEL_ROW_PX * mark.row * 0.75),
            textcoords="offset points",
            va="top",
            fontsize=8,
            fontweight="bold",
            color=colors["reform"],
        )
    ax.set_xlim(0, max(market.config.quarters, 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("quarter", color=colors["text"])
    ax.set_ylabel(definition.unit, color=colors["text"])
    ax.set_title(definition.title, color=colors["text"], fontsize=11)
    ax.tick_params(colors=colors["text"], labelsize=9)
    ax.grid(alpha=0.35, color=colors["grid"])
    for spine in ax.spines.values():
        spine.set_color(colors["muted"])
    if len(names) or "limits" in data:
        legend = ax.legend(
            fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, frameon=False
        )
        for text in legend.get_texts():
            text.set_color(colors["text"])
    return fig


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = EXPORT_DPI) -> bytes:
    """The figure as PNG or SVG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, facecolor=fig.get_facecolor())
    return buffer.getvalue()


# ====================================================================== the holdings network
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


def network_figure(model: NPLMarketModel, dark: bool = False, dpi: int = 110) -> Figure:
    """The holdings graph in four columns (banks, AMCs, SPVs, holders) with readable labels."""
    graph = holdings_graph(model)
    colors = theme(dark)
    fig = new_figure((9.0, 5.2), dpi)
    if dark:
        fig.set_facecolor("#1e1e1e")
    ax = fig.subplots()
    ax.set_axis_off()
    hidden = graph.graph["spvs_hidden"]
    title = "who holds what: banks → AMCs / SPVs → investors"
    ax.set_title(
        title + (f" (+{hidden} older live deals)" if hidden else ""),
        fontsize=12,
        color=colors["text"],
    )
    if graph.number_of_edges() == 0:
        ax.text(
            0.5,
            0.5,
            "no sales or deals yet",
            ha="center",
            va="center",
            fontsize=12,
            color=colors["text"],
        )
        return fig
    pos = nx.multipartite_layout(graph, subset_key="layer")
    weights = np.array([w for _, _, w in graph.edges(data="weight")], dtype=float)
    widths = 0.5 + 5.0 * np.sqrt(weights / weights.max())
    segments = [(pos[u], pos[v]) for u, v in graph.edges()]
    ax.add_collection(
        LineCollection(segments, linewidths=widths, colors=colors["muted"], alpha=0.5)
    )
    nodes = list(graph.nodes)
    xy = np.array([pos[n] for n in nodes])
    ax.scatter(
        xy[:, 0], xy[:, 1], s=70, c=[NODE_COLORS[graph.nodes[n]["kind"]] for n in nodes], zorder=3
    )
    many = sum(graph.nodes[n]["kind"] == "spv" for n in nodes) > 12
    for name, (x, y) in zip(nodes, xy, strict=True):
        kind = graph.nodes[name]["kind"]
        if kind == "spv" and many:
            continue  # many deals: the SPV column speaks for itself
        left = kind == "bank"  # banks are labelled outside the graph, on the left
        ax.annotate(
            name,
            (x, y),
            xytext=(-8 if left else 8, 0),
            textcoords="offset points",
            va="center",
            ha="right" if left else "left",
            fontsize=10,
            color=colors["text"],
            bbox={
                "boxstyle": "round,pad=0.15",
                "fc": fig.get_facecolor(),
                "ec": "none",
                "alpha": 0.8,
            },
        )
    ax.set_xlim(xy[:, 0].min() - 0.3, xy[:, 0].max() + 0.45)
    ax.set_ylim(xy[:, 1].min() - 0.08, xy[:, 1].max() + 0.08)
    return fig
