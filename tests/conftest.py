"""Shared fixtures: small, fast models and a helper that runs one to its horizon."""

from __future__ import annotations

import pytest

from nplsim import NPLMarketModel

SMALL = {"n_loans": 20_000}
# The through-the-cycle credit factor of the Basel correlations (s.d. 1, not restart_2016's calm
# 2016-23 calibration) and sales allowed after a year: credit cycles that push banks under
# capital and NPL pressure, and so into securitisation, for tests of the deal mechanics.
VOLATILE = {"macro__credit_factor_sd": 1.0, "disposal_lag_q": 4}


def run_model(scenario: str = "restart_2016", seed: int = 1, check: bool = False, **overrides):
    """Run a model to its horizon; with ``check`` assert every invariant every quarter."""
    model = NPLMarketModel(scenario=scenario, rng=seed, **{**SMALL, **overrides})
    if check:
        assert model.invariant_violations() == []
    while model.running:
        model.step()
        if check:
            assert model.invariant_violations() == [], f"quarter {model.quarter}"
    return model


@pytest.fixture
def small_model():
    """A 20,000-loan default model, not yet stepped."""
    return NPLMarketModel(scenario="restart_2016", rng=7, **SMALL)
