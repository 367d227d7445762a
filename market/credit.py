"""The scenario's credit parameters as loan-book inputs: segment calibration, the mix of new
lending, and the workout quality of borrowers who default."""

from __future__ import annotations

import numpy as np

from nplsim.market.loans import SEGMENTS, SegmentTable
from nplsim.market.scenario import ScenarioConfig


def segment_table(config: ScenarioConfig) -> SegmentTable:
    """Each segment's calibration as arrays indexed by segment code (NaN where unset)."""
    specs = [config.segments[name] for name in SEGMENTS]

    def column(field: str) -> np.ndarray:
        return np.array(
            [np.nan if getattr(s, field) is None else getattr(s, field) for s in specs], dtype=float
        )

    return SegmentTable(
        pd_annual=column("pd_annual"),
        spread=column("spread"),
        maturity_q=column("maturity_q"),
        secured_share=column("secured_share"),
        collateral_cover=column("collateral_cover"),
        haircut=column("haircut"),
        unsecured_recovery=column("unsecured_recovery"),
        correlation=column("correlation"),
        factor_sd=config.macro.credit_factor_sd,
        borrower_balance=column("borrower_balance_cny"),
    )


def draw_segments(config: ScenarioConfig, uniform: np.ndarray) -> np.ndarray:
    """Segment of new loans, one per uniform draw: government-directed with the scenario's share
    (the study's first cause of NPLs), else the commercial mix."""
    shares = np.array(
        [config.gov_directed_share]
        + [(1 - config.gov_directed_share) * config.commercial_mix.get(s, 0.0)
           for s in SEGMENTS[1:]]
    )  # fmt: skip
    cumulative = np.cumsum(shares / shares.sum())
    return np.minimum(np.searchsorted(cumulative, uniform, side="right"), len(SEGMENTS) - 1)


def workout_quality(dispersion: float, normal: np.ndarray) -> np.ndarray:
    """Workout quality of defaulted borrowers from standard normal draws: lognormal with mean 1
    and log-s.d. ``dispersion``; known to the lender, revealed to buyers only as far as the law's
    disclosure goes."""
    return np.exp(dispersion * normal - dispersion**2 / 2)
