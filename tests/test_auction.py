"""Tests of the sealed-bid NPL auctions: bid noise, shading, clearing and the bulk-transfer rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nplsim.market.auction import (
    bid_dispersion,
    bulk_rule_eligibility,
    clear_first_price,
    package_ids,
    sealed_bids,
    valuation_noise,
)

NOISE_AT_ZERO, NOISE_FLOOR = 0.4, 0.05


def test_valuation_noise_falls_linearly_with_disclosure():
    levels = np.linspace(0.0, 1.0, 5)
    sigma = np.array([valuation_noise(d, NOISE_AT_ZERO, NOISE_FLOOR) for d in levels])
    assert sigma[0] == pytest.approx(NOISE_AT_ZERO + NOISE_FLOOR)
    assert sigma[-1] == pytest.approx(NOISE_FLOOR)
    np.testing.assert_allclose(np.diff(sigma), -NOISE_AT_ZERO / 4)


def test_bid_dispersion_rises_as_disclosure_falls():
    draws = np.random.default_rng(3).standard_normal((300, 40))
    value = np.full((300, 40), 2.0)
    cv = []
    for disclosure in (1.0, 0.75, 0.5, 0.25, 0.0):
        sigma = valuation_noise(disclosure, NOISE_AT_ZERO, NOISE_FLOOR)
        bids = sealed_bids(value, sigma, 0.5, draws)
        cv.append(bid_dispersion(bids).mean())
        assert cv[-1] == pytest.approx(np.sqrt(np.expm1(sigma**2)), rel=0.05)  # lognormal CV
    assert np.all(np.diff(cv) > 0)
    assert cv[-1] > 5 * cv[0]


def test_bids_are_unbiased_estimates_shaded_by_shading_times_sigma():
    rng = np.random.default_rng(4)
    value = rng.uniform(0.5, 3.0, (200, 50))
    sigma, shading = 0.3, 0.5
    draws = rng.standard_normal(value.shape)
    bids = sealed_bids(value, sigma, shading, draws)
    ratio = bids / value
    assert ratio.mean() == pytest.approx(1 - shading * sigma, abs=4 * ratio.std() / 100)
    assert (bids > 0).all()
    unshaded = sealed_bids(value, sigma, 0.0, draws)
    np.testing.assert_allclose(bids, unshaded * (1 - shading * sigma))
    assert (unshaded / value).mean() == pytest.approx(1.0, abs=0.01)
    # with no noise the bid is the value less nothing; absurd shading floors at zero
    np.testing.assert_allclose(sealed_bids(value, 0.0, shading, draws), value)
    assert (sealed_bids(value, 0.5, 3.0, draws) == 0).all()


def test_clear_first_price_awards_highest_eligible_bid_at_or_above_reserve():
    bids = np.array([[5.0, 7.0, 6.0], [4.0, 3.0, 4.5], [2.0, 1.0, 1.5], [6.0, 6.0, 9.0]])
    reserve = np.array([5.5, 4.5, 3.0, 5.0])
    eligible = np.ones((4, 3), dtype=bool)
    eligible[3, 2] = False  # the top bidder on package 3 may not buy it
    winner, price = clear_first_price(bids, reserve, eligible, np.full(3, 100.0))
    np.testing.assert_array_equal(winner, [1, 2, -1, 0])  # 2: all below reserve; 3: tie -> first
    np.testing.assert_allclose(price, [7.0, 4.5, 0.0, 6.0])  # pays own bid; bid == reserve wins
    assert winner.dtype.kind == "i"


def test_clear_first_price_respects_budgets():
    bids = np.array([[10.0, 8.0, 5.0], [9.0, 7.0, 6.0], [2.0, 2.5, 1.0], [1.5, 1.0, 0.5]])
    reserve = np.array([4.0, 4.0, 0.5, 0.5])
    capacity = np.array([12.0, 7.0, 0.0])
    winner, price = clear_first_price(bids, reserve, np.ones((4, 3), dtype=bool), capacity)
    # bidder 0 wins package 0 (10 of 12), cannot pay 9 for package 1 -> bidder 1 at 7 (exactly
    # its budget); package 2: bidder 1 is spent, bidder 0 has 2 left -> wins at 2.0;
    # package 3: bidder 0 has 0 left, bidder 1 has 0, bidder 2 has 0 -> unsold
    np.testing.assert_array_equal(winner, [0, 1, 0, -1])
    np.testing.assert_allclose(price, [10.0, 7.0, 2.0, 0.0])


def test_random_auctions_never_exceed_any_budget():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n_packages, n_bidders = rng.integers(1, 8), rng.integers(1, 5)
        bids = rng.uniform(0, 10, (n_packages, n_bidders))
        reserve = rng.uniform(0, 6, n_packages)
        eligible = rng.random((n_packages, n_bidders)) < 0.8
        capacity = rng.uniform(0, 20, n_bidders)
        winner, price = clear_first_price(bids, reserve, eligible, capacity)
        sold = winner >= 0
        spent = np.bincount(winner[sold], weights=price[sold], minlength=n_bidders)
        assert (spent <= capacity + 1e-12).all()
        assert (price[sold] >= reserve[sold]).all()
        assert eligible[np.flatnonzero(sold), winner[sold]].all()
        np.testing.assert_allclose(price[sold], bids[np.flatnonzero(sold), winner[sold]])
        assert (price[~sold] == 0).all()


def test_bulk_rule_blocks_non_amc_bidders_on_large_packages_only():
    package_loans = np.array([10, 99, 100, 500])
    is_amc = np.array([True, False, True, False])
    on = bulk_rule_eligibility(package_loans, is_amc, True, 100)
    assert on.shape == (4, 4)
    expected = np.ones((4, 4), dtype=bool)
    expected[2:, [1, 3]] = False
    np.testing.assert_array_equal(on, expected)
    off = bulk_rule_eligibility(package_loans, is_amc, False, 100)
    assert off.all()


def test_bulk_rule_feeds_auction_clearing():
    bids = np.array([[5.0, 9.0], [5.0, 9.0]])  # the non-AMC bidder 1 bids more on both
    eligible = bulk_rule_eligibility(np.array([5, 200]), np.array([True, False]), True, 100)
    winner, price = clear_first_price(bids, np.zeros(2), eligible, np.full(2, 100.0))
    np.testing.assert_array_equal(winner, [1, 0])
    np.testing.assert_allclose(price, [9.0, 5.0])


def test_bid_dispersion_is_coefficient_of_variation_and_zero_for_empty_package():
    bids = np.array([[1.0, 3.0], [0.0, 0.0], [2.0, 2.0]])
    np.testing.assert_allclose(bid_dispersion(bids), [0.5, 0.0, 0.0])


def test_a_package_far_smaller_than_a_loan_holds_one_loan_without_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = package_ids(np.zeros(4, dtype=int), np.array([1e6, 2.0, 3.0, 4.0]), 1e-300)
    assert sorted(ids.tolist()) == [0, 1, 2, 3]
