"""Paired counterfactuals: run two scenarios on the same seeds and report B − A with 95% CIs.

Every seed is run under both scenarios. The model splits its random streams by purpose from one
seed, so the two runs of a seed see the same macro shocks and the same borrower defaults (common
random numbers) and the paired difference isolates the effect of what differs between A and B —
the law, or a reform event at quarter k ("same world until k, then branches").

Also home of :func:`run_many`, which runs many models for their quarterly paths (sensitivity uses
it too) on the shared process pool of :mod:`nplsim.experiments.pool`.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments.metrics import (
    get,
    parse_names,
    parse_window,
    reduce,
    source_paths,
    window_bounds,
)
from nplsim.experiments.options import add_output_flags, add_yes_flag, confirm_runs, parse_set
from nplsim.experiments.pool import resolve_workers, run_tasks
from nplsim.experiments.provenance import pins
from nplsim.experiments.seeds import DEFAULT_SEED, MAX_SEEDS, check_seeds, seed_range
from nplsim.experiments.store import Claim, default_out, holding, json_text, write_directory
from nplsim.experiments.tables import write_tables
from nplsim.market.errors import ConfigError, printable
from nplsim.market.regime import list_presets
from nplsim.market.scenario import ScenarioConfig, load_scenario

# Heavy modules (the model with Mesa, scipy, matplotlib) are imported inside the functions that
# need them, so that `nplsim --help` and the other subcommands start quickly.

log = logging.getLogger(__name__)

DEFAULT_METRICS = (
    "npl_ratio",
    "car",
    "liquidity_ratio",
    "provision_coverage",
    "bank_recovery_rate",
    "npl_sold_amc",
    "amc_price_to_face",
    "npl_exit_age_q",
    "abs_issued",
    "senior_spread_bp",
    "npl_securitised",
)
# added to the defaults when A or B has power plants
POWER_METRICS = ("power_cost_bp", "power_funded_share", "power_npl_created",
                 "power_pooled_minus_loan_bp")  # fmt: skip
STATISTICS = ("mean", "final")
TABLE_COLUMNS = [
    "metric", "statistic", "unit", "window", "mean_a", "mean_b", "diff", "ci_low", "ci_high",
    "diff_pct", "ci_low_pct", "ci_high_pct", "n_seeds", "p_value",
]  # fmt: skip
CONFIDENCE = 0.95
ROUNDING = 1e-12  # relative size below which a spread of paired differences is rounding noise

# Title, unit for the axis, and the factor from the model.parquet value to that unit.
METRIC_DISPLAY: dict[str, tuple[str, str, float]] = {
    "npl_ratio": ("NPL ratio (gross NPL / gross loans)", "%", 100.0),
    "car": ("Capital adequacy ratio", "%", 100.0),
    "liquidity_ratio": ("Liquidity ratio (liquid assets / short-term liabilities)", "%", 100.0),
    "provision_coverage": ("Provision coverage (provisions / gross NPL)", "%", 100.0),
    "bank_recovery_rate": ("Banks' recovery on disposed NPLs", "% of face", 100.0),
    "npl_sold_amc": ("NPLs sold to AMCs (face value)", "CNY bn per quarter", 1.0),
    "amc_price_to_face": ("AMC auction price", "% of face", 100.0),
    "npl_stock": ("Gross NPL stock", "CNY bn", 1.0),
    "lcr": ("Liquidity coverage ratio", "%", 100.0),
}

Scenario = str | Path | ScenarioConfig
RunTask = tuple[Scenario, int, dict[str, Any], tuple[str, ...]]


# ====================================================================== shared machinery
def run_columns(task: RunTask) -> np.ndarray:
    """Run one model to its horizon and return some ``model.parquet`` columns.

    A top-level function so that a process pool can pickle it.

    Args:
        task: ``(scenario, seed, overrides, columns)``.

    Returns:
        A float array of shape ``(quarters + 1, len(columns))``; row ``q`` is quarter ``q``.
    """
    from nplsim.experiments.run import simulate

    scenario, seed, overrides, columns = task
    model = simulate(scenario, seed, overrides)
    return source_paths(model.model_frame(), model.bank_frame, columns)


def run_many(
    tasks: Sequence[RunTask],
    workers: int | None = None,
    progress: bool = False,
    desc: str = "runs",
) -> list[np.ndarray]:
    """Run many models on the shared pool (in this process if ``workers == 1``); results in task
    order. The first task that raised re-raises here, once the pool is stopped."""
    from tqdm import tqdm

    results: list[np.ndarray | None] = [None] * len(tasks)
    with tqdm(total=len(tasks), desc=printable(desc), unit="run", disable=not progress) as bar:
        for outcome in run_tasks(run_columns, tasks, workers=workers):
            if outcome.error is not None:
                raise outcome.error
            results[outcome.index] = outcome.value
            bar.update()
    return results  # type: ignore[return-value]


def quarter_statistic(values: np.ndarray, statistic: str) -> np.ndarray:
    """Reduce quarterly paths ``(..., quarters + 1)`` to one number each over quarters 1..T.

    ``"mean"`` skips quarters where the metric is undefined (NaN, e.g. an AMC price in a quarter
    without a sale); ``"final"`` takes the last defined value. A path with no defined value gives
    NaN. (:func:`nplsim.experiments.metrics.reduce`, which also takes a window.)
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}")
    return reduce(values, statistic)


# ====================================================================== statistics
def paired_difference(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> dict:
    """Paired comparison of ``b`` against ``a`` over seeds (pairs with a NaN are dropped).

    Returns:
        ``mean_a``, ``mean_b``, ``diff`` (mean of ``b − a``), ``ci_low``/``ci_high`` (t-interval
        of the paired differences; it collapses to ``diff`` with one pair or no variance),
        ``n_seeds`` (pairs used) and ``p_value`` (paired t-test; NaN without variance).
    """
    from scipy import stats

    keep = np.isfinite(a) & np.isfinite(b)
    a, b = np.asarray(a, dtype=float)[keep], np.asarray(b, dtype=float)[keep]
    n = int(a.size)
    if n == 0:
        nan = float("nan")
        return dict(mean_a=nan, mean_b=nan, diff=nan, ci_low=nan, ci_high=nan, n_seeds=0,
                    p_value=nan)  # fmt: skip
    d = b - a
    diff = float(d.mean())
    low = high = diff
    p_value = float("nan")
    se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    # Differences that vary only by floating-point rounding carry no sampling variance.
    if se > ROUNDING * max(float(np.abs(a).max()), float(np.abs(b).max())):
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
        low, high = diff - half, diff + half
        p_value = float(2 * stats.t.sf(abs(diff) / se, n - 1))
    return dict(mean_a=float(a.mean()), mean_b=float(b.mean()), diff=diff, ci_low=low,
                ci_high=high, n_seeds=n, p_value=p_value)  # fmt: skip


def mean_band(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, ...]:
    """Mean over seeds (axis 0) of quarterly paths with a t-interval, ignoring NaNs."""
    from scipy import stats

    finite = np.isfinite(values)
    n = finite.sum(axis=0)
    clean = np.where(finite, values, 0.0)
    mean = np.divide(clean.sum(axis=0), n, out=np.full(n.shape, np.nan), where=n > 0)
    sq = np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0)
    sd = np.sqrt(np.divide(sq, n - 1, out=np.zeros(n.shape), where=n > 1))
    t = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
    half = np.where(n > 1, t * sd / np.sqrt(np.maximum(n, 1)), 0.0)
    return mean, mean - half, mean + half


# ====================================================================== comparison
@dataclass
class ComparisonResult:
    """A finished paired comparison of scenario B against scenario A.

    Attributes:
        table: one row per metric and statistic, columns :data:`TABLE_COLUMNS`.
        paths: tidy quarterly paths: ``quarter``, ``scenario`` ("A"/"B"), ``seed``, ``metric``,
            ``value``.
        label_a: what A is, for tables and figures.
        label_b: what B is.
        seeds: the seeds, each run under both scenarios.
        quarters: the common horizon.
        events: ``(quarter, description)`` of every regime event in A or B.
        settings: the inputs, for the manifest.
    """

    table: pd.DataFrame
    paths: pd.DataFrame
    label_a: str
    label_b: str
    seeds: list[int]
    quarters: int
    events: list[tuple[int, str]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def _seed_list(seeds: int | Iterable[int]) -> list[int]:
    """A count ``N`` (seeds ``0..N−1``), a range or the seeds themselves, checked."""
    if isinstance(seeds, bool):
        raise ConfigError("compare", "seeds", "must be a count or a list of integers")
    if isinstance(seeds, Integral):
        return seed_range(0, seeds, "compare", "seeds", "seeds")
    if isinstance(seeds, range) and seeds.step == 1:
        count = max(0, seeds.stop - seeds.start)  # len() overflows for a huge range
        return seed_range(seeds.start, count, "compare", "seeds", "seeds")
    if isinstance(seeds, range) and len(seeds) > MAX_SEEDS:
        raise ConfigError("compare", "seeds", f"{len(seeds)} seeds", f"1 to {MAX_SEEDS}")
    return check_seeds(seeds, "compare", "seeds")


def _check_metrics(metrics: Sequence[str] | None, power: bool = False) -> tuple[str, ...]:
    """Registered metric names (:mod:`nplsim.experiments.metrics`); by default
    :data:`DEFAULT_METRICS`, and :data:`POWER_METRICS` when a side has power plants."""
    if metrics is None:
        return DEFAULT_METRICS + (POWER_METRICS if power else ())
    return parse_names(metrics, "compare", "metrics")


def _table_rows(chosen, paths_a, paths_b, bounds, window: str) -> list[dict]:
    """One row per metric and statistic (a path: its mean and final value) over the window."""
    sources = list(dict.fromkeys(get(name).source for name in chosen))
    rows = []
    for name in chosen:
        metric = get(name)
        j = sources.index(metric.source)
        for statistic in STATISTICS if metric.is_path else (metric.statistic,):
            stat_a = reduce(paths_a[:, :, j], statistic, *bounds)
            stat_b = reduce(paths_b[:, :, j], statistic, *bounds)
            pair = paired_difference(stat_a, stat_b)
            base = abs(pair["mean_a"])
            pct = {f"{k}_pct": 100.0 * pair[k] / base if base > 0 else float("nan")
                   for k in ("diff", "ci_low", "ci_high")}  # fmt: skip
            where = f"q{bounds[0]}-q{bounds[1]} ({window})"
            rows.append({"metric": name, "statistic": statistic, "unit": metric.unit,
                         "window": where, **pair, **pct})  # fmt: skip
    return rows


def _scenario_name(scenario: Scenario) -> str:
    if isinstance(scenario, ScenarioConfig):
        return scenario.name
    return Path(scenario).stem


def _describe(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(e, Mapping) for e in value):
        return ", ".join(
            f"{e.get('regime') or 'reform'} at q{e.get('quarter')}"
            for e in value
            if e.get("regime") or e.get("overrides")
        )
    return str(value)


def default_labels(
    a: Scenario, b: Scenario, overrides_a: Mapping[str, Any], overrides_b: Mapping[str, Any]
) -> tuple[str, str]:
    """Scenario names, plus the overrides in which one side differs from the other."""

    def label(scenario: Scenario, own: Mapping[str, Any], other: Mapping[str, Any]) -> str:
        changes = [
            (f"+ {_describe(v)}" if k == "events" else f"{k}={_describe(v)}")
            for k, v in own.items()
            if k not in other or other[k] != v
        ]
        return " ".join([_scenario_name(scenario), *changes])

    label_a, label_b = label(a, overrides_a, overrides_b), label(b, overrides_b, overrides_a)
    if label_a == label_b:
        label_a, label_b = f"{label_a} (A)", f"{label_b} (B)"
    return label_a, label_b


def reform_overrides(
    scenario: Scenario,
    overrides: Mapping[str, Any] | None,
    quarter: int,
    preset: str,
    *,
    quarters: int | None = None,
) -> dict[str, Any]:
    """Overrides that add ``[[events]] quarter = K, regime = PRESET`` to a scenario's own events.

    Used to build "A, but the law changes at quarter K" as scenario B of a comparison.

    Raises:
        ConfigError: an unknown preset, or a quarter outside 1..horizon.
    """
    if preset not in list_presets() and not str(preset).endswith(".toml"):
        raise ConfigError("--reform-to", str(preset), "unknown preset", ", ".join(list_presets()))
    config, _ = load_scenario(scenario, _with_horizon(overrides or {}, quarters))
    if isinstance(quarter, bool) or not 1 <= quarter <= config.quarters:
        raise ConfigError(
            "--reform-at", str(quarter), "must be a quarter of the run", f"1-{config.quarters}"
        )
    events = [event.model_dump() for event in config.events]
    events.append({"quarter": int(quarter), "regime": preset, "label": f"reform to {preset}"})
    changed = {**dict(overrides or {}), "events": events}
    load_scenario(scenario, _with_horizon(changed, quarters))
    return changed


def _with_horizon(overrides: Mapping[str, Any], quarters: int | None) -> dict[str, Any]:
    """Overrides plus the common horizon, if one is given."""
    return {**overrides, **({"quarters": quarters} if quarters is not None else {})}


def _regime_events(config: ScenarioConfig) -> list[tuple[int, str]]:
    return [
        (event.quarter, event.label or f"reform to {event.regime or 'amended law'}")
        for event in config.events
        if event.regime is not None or event.overrides
    ]


def compare(
    a: Scenario,
    b: Scenario,
    seeds: int | Iterable[int],
    *,
    quarters: int | None = None,
    overrides_a: Mapping[str, Any] | None = None,
    overrides_b: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    workers: int | None = None,
    labels: tuple[str, str] | None = None,
    progress: bool = False,
    window: str = "post",
) -> ComparisonResult:
    """Run every seed under scenarios A and B and compare them pairwise.

    Args:
        a: scenario A: a built-in name, a TOML path or a config.
        b: scenario B.
        seeds: a count ``N`` (seeds ``0..N−1``) or the seeds themselves.
        quarters: horizon for both; by default each scenario's own, which must then agree.
        overrides_a: scenario or regime fields for A (``n_loans``, ``disclosure_level``, ...).
        overrides_b: the same for B; ``events=[{"quarter": k, "regime": "strengthened"}]`` makes
            a reform at quarter k (see :func:`reform_overrides`).
        metrics: registered metric names (``nplsim metrics``; default :data:`DEFAULT_METRICS`,
            plus :data:`POWER_METRICS` for power scenarios).
        workers: worker processes (default one per CPU; 1 runs in this process).
        labels: names of A and B for tables and figures (default from names and overrides).
        progress: show a progress bar.
        window: quarters the statistics cover: ``post`` (from the first regime event of A or B
            on; all quarters without one), ``all`` or ``Q1:Q2``.

    Returns:
        The comparison table and the quarterly paths.

    Raises:
        ConfigError: bad scenarios, overrides, seeds, metrics or workers — before any run.
    """
    seed_list = _seed_list(seeds)
    parse_window(window)
    workers = resolve_workers(workers)
    overrides_a, overrides_b = dict(overrides_a or {}), dict(overrides_b or {})
    run_a = _with_horizon(overrides_a, quarters)
    run_b = _with_horizon(overrides_b, quarters)
    config_a, _ = load_scenario(a, run_a)
    config_b, _ = load_scenario(b, run_b)
    if config_a.quarters != config_b.quarters:
        raise ConfigError(
            "compare", "quarters",
            f"A runs {config_a.quarters} quarters and B {config_b.quarters}; set one horizon",
            "--quarters Q",
        )  # fmt: skip
    horizon = config_a.quarters
    label_a, label_b = labels or default_labels(a, b, overrides_a, overrides_b)
    chosen = _check_metrics(metrics, config_a.power is not None or config_b.power is not None)
    events = sorted(set(_regime_events(config_a)) | set(_regime_events(config_b)))
    bounds = window_bounds(window, horizon, [q for q, _ in events])
    sources = tuple(dict.fromkeys(get(name).source for name in chosen))

    started = time.perf_counter()
    tasks = [(scenario, seed, run, sources) for scenario, run in ((a, run_a), (b, run_b))
             for seed in seed_list]  # fmt: skip
    results = run_many(tasks, workers, progress, desc=f"{label_a} vs {label_b}")
    n = len(seed_list)
    paths_a = np.stack(results[:n])  # (seed, quarter, metric)
    paths_b = np.stack(results[n:])

    rows = _table_rows(chosen, paths_a, paths_b, bounds, window)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({"n_seeds": "int64"})
    settings = {
        "a": str(a) if not isinstance(a, ScenarioConfig) else a.model_dump(mode="json"),
        "b": str(b) if not isinstance(b, ScenarioConfig) else b.model_dump(mode="json"),
        "overrides_a": overrides_a,
        "overrides_b": overrides_b,
        "label_a": label_a,
        "label_b": label_b,
        "seeds": seed_list,
        "quarters": horizon,
        "metrics": list(chosen),
        "window": window,
        "window_quarters": list(bounds),
        "confidence": CONFIDENCE,
        "wall_time_s": round(time.perf_counter() - started, 3),
        **_pins(config_a, config_b),
    }
    return ComparisonResult(
        table=table,
        paths=_tidy_paths(paths_a, paths_b, seed_list, sources),
        label_a=label_a,
        label_b=label_b,
        seeds=seed_list,
        quarters=horizon,
        events=events,
        settings=settings,
    )


def _pins(config_a: ScenarioConfig, config_b: ScenarioConfig) -> dict[str, Any]:
    """The code, package versions and every preset either side uses."""
    both = pins(config_a)
    both["presets"] = {**both["presets"], **pins(config_b)["presets"]}
    return both


def _tidy_paths(
    paths_a: np.ndarray, paths_b: np.ndarray, seeds: list[int], metrics: tuple[str, ...]
) -> pd.DataFrame:
    n_seeds, n_quarters, n_metrics = paths_a.shape
    frames = []
    for side, paths in (("A", paths_a), ("B", paths_b)):
        seed, quarter, metric = np.meshgrid(
            np.array(seeds), np.arange(n_quarters), np.arange(n_metrics), indexing="ij"
        )
        frames.append(
            pd.DataFrame(
                {
                    "quarter": quarter.ravel().astype("int64"),
                    "scenario": side,
                    "seed": seed.ravel().astype("int64"),
                    "metric": np.asarray(metrics, dtype=object)[metric.ravel()],
                    "value": paths.ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ====================================================================== output
def write_comparison(
    result: ComparisonResult, out_dir: str | Path | Claim, *, overwrite: bool = False
) -> Path:
    """Write ``comparison.csv``/``.md``/``.tex``/``.parquet``, ``paths.parquet``,
    ``manifest.json`` and figures.

    The directory is written through :mod:`nplsim.experiments.store`: it appears complete or not
    at all, and earlier comparison results are replaced only with ``overwrite``.
    """
    manifest = {"kind": "compare", **result.settings, "events": result.events}

    def write(staging: Path) -> None:
        caption = (f"{result.label_b} (B) vs {result.label_a} (A): B − A over "
                   f"{len(result.seeds)} paired seeds, {CONFIDENCE:.0%} CI")  # fmt: skip
        write_tables(result.table, staging, "comparison", caption)
        result.table.to_parquet(staging / "comparison.parquet", index=False)
        result.paths.to_parquet(staging / "paths.parquet", index=False)
        figures = staging / "figures"
        figures.mkdir()
        for metric in result.paths["metric"].unique():
            comparison_figure(result, metric, figures / f"compare_{metric}.png")
        (staging / "manifest.json").write_text(json_text(manifest))

    return write_directory(out_dir, "compare", write, overwrite=overwrite)


def comparison_figure(result: ComparisonResult, metric: str, path: Path) -> None:
    """Mean paths of A and B with 95% bands, and the paired difference B − A with its band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    title, unit, scale = METRIC_DISPLAY.get(metric, (metric, get(metric).unit, 1.0))
    rows = result.paths[result.paths["metric"] == metric]
    wide = {
        side: rows[rows["scenario"] == side]
        .pivot(index="seed", columns="quarter", values="value")
        .to_numpy(dtype=float)
        * scale
        for side in ("A", "B")
    }
    quarters = np.arange(wide["A"].shape[1])
    n = len(result.seeds)
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for side, label, colour in (("A", result.label_a, "tab:blue"),
                                ("B", result.label_b, "tab:orange")):  # fmt: skip
        mean, low, high = mean_band(wide[side])
        top.plot(quarters, mean, color=colour, lw=2, label=f"{side}: {label}")
        top.fill_between(quarters, low, high, color=colour, alpha=0.2, lw=0)
    mean, low, high = mean_band(wide["B"] - wide["A"])
    bottom.plot(quarters, mean, color="black", lw=2, label="B − A (paired, same seeds)")
    bottom.fill_between(quarters, low, high, color="grey", alpha=0.3, lw=0, label="95% CI")
    bottom.axhline(0.0, color="grey", lw=0.8)
    for k, (quarter, text) in enumerate(result.events):
        for ax in (top, bottom):
            ax.axvline(quarter, color="tab:red", ls="--", lw=1,
                       label=f"{text} (q{quarter})" if ax is top and k < 5 else None)  # fmt: skip
    top.set_title(f"{title}: mean over {n} seed{'s' * (n > 1)}, 95% CI band")
    top.set_ylabel(unit)
    top.legend(fontsize=8)
    bottom.set_title("Paired difference B − A (common random numbers)", fontsize=10)
    bottom.set_xlabel("quarter")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel(f"Δ pp{unit[1:]}" if unit.startswith("%") else f"Δ {unit}")
    bottom.legend(fontsize=8)
    fig.suptitle(f"{result.label_a} vs {result.label_b}")
    from nplsim.experiments.figures import save as save_figure

    save_figure(fig, path, dpi=110)


def format_table(table: pd.DataFrame) -> str:
    """The comparison table for the console."""
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        return table.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="nan")


# ====================================================================== command line
def _cmd_compare(args: argparse.Namespace) -> int:
    seeds = seed_range(args.seed_start, args.seeds, "compare", "--seed-start", "--seeds")
    if len(seeds) < 2:
        raise ConfigError("compare", "--seeds", f"{len(seeds)}: a confidence interval needs at "
                          "least two paired seeds", "2 or more")  # fmt: skip
    metrics = parse_names(args.metrics) if args.metrics is not None else None
    window = parse_window(args.window)
    workers = resolve_workers(args.workers)
    set_a, set_b = parse_set(args.set_a, "--set-a"), parse_set(args.set_b, "--set-b")
    b = args.b if args.b is not None else args.a
    if (args.reform_at is None) != (args.reform_to is None):
        raise ConfigError("compare", "--reform-at/--reform-to", "give both or neither")
    if args.b is None and args.reform_at is None:
        raise ConfigError("compare", "B", "give scenario B or --reform-at K --reform-to PRESET")
    for flag, scenario, overrides in (("--set-a", args.a, set_a), ("--set-b", b, set_b)):
        _check_side(flag, scenario, overrides, args.quarters)
    labels = None
    if args.reform_at is not None:
        set_b = reform_overrides(b, set_b, args.reform_at, args.reform_to, quarters=args.quarters)
        if args.b is None:
            name = _scenario_name(args.a)
            labels = (name, f"{name} → {args.reform_to} at q{args.reform_at}")
    name_a, name_b = _scenario_name(args.a), _scenario_name(b)
    out = args.out if args.out else default_out(f"compare-{name_a}-vs-{name_b}")
    if args.posterior is not None:
        return _compare_over_posterior(args, b, seeds, set_a, set_b, labels, workers, out)
    confirm_runs(2 * len(seeds), args.yes, "compare")
    with holding(out, "compare", overwrite=args.overwrite) as claimed:
        result = compare(
            args.a,
            b,
            seeds,
            quarters=args.quarters,
            overrides_a=set_a,
            overrides_b=set_b,
            workers=workers,
            labels=labels,
            progress=not args.quiet,
            metrics=metrics,
            window=window,
        )
        write_comparison(result, claimed)
    print(f"A: {printable(result.label_a)}")
    print(f"B: {printable(result.label_b)}")
    print(f"{len(result.seeds)} paired seeds, {result.quarters} quarters; diff = B − A, "
          f"{CONFIDENCE:.0%} CI of the paired differences")  # fmt: skip
    print(format_table(result.table))
    print(f"results: {printable(out)}")
    return 0


def _compare_over_posterior(
    args: argparse.Namespace,
    b: str,
    seeds: list[int],
    set_a: dict[str, Any],
    set_b: dict[str, Any],
    labels: tuple[str, str] | None,
    workers: int,
    out: str | Path,
) -> int:
    """``compare --posterior DIR --draws K``: the comparison with parameter uncertainty."""
    from nplsim.experiments.posterior import (
        check_draws,
        compare_over_posterior,
        load_draws,
        read_posterior,
        require_draws,
    )

    # the same checks as a sweep's or a sensitivity study's draws: a finished calibration of A's
    # scenario, drawing no parameter that --set-a or --set-b also sets
    require_draws(args.draws)
    _, info = load_draws(args.posterior, args.draws, "compare", "--posterior")
    check_draws(info, load_scenario(args.a)[0].name, [*set_a, *set_b], "compare", "--posterior")
    posterior = read_posterior(args.posterior)
    confirm_runs(2 * len(seeds) * (args.draws + 1), args.yes, "compare")
    with holding(out, "compare", overwrite=args.overwrite) as claimed:
        table, central = compare_over_posterior(
            args.a, b, seeds, posterior, args.draws, overrides_a=set_a, overrides_b=set_b,
            quarters=args.quarters, workers=workers, labels=labels, progress=not args.quiet,
            metrics=parse_names(args.metrics) if args.metrics else None, window=args.window,
        )  # fmt: skip
        settings = {**central.settings, "posterior": str(args.posterior), "draws": args.draws}

        def write(staging: Path) -> None:
            table.to_csv(staging / "comparison_posterior.csv", index=False)
            central.table.to_csv(staging / "comparison.csv", index=False)
            (staging / "manifest.json").write_text(json_text({"kind": "compare", **settings}))

        write_directory(claimed, "compare", write)
    print(f"A: {printable(central.label_a)}")
    print(f"B: {printable(central.label_b)}")
    print(f"{len(seeds)} paired seeds x {args.draws} posterior draws; diff = B − A at the "
          f"posterior median with its seed-only {CONFIDENCE:.0%} CI, and the {CONFIDENCE:.0%} "
          "interval over posterior draws and seeds")  # fmt: skip
    print(format_table(table))
    print(f"results: {printable(out)}")
    return 0


def _check_side(flag: str, scenario: str, overrides: dict[str, Any], quarters: int | None) -> None:
    """Validate one side's overrides, naming the command-line flag they came from."""
    try:
        load_scenario(scenario, _with_horizon(overrides, quarters), origin=flag)
    except ConfigError as exc:
        if exc.source == flag and exc.key == "quarters" and quarters is not None:
            raise ConfigError("--quarters", exc.key, exc.problem, exc.allowed) from None
        raise


def register_compare_cli(sub: Any) -> None:
    """Add ``nplsim compare`` to the subcommands."""
    p = sub.add_parser("compare", help="paired comparison of two scenarios on common seeds")
    p.add_argument("a", metavar="A", help="scenario A: built-in name or TOML file")
    p.add_argument(
        "b", metavar="B", nargs="?", help="scenario B (default: A, with --reform-at/--reform-to)"
    )
    p.add_argument("--seeds", type=int, default=10, help="number of paired seeds (default 10)")
    p.add_argument("--seed-start", type=int, default=DEFAULT_SEED, help="first seed (%(default)s)")
    p.add_argument("--quarters", type=int, help="horizon for both scenarios")
    p.add_argument(
        "--metrics",
        metavar="A,B,...",
        help="metrics to compare, comma-separated "
        "(names of `nplsim metrics`; default: NPL, capital, liquidity, recovery, "
        "disposal age and securitisation; power outcomes for power scenarios)",
    )
    p.add_argument("--window", default="post", metavar="post|all|Q1:Q2",
                   help="quarters the statistics cover (default post: from the reform or event "
                   "on, all quarters without one)")  # fmt: skip
    for side in ("a", "b"):
        p.add_argument(
            f"--set-{side}",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"override a scenario or regime field of {side.upper()}",
        )
    p.add_argument("--reform-at", type=int, metavar="K", help="B switches law at quarter K")
    p.add_argument(
        "--reform-to", metavar="PRESET", help=f"preset B switches to ({', '.join(list_presets())})"
    )
    p.add_argument("--posterior", metavar="DIR", help="a calibration's results directory: "
                   "run the comparison over its posterior draws too")  # fmt: skip
    p.add_argument("--draws", type=int, default=20,
                   help="posterior draws with --posterior (default 20)")  # fmt: skip
    add_output_flags(p, "comparison", "results/compare-A-vs-B")
    p.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    add_yes_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_compare)
