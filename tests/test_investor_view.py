"""Tests of what investors infer: the rational lemons factor of a chosen pool, the Bayesian track
record of an originator, and recharacterisation risk from capital, history and the law."""

from __future__ import annotations

import numpy as np
import pytest

from nplsim.market.learning import (
    Belief,
    lemons_factor,
    private_variance,
    selection_bounds,
    selection_factor,
    update_bias,
)
from nplsim.market.legal_risk import (
    COMPANY_COURT_REACH_SHARE,
    court_reach,
    distress_probability,
    first_passage_prob,
    pool_loss_given_recharacterisation,
)


@pytest.fixture(scope="module")
def residuals() -> np.ndarray:
    """Private quality residuals: mean-one lognormal with log-variance 0.2."""
    v = 0.2
    return np.exp(np.sqrt(v) * np.random.default_rng(5).standard_normal(2_000_000) - v / 2)


# the lemons factor -----------------------------------------------------------------------------
@pytest.mark.parametrize(("lower", "upper"), [(0.0, 0.8), (0.0, 1.3), (0.7, 1.2), (1.1, np.inf)])
def test_selection_factor_is_the_truncated_mean(residuals, lower, upper):
    chosen = residuals[(residuals > lower) & (residuals < upper)]
    assert selection_factor(np.array(lower), np.array(upper), 0.2) == pytest.approx(
        chosen.mean(), rel=2e-3
    )


def test_the_rule_picks_worse_loans_from_those_kept_and_better_from_those_sold(residuals):
    keep_or_deal = selection_bounds(1.0, 0.0, 0.0, np.array([1.0]), np.array([0.0]),
                                    np.array([-np.inf]))  # fmt: skip
    assert keep_or_deal[0][0] == 0.0 and keep_or_deal[1][0] == pytest.approx(1.0)
    sell_or_deal = selection_bounds(0.9, 0.05, 0.05, np.array([0.0]), np.array([0.0]),
                                    np.array([0.9]))  # fmt: skip
    assert np.isinf(sell_or_deal[1][0]) and sell_or_deal[0][0] > 0.0
    assert selection_factor(*keep_or_deal, 0.2)[0] < 1.0 < selection_factor(*sell_or_deal, 0.2)[0]


def test_full_disclosure_leaves_no_lemons_discount():
    assert private_variance(1.0, 0.6) == 0.0
    lower, upper = np.zeros(3), np.array([0.5, 1.0, 2.0])
    assert lemons_factor(np.ones(3), lower, upper, private_variance(1.0, 0.6)) == 1.0
    discounts = [
        1.0 - lemons_factor(np.ones(3), lower, upper, private_variance(d, 0.6))
        for d in (0.0, 0.3, 0.6, 0.9)
    ]
    assert np.all(np.diff(discounts) < 0) and discounts[-1] > 0.0


def test_retention_narrows_the_lemons_discount():
    """A retained share paid on the loans' real value takes away part of the gain from putting
    lemons in a deal that a bank makes for other reasons (capital relief, here 0.3 of value)."""
    factors = []
    for retained in (0.0, 0.05, 0.2, 0.5):
        lower, upper = selection_bounds(0.9, retained, 0.0, np.array([1.0]), np.array([0.3]),
                                        np.array([-np.inf]))  # fmt: skip
        factors.append(selection_factor(lower, upper, 0.2)[0])
    assert np.all(np.diff(factors) > 0) and factors[0] < 0.99


# the track record ------------------------------------------------------------------------------
def test_without_a_record_investors_expect_no_bias():
    belief = update_bias(0.04, np.array([]), np.array([]))
    assert belief.var == pytest.approx(0.04)
    assert belief.factor == pytest.approx(1.0)
    assert update_bias(0.0, np.array([0.5]), np.array([10.0])) == Belief(0.0, 0.0)


def test_the_bias_posterior_is_the_normal_update():
    prior, x, w = 0.04, np.array([np.log(0.8), np.log(0.9)]), np.array([50.0, 25.0])
    belief = update_bias(prior, x, w)
    precision = 1 / prior + w.sum()
    assert belief.var == pytest.approx(1 / precision)
    assert belief.mean == pytest.approx(((-prior / 2) / prior + (w * x).sum()) / precision)
    # many precise records of a pool that collected 80% of what was expected
    assert update_bias(prior, np.full(40, np.log(0.8)), np.full(40, 1e3)).factor == pytest.approx(
        0.8, rel=1e-3
    )


# recharacterisation risk -----------------------------------------------------------------------
def test_first_passage_matches_a_simulated_random_walk():
    rng = np.random.default_rng(3)
    cushion, vol, horizon, fine = 0.02, 0.005, 12, 50
    steps = rng.standard_normal((40_000, horizon * fine)) * vol / np.sqrt(fine)
    hit = (cushion + np.cumsum(steps, axis=1)).min(axis=1) <= 0
    assert first_passage_prob(cushion, vol, horizon) == pytest.approx(hit.mean(), abs=0.01)
    assert first_passage_prob(0.0, vol, horizon) == 1.0
    assert first_passage_prob(0.05, 0.0, horizon) == 0.0


def test_distress_probability_rises_with_a_thin_cushion_and_a_history_of_distress():
    thin = distress_probability(0.01, 0.004, 20, 0.0, 0.0, 1.0)
    thick = distress_probability(0.08, 0.004, 20, 0.0, 0.0, 1.0)
    assert thick < 1e-4 < thin < 1.0
    surprised = distress_probability(0.01, 0.004, 20, 3.0, 0.5, 1.0)  # 3 episodes, 0.5 expected
    calm = distress_probability(0.01, 0.004, 20, 0.0, 3.0, 1.0)  # none where 3 were expected
    assert calm < thin < surprised
    assert distress_probability(-0.01, 0.004, 20, 0.0, 0.0, 1.0) == 1.0


def test_a_company_vehicle_is_reached_less_and_remoteness_shields_the_pool():
    assert court_reach(0.8, "trust") == pytest.approx(0.2)
    assert court_reach(0.8, "company") == pytest.approx(0.2 * COMPANY_COURT_REACH_SHARE)
    assert court_reach(1.0, "trust") == 0.0


def test_pool_loss_is_the_frozen_share_times_the_haircut_investor_protection_leaves():
    loss = pool_loss_given_recharacterisation(4, 0.15, 0.4, 0.5)
    assert loss == pytest.approx((1 - 0.85**4) * 0.4 * 0.5)
    assert pool_loss_given_recharacterisation(4, 0.15, 0.4, 1.0) == 0.0
