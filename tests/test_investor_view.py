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
    belief = update_bias(0.04, np.array([]), np.array([]), np.array([]))
    assert belief.var == pytest.approx(0.04)
    assert belief.factor == pytest.approx(1.0)
    certain = update_bias(0.0, np.array([0.5]), np.array([1.0]), np.array([0.1]))
    assert certain == Belief(0.0, 0.0)


def _lumpy_records(rng, bias: float, deals: int, loans: int, p_paid: float):
    """Deals of a few loans each, every loan paying its whole value at once with chance
    ``p_paid``: collections to date are mostly 0 or far above what was expected."""
    value = rng.lognormal(0.0, 1.0, (deals, loans))
    expected = p_paid * value.sum(axis=1)
    realised = bias * (value * (rng.random((deals, loans)) < p_paid)).sum(axis=1)
    relative_var = (value**2).sum(axis=1) * p_paid * (1 - p_paid) / expected**2
    return realised, expected, relative_var


@pytest.mark.parametrize("bias", [1.0, 0.6])
def test_the_belief_is_right_on_average_however_lumpy_the_records(bias):
    # was: each deal's log ratio, with a floor for a deal that collected nothing, pulled the
    # belief about an unbiased originator of two-loan deals to about half the truth
    rng = np.random.default_rng(11)
    prior = 0.3
    factors = [
        update_bias(prior, *_lumpy_records(rng, bias, deals=6, loans=2, p_paid=0.3)).factor
        for _ in range(4000)
    ]
    # the credibility estimate Z·R + (1 − Z) has mean Z·bias + (1 − Z): exactly 1 for an
    # unbiased originator, and between the prior's 1 and the truth otherwise
    if bias == 1.0:
        assert np.mean(factors) == pytest.approx(1.0, abs=0.02)
    else:
        assert bias < np.mean(factors) < 1.0 - 0.25 * (1.0 - bias)


def test_a_long_precise_record_reveals_the_bias():
    rng = np.random.default_rng(3)
    realised, expected, relative_var = _lumpy_records(rng, 0.8, deals=400, loans=200, p_paid=0.6)
    belief = update_bias(0.3, realised, expected, relative_var)
    assert belief.factor == pytest.approx(0.8, rel=0.03)
    assert belief.var < 0.01 * 0.3  # little doubt left


def test_the_belief_is_the_credibility_weighted_ratio():
    prior, realised, expected, v = 0.09, np.array([0.0, 3.0]), np.array([1.0, 2.0]), np.array(
        [0.5, 0.25]
    )
    tau2 = np.expm1(prior)
    noise = (expected**2 * v).sum() / expected.sum() ** 2
    weight = tau2 / (tau2 + noise)
    belief = update_bias(prior, realised, expected, v)
    assert belief.factor == pytest.approx(weight * 1.0 + (1 - weight))  # R = 3 / 3 = 1
    assert np.expm1(belief.var) * belief.factor**2 == pytest.approx((1 - weight) * tau2)


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
