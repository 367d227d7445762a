"""Parameter uncertainty carried into a policy comparison (``nplsim compare --posterior DIR``).

A calibration leaves a posterior over the scenario's behavioural parameters. A comparison at one
parameter vector reports only the seeds' noise; :func:`compare_over_posterior` runs the paired
comparison at ``K`` parameter vectors drawn from the posterior by weight (the same draws for A
and B, the same seeds for every draw) and reports, next to the seed-only interval at the
posterior median, an interval that includes the parameters' uncertainty: the 2.5% and 97.5%
quantiles of the mixture, over draws, of each draw's sampling distribution of the effect (the
t distribution of the draw's paired mean and standard error, as in the seed-only interval).
With one draw it equals the seed-only interval; with seeds that agree exactly it is the spread
of the effect over the posterior.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments.calibrate import MANIFEST, RESULTS_DIR
from nplsim.experiments.calibration_report import posterior_draws, weighted_quantile
from nplsim.experiments.compare import CONFIDENCE, Scenario, compare
from nplsim.market.errors import ConfigError, read_json
from nplsim.market.scenario import load_scenario

POSTERIOR_FILE = "posterior.parquet"
MIXTURE_SAMPLES = 20_000  # draws from the effect's mixture for its quantiles (seeded)
DRAW_SEED = 0  # posterior draws are the same in every comparison made from one calibration
COLUMNS = [
    "metric", "statistic", "diff", "seed_ci_low", "seed_ci_high", "diff_over_posterior",
    "param_ci_low", "param_ci_high", "draws", "n_seeds",
]  # fmt: skip


def read_posterior(directory: str | Path) -> pd.DataFrame:
    """The posterior of a calibration directory (or of its ``results/`` folder)."""
    directory = Path(directory)
    for path in (directory / RESULTS_DIR / POSTERIOR_FILE, directory / POSTERIOR_FILE):
        if path.is_file():
            frame = pd.read_parquet(path)
            if "weight" not in frame.columns or len(frame) == 0:
                break
            return frame
    raise ConfigError(str(directory), "--posterior", "holds no posterior.parquet nplsim wrote",
                      "the results directory of nplsim calibrate")  # fmt: skip


def load_draws(
    directory: str | Path, draws: int, source: str, key: str = "posterior"
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """``draws`` parameter vectors of a calibration's posterior (by weight, with replacement; the
    same vectors as ``nplsim compare --posterior`` draws) and what a manifest records of them:
    the directory, the calibrated scenario, the SHA-256 of the posterior and the draws.

    Raises:
        ConfigError: ``directory`` is not a finished calibration (blamed on ``source``/``key``).
    """
    path = Path(directory)
    allowed = "the directory of a finished nplsim calibrate"
    try:
        posterior = read_posterior(path)
    except ConfigError:
        raise ConfigError(source, key, f"{directory}: holds no {RESULTS_DIR}/{POSTERIOR_FILE} "
                          "nplsim wrote", allowed) from None  # fmt: skip
    if not (path / MANIFEST).is_file():
        raise ConfigError(source, key, f"{directory}: holds no {MANIFEST}", allowed)
    manifest = read_json(path / MANIFEST, key)
    scenario = manifest.get("scenario")
    if manifest.get("kind") != "calibrate" or not isinstance(scenario, str):
        raise ConfigError(source, key, f"{directory}: {MANIFEST} is not a calibration's", allowed)
    file = path / RESULTS_DIR / POSTERIOR_FILE
    if not file.is_file():
        file = path / POSTERIOR_FILE
    info = {
        "directory": str(directory),
        "scenario": load_scenario(scenario)[0].name,
        "parameters": [c for c in posterior.columns if c != "weight"],
        "posterior_sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
        "draws": posterior_draws(posterior, draws, DRAW_SEED),
    }
    return info["draws"], info


def check_draws(
    info: Mapping[str, Any], scenario: str, fixed: Iterable[str], source: str, key: str
) -> None:
    """Refuse posterior draws of another scenario's calibration, or of a parameter that is also
    fixed or varied (``fixed``: the field names, dotted)."""
    if info["scenario"] != scenario:
        raise ConfigError(source, key, f"{info['directory']} calibrates {info['scenario']}, not "
                          f"{scenario}", f"a calibration of {scenario}")  # fmt: skip
    normal = {k.replace("__", ".") for k in fixed}
    both = sorted(p for p in info["parameters"] if p.replace("__", ".") in normal)
    if both:
        problem = f"the posterior draws {', '.join(both)}, which is also set here; set it once"
        raise ConfigError(source, key, problem, "parameters the posterior does not draw")


def require_draws(draws: int) -> None:
    """Refuse fewer than two posterior draws for a comparison: an interval needs two."""
    if draws < 2:
        raise ConfigError("compare", "--draws", f"{draws}: an interval needs at least 2 draws",
                          ">= 2")  # fmt: skip


def posterior_median(posterior: pd.DataFrame) -> dict[str, float]:
    """Each parameter's weighted posterior median."""
    w = posterior["weight"].to_numpy()
    return {
        c: weighted_quantile(posterior[c].to_numpy(dtype=float), w, 0.5)
        for c in posterior.columns
        if c != "weight"
    }


def compare_over_posterior(
    a: Scenario,
    b: Scenario,
    seeds: int | Iterable[int],
    posterior: pd.DataFrame,
    draws: int,
    *,
    overrides_a: Mapping[str, Any] | None = None,
    overrides_b: Mapping[str, Any] | None = None,
    progress: bool = False,
    **options: Any,
) -> tuple[pd.DataFrame, Any]:
    """The comparison at the posterior median (seed-only intervals) and over ``draws``
    posterior draws (intervals with parameter uncertainty).

    ``options`` are :func:`~nplsim.experiments.compare.compare`'s (quarters, metrics, workers,
    labels). Returns the table :data:`COLUMNS` and the comparison at the posterior median.
    """
    require_draws(draws)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    oa, ob = dict(overrides_a or {}), dict(overrides_b or {})
    median = posterior_median(posterior)
    central = compare(a, b, seed_list, overrides_a={**oa, **median},
                      overrides_b={**ob, **median}, progress=progress, **options)  # fmt: skip
    per_draw = [
        compare(
            a,
            b,
            seed_list,
            overrides_a={**oa, **d},
            overrides_b={**ob, **d},
            progress=progress,
            **options,
        ).table  # fmt: skip
        for d in posterior_draws(posterior, draws, DRAW_SEED)
    ]
    return combine(central.table, per_draw), central


def combine(central: pd.DataFrame, per_draw: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The seed-only row of each metric and statistic beside its interval over the draws."""
    from scipy import stats

    rng = np.random.default_rng(DRAW_SEED)
    rows = []
    for i, row in central.reset_index(drop=True).iterrows():
        diffs = np.array([t.iloc[i]["diff"] for t in per_draw], dtype=float)
        halves = np.array([(t.iloc[i]["ci_high"] - t.iloc[i]["ci_low"]) / 2 for t in per_draw])
        n = np.array([t.iloc[i]["n_seeds"] for t in per_draw], dtype=float)
        t_crit = stats.t.ppf(0.5 + CONFIDENCE / 2, np.maximum(n - 1, 1))
        se = np.where(n > 1, halves / t_crit, 0.0)
        keep = np.isfinite(diffs) & np.isfinite(se)
        if keep.any():
            pick = rng.integers(0, int(keep.sum()), MIXTURE_SAMPLES)
            df = np.maximum(n[keep][pick] - 1, 1)
            mixture = diffs[keep][pick] + se[keep][pick] * rng.standard_t(df)
            low, high = np.quantile(mixture, [0.5 - CONFIDENCE / 2, 0.5 + CONFIDENCE / 2])
            centre = float(diffs[keep].mean())
        else:
            low = high = centre = float("nan")
        rows.append({
            "metric": row["metric"], "statistic": row["statistic"], "diff": row["diff"],
            "seed_ci_low": row["ci_low"], "seed_ci_high": row["ci_high"],
            "diff_over_posterior": centre, "param_ci_low": float(low),
            "param_ci_high": float(high), "draws": int(keep.sum()),
            "n_seeds": int(row["n_seeds"]),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)
