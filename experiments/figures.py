"""Figures of a run, drawn with matplotlib's object API (never pyplot's global state).

Every figure is written as PNG (for a screen) and, beside it, as SVG and PDF (vector, for a
paper); the vector files carry no creation date, so a re-run writes them byte for byte. Titles
name the scenario, the seed and the law; time axes show calendar quarters when the scenario has
a ``start`` (``market/calendar.py``); each disposal channel has one colour
(:mod:`nplsim.experiments.channels`, shared with the policy lab).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from nplsim.experiments.channels import DISPOSAL_CHANNELS
from nplsim.experiments.interrupt import deferred
from nplsim.market.calendar import calendar_quarter
from nplsim.market.prudential_rules import PrudentialRules

PNG_DPI = 110
VECTOR_FORMATS = {".svg": {"Date": None}, ".pdf": {"CreationDate": None}}  # no timestamps


def save(fig: Figure, path: Path, dpi: int = PNG_DPI) -> list[Path]:
    """Write ``fig`` as ``path`` (PNG at ``dpi``) and as SVG and PDF beside it, without
    timestamps, so that a re-run writes the same bytes; returns the files.

    Ctrl-C and SIGTERM wait until the files are drawn (``interrupt.deferred``): raised inside
    the renderer's C++ code, they came out as its ``ValueError`` ("Invalid bounding box"), so the
    command ended with a traceback and status 1 instead of one line and 130 or 143."""
    written = [path]
    with deferred():
        fig.savefig(path, dpi=dpi)
        with rc_context({"svg.hashsalt": "nplsim"}):  # the SVG's element ids do not vary by run
            for suffix, metadata in VECTOR_FORMATS.items():
                fig.savefig(path.with_suffix(suffix), metadata=metadata)
                written.append(path.with_suffix(suffix))
    return written


def calendar_axis(ax, start: str | None) -> None:
    """Label a quarter axis with calendar quarters (``2016Q1``), or quarter numbers without a
    start."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    if start:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: calendar_quarter(start, round(x))))
        ax.set_xlabel("calendar quarter (end of)")
    else:
        ax.set_xlabel("quarter")


def dashboard(
    model_frame: pd.DataFrame,
    bank_frame: pd.DataFrame,
    rules: PrudentialRules,
    path: Path,
    title: str = "",
    start: str | None = None,
) -> list[Path]:
    """Four panels: NPL ratio, capital adequacy, liquidity ratio and NPL disposal by channel.

    ``title`` names the run (scenario, seed, law: :func:`run_title`); ``start`` is the scenario's
    calendar quarter of quarter 1. Returns the files written (PNG, SVG, PDF).
    """
    fig = Figure(figsize=(12, 8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    quarters = model_frame["quarter"]

    def per_bank(ax, column: str, title: str, floor: float | None, floor_label: str) -> None:
        for bank, rows in bank_frame.groupby("bank", sort=False):
            ax.plot(rows["quarter"], 100 * rows[column], lw=0.9, alpha=0.6, label=bank)
        ax.plot(quarters, 100 * model_frame[column], color="black", lw=2, label="all banks")
        if floor is not None:
            ax.axhline(100 * floor, color="tab:red", ls="--", lw=1, label=floor_label)
        ax.set_title(title)
        calendar_axis(ax, start)
        ax.set_ylabel("%")
        ax.legend(fontsize=7, ncol=2)

    per_bank(axes[0, 0], "npl_ratio", "NPL ratio (gross NPL / gross loans)", None, "")
    requirement = rules.requirements(systemic=True)["total"]
    per_bank(axes[0, 1], "car", "Capital adequacy ratio (total capital / RWA)", requirement,
             "requirement, systemic bank")  # fmt: skip
    per_bank(axes[1, 0], "liquidity_ratio", "Liquidity ratio", rules.liquidity_ratio_min, "floor")
    columns = [c.column for c in DISPOSAL_CHANNELS if c.column in bank_frame]
    flows = bank_frame.groupby("quarter")[columns].sum()
    ax = axes[1, 1]
    bottom = pd.Series(0.0, index=flows.index)
    for channel in DISPOSAL_CHANNELS:
        if channel.column in flows:
            ax.bar(flows.index, flows[channel.column], bottom=bottom, label=channel.label,
                   width=0.9, color=channel.colour)  # fmt: skip
            bottom = bottom + flows[channel.column]
    tallest = float(bottom.max()) if len(bottom) else 0.0
    ax.set_ylim(0, tallest * 1.08 if tallest > 0 else 1.0)  # the tallest bar stays whole
    ax.set_title("NPL disposal by channel (face value)")
    calendar_axis(ax, start)
    ax.set_ylabel("CNY bn per quarter")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="channel",
              title_fontsize=7)  # fmt: skip
    fig.suptitle(f"{title or 'nplsim run'}: state banks' balance sheets and NPL disposal")
    return save(fig, path)


def run_title(name: str, seed: int, law: str) -> str:
    """A figure's title: scenario, seed and law (``restart_2016, seed 42, law restart_2016``)."""
    return f"{name}, seed {seed}, law {law}"


# ---------------------------------------------------------------------------------- power plants
ROUTE_LABELS = {"loan": "bank loan", "standalone": "stand-alone ABS", "pooled": "centre's pool"}
COMPONENT_COLOURS = {
    "interest": "tab:blue",
    "information": "tab:orange",
    "supervision": "tab:green",
    "issuance": "tab:red",
}


def power_figures(
    model_frame: pd.DataFrame,
    power_frame: pd.DataFrame | None,
    directory: Path,
    title: str = "",
    start: str | None = None,
) -> list[Path]:
    """The power-plant study's three pictures (docs/ODD.md, power sector), written beside the data.

    ``power_costs.png``: all-in financing cost by route split into interest, information,
    supervision and issuance (median over the plant-years quoted, 5–95% range of the total);
    ``power_debt_ratios.png``: plants' bank debt / assets and their adjusted leverage (receivables
    sold forward counted as debt) by year (median, 5–95% band, fleet);
    ``power_bad_assets.png``: bank bad assets that plant loans create, with the coal price.

    Returns the files written, PNG, SVG and PDF (none when the run has no power plants).
    """
    if power_frame is None or power_frame.empty:
        return []
    paths = [directory / f"power_{name}.png" for name in ("costs", "debt_ratios", "bad_assets")]
    written = _power_costs(power_frame, paths[0], title)
    written += _power_debt_ratios(model_frame, power_frame, paths[1], title)
    written += _power_bad_assets(model_frame, paths[2], title, start)
    return written


def _figure(width: float = 7.5, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _power_costs(power_frame: pd.DataFrame, path: Path, title: str) -> list[Path]:
    fig = _figure()
    ax = fig.subplots()
    for x, route in enumerate(ROUTE_LABELS):
        quoted = power_frame[power_frame[f"{route}_available"].astype(bool)]
        if quoted.empty:
            ax.text(x, 10, "not available", ha="center", rotation=90, fontsize=8)
            continue
        bottom = 0.0
        for component, colour in COMPONENT_COLOURS.items():
            height = float(quoted[f"{route}_{component}_bp"].median())
            ax.bar(x, height, bottom=bottom, color=colour, width=0.6,
                   label=component if x == 0 or route == "pooled" else None)  # fmt: skip
            bottom += height
        total = quoted[f"{route}_total_bp"]
        low, high = total.quantile(0.05), total.quantile(0.95)
        ax.errorbar(x, total.median(), yerr=[[total.median() - low], [high - total.median()]],
                    color="black", capsize=6, lw=1)  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
    ax.set_xticks(range(len(ROUTE_LABELS)), list(ROUTE_LABELS.values()))
    ax.set_ylabel("bp a year of the amount raised")
    ax.set_title("All-in cost of financing new capacity, by route (median; bar: 5–95% of total)")
    fig.suptitle(title or "nplsim run", fontsize=9)
    return save(fig, path)


def _power_debt_ratios(
    model_frame: pd.DataFrame, power_frame: pd.DataFrame, path: Path, title: str
) -> list[Path]:
    fig = _figure()
    ax = fig.subplots()
    by_year = power_frame.groupby("year")
    for ratio, style, label in (("debt_ratio", "-", "bank debt / assets"),
                                ("adjusted_leverage", "--", "adjusted leverage")):  # fmt: skip
        median = by_year[ratio].median()
        ax.plot(median.index, 100 * median, style, color="black", lw=2, label=f"median: {label}")
    low, high = by_year["debt_ratio"].quantile(0.05), by_year["debt_ratio"].quantile(0.95)
    ax.fill_between(low.index, 100 * low, 100 * high, color="tab:blue", alpha=0.25,
                    label="5–95% of plants")  # fmt: skip
    year_end = model_frame[model_frame["quarter"] % 4 == 0]
    ax.plot(year_end["quarter"] // 4, 100 * year_end["power_debt_ratio"], color="tab:blue",
            label="fleet: Σ bank debt / Σ assets")  # fmt: skip
    ax.plot(year_end["quarter"] // 4, 100 * year_end["power_adjusted_leverage"], "--",
            color="tab:blue", label="fleet: adjusted leverage")  # fmt: skip
    ax.set_xlabel("year of the run")
    ax.set_ylabel("%")
    ax.set_title("Power plants' debt ratios")
    ax.legend(fontsize=8)
    fig.suptitle(title or "nplsim run", fontsize=9)
    return save(fig, path)


def _power_bad_assets(
    model_frame: pd.DataFrame, path: Path, title: str, start: str | None
) -> list[Path]:
    fig = _figure()
    ax = fig.subplots()
    quarters = model_frame["quarter"]
    ax.plot(quarters, model_frame["power_npl_created"], color="tab:red", lw=2,
            label="plant loans gone bad, cumulative")  # fmt: skip
    ax.plot(quarters, model_frame["power_bank_npl"], color="tab:red", ls="--",
            label="plant NPLs on banks' books")  # fmt: skip
    ax.plot(quarters, model_frame["power_abs_investor_losses"].cumsum(), color="tab:purple",
            label="ABS investors' losses, cumulative")  # fmt: skip
    calendar_axis(ax, start)
    ax.set_ylabel("CNY bn")
    coal = ax.twinx()
    coal.plot(quarters, model_frame["coal_price"], color="grey", lw=1, label="coal price")
    coal.set_ylabel("coal price, CNY/t")
    lines = ax.get_legend_handles_labels()
    more = coal.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    ax.set_title("Bank bad assets from power-plant loans under the coal price")
    fig.suptitle(title or "nplsim run", fontsize=9)
    return save(fig, path)
