"""The summary of a finished sweep: its ``outcomes`` (metric names of ``nplsim metrics``) for every
parameter point, with the mean over seeds and a 95% t-interval, as a table (``summary/outcomes.csv``
and ``.md``) and figures: each parameter's main effect with its band, and for a two-factor sweep
the interaction as a heat map (``summary/figures/*.png`` and ``.svg``, titled with the scenario and
seeds). A ranged parameter with many sampled values is shown in quantile bins.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments import metrics
from nplsim.experiments.store import TMP_PREFIX, publish
from nplsim.experiments.sweep_spec import SweepSpec
from nplsim.experiments.sweep_store import load_sweep
from nplsim.experiments.tables import write_tables

SUMMARY_DIR = "summary"
SUMMARY_COLUMNS = ["outcome", "unit", "mean", "ci_low", "ci_high", "sd", "n_seeds"]
MAX_LEVELS = 10  # a parameter with more distinct values is binned for the figures
BINS = 8


def run_outcomes(out_dir: Path, spec: SweepSpec) -> pd.DataFrame:
    """One row per finished run: its id, seed, parameters and the value of every outcome."""
    model = load_sweep(out_dir, "model")
    if model.empty:
        return pd.DataFrame()
    banks = load_sweep(out_dir, "banks") if metrics.needs_banks(spec.outcomes) else None
    chosen = [metrics.scalar(name) for name in spec.outcomes]
    sources = list(dict.fromkeys(m.source for m in chosen))
    params = list(spec.parameters)
    rows = []
    bank_groups = dict(tuple(banks.groupby("run_id"))) if banks is not None else {}
    for run_id, frame in model.groupby("run_id", sort=True):
        frame = frame.sort_values("quarter")
        horizon = int(frame["quarter"].max())
        paths = metrics.source_paths(frame, bank_groups.get(run_id), sources)
        row: dict[str, Any] = {"run_id": run_id, "seed": int(frame["seed"].iloc[0])}
        row.update({p: frame[p].iloc[0] for p in params})
        if "draw" in frame.columns:
            row["draw"] = int(frame["draw"].iloc[0])
        for metric in chosen:
            path = paths[:, sources.index(metric.source)]
            row[metric.name] = float(metrics.evaluate(metric, path, 1, horizon))
        rows.append(row)
    return pd.DataFrame(rows)


def summary_table(values: pd.DataFrame, spec: SweepSpec) -> pd.DataFrame:
    """Mean over seeds with a 95% t-interval of every outcome at every parameter point."""
    from scipy import stats

    params = list(spec.parameters)
    long = values.melt(id_vars=["run_id", "seed", *params], value_vars=list(spec.outcomes),
                       var_name="outcome", value_name="value").dropna(subset=["value"])  # fmt: skip
    keys = [*params, "outcome"]
    grouped = long.groupby(keys, sort=True, dropna=False)["value"]
    table = grouped.agg(["mean", "std", "count"]).reset_index()
    n = table["count"].to_numpy()
    sd = np.where(n > 1, table["std"].to_numpy(dtype=float), 0.0)
    half = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n), 0.0)
    table["ci_low"], table["ci_high"], table["sd"] = table["mean"] - half, table["mean"] + half, sd
    table["n_seeds"] = n.astype("int64")
    table["unit"] = [metrics.get(o).unit for o in table["outcome"]]
    order = {o: k for k, o in enumerate(spec.outcomes)}
    table = table.sort_values("outcome", key=lambda s: s.map(order), kind="stable")
    return table[[*params, *SUMMARY_COLUMNS]].reset_index(drop=True)


def _levels(series: pd.Series) -> pd.Series:
    """The values of a parameter as plotted: themselves, or quantile bins when there are many."""
    if series.nunique() > MAX_LEVELS and pd.api.types.is_numeric_dtype(series):
        bins = pd.qcut(series, BINS, duplicates="drop")
        return bins.map(lambda interval: float(interval.mid)).astype(float)
    return series


def _title(spec: SweepSpec, what: str) -> str:
    seeds = spec.seed_list()
    shown = f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 2 else ", ".join(map(str, seeds))
    draws = f" × {spec.draws} posterior draws" if spec.draws else ""
    return (f"{what}\n{Path(spec.base).stem}, {len(seeds)} seed{'s' * (len(seeds) > 1)} "
            f"({shown}){draws}")  # fmt: skip


def main_effect_figure(values: pd.DataFrame, spec: SweepSpec, outcome: str, stem: Path) -> None:
    """Each parameter's main effect on ``outcome``: mean over the other parameters and seeds with
    a 95% band (t-interval over runs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy import stats

    params = list(spec.parameters)
    unit = metrics.get(outcome).unit
    fig = Figure(figsize=(4.2 * len(params), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(params), squeeze=False)[0])
    for ax, param in zip(axes, params, strict=True):
        level = _levels(values[param])
        grouped = values.assign(level=level).groupby("level", sort=True)[outcome]
        stat = grouped.agg(["mean", "std", "count"])
        n = stat["count"].to_numpy()
        half = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)) * stat["std"].fillna(0)
                        / np.sqrt(np.maximum(n, 1)), 0.0)  # fmt: skip
        numeric = pd.api.types.is_numeric_dtype(stat.index)
        x = stat.index.to_numpy(dtype=float) if numeric else np.arange(len(stat))
        ax.plot(x, stat["mean"], marker="o", color="tab:blue", label="mean")
        ax.fill_between(x, stat["mean"] - half, stat["mean"] + half, color="tab:blue",
                        alpha=0.2, lw=0, label="95% CI")  # fmt: skip
        if not numeric:
            ax.set_xticks(x, [str(v) for v in stat.index], rotation=15)
        ax.set_xlabel(param)
        ax.set_ylabel(f"{outcome} ({unit})")
        ax.legend(fontsize=8)
    fig.suptitle(_title(spec, f"Main effects on {outcome}"), fontsize=10)
    from nplsim.experiments.figures import save as save_figure

    save_figure(fig, stem.with_suffix(".png"), dpi=110)


def interaction_figure(values: pd.DataFrame, spec: SweepSpec, outcome: str, stem: Path) -> None:
    """Heat map of ``outcome`` (mean over seeds) over the two parameters of a two-factor sweep."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    first, second = list(spec.parameters)
    grid = (values.assign(x=_levels(values[first]), y=_levels(values[second]))
            .pivot_table(index="y", columns="x", values=outcome, aggfunc="mean"))  # fmt: skip
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(grid.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(np.arange(grid.shape[1]), [f"{v:.3g}" if isinstance(v, float) else str(v)
                                              for v in grid.columns], rotation=15)  # fmt: skip
    ax.set_yticks(np.arange(grid.shape[0]), [f"{v:.3g}" if isinstance(v, float) else str(v)
                                              for v in grid.index])  # fmt: skip
    ax.set_xlabel(first)
    ax.set_ylabel(second)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(f"{outcome} ({metrics.get(outcome).unit}), mean over seeds")
    fig.suptitle(_title(spec, f"Interaction of {first} and {second} on {outcome}"), fontsize=10)
    from nplsim.experiments.figures import save as save_figure

    save_figure(fig, stem.with_suffix(".png"), dpi=110)


def write_summary(out_dir: str | Path, spec: SweepSpec) -> Path | None:
    """Write ``summary/`` of a sweep with ``outcomes`` (replacing an earlier one in one rename);
    None when the spec names no outcomes or no run finished."""
    out_dir = Path(out_dir)
    if not spec.outcomes:
        return None
    values = run_outcomes(out_dir, spec)
    if values.empty:
        return None
    staging = out_dir / f"{TMP_PREFIX}summary-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        table = summary_table(values, spec)
        caption = _title(spec, "Sweep outcomes: mean over seeds, 95% CI").replace("\n", "; ")
        if spec.draws:
            caption += " (draws pooled with seeds: mean and CI over both, n_seeds counts runs)"
        write_tables(table, staging, "outcomes", caption)
        values.to_csv(staging / "outcomes_by_run.csv", index=False)
        figures = staging / "figures"
        figures.mkdir()
        for outcome in spec.outcomes if spec.parameters else ():
            if values[outcome].notna().any():
                main_effect_figure(values, spec, outcome, figures / f"main_effects_{outcome}")
                if len(spec.parameters) == 2:
                    interaction_figure(values, spec, outcome, figures / f"interaction_{outcome}")
        final = out_dir / SUMMARY_DIR
        if final.exists():
            shutil.rmtree(final)
        publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
