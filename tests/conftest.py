"""Shared fixtures: small, fast models and a helper that runs one to its horizon."""

from __future__ import annotations

import pytest

from nplsim import NPLMarketModel

SMALL = {"n_loans": 20_000}


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
