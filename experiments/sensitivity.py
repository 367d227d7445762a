"""Global sensitivity analysis of model outcomes to legal-regime parameters (Sobol or Morris).

A TOML spec names a base scenario, the regime fields to vary with their ranges, the outcomes and
the seeds. Every sample point is run once per seed (the same seeds at every point: common random
numbers) and the outcomes are averaged over seeds before SALib estimates the indices.

With ``--posterior DIR --draws K`` (a calibration of the base scenario's behavioural parameters)
the whole study is repeated at each of ``K`` posterior draws (the same sample points and seeds at
every draw): the indices are estimated draw by draw, and each reported index is their mean over
the draws, with its spread over the draws (2.5 and 97.5 percentiles, ``draw_low``/``draw_high``)
beside the mean bootstrap half-width ``conf``; ``indices_by_draw`` keeps every draw's indices.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, ValidationError

from nplsim.experiments import metrics
from nplsim.experiments.compare import run_many
from nplsim.experiments.options import add_output_flags, add_yes_flag, confirm_runs
from nplsim.experiments.pool import resolve_workers
from nplsim.experiments.provenance import pins
from nplsim.experiments.seeds import DEFAULT_SEED, check_seeds
from nplsim.experiments.store import Claim, default_out, holding, json_text, write_directory
from nplsim.experiments.tables import markdown_table, write_tables
from nplsim.market.errors import (
    ConfigError,
    StrictModel,
    config_error_from_validation,
    printable,
    read_toml,
)
from nplsim.market.overrides import path_beside
from nplsim.market.prudential_rules import PrudentialRules
from nplsim.market.regime import Bounds, LegalRegime, metadata_bounds
from nplsim.market.scenario import DEFAULT_SCENARIO, load_scenario

log = logging.getLogger(__name__)

# The outcomes are metric names of nplsim.experiments.metrics (`nplsim metrics`); a path stands for
# its mean over the window.
MIN_SOBOL_N = 64  # below this base sample, Sobol indices and their bootstrap CIs are unreliable
MIN_MORRIS_N = 10  # trajectories
MAX_CI_WIDTH = 0.5  # a Sobol index whose 95% CI is wider than half the index's range is unresolved
INDEX_COLUMNS = ["outcome", "parameter", "index", "value", "conf", "ci_width", "note"]
DRAW_COLUMNS = ["draw_low", "draw_high", "draws"]  # the spread of an index over posterior draws
CONFIDENCE = 0.95


class ParameterRange(StrictModel):
    """The interval a regime field is sampled from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    high: float


class SensitivitySpec(StrictModel):
    """A sensitivity study, as written in its TOML spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field(default=DEFAULT_SCENARIO, description="Scenario name or TOML path.")
    quarters: int | None = Field(default=None, ge=1, le=400, description="Horizon override.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Scenario or regime fields fixed for every run."
    )
    method: Literal["sobol", "morris"] = "sobol"
    n: int = Field(
        ge=2,
        le=1 << 16,
        description="Base sample size: Sobol N (a power of 2; N·(D+2) points) or Morris"
        " trajectories (N·(D+1) points).",
    )
    num_levels: int = Field(default=4, ge=2, le=20, description="Morris grid levels.")
    seeds: list[int] = Field(default_factory=lambda: [DEFAULT_SEED], min_length=1, max_length=1000)
    sample_seed: int = Field(default=0, ge=0, description="Seed of the SALib sample and bootstrap.")
    outcomes: list[str] = Field(min_length=1, description="Metric names (`nplsim metrics`).")
    window: str = Field(default="all", description="Quarters the outcomes cover: post, all or"
                        " Q1:Q2 (see docs/metrics.md).")  # fmt: skip
    parameters: dict[str, ParameterRange] = Field(min_length=1)


def _rule_fields() -> dict:
    """Every field of the law and of the prudential rules, by name."""
    return {**LegalRegime.model_fields, **PrudentialRules.model_fields}


def float_fields() -> list[str]:
    """Legal-regime and prudential fields that can be varied continuously."""
    return [name for name, info in _rule_fields().items() if info.annotation is float]


def rule_bounds(name: str) -> Bounds:
    """The range of a float field of the law or of the prudential rules (±inf where open)."""
    return metadata_bounds(_rule_fields()[name].metadata)


def _range_text(lower: float, upper: float) -> str:
    return f"{lower:g} to {upper:g}" if np.isfinite(upper) else f">= {lower:g}"


def _check(spec: SensitivitySpec, source: str) -> None:
    """The checks pydantic cannot do alone: parameters against the regime, and the base runs."""
    allowed = float_fields()
    for name, bounds in spec.parameters.items():
        key = f"parameters.{name}"
        if name not in _rule_fields():
            raise ConfigError(
                source, key, "not a legal-regime or prudential field", ", ".join(allowed)
            )
        if name not in allowed:
            raise ConfigError(source, key, "not a float rule field", ", ".join(allowed))
        if name in spec.overrides:
            raise ConfigError(source, f"overrides.{name}", "is also a sampled parameter")
        lower, upper, lower_strict, upper_strict = rule_bounds(name)
        if bounds.low < lower or (lower_strict and bounds.low == lower):
            raise ConfigError(
                source, f"{key}.low", f"{bounds.low:g} is below the field's range",
                _range_text(lower, upper),
            )  # fmt: skip
        if bounds.high > upper or (upper_strict and bounds.high == upper):
            raise ConfigError(
                source, f"{key}.high", f"{bounds.high:g} is above the field's range",
                _range_text(lower, upper),
            )  # fmt: skip
        if not bounds.low < bounds.high:
            raise ConfigError(
                source, key, f"low ({bounds.low:g}) must be below high ({bounds.high:g})"
            )
    if spec.method == "sobol" and spec.n & (spec.n - 1):
        raise ConfigError(
            source, "n", f"Sobol sampling needs a power of 2, got {spec.n}", "2, 4, 8, ..., 65536"
        )
    check_seeds(spec.seeds, source, "seeds")
    for k, outcome in enumerate(spec.outcomes):
        metrics.get(outcome, source, f"outcomes.{k}")
    metrics.parse_window(spec.window, source)
    try:
        load_scenario(spec.base)
    except ConfigError as exc:
        raise ConfigError(source, "base", str(exc)) from None
    for corner in ("low", "high"):
        values = {name: getattr(r, corner) for name, r in spec.parameters.items()}
        try:
            load_scenario(spec.base, {**run_overrides(spec), **values})
        except ConfigError as exc:
            raise ConfigError(source, f"overrides.{exc.key}", exc.problem, exc.allowed) from None


def load_sensitivity_spec(
    source: str | Path | Mapping[str, Any], name: str | None = None
) -> SensitivitySpec:
    """Read and validate a sensitivity spec from a TOML file or a mapping.

    Raises:
        ConfigError: missing file, malformed TOML, unknown key, wrong type, a parameter that is
            not a float regime field or whose bounds leave the field's range, ``low >= high``.
    """
    if isinstance(source, Mapping):
        data, where = dict(source), name or "spec"
    else:
        path, where = Path(source), str(source)
        data = read_toml(path)
        _paths_beside(data, path.parent)
    try:
        spec = SensitivitySpec.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(exc, where, list(SensitivitySpec.model_fields)) from None
    _check(spec, where)
    return spec


def _paths_beside(data: dict[str, Any], folder: Path) -> None:
    """Read the base scenario and a preset the overrides name beside the spec file."""
    if "base" in data:
        data["base"] = path_beside(data["base"], folder)
    overrides = data.get("overrides")
    if isinstance(overrides, dict) and "regime" in overrides:
        overrides["regime"] = path_beside(overrides["regime"], folder)


def run_overrides(spec: SensitivitySpec) -> dict[str, Any]:
    """The fixed overrides of every run: the spec's own plus the horizon."""
    quarters = {"quarters": spec.quarters} if spec.quarters is not None else {}
    return {**spec.overrides, **quarters}


def problem(spec: SensitivitySpec) -> dict[str, Any]:
    """The SALib problem definition."""
    names = list(spec.parameters)
    return {
        "num_vars": len(names),
        "names": names,
        "bounds": [[spec.parameters[n].low, spec.parameters[n].high] for n in names],
    }


def sample(spec: SensitivitySpec) -> np.ndarray:
    """The sample points, one row per point, columns in parameter order."""
    if spec.method == "sobol":
        from SALib.sample import sobol

        return sobol.sample(problem(spec), spec.n, calc_second_order=False, seed=spec.sample_seed)
    from SALib.sample import morris

    return morris.sample(problem(spec), spec.n, num_levels=spec.num_levels, seed=spec.sample_seed)


@dataclass
class SensitivityResult:
    """A finished sensitivity study.

    Attributes:
        indices: tidy indices (:data:`INDEX_COLUMNS`); an outcome that could not be analysed has
            one row with ``index == "note"`` saying why.
        samples: one row per sample point: the parameter values and the seed-averaged outcomes.
        spec: the spec it ran.
    """

    indices: pd.DataFrame
    samples: pd.DataFrame
    spec: SensitivitySpec
    settings: dict[str, Any] = field(default_factory=dict)


def _unusable(values: np.ndarray) -> str | None:
    """Why an outcome cannot be analysed, or None."""
    missing = int((~np.isfinite(values)).sum())
    if missing == values.size:
        return "undefined (NaN) in every run; e.g. turnover needs a securitisation market"
    if missing:
        return f"undefined (NaN) at {missing} of {values.size} sample points"
    if np.ptp(values) == 0:
        return "constant across the sample: no variance to attribute"
    return None


def analyse(spec: SensitivitySpec, points: np.ndarray, outcomes: np.ndarray) -> pd.DataFrame:
    """SALib indices of every outcome, tidy; unusable outcomes get a note row and a warning."""
    prob = problem(spec)
    rows: list[dict[str, Any]] = []
    for j, outcome in enumerate(spec.outcomes):
        y = outcomes[:, j]
        reason = _unusable(y)
        if reason is not None:
            log.warning("sensitivity: outcome %s dropped: %s", outcome, reason)
            rows.append({"outcome": outcome, "parameter": None, "index": "note",
                         "value": np.nan, "conf": np.nan, "ci_width": np.nan,
                         "note": reason})  # fmt: skip
            continue
        if spec.method == "sobol":
            from SALib.analyze import sobol

            result = sobol.analyze(
                prob, y, calc_second_order=False, conf_level=CONFIDENCE, seed=spec.sample_seed
            )
            pairs = (("S1", "S1_conf"), ("ST", "ST_conf"))
        else:
            from SALib.analyze import morris

            result = morris.analyze(
                prob, points, y, conf_level=CONFIDENCE, num_levels=spec.num_levels,
                seed=spec.sample_seed,
            )  # fmt: skip
            pairs = (("mu_star", "mu_star_conf"), ("sigma", None), ("mu", None))
        for k, name in enumerate(prob["names"]):
            for index, conf in pairs:
                half = float(result[conf][k]) if conf else np.nan
                rows.append({
                    "outcome": outcome, "parameter": name, "index": index,
                    "value": float(result[index][k]), "conf": half, "ci_width": 2.0 * half,
                    "note": "",
                })  # fmt: skip
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def convergence_warnings(spec: SensitivitySpec, indices: pd.DataFrame) -> list[str]:
    """Why the indices may not have converged: a base sample ``n`` too small for the method, a
    Sobol index outside [0, 1] by more than its 95% bootstrap half-width, or Sobol CIs wider than
    :data:`MAX_CI_WIDTH` (one line each)."""
    warnings = []
    least = MIN_SOBOL_N if spec.method == "sobol" else MIN_MORRIS_N
    if spec.n < least:
        warnings.append(f"N = {spec.n} is too small for {spec.method} indices (use N >= {least}"
                        "); the indices and their CIs are unreliable")  # fmt: skip
    if spec.method == "sobol":
        values = indices[indices["index"].isin(["S1", "ST"])]
        conf = values["conf"].fillna(0.0)
        outside = values[(values["value"] + conf < 0.0) | (values["value"] - conf > 1.0)]
        for _, row in outside.iterrows():
            warnings.append(
                f"{row['outcome']}: {row['index']} of {row['parameter']} = {row['value']:.3g} ± "
                f"{row['conf']:.2g} lies outside [0, 1] beyond its CI: raise N"
            )
        wide = values[values["ci_width"] > MAX_CI_WIDTH]
        if not wide.empty:
            worst = wide.loc[wide["ci_width"].idxmax()]
            warnings.append(
                f"{len(wide)} of {len(values)} indices have a 95% CI wider than {MAX_CI_WIDTH:g} "
                f"(widest {worst['ci_width']:.2g}: {worst['index']} of {worst['parameter']} for "
                f"{worst['outcome']}): raise N or the seeds per point"
            )
    return warnings


def convergence_summary(spec: SensitivitySpec, indices: pd.DataFrame) -> list[str]:
    """The convergence check as lines: the widest CI of each index kind, then any warnings."""
    lines = []
    values = indices[indices["index"] != "note"]
    for index, rows in values.groupby("index", sort=False):
        widths = rows["ci_width"].dropna()
        if not widths.empty:
            row = rows.loc[widths.idxmax()]
            lines.append(f"widest 95% bootstrap CI of {index}: {row['ci_width']:.3g} "
                         f"({row['outcome']}, {row['parameter']}); median "
                         f"{widths.median():.3g}")  # fmt: skip
    warnings = convergence_warnings(spec, indices)
    lines += [f"warning: {w}" for w in warnings] or [
        f"no warning: N >= {MIN_SOBOL_N if spec.method == 'sobol' else MIN_MORRIS_N}, indices "
        f"within [0, 1] up to their CI, every CI narrower than {MAX_CI_WIDTH:g}"
    ]
    return lines


def combine_draws(per_draw: list[pd.DataFrame]) -> pd.DataFrame:
    """Indices over posterior draws: each index's mean over the draws where its outcome could be
    analysed, its mean bootstrap half-width and its 2.5–97.5 percentile range over the draws;
    an outcome analysable in no draw keeps one note row."""
    both = pd.concat([d.assign(draw=k) for k, d in enumerate(per_draw)], ignore_index=True)
    values = both[both["index"] != "note"]
    keys = ["outcome", "parameter", "index"]
    grouped = values.groupby(keys, sort=False)
    table = grouped.agg(value=("value", "mean"), conf=("conf", "mean"), draws=("draw", "nunique"))
    table["draw_low"] = grouped["value"].quantile(0.025)
    table["draw_high"] = grouped["value"].quantile(0.975)
    table = table.reset_index()
    table["ci_width"] = 2.0 * table["conf"]
    noted = both[both["index"] == "note"].groupby("outcome", sort=False)["note"]
    notes = {o: f"not analysable in {len(n)} of {len(per_draw)} draws: {n.iloc[0]}"
             for o, n in noted}  # fmt: skip
    table["note"] = [notes.get(o, "") for o in table["outcome"]]
    rows = [table]
    for outcome, note in notes.items():
        if outcome not in set(table["outcome"]):
            rows.append(pd.DataFrame([{"outcome": outcome, "parameter": None, "index": "note",
                                       "note": note, "draws": 0}]))  # fmt: skip
    order = {o: k for k, o in enumerate(dict.fromkeys(per_draw[0]["outcome"]))}
    found = pd.concat(rows, ignore_index=True).sort_values(
        "outcome", key=lambda s: s.map(order), kind="stable"
    )
    found["draws"] = found["draws"].astype("int64")
    return found[INDEX_COLUMNS + DRAW_COLUMNS].reset_index(drop=True)


def run_sensitivity(
    spec: SensitivitySpec | str | Path,
    *,
    workers: int | None = None,
    progress: bool = False,
    posterior: str | Path | None = None,
    draws: int | None = None,
) -> SensitivityResult:
    """Sample the parameters, run every point for every seed, and estimate the indices.

    Args:
        spec: a validated spec or the path of a TOML spec.
        workers: worker processes (default one per CPU; 1 runs in this process).
        progress: show a progress bar.
        posterior: a calibration directory of the base scenario: repeat the study at ``draws``
            posterior draws and report the indices averaged over draws, with their spread.
        draws: how many posterior draws (at least 2).

    Raises:
        ConfigError: an invalid spec or posterior, before any run.
    """
    if isinstance(spec, SensitivitySpec):
        _check(spec, "spec")
    else:
        spec = load_sensitivity_spec(spec)
    workers = resolve_workers(workers)
    started = time.perf_counter()
    points = sample(spec)
    names = list(spec.parameters)
    fixed = run_overrides(spec)
    chosen = [metrics.scalar(o) for o in spec.outcomes]
    columns = tuple(dict.fromkeys(m.source for m in chosen))
    config, _ = load_scenario(spec.base, fixed)
    events = [e.quarter for e in config.events if e.regime is not None or e.overrides]
    bounds = metrics.window_bounds(spec.window, config.quarters, events, "window")
    drawn, info = _posterior_draws(posterior, draws, config.name, [*fixed, *names])
    tasks = [
        (spec.base, seed,
         {**fixed, **values, **dict(zip(names, map(float, point), strict=True))}, columns)
        for values in drawn
        for point in points
        for seed in spec.seeds
    ]  # fmt: skip
    paths = run_many(tasks, workers, progress, desc=f"{spec.method} sensitivity")
    per_run = np.array(
        [[metrics.evaluate(m, path[:, columns.index(m.source)], *bounds) for m in chosen]
         for path in paths]
    ).reshape(len(drawn), len(points), len(spec.seeds), len(spec.outcomes))  # fmt: skip
    frames, per_draw = [], []
    for k, values in enumerate(drawn):
        outcomes = _mean_over_seeds(per_run[k])
        samples = pd.DataFrame(points, columns=names)
        samples.insert(0, "point", np.arange(len(points), dtype="int64"))
        if info is not None:
            samples.insert(1, "draw", k)
            for key, value in values.items():
                samples.insert(2, key, value)
        for j, outcome in enumerate(spec.outcomes):
            samples[outcome] = outcomes[:, j]
        frames.append(samples)
        per_draw.append(analyse(spec, points, outcomes))
    samples = pd.concat(frames, ignore_index=True)
    indices = per_draw[0] if info is None else combine_draws(per_draw)
    settings = {
        "spec": spec.model_dump(mode="json"),
        "n_points": len(points),
        "n_runs": len(tasks),
        "wall_time_s": round(time.perf_counter() - started, 3),
        "window_quarters": list(bounds),
        "convergence_warnings": convergence_warnings(spec, indices),
    }
    if info is not None:
        settings["posterior"] = info
        settings["indices_by_draw"] = pd.concat(
            [d.assign(draw=k) for k, d in enumerate(per_draw)], ignore_index=True
        )
    return SensitivityResult(indices=indices, samples=samples, spec=spec, settings=settings)


def _posterior_draws(
    posterior: str | Path | None, draws: int | None, scenario: str, fixed: list[str]
) -> tuple[list[dict[str, float]], dict[str, Any] | None]:
    """The posterior draws to repeat the study at (one empty draw without a posterior)."""
    if posterior is None:
        if draws is not None:
            raise ConfigError("sensitivity", "--draws", "needs --posterior", "--posterior DIR")
        return [{}], None
    if draws is None or draws < 2:
        raise ConfigError("sensitivity", "--draws", f"{draws}: a spread over draws needs at "
                          "least 2 draws", ">= 2 with --posterior")  # fmt: skip
    from nplsim.experiments.posterior import check_draws, load_draws

    values, info = load_draws(posterior, draws, "sensitivity", "--posterior")
    check_draws(info, scenario, fixed, "sensitivity", "--posterior")
    return values, info


def _mean_over_seeds(per_run: np.ndarray) -> np.ndarray:
    """Average ``(point, seed, outcome)`` over seeds, skipping seeds where it is undefined."""
    finite = np.isfinite(per_run)
    count = finite.sum(axis=1)
    total = np.where(finite, per_run, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)


# ====================================================================== output
def write_sensitivity(
    result: SensitivityResult, out_dir: str | Path | Claim, *, overwrite: bool = False
) -> Path:
    """Write ``indices.csv``/``.parquet``, ``samples.parquet``, ``manifest.json`` and figures.

    The directory is written through :mod:`nplsim.experiments.store`: it appears complete or not
    at all, and earlier sensitivity results are replaced only with ``overwrite``.
    """
    settings = dict(result.settings)
    by_draw = settings.pop("indices_by_draw", None)
    manifest = {
        "kind": "sensitivity",
        **settings,
        **pins(load_scenario(result.spec.base)[0]),
    }

    def write(staging: Path) -> None:
        spec = result.spec
        caption = (f"{spec.method.capitalize()} indices, base {Path(spec.base).stem}, N = "
                   f"{spec.n}, {len(spec.seeds)} seeds per point")  # fmt: skip
        if by_draw is not None:
            caption += (f", at {len(settings['posterior']['draws'])} posterior draws (mean "
                        "over draws; draw_low/draw_high: their 95% range)")  # fmt: skip
            by_draw.to_csv(staging / "indices_by_draw.csv", index=False)
        write_tables(result.indices, staging, "indices", caption)
        summary = [
            f"# {caption}",
            "",
            *(f"- {line}" for line in convergence_summary(spec, result.indices)),
            "",
            markdown_table(result.indices),
        ]
        (staging / "summary.md").write_text("\n".join(summary))
        result.indices.to_parquet(staging / "indices.parquet", index=False)
        result.samples.to_parquet(staging / "samples.parquet", index=False)
        figures = staging / "figures"
        figures.mkdir()
        for outcome, rows in result.indices.groupby("outcome", sort=False):
            if (rows["index"] != "note").any():
                index_figure(result, str(outcome), rows, figures / f"sensitivity_{outcome}.png")
        (staging / "manifest.json").write_text(json_text(manifest))

    return write_directory(out_dir, "sensitivity", write, overwrite=overwrite)


def index_figure(result: SensitivityResult, outcome: str, rows: pd.DataFrame, path: Path) -> None:
    """Bar chart of one outcome's indices per parameter, with 95% confidence error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    spec = result.spec
    params = list(spec.parameters)
    if spec.method == "sobol":
        shown = (("S1", "first order S1"), ("ST", "total order ST"))
        ylabel = "Sobol index (share of outcome variance)"
    else:
        shown = (("mu_star", "μ* (mean |elementary effect|)"), ("sigma", "σ (spread of effects)"))
        ylabel = "elementary effect over the parameter range (outcome units)"
    fig = Figure(figsize=(max(6.0, 1.6 * len(params) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = np.arange(len(params))
    width = 0.8 / len(shown)
    for k, (index, label) in enumerate(shown):
        part = rows[rows["index"] == index].set_index("parameter").reindex(params)
        conf = part["conf"].to_numpy(dtype=float)
        ax.bar(
            x + (k - (len(shown) - 1) / 2) * width,
            part["value"].to_numpy(dtype=float),
            width,
            yerr=np.where(np.isfinite(conf), conf, 0.0),
            capsize=3,
            label=label + (" ± 95% CI" if np.isfinite(conf).any() else ""),
        )
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(x, params, rotation=15, ha="right")
    ax.set_xlabel("legal-regime parameter")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    runs = result.settings.get("n_runs", 0)
    posterior = result.settings.get("posterior")
    ax.set_title(
        f"Sensitivity of {outcome} ({metrics.get(outcome).unit})\n"
        f"{spec.method.capitalize()}, N = {spec.n}, "
        f"{runs} runs ({len(spec.seeds)} seed{'s' * (len(spec.seeds) > 1)} per point), "
        f"base {Path(spec.base).stem}"
        + (
            f"\nmean of the indices at {len(posterior['draws'])} posterior draws"
            if posterior
            else ""
        ),  # fmt: skip
        fontsize=10,
    )
    from nplsim.experiments.figures import save as save_figure

    save_figure(fig, path, dpi=110)


def format_indices(indices: pd.DataFrame) -> str:
    """The indices as a console table (value ± conf, and over posterior draws the range
    [draw_low, draw_high]), with the notes below."""
    values = indices[indices["index"] != "note"]
    lines = []
    drawn = "draw_low" in indices.columns
    if drawn:
        lines.append("mean over posterior draws ± mean bootstrap half-width [95% range over draws]")
    if not values.empty:
        cell = values.apply(
            lambda r: (
                f"{r['value']:.3g}"
                + (f" ± {r['conf']:.2g}" if np.isfinite(r["conf"]) else "")
                + (f" [{r['draw_low']:.3g}, {r['draw_high']:.3g}]" if drawn else "")
            ),
            axis=1,
        )
        table = (
            values.assign(cell=cell)
            .pivot(index=["outcome", "parameter"], columns="index", values="cell")
            .reindex(columns=[c for c in ("S1", "ST", "mu_star", "sigma", "mu")
                              if c in set(values["index"])])
        )  # fmt: skip
        table.columns.name = None
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            lines.append(table.to_string())
    for _, row in indices[indices["index"] == "note"].iterrows():
        lines.append(f"note: {row['outcome']} not analysed: {row['note']}")
    return "\n".join(lines)


# ====================================================================== command line
def _cmd_sensitivity(args: argparse.Namespace) -> int:
    spec = load_sensitivity_spec(args.spec)
    workers = resolve_workers(args.workers)
    out = args.out if args.out else default_out(f"sensitivity-{Path(args.spec).stem}")
    draws = args.draws
    if args.posterior is not None or draws is not None:  # checked before anything is written
        config, _ = load_scenario(spec.base, run_overrides(spec))
        fixed = [*run_overrides(spec), *spec.parameters]
        _posterior_draws(args.posterior, draws, config.name, fixed)
    runs = len(sample(spec)) * len(spec.seeds) * (draws or 1)
    confirm_runs(runs, args.yes, printable(args.spec))
    with holding(out, "sensitivity", overwrite=args.overwrite) as claimed:
        result = run_sensitivity(spec, workers=workers, progress=not args.quiet,
                                 posterior=args.posterior, draws=draws)  # fmt: skip
        write_sensitivity(result, claimed)
    over = f" x {draws} posterior draws" if draws else ""
    print(
        f"{spec.method} sensitivity of {printable(Path(spec.base).stem)}: "
        f"{result.settings['n_points']} points x {len(spec.seeds)} seeds{over} = "
        f"{result.settings['n_runs']} runs"
    )
    print(format_indices(result.indices))
    print("convergence check:")
    for line in convergence_summary(spec, result.indices):
        print(f"  {line}")
    print(f"results: {printable(out)}")
    for line in result.settings["convergence_warnings"]:  # once the results are in place
        log.warning("sensitivity: %s", line)
    return 0


def register_sensitivity_cli(sub: Any) -> None:
    """Add ``nplsim sensitivity`` to the subcommands."""
    p = sub.add_parser("sensitivity", help="Sobol or Morris sensitivity to regime parameters")
    p.add_argument("spec", help="TOML spec (see experiments/specs/sensitivity_example.toml)")
    add_output_flags(p, "sensitivity", "results/sensitivity-SPEC")
    p.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    p.add_argument(
        "--posterior",
        metavar="DIR",
        help="a calibration of the base scenario: "
        "repeat the study at --draws posterior draws (indices averaged over draws)",
    )
    p.add_argument("--draws", type=int, help="posterior draws with --posterior (at least 2)")
    add_yes_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_sensitivity)
