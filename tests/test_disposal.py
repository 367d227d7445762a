"""Tests of the bank's disposal choice: shadow prices, channel choice and the reserve price."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nplsim.market.disposal import (
    HOLD,
    ChannelQuote,
    ShadowPrices,
    choose_channels,
    funding_premium,
    reserve_price,
    sale_capital_gain,
    shadow_prices,
    years_on_books,
)

CAR_MIN, BUFFER, W_CAR, W_NPL = 0.08, 0.02, 0.3, 0.05
RISK_WEIGHT = 1.0


def _prices(car: float, npl_ratio: float = 0.01, target: float = 0.05) -> ShadowPrices:
    return shadow_prices(car, CAR_MIN, npl_ratio, target, W_CAR, W_NPL, BUFFER)


def _gain(price, hold, net_book, face, prices: ShadowPrices):
    """The gain formula of the module docstring for a sale at ``price``."""
    capital = sale_capital_gain(price, net_book, RISK_WEIGHT, CAR_MIN)
    return price - hold + prices.capital * capital + prices.npl * face


# ---------------------------------------------------------------------------- shadow prices
def test_no_pressure_when_well_capitalised_and_npls_below_target():
    for car in (0.10, 0.12, 0.2):
        assert _prices(car, npl_ratio=0.03) == ShadowPrices(0.0, 0.0)
    assert _prices(float("nan")).capital == 0.0


def test_capital_shadow_price_rises_as_car_falls_and_is_capped():
    cars = np.array([0.10, 0.095, 0.09, 0.085, 0.08, 0.06, 0.05])
    lam = np.array([_prices(c).capital for c in cars])
    np.testing.assert_allclose(lam, W_CAR * np.minimum((CAR_MIN + BUFFER - cars) / BUFFER, 2.0))
    assert lam[0] == 0.0
    assert np.all(np.diff(lam[:-1]) > 0)
    assert lam[-1] == lam[-2] == 2 * W_CAR


def test_npl_shadow_price_rises_with_excess_over_target_and_is_capped():
    ratios = np.array([0.04, 0.05, 0.075, 0.10, 0.20, 0.50])
    lam = np.array([_prices(0.15, r, 0.05).npl for r in ratios])
    np.testing.assert_allclose(lam, W_NPL * np.array([0.0, 0.0, 0.5, 1.0, 3.0, 3.0]))
    assert _prices(0.15, 0.10, 0.05).capital == 0.0


# ---------------------------------------------------------------------------- channel choice
def _quote(name, value, feasible=True, capital=0.0, face=0.0, n=4) -> ChannelQuote:
    return ChannelQuote(
        name=name,
        value=np.asarray(value, dtype=float),
        face_removed=np.broadcast_to(np.asarray(face, dtype=float), n),
        capital_gain=np.broadcast_to(np.asarray(capital, dtype=float), n),
        feasible=np.broadcast_to(np.asarray(feasible), n),
    )


def test_choose_best_positive_gain_channel_else_hold():
    hold = np.ones(4)
    amc = _quote("amc", [1.3, 0.9, 2.0, 1.05], feasible=[True, True, False, True])
    abs_ = _quote("abs", [1.1, 0.95, 1.5, 1.2])
    choice = choose_channels(hold, [amc, abs_], ShadowPrices(0.0, 0.0))
    # loan 0: amc best; loan 1: both lose -> hold; loan 2: amc infeasible -> abs; loan 3: abs
    np.testing.assert_array_equal(choice, [0, HOLD, 1, 1])


def test_zero_gain_holds_and_no_quotes_or_nothing_feasible_holds():
    hold = np.ones(4)
    assert (choose_channels(hold, [_quote("amc", np.ones(4))], ShadowPrices(0, 0)) == HOLD).all()
    assert (choose_channels(hold, [], ShadowPrices(1.0, 1.0)) == HOLD).all()
    blocked = _quote("amc", np.full(4, 9.0), feasible=False)
    assert (choose_channels(hold, [blocked], ShadowPrices(0, 0)) == HOLD).all()


def test_regulatory_pressure_can_make_a_loss_sale_worthwhile():
    hold = np.ones(4)
    quote = _quote("amc", np.full(4, 0.9), capital=0.2, face=1.0)
    assert (choose_channels(hold, [quote], ShadowPrices(0.0, 0.0)) == HOLD).all()
    assert (choose_channels(hold, [quote], ShadowPrices(1.0, 0.0)) == 0).all()  # 0.9-1+0.2
    assert (choose_channels(hold, [quote], ShadowPrices(0.0, 0.2)) == 0).all()  # 0.9-1+0.2
    negative_capital = _quote("amc", np.full(4, 0.9), capital=-0.5, face=0.0)
    assert (choose_channels(hold, [negative_capital], ShadowPrices(1.0, 0.0)) == HOLD).all()


# ---------------------------------------------------------------------------- reserve price
def test_sale_capital_gain_is_equity_change_plus_capital_freed():
    gain = sale_capital_gain(np.array([0.3, 0.3]), np.array([1.0, -0.2]), 1.5, 0.08)
    np.testing.assert_allclose(gain, [0.3 - 1.0 + 0.08 * 1.5 * 1.0, 0.5])


@pytest.mark.parametrize(
    "prices", [ShadowPrices(0.0, 0.0), ShadowPrices(0.3, 0.0), ShadowPrices(0.6, 0.02)]
)
def test_reserve_price_is_the_zero_of_the_sale_gain(prices):
    rng = np.random.default_rng(7)
    face = rng.uniform(0.5, 2.0, 500)
    net_book = face * rng.uniform(0.0, 1.0, 500)
    hold = face * rng.uniform(0.1, 0.8, 500)
    reserve = reserve_price(hold, net_book, face, RISK_WEIGHT, CAR_MIN, prices)
    positive = reserve > 0
    assert positive.mean() > 0.9
    gain = _gain(reserve, hold, net_book, face, prices)
    np.testing.assert_allclose(gain[positive], 0.0, atol=1e-12)
    assert (_gain(reserve + 1e-6, hold, net_book, face, prices) > 0).all()
    below = _gain(reserve - 1e-6, hold, net_book, face, prices)
    assert (below[positive] < 0).all()
    # choose_channels agrees: a quote at reserve + ε sells, at reserve − ε holds
    for eps, expected in ((1e-6, 0), (-1e-6, HOLD)):
        price = reserve + eps
        quote = ChannelQuote(
            "amc",
            price,
            face,
            sale_capital_gain(price, net_book, RISK_WEIGHT, CAR_MIN),
            np.ones(500, dtype=bool),
        )
        choice = choose_channels(hold, [quote], prices)
        assert (choice[positive] == expected).all()


def test_reserve_without_pressure_is_hold_value():
    hold = np.array([0.2, 0.5, 0.9])
    reserve = reserve_price(hold, np.ones(3), np.ones(3), RISK_WEIGHT, CAR_MIN, _prices(0.15))
    np.testing.assert_allclose(reserve, hold)


def test_capital_pressure_raises_thin_banks_reserve_and_lowers_provisioned_banks():
    hold, face = np.array([0.5]), np.array([1.0])
    calm, stressed = _prices(0.15), _prices(0.085)
    assert calm.capital == 0 and stressed.capital > 0.2
    thin = np.array([1.0])  # no provisions: net book = face, a sale books a loss
    full = np.array([0.0])  # fully provisioned: a sale books a gain
    thin_calm = reserve_price(hold, thin, face, RISK_WEIGHT, CAR_MIN, calm)
    thin_stressed = reserve_price(hold, thin, face, RISK_WEIGHT, CAR_MIN, stressed)
    full_calm = reserve_price(hold, full, face, RISK_WEIGHT, CAR_MIN, calm)
    full_stressed = reserve_price(hold, full, face, RISK_WEIGHT, CAR_MIN, stressed)
    assert thin_stressed[0] > thin_calm[0] + 0.05
    assert full_stressed[0] < full_calm[0] - 0.05
    lam = stressed.capital
    assert thin_stressed[0] == pytest.approx((0.5 + lam * (1.0 - CAR_MIN)) / (1 + lam))
    assert full_stressed[0] == pytest.approx(0.5 / (1 + lam))


def test_npl_pressure_lowers_reserve_but_not_below_zero():
    hold, face, net = np.array([0.5, 0.05]), np.ones(2), np.full(2, 0.5)
    base = reserve_price(hold, net, face, RISK_WEIGHT, CAR_MIN, ShadowPrices(0.0, 0.0))
    pressed = reserve_price(hold, net, face, RISK_WEIGHT, CAR_MIN, ShadowPrices(0.0, 0.1))
    np.testing.assert_allclose(pressed, [0.4, 0.0])
    assert (pressed <= base).all()


# ---------------------------------------------------------------------------- capital carry
def test_years_on_books_counts_the_quarters_a_held_loan_would_stay():
    """A loan stays each quarter until write-off with probability (1 − p)^k: brute force over
    quarters agrees with the closed form; a loan at the write-off age stays no longer."""
    p, write_off = 0.1, 12
    ages = np.arange(0, 14)
    brute = np.array([sum((1 - p) ** k for k in range(max(write_off - a, 0))) / 4 for a in ages])
    assert years_on_books(ages, p, write_off) == pytest.approx(brute)
    assert years_on_books(np.array([12, 13]), p, write_off).tolist() == [0.0, 0.0]
    assert years_on_books(np.array([4]), 0.0, write_off) == pytest.approx([2.0])


def test_capital_carry_favours_disposing_of_loans_that_would_stay_longer():
    """With the ratios far from their limits the only regulatory price is the carry: freeing a
    unit of capital tied up for two years is worth twice one tied up for one; without the carry
    the same disposal gains nothing beyond its price."""
    base = shadow_prices(0.2, CAR_MIN, 0.01, 0.05, W_CAR, W_NPL, BUFFER, carry=0.08)
    per_loan = base.for_loans(np.array([1.0, 2.0]))
    assert per_loan.capital == pytest.approx([0.08, 0.16])
    quote = ChannelQuote(
        "amc", value=np.array([0.3, 0.3]), face_removed=np.ones(2),
        capital_gain=np.array([0.5, 0.5]), feasible=np.ones(2, dtype=bool),
    )  # fmt: skip
    hold = np.array([0.3, 0.3])
    assert quote.gain(hold, per_loan) == pytest.approx([0.04, 0.08])
    assert quote.gain(hold, ShadowPrices(0.0, 0.0).for_loans(np.array([1.0, 2.0]))) == (
        pytest.approx([0.0, 0.0])
    )


def test_the_funding_premium_of_a_vanishing_buffer_is_the_cap_without_overflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        premium = funding_premium(0.1, 0.25, 1.0, 1.0, 1e-310, 0.02)
    assert premium == 0.04  # twice the stress spread: far below the minimum
