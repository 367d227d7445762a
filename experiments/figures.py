"""Figures of a run, drawn with matplotlib's object API (never pyplot's global state)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from market.regime import LegalRegime

DISPOSAL_FLOWS = (
    ("npl_resolved", "worked out in-house"),
    ("npl_sold_amc", "sold to AMCs"),
    ("npl_carved_out", "policy carve-out"),
    ("written_off", "written off"),
)


def dashboard(
    model_frame: pd.DataFrame, bank_frame: pd.DataFrame, regime: LegalRegime, path: Path
) -> None:
    """Four panels: NPL ratio, capital adequacy, liquidity ratio and NPL disposal by channel."""
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
        ax.set_xlabel("quarter")
        ax.set_ylabel("%")
        ax.legend(fontsize=7, ncol=2)

    per_bank(axes[0, 0], "npl_ratio", "NPL ratio (gross NPL / gross loans)", None, "")
    per_bank(axes[0, 1], "car", "Capital adequacy ratio", regime.car_min, "regulatory minimum")
    per_bank(axes[1, 0], "liquidity_ratio", "Liquidity ratio", regime.liquidity_ratio_min, "floor")
    flows = bank_frame.groupby("quarter")[[c for c, _ in DISPOSAL_FLOWS]].sum()
    ax = axes[1, 1]
    bottom = pd.Series(0.0, index=flows.index)
    for column, label in DISPOSAL_FLOWS:
        ax.bar(flows.index, flows[column], bottom=bottom, label=label, width=0.9)
        bottom = bottom + flows[column]
    ax.set_title("NPL disposal by channel (face value)")
    ax.set_xlabel("quarter")
    ax.set_ylabel("CNY bn per quarter")
    ax.legend(fontsize=7)
    fig.suptitle("nplsim run: state banks' balance sheets and NPL disposal")
    fig.savefig(path, dpi=110)
