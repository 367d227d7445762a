"""Tests of NPL deal structuring and pricing: the collection stress, tranche losses, investors'
required yields, uniform-price bookbuilding, the subordinated price and issuance costs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nplsim.market.pricing import (
    NPL_SENIOR_RISK_WEIGHT,
    RISK_WEIGHTS,
    clear_uniform,
    collection_sigma,
    issuance_costs,
    lognormal_quantile,
    rating_from_default_prob,
    required_yield,
    size_tranches,
    sub_price,
    tranche_default_prob,
    tranche_expected_loss,
)

N_DRAWS = 1_000_000
MEAN, SIGMA = 4.0, 0.4


@pytest.fixture(scope="module")
def collections() -> np.ndarray:
    """One million lognormal draws of pool collections with mean MEAN and log-s.d. SIGMA."""
    z = np.random.default_rng(11).standard_normal(N_DRAWS)
    return MEAN * np.exp(SIGMA * z - 0.5 * SIGMA**2)


# the closed forms, ---------------------------------------------------------- against Monte Carlo


def test_draws_have_the_stated_mean(collections):
    se = collections.std() / np.sqrt(N_DRAWS)
    assert abs(collections.mean() - MEAN) < 5 * se


@pytest.mark.parametrize("p", [0.005, 0.02, 0.1, 0.5, 0.9])
def test_lognormal_quantile_matches_monte_carlo(collections, p):
    q = lognormal_quantile(MEAN, SIGMA, p)
    share_below = (collections < q).mean()
    assert abs(share_below - p) < 5 * np.sqrt(p * (1 - p) / N_DRAWS)


@pytest.mark.parametrize(
    ("attach", "detach"), [(0.0, 1.8), (1.8, 2.9), (2.9, 4.0), (0.0, 4.0), (3.5, 6.0), (1.0, 1.1)]
)
def test_tranche_expected_loss_and_default_prob_match_monte_carlo(collections, attach, detach):
    notional = detach - attach
    payment = np.minimum(np.maximum(collections - attach, 0.0), notional)
    loss_share = 1.0 - payment / notional
    se = loss_share.std() / np.sqrt(N_DRAWS)
    el = tranche_expected_loss(attach, detach, MEAN, SIGMA)
    assert abs(el - loss_share.mean()) < 5 * se + 1e-12
    p_default = (collections < detach).mean()
    pd_closed = tranche_default_prob(attach, detach, MEAN, SIGMA)
    assert abs(pd_closed - p_default) < 5 * np.sqrt(pd_closed * (1 - pd_closed) / N_DRAWS) + 1e-12


def test_degenerate_tranches():
    assert tranche_expected_loss(2.0, 2.0, MEAN, SIGMA) == 0.0
    assert tranche_default_prob(2.0, 1.0, MEAN, SIGMA) == 0.0
    assert tranche_expected_loss(0.0, 3.0, MEAN, 0.0) == 0.0  # certain collections above detach
    assert tranche_expected_loss(3.0, 5.0, MEAN, 0.0) == pytest.approx(0.5)
    assert tranche_default_prob(0.0, 5.0, MEAN, 0.0) == 1.0
    assert tranche_expected_loss(0.0, 1.0, 0.0, SIGMA) == 1.0


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="p must be"):
        lognormal_quantile(MEAN, SIGMA, 0.0)
    with pytest.raises(ValueError, match="disclosure"):
        collection_sigma(1.2)
    with pytest.raises(ValueError, match="senior_default_prob"):
        size_tranches(MEAN, SIGMA, senior_default_prob=0.2, mezz_default_prob=0.1)
    with pytest.raises(ValueError, match="investor_protection"):
        required_yield(0.03, 0.0, 0.01, 0.5, -0.1, 0.5, 0.0)


# sizing ---------------------------------------------------------------------------------------


def test_collection_sigma_falls_linearly_with_disclosure():
    assert collection_sigma(1.0) == pytest.approx(0.15)
    assert collection_sigma(0.0) == pytest.approx(0.60)
    sigmas = [collection_sigma(d) for d in np.linspace(0, 1, 6)]
    np.testing.assert_allclose(np.diff(sigmas), -0.45 / 5)


def test_sizes_follow_the_stress_and_sum_to_expected_collections():
    sizes = size_tranches(MEAN, SIGMA)
    assert sizes.senior == pytest.approx(lognormal_quantile(MEAN, SIGMA, 0.005))
    assert sizes.senior + sizes.mezz == pytest.approx(lognormal_quantile(MEAN, SIGMA, 0.10))
    assert sizes.total == pytest.approx(MEAN)
    assert min(sizes.senior, sizes.mezz, sizes.sub) > 0
    assert tranche_default_prob(0.0, sizes.senior, MEAN, SIGMA) == pytest.approx(0.005)
    assert (sizes.senior_rating, sizes.mezz_rating) == ("AA", "BBB")


def test_subordinated_floor_binds_when_collections_are_nearly_certain():
    sizes = size_tranches(MEAN, 0.01, min_sub_share=0.05)
    assert sizes.sub == pytest.approx(0.05 * MEAN)
    assert MEAN < sizes.total < 1.05 * MEAN


def test_without_mezzanine_the_subordinated_tranche_absorbs_it():
    with_mezz = size_tranches(MEAN, SIGMA)
    without = size_tranches(MEAN, SIGMA, with_mezz=False)
    assert without.mezz == 0.0
    assert without.mezz_rating == "unrated"
    assert without.senior == pytest.approx(with_mezz.senior)
    assert without.sub == pytest.approx(with_mezz.sub + with_mezz.mezz)


def test_senior_tranche_shrinks_as_disclosure_falls():
    seniors = [size_tranches(MEAN, collection_sigma(d)).senior for d in (1.0, 0.8, 0.6, 0.3, 0.0)]
    assert np.all(np.diff(seniors) < 0)
    assert seniors[-1] < 0.5 * seniors[0]


def test_rating_scale_and_risk_weights():
    assert [rating_from_default_prob(p) for p in (0.0005, 0.005, 0.02, 0.05, 0.2, 0.5)] == [
        "AAA",
        "AA",
        "A",
        "BBB",
        "BB",
        "unrated",
    ]
    assert RISK_WEIGHTS == {
        "AAA": 0.2,
        "AA": 0.2,
        "A": 0.5,
        "BBB": 1.0,
        "BB": 3.5,
        "unrated": 12.5,
    }
    assert NPL_SENIOR_RISK_WEIGHT == 1.0
    # a safer stress earns a better rating and a lower risk weight
    weights = [RISK_WEIGHTS[rating_from_default_prob(p)] for p in (0.001, 0.01, 0.05, 0.2, 0.4)]
    assert weights == sorted(weights)


# expected loss by tranche ---------------------------------------------------------------------


def test_expected_loss_rises_as_subordination_below_the_tranche_falls():
    # ``attach`` counts the claims paid before the tranche, so moving a tranche of fixed thickness
    # down the waterfall raises ``attach`` and cuts the collections left beneath it (its
    # subordination, loss-based attachment) -- and its expected loss rises.
    thickness = 0.5
    attaches = np.linspace(0.0, 4.0, 9)
    losses = [tranche_expected_loss(a, a + thickness, MEAN, SIGMA) for a in attaches]
    assert np.all(np.diff(losses) > 0)
    assert losses[0] < 1e-6 and losses[-1] > 0.5


def test_senior_loses_less_than_mezzanine_less_than_subordinated():
    sizes = size_tranches(MEAN, SIGMA)
    cut_mezz = sizes.senior + sizes.mezz
    senior = tranche_expected_loss(0.0, sizes.senior, MEAN, SIGMA)
    mezz = tranche_expected_loss(sizes.senior, cut_mezz, MEAN, SIGMA)
    sub = tranche_expected_loss(cut_mezz, sizes.total, MEAN, SIGMA)
    assert 0.0 < senior < mezz < sub < 1.0
    assert senior < 0.005  # default probability bounds the loss share


# required yields ------------------------------------------------------------------------------

BASE = {
    "risk_free": 0.03,
    "expected_loss": 0.004,
    "default_prob": 0.05,
    "bankruptcy_remoteness": 0.6,
    "investor_protection": 0.5,
    "disclosure": 0.6,
    "liquidity_premium": 0.005,
}


def _total(**change) -> float:
    return required_yield(**{**BASE, **change}).total


@pytest.mark.parametrize(
    ("field", "values", "direction"),
    [
        ("bankruptcy_remoteness", (0.0, 0.3, 0.7, 1.0), -1),
        ("investor_protection", (0.0, 0.3, 0.7, 1.0), -1),
        ("disclosure", (0.0, 0.3, 0.7, 1.0), -1),
        ("expected_loss", (0.0, 0.002, 0.01, 0.04), 1),
        ("risk_aversion", (0.0, 0.5, 1.0, 3.0), 1),
    ],
)
def test_required_yield_moves_the_right_way(field, values, direction):
    totals = np.array([_total(**{field: v}) for v in values])
    assert np.all(direction * np.diff(totals) > 0)


def test_investor_protection_matters_even_with_perfect_remoteness():
    assert _total(bankruptcy_remoteness=1.0, investor_protection=1.0) < _total(
        bankruptcy_remoteness=1.0, investor_protection=0.0
    )


@given(
    risk_free=st.floats(0.0, 0.1),
    expected_loss=st.floats(0.0, 0.5),
    default_prob=st.floats(0.0, 1.0),
    remoteness=st.floats(0.0, 1.0),
    protection=st.floats(0.0, 1.0),
    disclosure=st.floats(0.0, 1.0),
    liquidity=st.floats(0.0, 0.05),
    risk_aversion=st.floats(0.0, 5.0),
)
@settings(max_examples=200, deadline=None)
def test_every_yield_component_is_non_negative(
    risk_free,
    expected_loss,
    default_prob,
    remoteness,
    protection,
    disclosure,
    liquidity,
    risk_aversion,
):
    y = required_yield(
        risk_free,
        expected_loss,
        default_prob,
        remoteness,
        protection,
        disclosure,
        liquidity,
        risk_aversion=risk_aversion,
    )
    parts = (y.risk_free, y.expected_loss, y.unexpected_loss, y.legal, y.information, y.liquidity)
    assert min(parts) >= 0.0
    assert y.total == pytest.approx(sum(parts))
    assert y.legal <= 0.02 + 1e-15 and y.information <= 0.015 + 1e-15


def test_worst_and_best_legal_environment():
    worst = required_yield(**{**BASE, "bankruptcy_remoteness": 0.0, "investor_protection": 0.0})
    best = required_yield(**{**BASE, "bankruptcy_remoteness": 1.0, "investor_protection": 1.0})
    assert worst.legal == pytest.approx(0.02)
    assert best.legal == 0.0
    assert required_yield(**{**BASE, "disclosure": 1.0}).information == 0.0


def test_subordinated_investors_demand_far_more_than_seniors():
    sizes = size_tranches(MEAN, SIGMA)
    tenor_years = 3.0
    yields = {}
    for name, (a, d) in {
        "senior": (0.0, sizes.senior),
        "sub": (sizes.senior + sizes.mezz, sizes.total),
    }.items():
        el = tranche_expected_loss(a, d, MEAN, SIGMA) / tenor_years
        pd = tranche_default_prob(a, d, MEAN, SIGMA)
        yields[name] = _total(expected_loss=el, default_prob=pd)
    assert yields["senior"] < 0.06
    assert yields["sub"] > yields["senior"] + 0.05


# bookbuilding ---------------------------------------------------------------------------------


def test_uniform_coupon_is_the_marginal_accepted_bid():
    quantity = np.array([3.0, 2.0, 4.0, 5.0])
    yields = np.array([0.050, 0.040, 0.045, 0.060])
    result = clear_uniform(6.0, quantity, yields, max_coupon=0.07, firm_commitment=True)
    assert result.coupon == pytest.approx(0.045)  # the two cheapest bids cover exactly
    np.testing.assert_allclose(result.filled, [0.0, 2.0, 4.0, 0.0])
    assert result.sold == pytest.approx(6.0)
    assert result.underwriter_takes == 0.0
    assert result.bid_to_cover == pytest.approx(14.0 / 6.0)
    result = clear_uniform(7.0, quantity, yields, max_coupon=0.07, firm_commitment=True)
    assert result.coupon == pytest.approx(0.050)
    np.testing.assert_allclose(result.filled, [1.0, 2.0, 4.0, 0.0])
    assert result.filled.sum() == pytest.approx(result.sold)


def test_ties_at_the_margin_are_filled_pro_rata():
    quantity = np.array([2.0, 4.0, 6.0])
    yields = np.array([0.04, 0.05, 0.05])
    result = clear_uniform(7.0, quantity, yields, max_coupon=0.07, firm_commitment=False)
    assert result.coupon == pytest.approx(0.05)
    np.testing.assert_allclose(result.filled, [2.0, 2.0, 3.0])


def test_bids_above_the_maximum_coupon_are_rejected():
    quantity = np.array([2.0, 10.0])
    yields = np.array([0.04, 0.08])
    result = clear_uniform(5.0, quantity, yields, max_coupon=0.07, firm_commitment=False)
    np.testing.assert_allclose(result.filled, [2.0, 0.0])
    assert result.bid_to_cover == pytest.approx(2.0 / 5.0)


def test_firm_commitment_underwriter_takes_the_shortfall_at_the_maximum_coupon():
    quantity = np.array([2.0, 1.0, 10.0])
    yields = np.array([0.04, 0.05, 0.09])
    firm = clear_uniform(5.0, quantity, yields, max_coupon=0.07, firm_commitment=True)
    assert firm.coupon == 0.07
    assert firm.sold == pytest.approx(3.0)
    assert firm.underwriter_takes == pytest.approx(2.0)
    best = clear_uniform(5.0, quantity, yields, max_coupon=0.07, firm_commitment=False)
    assert best.coupon == pytest.approx(0.05)
    assert best.sold == pytest.approx(3.0)
    assert best.underwriter_takes == 0.0
    np.testing.assert_allclose(firm.filled, best.filled)


def test_empty_book_and_zero_size():
    nobody = clear_uniform(5.0, np.array([1.0]), np.array([0.2]), 0.07, firm_commitment=False)
    assert (nobody.coupon, nobody.sold, nobody.underwriter_takes) == (0.0, 0.0, 0.0)
    zero = clear_uniform(0.0, np.array([1.0, 2.0]), np.array([0.03, 0.04]), 0.07, True)
    assert (zero.coupon, zero.sold, zero.underwriter_takes, zero.bid_to_cover) == (0, 0, 0, 0)
    np.testing.assert_array_equal(zero.filled, [0.0, 0.0])


@given(
    size=st.floats(0.0, 50.0),
    bids=st.lists(st.tuples(st.floats(0.0, 20.0), st.floats(0.0, 0.2)), min_size=0, max_size=25),
    max_coupon=st.floats(0.0, 0.2),
    firm=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_clearing_properties(size, bids, max_coupon, firm):
    quantity = np.array([q for q, _ in bids], dtype=float)
    yields = np.array([y for _, y in bids], dtype=float)
    result = clear_uniform(size, quantity, yields, max_coupon, firm)
    tol = 1e-9 * max(size, 1.0)
    assert result.sold <= size + tol
    assert np.all(result.filled >= 0.0)
    assert np.all(result.filled <= quantity + tol)
    assert result.filled.sum() == pytest.approx(result.sold, abs=tol)
    assert result.coupon <= max_coupon
    assert np.all(result.filled[yields > max_coupon] == 0.0)
    assert np.all(result.filled[yields > result.coupon] == 0.0)  # uniform: nobody above the margin
    if size > 0:
        assert result.sold + result.underwriter_takes == pytest.approx(
            size if firm else result.sold, abs=tol
        )
        assert result.sold == pytest.approx(min(size, result.bid_to_cover * size), abs=tol)


# subordinated price and costs -----------------------------------------------------------------


def test_sub_price_is_the_discounted_residual_and_falls_with_required_return():
    assert sub_price(1.0, 0.0, 12) == pytest.approx(1.0)
    assert sub_price(1.0, 0.2, 0) == pytest.approx(1.0)
    assert sub_price(1.0, 0.2, 12) == pytest.approx(1.2**-3)
    prices = [sub_price(1.5, r, 12) for r in (0.0, 0.1, 0.2, 0.3)]
    assert np.all(np.diff(prices) < 0)


def test_issuance_cost_magnitudes_and_economies_of_scale():
    costs = issuance_costs(1.0)  # a CNY 1 bn deal, 3 years
    assert costs["underwriting"] == pytest.approx(0.003)  # 30 bp
    assert costs["fixed"] == pytest.approx(0.001)  # CNY 1 m
    assert costs["trustee"] == pytest.approx(0.0009)  # 3 bp a year for 3 years
    assert costs["total"] == pytest.approx(costs["upfront"] + costs["trustee"])
    assert 0.001 < costs["total"] < 0.01  # 10-100 bp all in
    small, large = issuance_costs(0.2)["total"] / 0.2, issuance_costs(5.0)["total"] / 5.0
    assert small > large  # fixed costs spread over a bigger deal (the Securitization Center case)
    assert issuance_costs(0.0) == dict.fromkeys(costs, 0.0)
