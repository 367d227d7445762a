"""Tests of deal structuring and pricing: tranche losses, the rating agencies' stress method,
risk weights, investors' required yields by component, uniform-price bookbuilding, the
subordinated price and issuance costs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nplsim.market.pricing import (
    NO_LEGAL_RISK,
    RISK_WEIGHTS,
    TIMING_STRESS_Q,
    ClaimRisk,
    LegalExposure,
    clear_uniform,
    collection_sigma,
    expected_residual,
    issuance_costs,
    lognormal_quantile,
    pool_sigma,
    rating_default_budget,
    rating_from_default_prob,
    required_yield,
    risk_premium,
    senior_risk_weight,
    size_rated_tranches,
    stressed_capacity,
    sub_price,
    tranche_default_prob,
    tranche_expected_loss,
    tranche_legal_risk,
    tranche_risk,
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
    with pytest.raises(ValueError, match="guarantee_cover"):
        size_rated_tranches(MEAN, SIGMA, NO_LEGAL_RISK, 0.04, 8, guarantee_cover=1.5)
    with pytest.raises(ValueError, match="default_prob"):
        ClaimRisk(0.01, 1.2)
    with pytest.raises(ValueError, match="liquidity_premium"):
        required_yield(0.03, 3.0, ClaimRisk(0.0, 0.0), -0.01)


# the stress method ------------------------------------------------------------------------------
CARRY, LIFE = 0.04, 8.0


def test_collection_sigma_falls_linearly_with_disclosure():
    assert collection_sigma(1.0) == pytest.approx(0.15)
    assert collection_sigma(0.0) == pytest.approx(0.60)
    sigmas = [collection_sigma(d) for d in np.linspace(0, 1, 6)]
    np.testing.assert_allclose(np.diff(sigmas), -0.45 / 5)


def test_pool_sigma_diversifies_borrowers_and_adds_doubt():
    assert pool_sigma(0.2, 0.6, 1e9, 0.0) == pytest.approx(0.2, abs=1e-6)
    assert pool_sigma(0.2, 0.6, 1.0, 0.0) == pytest.approx(np.hypot(0.2, 0.6))
    assert pool_sigma(0.2, 0.0, 1.0, 0.05) == pytest.approx(np.sqrt(0.04 + 0.05))


def test_stressed_capacity_is_the_haircut_and_delayed_quantile():
    """A AAA tranche's principal plus coupon over the life and the AAA delay equals the cash in
    hand plus collections at their 0.1% quantile."""
    cap = stressed_capacity(MEAN, SIGMA, 0.001, CARRY, LIFE, "AAA", certain=0.5)
    carry = 1 + CARRY * (LIFE + TIMING_STRESS_Q["AAA"]) / 4
    assert cap * carry == pytest.approx(0.5 + lognormal_quantile(MEAN, SIGMA, 0.001))
    assert stressed_capacity(MEAN, SIGMA, 0.0, CARRY, LIFE, "AAA") == 0.0
    # a longer timing stress at the better rating costs capacity
    aaa = stressed_capacity(MEAN, SIGMA, 0.01, CARRY, LIFE, "AAA")
    bbb = stressed_capacity(MEAN, SIGMA, 0.01, CARRY, LIFE, "BBB")
    assert aaa < bbb


def test_senior_is_aaa_and_within_its_budget_without_legal_risk():
    senior, rating, mezz, _ = size_rated_tranches(MEAN, SIGMA, NO_LEGAL_RISK, CARRY, LIFE)
    assert rating == "AAA" and mezz == 0.0
    claim = senior * (1 + CARRY * LIFE / 4)
    assert tranche_default_prob(0.0, claim, MEAN, SIGMA) <= rating_default_budget("AAA")


def test_legal_risk_caps_the_rating_and_shrinks_the_senior():
    ratings, sizes = [], []
    for probability in (0.0, 0.0009, 0.002, 0.01, 0.05):
        legal = LegalExposure(probability, 1.0, 0.1, 4)
        senior, rating, _, _ = size_rated_tranches(MEAN, SIGMA, legal, CARRY, LIFE)
        ratings.append(rating)
        sizes.append(senior)
    assert ratings == ["AAA", "AAA", "AA", "A", "BBB"]
    assert sizes[1] < sizes[0]  # the same rating with less of its budget left for credit
    nothing = size_rated_tranches(MEAN, SIGMA, LegalExposure(0.2, 1.0, 0.1, 4), CARRY, LIFE)
    assert nothing[:2] == (0.0, "unrated")  # no investment-grade level is left


def test_a_guarantee_stretches_the_credit_budget():
    plain = size_rated_tranches(MEAN, SIGMA, NO_LEGAL_RISK, CARRY, LIFE)[0]
    guaranteed = size_rated_tranches(MEAN, SIGMA, NO_LEGAL_RISK, CARRY, LIFE, 0.9)[0]
    assert guaranteed > plain * 1.1
    budget = stressed_capacity(MEAN, SIGMA, 0.01, CARRY, LIFE, "AAA")
    assert guaranteed == pytest.approx(budget)  # 0.1% / (1 - 0.9) = 1%


def test_senior_shrinks_as_disclosure_falls():
    seniors = [
        size_rated_tranches(MEAN, collection_sigma(d), NO_LEGAL_RISK, CARRY, LIFE)[0]
        for d in (1.0, 0.8, 0.6, 0.3, 0.0)
    ]
    assert np.all(np.diff(seniors) < 0)
    assert seniors[-1] < 0.5 * seniors[0]


def test_mezzanine_runs_to_the_lowest_rated_level():
    senior, _, mezz, mezz_rating = size_rated_tranches(
        MEAN, SIGMA, NO_LEGAL_RISK, CARRY, LIFE, with_mezz=True
    )
    bottom = stressed_capacity(MEAN, SIGMA, 0.25, CARRY, LIFE, "BB")
    assert senior + mezz == pytest.approx(bottom)
    assert mezz_rating in ("BBB", "BB")


def test_expected_residual_is_the_call_on_collections(collections):
    for claims in (0.0, 2.0, 4.0, 7.0):
        assert expected_residual(MEAN, SIGMA, claims) == pytest.approx(
            np.maximum(collections - claims, 0.0).mean(), rel=2e-3, abs=1e-3
        )


# ratings and risk weights ----------------------------------------------------------------------


def test_rating_scale_and_risk_weights():
    assert [rating_from_default_prob(p) for p in (0.0005, 0.005, 0.02, 0.05, 0.2, 0.5)] == [
        "AAA", "AA", "A", "BBB", "BB", "unrated",
    ]  # fmt: skip
    assert RISK_WEIGHTS == {"AAA": 0.2, "AA": 0.2, "A": 0.5, "BBB": 1.0, "BB": 3.5, "unrated": 12.5}
    weights = [RISK_WEIGHTS[rating_from_default_prob(p)] for p in (0.001, 0.01, 0.05, 0.2, 0.4)]
    assert weights == sorted(weights)


def test_senior_risk_weight_follows_the_rating_with_the_npl_cap():
    assert senior_risk_weight("AAA", 0.7) == 0.2
    assert senior_risk_weight("BBB", 0.7) == 1.0
    assert senior_risk_weight("BB", 0.7) == 1.0  # BCBS d511: at most 100% at a 50% discount
    assert senior_risk_weight("BB", 0.3) == 3.5
    assert senior_risk_weight("unrated", 0.3) == 12.5


# expected loss by tranche ----------------------------------------------------------------------


def test_expected_loss_rises_as_subordination_below_the_tranche_falls():
    thickness = 0.5
    attaches = np.linspace(0.0, 4.0, 9)
    losses = [tranche_expected_loss(a, a + thickness, MEAN, SIGMA) for a in attaches]
    assert np.all(np.diff(losses) > 0)
    assert losses[0] < 1e-6 and losses[-1] > 0.5


# legal risk and required yields ----------------------------------------------------------------


def test_legal_risk_of_a_tranche_vanishes_without_distress_whatever_the_remoteness():
    """The remoteness effect on the spread goes through P(distress): at zero it is zero."""
    for reach in (0.0, 0.3, 1.0):
        legal = LegalExposure(0.0, reach, 0.3, 4)
        assert tranche_legal_risk(0.0, 2.0, MEAN, SIGMA, legal, CARRY, LIFE) == ClaimRisk(0, 0)
    risks = [
        tranche_legal_risk(0.0, 2.0, MEAN, SIGMA, LegalExposure(0.05, reach, 0.3, 4), CARRY, LIFE)
        for reach in (1.0, 0.5, 0.1, 0.0)
    ]
    losses = [r.loss_share for r in risks]
    assert np.all(np.diff(losses) < 0) and losses[-1] == 0.0


def test_legal_loss_falls_on_the_junior_claim_first():
    legal = LegalExposure(0.1, 1.0, 0.2, 4)
    senior = tranche_legal_risk(0.0, 2.0, MEAN, SIGMA, legal, CARRY, LIFE)
    junior = tranche_legal_risk(3.0, 4.0, MEAN, SIGMA, legal, CARRY, LIFE)
    assert junior.loss_share > 5 * senior.loss_share > 0


def test_risk_premium_spreads_expected_and_unexpected_loss_over_the_tenor():
    el, ul = risk_premium(ClaimRisk(0.02, 0.05), 4.0, risk_aversion=2.0, ul_scale=0.5)
    assert el == pytest.approx(0.005)
    assert ul == pytest.approx(2.0 * 0.5 * 0.4 * np.sqrt(0.05 * 0.95) / 4.0)
    assert risk_premium(ClaimRisk(0.0, 0.0), 4.0) == (0.0, 0.0)


def test_required_yield_components_add_up_and_name_their_causes():
    credit = ClaimRisk(0.002, 0.01)
    seen = ClaimRisk(0.004, 0.02)
    legal = ClaimRisk(0.001, 0.005)
    y = required_yield(0.03, 3.0, credit, 0.005, 1.0, legal=legal, seen=seen)
    el, ul = risk_premium(credit, 3.0)
    assert (y.expected_loss, y.unexpected_loss) == pytest.approx((el, ul))
    assert y.information == pytest.approx(sum(risk_premium(seen, 3.0)) - el - ul)
    assert y.legal == pytest.approx(sum(risk_premium(legal, 3.0)))
    parts = (y.risk_free, y.expected_loss, y.unexpected_loss, y.legal, y.information, y.liquidity)
    assert y.total == pytest.approx(sum(parts))
    plain = required_yield(0.03, 3.0, credit, 0.005)
    assert plain.legal == 0.0 and plain.information == 0.0


@given(
    attach=st.floats(0.0, 3.0),
    thickness=st.floats(0.01, 3.0),
    sigma_full=st.floats(0.05, 0.4),
    extra=st.floats(0.0, 0.5),
    distress=st.floats(0.0, 1.0),
    reach=st.floats(0.0, 1.0),
    loss=st.floats(0.0, 1.0),
    aversion=st.floats(0.0, 5.0),
)
@settings(max_examples=200, deadline=None)
def test_senior_yield_components_are_non_negative(
    attach, thickness, sigma_full, extra, distress, reach, loss, aversion
):
    sigma_seen = sigma_full + extra
    credit = tranche_risk(0.0, thickness, MEAN, sigma_full)
    seen = tranche_risk(0.0, thickness, MEAN, sigma_seen)
    legal = tranche_legal_risk(
        0.0, thickness, MEAN, sigma_seen, LegalExposure(distress, reach, loss, 4), CARRY, LIFE
    )
    y = required_yield(0.03, 2.0, credit, 0.004, aversion, legal=legal, seen=seen)
    for part in (y.expected_loss, y.unexpected_loss, y.legal, y.liquidity):
        assert part >= 0.0
    assert y.total >= 0.03 - 1e-12


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
