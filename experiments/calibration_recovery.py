"""Does a calibration recover parameters it should? Targets made by the model itself at known
values (the truth), a calibration spec that fits them, and a table of truth against posterior.

The moments are restart_2016's loan-book growth over the run, loan-to-deposit ratio and
liquidity ratio at its last quarter, each with the band of one standard deviation over the
target seeds. ``tests/test_calibrate.py`` runs a small version in the test suite and
``benchmarks/calibration_recovery.py`` the full one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from nplsim.experiments.run import simulate

TRUTH = {"loan_growth_annual": 0.10, "deposit_growth_annual": 0.06, "reserve_ratio": 0.15}
PRIORS = {  # uniform priors (low, high), wide around the truth
    "loan_growth_annual": (0.0, 0.25),
    "deposit_growth_annual": (0.0, 0.25),
    "reserve_ratio": (0.05, 0.25),
}
TARGET_SEED_START = 1000  # seeds of the target runs, apart from the particles' own

_MOMENT = """
[[moments]]
id = "{id}"
description = "{id}"
source = "synthetic: the model at known parameter values"
unit = "{unit}"
target = {target:.8g}
tolerance = {tolerance:.8g}
[moments.statistic]
table = "model"
column = "{column}"
quarter = {quarter}
{extra}
"""
_MOMENTS = (  # name, unit, model column, how the statistic reads it
    ("loan_growth", "cny_bn", "gross_loans", "minus_quarter = 0"),
    ("ldr", "percent", "loan_to_deposit", ""),
    ("liquidity", "percent", "liquidity_ratio", ""),
)


def model_targets(
    truth: Mapping[str, float], n_loans: int, quarters: int, seeds: int = 5
) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation over ``seeds`` runs at ``truth`` of the three moments."""
    values = []
    for seed in range(TARGET_SEED_START, TARGET_SEED_START + seeds):
        overrides = {"n_loans": n_loans, "quarters": quarters, **truth}
        frame = simulate("restart_2016", seed, overrides).model_frame()
        values.append((frame.gross_loans.iloc[-1] - frame.gross_loans.iloc[0],
                       frame.loan_to_deposit.iloc[-1] * 100,
                       frame.liquidity_ratio.iloc[-1] * 100))  # fmt: skip
    mean, sd = np.mean(values, axis=0), np.std(values, axis=0, ddof=1)
    return {name: (mean[i], sd[i]) for i, (name, *_) in enumerate(_MOMENTS)}


def recovery_spec(
    path: Path, *, population: int, generations: int, min_epsilon: float, n_loans: int,
    quarters: int, seed: int = 5, target_seeds: int = 5, predictive_draws: int = 6,
    truth: Mapping[str, float] = TRUTH,
) -> Path:  # fmt: skip
    """Write a calibration spec of restart_2016 whose targets are the model's own moments at
    ``truth``, with :data:`PRIORS`; returns ``path``."""
    found = model_targets(truth, n_loans, quarters, target_seeds)
    text = (
        f'scenario = "restart_2016"\nn_loans = {n_loans}\nquarters = {quarters}\n'
        f"seeds_per_particle = 1\npopulation = {population}\ngenerations = {generations}\n"
        f"min_epsilon = {min_epsilon}\nseed = {seed}\npredictive_draws = {predictive_draws}\n"
    )
    for name, (low, high) in PRIORS.items():
        text += f"\n[parameters.{name}]\nlow = {low}\nhigh = {high}\n"
    for name, unit, column, extra in _MOMENTS:
        target, sd = found[name]
        text += _MOMENT.format(id=name, unit=unit, target=target, tolerance=sd, column=column,
                               quarter=quarters, extra=extra)  # fmt: skip
    path.write_text(text)
    return path


def recovery_table(out_dir: Path, truth: Mapping[str, float] = TRUTH) -> pd.DataFrame:
    """Each parameter's truth against its posterior median and 95% interval (from a finished
    calibration's ``identification.csv``), and whether the interval contains the truth."""
    ident = pd.read_csv(Path(out_dir) / "results" / "identification.csv")
    ident["truth"] = ident["parameter"].map(truth)
    ident["covered"] = (ident["p2_5"] <= ident["truth"]) & (ident["truth"] <= ident["p97_5"])
    return ident[["parameter", "truth", "median", "p2_5", "p97_5", "sd_ratio", "identified",
                  "covered"]]  # fmt: skip
