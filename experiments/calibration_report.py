"""What a calibration leaves behind: posterior, fit table, diagnostics, figures, scenario file.

``results/`` of a calibration directory holds:

- ``posterior.parquet`` — the last generation's particles: one row each, a column per parameter
  (named as in the spec) and its ``weight`` (the weights sum to 1);
- ``generations.csv`` — every generation: its distance threshold ``epsilon``, simulations and
  acceptance rate;
- ``fit.csv`` / ``fit.md`` — each moment (fitted and held out): its band, the posterior-
  predictive median and 95% interval of the model statistic (``predictive_draws`` particles
  drawn by weight, each run on fresh seeds), and whether the median lies in the band;
- ``identification.csv`` — each parameter's posterior median, 95% interval and the ratio of its
  posterior to its prior standard deviation; a ratio above :data:`IDENTIFIED_BELOW` means the
  moments hardly pin it down;
- ``calibrated.toml`` — the scenario with each parameter at its posterior median, headed by how
  it was made; ``nplsim run calibrated.toml`` runs it;
- ``preset.toml`` — the same as a preset to ship: the same header, ``base =`` the calibrated
  scenario and only the calibrated parameters, each with its 95% interval (copied to
  ``market/scenarios/NAME.toml`` it is the scenario NAME; not written when a parameter lies
  inside a list, which a base scenario cannot be laid over);
- ``figures/`` — marginal and pairwise posteriors and the threshold by generation (PNG and SVG).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments.calibrate import (
    RESULTS_DIR,
    particle_seeds,
    pyabc_name,
    replace_results,
    simulator,
)
from nplsim.experiments.calibration_spec import LoadedCalibration
from nplsim.experiments.pool import run_tasks
from nplsim.experiments.store import Claim
from nplsim.market.scenario import list_scenarios, load_scenario
from nplsim.market.tomlfile import toml_document

# A posterior standard deviation above half the prior's: the moments do not pin the parameter
# down (assumption: a common rule of thumb for ABC identification checks).
IDENTIFIED_BELOW = 0.5
PREDICTIVE_SEED_OFFSET = 1  # posterior-predictive runs use other seeds than the fit's
FIT_COLUMNS = ["moment", "held_out", "unit", "band_low", "band_high", "median", "p2_5", "p97_5",
               "n_draws", "hit"]  # fmt: skip


def posterior_frame(history: Any, loaded: LoadedCalibration) -> pd.DataFrame:
    """The last generation's particles with their weights, columns named as in the spec."""
    frame, weights = history.get_distribution(m=0, t=history.max_t)
    names = {pyabc_name(key): key for key in loaded.spec.parameters}
    frame = frame.rename(columns=names)[list(loaded.spec.parameters)].reset_index(drop=True)
    frame["weight"] = np.asarray(weights, dtype=float) / float(np.sum(weights))
    return frame


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` quantile of weighted values (the inverse of the weighted empirical CDF)."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    cum /= cum[-1]
    return float(values[order][min(np.searchsorted(cum, q), len(values) - 1)])


def posterior_draws(posterior: pd.DataFrame, k: int, seed: int) -> list[dict[str, float]]:
    """``k`` parameter vectors drawn from a posterior by weight (with replacement, seeded)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(posterior), size=k, replace=True, p=posterior["weight"].to_numpy())
    names = [c for c in posterior.columns if c != "weight"]
    return [{n: float(posterior.at[int(i), n]) for n in names} for i in rows]


def _predictive_job(job: tuple[Any, dict[str, float], list[int]]) -> dict[str, float]:
    sim, values, seeds = job
    return sim.moments(values, seeds)


def predictive(
    loaded: LoadedCalibration, posterior: pd.DataFrame, workers: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Every moment (fitted and held out) of ``predictive_draws`` posterior draws."""
    spec = loaded.spec
    draws = posterior_draws(posterior, spec.predictive_draws, spec.seed)
    sim = simulator(loaded, held_out=True)
    jobs = [
        (sim, d, particle_seeds(d, spec.seed + PREDICTIVE_SEED_OFFSET, spec.seeds_per_particle))
        for d in draws
    ]
    found: list[dict[str, float] | None] = [None] * len(jobs)
    for outcome in run_tasks(_predictive_job, jobs, workers=workers):
        if outcome.error is not None:
            raise outcome.error
        found[outcome.index] = outcome.value
    return draws, found  # type: ignore[return-value]


def fit_table(loaded: LoadedCalibration, moments: list[dict[str, float]]) -> pd.DataFrame:
    """Each moment's band against its posterior-predictive median and 95% interval."""
    rows = []
    for moment in loaded.moments:
        values = np.array([m[moment.id] for m in moments], dtype=float)
        finite = values[np.isfinite(values)]
        low, high = moment.fact.band()
        median = float(np.median(finite)) if finite.size else np.nan
        rows.append({
            "moment": moment.id, "held_out": moment.held_out, "unit": moment.fact.unit,
            "band_low": low, "band_high": high, "median": median,
            "p2_5": float(np.percentile(finite, 2.5)) if finite.size else np.nan,
            "p97_5": float(np.percentile(finite, 97.5)) if finite.size else np.nan,
            "n_draws": int(finite.size), "hit": bool(low <= median <= high),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def identification(loaded: LoadedCalibration, posterior: pd.DataFrame) -> pd.DataFrame:
    """Each parameter's posterior summary and its posterior/prior spread ratio."""
    w = posterior["weight"].to_numpy()
    rows = []
    for key, prior in loaded.spec.parameters.items():
        x = posterior[key].to_numpy(dtype=float)
        mean = float(np.sum(w * x))
        sd = float(np.sqrt(np.sum(w * (x - mean) ** 2)))
        ratio = sd / prior.sd_of_prior()
        rows.append({
            "parameter": key, "prior": prior.prior, "low": prior.low, "high": prior.high,
            "median": weighted_quantile(x, w, 0.5), "p2_5": weighted_quantile(x, w, 0.025),
            "p97_5": weighted_quantile(x, w, 0.975), "posterior_sd": sd,
            "prior_sd": prior.sd_of_prior(), "sd_ratio": ratio,
            "identified": bool(ratio < IDENTIFIED_BELOW),
        })  # fmt: skip
    return pd.DataFrame(rows)


def generations_table(history: Any) -> pd.DataFrame:
    """Threshold, simulations and acceptance of every generation."""
    pops = history.get_all_populations()
    pops = pops[pops["t"] >= 0].reset_index(drop=True)
    sizes = [history.get_nr_particles_per_population().get(t, np.nan) for t in pops["t"]]
    return pd.DataFrame({
        "generation": pops["t"].astype(int) + 1, "epsilon": pops["epsilon"].astype(float),
        "simulations": pops["samples"].astype(int), "particles": sizes,
        "acceptance": np.asarray(sizes, dtype=float) / pops["samples"].to_numpy(dtype=float),
    })  # fmt: skip


def fit_markdown(loaded: LoadedCalibration, fit: pd.DataFrame, ident: pd.DataFrame) -> str:
    """The fit and identification tables as Markdown, with the in-sample hit rate."""
    lines = [f"# Calibration of {loaded.spec.scenario}", ""]
    for held, title in ((False, "Fitted moments (in sample)"), (True, "Held-out moments")):
        part = fit[fit["held_out"] == held]
        if part.empty:
            continue
        lines += [f"## {title}: {int(part['hit'].sum())} of {len(part)} inside their band", "",
                  "| moment | unit | band | posterior-predictive median [95%] | hit |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for row in part.itertuples():
            lines.append(
                f"| {row.moment} | {row.unit} | {row.band_low:.4g} – {row.band_high:.4g} | "
                f"{row.median:.4g} [{row.p2_5:.4g}, {row.p97_5:.4g}] | "
                f"{'yes' if row.hit else '**miss**'} |"
            )
        lines.append("")
    lines += ["## Parameters", "",
              "| parameter | prior | posterior median [95%] | sd ratio | identified |",
              "|---|---|---|---|---|"]  # fmt: skip
    for row in ident.itertuples():
        lines.append(
            f"| {row.parameter} | {row.prior} {row.low:.4g}–{row.high:.4g} | {row.median:.4g} "
            f"[{row.p2_5:.4g}, {row.p97_5:.4g}] | {row.sd_ratio:.2f} | "
            f"{'yes' if row.identified else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def calibrated_scenario(
    loaded: LoadedCalibration,
    ident: pd.DataFrame,
    generations: int,
    when: str,
    code: dict[str, Any] | None = None,
) -> str:
    """The scenario with every parameter at its posterior median, as a TOML file, headed by the
    spec, the code (``code``: the manifest's git commit) and the date it was made with."""
    values = dict(zip(ident["parameter"], ident["median"], strict=True))
    overrides = {k: v for k, v in loaded.overrides(values).items() if k != "n_loans"}
    config, _ = load_scenario(loaded.scenario, overrides)
    body = config.model_dump(mode="json", exclude_none=True)
    header = [
        *_header(loaded, config.name, values, generations, when, code),
        "# Run it: nplsim run calibrated.toml (the fit was made at the loan slots above).",
    ]
    return "\n".join(header) + "\n\n" + toml_document(body)


def calibrated_preset(
    loaded: LoadedCalibration,
    ident: pd.DataFrame,
    generations: int,
    when: str,
    code: dict[str, Any] | None = None,
) -> str | None:
    """The calibrated scenario as a preset: the header of :func:`calibrated_scenario`, ``base =``
    the calibrated scenario and each parameter's posterior median with its 95% interval and
    identification; None when a parameter lies inside a list (``banks.0.x``)."""
    keys = [key.replace("__", ".") for key in ident["parameter"]]
    if any(part.isdigit() for key in keys for part in key.split(".")):
        return None
    values = dict(zip(ident["parameter"], ident["median"], strict=True))
    config, _ = load_scenario(loaded.scenario, loaded.overrides())
    base = loaded.spec.scenario if loaded.spec.scenario in list_scenarios() else loaded.scenario
    description = f"{config.description} (calibrated by {Path(loaded.source).name})"
    lines = [
        *_header(loaded, config.name, values, generations, when, code),
        f"# A preset: copied to market/scenarios/NAME.toml it is the scenario NAME, {config.name} "
        "with only the parameters below changed.",
        "",
        f"base = {json.dumps(str(base))}",
        f"description = {json.dumps(description)}",
    ]
    for key, row in zip(keys, ident.itertuples(), strict=True):
        identified = "identified" if row.identified else "not identified"
        lines.append(
            f"{key} = {float(row.median)!r}  # posterior median, 95% interval "
            f"{row.p2_5:.4g}-{row.p97_5:.4g}, sd ratio {row.sd_ratio:.2f} ({identified})"
        )
    return "\n".join(lines) + "\n"


def _header(
    loaded: LoadedCalibration,
    name: str,
    values: dict[str, float],
    generations: int,
    when: str,
    code: dict[str, Any] | None,
) -> list[str]:
    """How a calibrated scenario was made: spec, search, date, code and posterior medians."""
    return [
        f"# {name}, calibrated: every parameter of {Path(loaded.source).name} at its "
        "posterior median.",
        f"# Made by: nplsim calibrate {loaded.source} ({generations} generations, "
        f"{loaded.spec.population} particles, {loaded.spec.seeds_per_particle} seeds per "
        f"particle, {loaded.spec.n_loans} loan slots), {when}.",
        f"# Code: {_commit_text(code or {})}.",
        "# Parameters: " + ", ".join(f"{k} = {v:.6g}" for k, v in values.items()),
    ]


def _commit_text(code: dict[str, Any]) -> str:
    commit = code.get("git_commit")
    if not commit:
        return "not a git checkout"
    return f"commit {commit[:12]}" + (" with uncommitted changes" if code.get("git_dirty") else "")


def write_results(
    loaded: LoadedCalibration,
    claimed: Claim,
    history: Any,
    *,
    workers: int,
    scheduler: str | None,
) -> None:
    """Write ``results/`` of a calibration (replacing an earlier one, after a resume)."""
    from datetime import UTC, datetime

    posterior = posterior_frame(history, loaded)
    _, moments = predictive(loaded, posterior, workers if not scheduler else 1)
    fit = fit_table(loaded, moments)
    ident = identification(loaded, posterior)
    gens = generations_table(history)
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    staging = claimed.path / f".tmp-results-{claimed.sibling('stage').name[-8:]}"
    staging.mkdir()
    try:
        posterior.to_parquet(staging / "posterior.parquet", index=False)
        gens.to_csv(staging / "generations.csv", index=False)
        fit.to_csv(staging / "fit.csv", index=False)
        (staging / "fit.md").write_text(fit_markdown(loaded, fit, ident), encoding="utf-8")
        ident.to_csv(staging / "identification.csv", index=False)
        code = _manifest_code(claimed)
        (staging / "calibrated.toml").write_text(
            calibrated_scenario(loaded, ident, len(gens), when, code), encoding="utf-8"
        )
        preset = calibrated_preset(loaded, ident, len(gens), when, code)
        if preset is not None:
            (staging / "preset.toml").write_text(preset, encoding="utf-8")
        figures = staging / "figures"
        figures.mkdir()
        _figures(loaded, posterior, gens, figures)
        replace_results(claimed, staging)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    assert (claimed.path / RESULTS_DIR).is_dir()


def _manifest_code(claimed: Claim) -> dict[str, Any]:
    """The code a calibration was begun under, as its manifest pins it."""
    from nplsim.experiments.calibrate import MANIFEST
    from nplsim.market.errors import read_json

    code = read_json(claimed.path / MANIFEST, "calibration.json").get("code")
    return code if isinstance(code, dict) else {}


def _figures(
    loaded: LoadedCalibration, posterior: pd.DataFrame, gens: pd.DataFrame, folder: Path
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = list(loaded.spec.parameters)
    w = posterior["weight"].to_numpy()
    name = loaded.spec.scenario
    n = len(keys)
    fig = Figure(figsize=(3.2 * n, 3.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, n))
    for ax, key in zip(axes, keys, strict=True):
        prior = loaded.spec.parameters[key]
        ax.hist(posterior[key], bins=20, weights=w, range=(prior.low, prior.high), density=True,
                color="tab:blue", alpha=0.7, label="posterior")  # fmt: skip
        ax.axhline(1 / (prior.high - prior.low), color="grey", ls="--", lw=1,
                   label="uniform prior density" if prior.prior == "uniform" else None)  # fmt: skip
        ax.set_xlabel(key)
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    fig.suptitle(f"{name}: marginal posteriors (last generation, {len(posterior)} particles)")
    _save(fig, folder / "posterior_marginals")

    if n >= 2:
        fig = Figure(figsize=(2.6 * n, 2.6 * n), layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.subplots(n, n, squeeze=False)
        for i, yi in enumerate(keys):
            for j, xj in enumerate(keys):
                ax = grid[i][j]
                if i == j:
                    ax.hist(posterior[xj], bins=20, weights=w, color="tab:blue", alpha=0.7)
                else:
                    ax.scatter(posterior[xj], posterior[yi], s=6 + 400 * w, alpha=0.5)
                if i == n - 1:
                    ax.set_xlabel(xj, fontsize=8)
                if j == 0:
                    ax.set_ylabel(yi, fontsize=8)
        fig.suptitle(f"{name}: pairwise posterior (marker size = weight)")
        _save(fig, folder / "posterior_pairs")

    fig = Figure(figsize=(6, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(gens["generation"], gens["epsilon"], marker="o", label="threshold epsilon")
    ax.axhline(loaded.spec.min_epsilon, color="grey", ls="--", lw=1, label="min_epsilon")
    ax.set_yscale("log")
    ax.set_xlabel("generation")
    ax.set_ylabel("distance (band half-widths)")
    ax.legend(fontsize=8)
    ax.set_title(f"{name}: distance threshold by generation")
    _save(fig, folder / "distance_by_generation")


def _save(fig: Any, stem: Path) -> None:
    from nplsim.experiments.figures import save as save_figure

    save_figure(fig, stem.with_suffix(".png"), dpi=120)
