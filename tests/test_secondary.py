"""The ABS secondary market and bank liquidity: mechanism and economics."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import VOLATILE
from conftest import run_model as _run_model
from hypothesis import given, settings
from hypothesis import strategies as st

from nplsim import NPLMarketModel
from nplsim.market import metrics, secondary
from nplsim.market.errors import ConfigError


def run_model(*args, **overrides):
    """A run in the credit cycle that makes deals (``conftest.VOLATILE``)."""
    return _run_model(*args, **{**VOLATILE, **overrides})


SEEDS = (1, 2, 3)


# ------------------------------------------------------------------ the call auction
def test_call_auction_clears_at_the_volume_maximising_price_with_pro_rata_margin():
    result = secondary.call_auction(
        buy_price=[1.02, 1.00, 0.98], buy_qty=[5, 5, 5],
        sell_price=[0.97, 1.00, 1.03], sell_qty=[4, 4, 4],
    )  # fmt: skip
    assert result.price == pytest.approx(1.00)
    assert result.volume == pytest.approx(8.0)
    np.testing.assert_allclose(result.sell_fill, [4, 4, 0])
    np.testing.assert_allclose(result.buy_fill, [5, 3, 0])  # the marginal buyer is part-filled


def test_no_trade_when_the_book_does_not_cross():
    result = secondary.call_auction([0.95], [10], [1.05], [10])
    assert result.volume == 0 and np.isnan(result.price)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.5, 1.5), st.floats(0, 10)), min_size=1, max_size=12),
    st.lists(st.tuples(st.floats(0.5, 1.5), st.floats(0, 10)), min_size=1, max_size=12),
)
def test_fills_respect_limits_and_quantities(buys, sells):
    bp, bq = map(np.array, zip(*buys, strict=True))
    sp, sq = map(np.array, zip(*sells, strict=True))
    result = secondary.call_auction(bp, bq, sp, sq)
    assert result.buy_fill.sum() == pytest.approx(result.sell_fill.sum(), abs=1e-9)
    assert (result.buy_fill <= bq + 1e-9).all() and (result.sell_fill <= sq + 1e-9).all()
    if result.volume > 0:
        assert (result.buy_fill[bp < result.price] == 0).all()
        assert (result.sell_fill[sp > result.price] == 0).all()


def test_a_large_forced_sale_moves_the_price_more_in_a_thin_market():
    forced_price, forced_qty = [0.6], [50.0]  # accepts anything above 60% of fundamental

    def impact(n_buyers: int) -> float:
        rng = np.random.default_rng(3)
        bids = 1.0 - 0.02 * rng.random(n_buyers) - 0.3 * np.arange(n_buyers) / 200
        result = secondary.call_auction(bids, np.full(n_buyers, 5.0), forced_price, forced_qty)
        return metrics.discount_to_fundamental(result.price, 1.0)

    assert impact(6) > impact(60) + 0.05


def test_dealer_widens_with_opacity_and_shades_down_with_inventory():
    clear = secondary.dealer_quotes(1.0, 0.9, 0.0, 0.001, 0.01, 0.01)
    opaque = secondary.dealer_quotes(1.0, 0.1, 0.0, 0.001, 0.01, 0.01)
    loaded = secondary.dealer_quotes(1.0, 0.9, 0.5, 0.001, 0.01, 0.01)
    assert opaque[1] - opaque[0] > clear[1] - clear[0]
    assert loaded[0] < clear[0] and loaded[1] < clear[1]


def test_liquidity_metrics():
    assert metrics.turnover(2.0, 10.0) == pytest.approx(0.2)
    assert metrics.amihud(0.99, 1.0, 2.0) == pytest.approx(0.005)
    assert metrics.fill_rate(3.0, 4.0) == pytest.approx(0.75)
    assert metrics.quarters_to_sell(10.0, 2.5) == pytest.approx(4.0)
    assert metrics.quarters_to_sell(1.0, 0.0) == float("inf")
    assert metrics.effective_spread(1.01, 0.99, 1.01) == pytest.approx(0.02)


# ------------------------------------------------------------------ economics in the model
def market_medians(**overrides) -> dict[str, float]:
    frames = [run_model("restart_2016", seed, **overrides).model_frame() for seed in SEEDS]
    return {
        column: float(np.nanmean([f[column].median() for f in frames]))
        for column in ("turnover", "bid_ask_bp", "secondary_volume")
    }


@pytest.mark.slow
def test_admitting_more_investor_classes_raises_turnover_and_narrows_spreads():
    narrow = market_medians(investor_classes_allowed=["bank_treasury", "insurer"],
                            foreign_investors_allowed=False)  # fmt: skip
    wide = market_medians()
    assert wide["turnover"] > narrow["turnover"] + 0.02
    assert wide["bid_ask_bp"] < narrow["bid_ask_bp"] - 20


@pytest.mark.slow
def test_better_disclosure_lowers_spreads():
    opaque = market_medians(disclosure_level=0.1)
    clear = market_medians(disclosure_level=0.95)
    assert clear["bid_ask_bp"] < 0.5 * opaque["bid_ask_bp"]


def test_a_deeper_market_lowers_the_liquidity_premium_investors_ask():
    model = run_model("restart_2016", 1)
    frame = model.model_frame()
    traded = frame[frame["turnover"] > 0]
    assert len(traded) > 0
    assert frame["liquidity_premium_bp"].iloc[-1] < frame["liquidity_premium_bp"].iloc[0]


def test_without_securitisation_bank_liquidity_comes_only_from_amc_sales_and_workouts():
    model = run_model("restart_2016", 2, securitisation_allowed=False, spv_form="none")
    banks = model.bank_frame()
    assert (banks["liquidity_created_securitisation"] == 0).all()
    assert banks["liquidity_created_amc"].sum() > 0
    frame = model.model_frame()
    assert frame["secondary_volume"].sum() == 0 and frame["turnover"].isna().all()
    with_deals = run_model("restart_2016", 2).bank_frame()
    assert with_deals["liquidity_created_securitisation"].sum() > 0


def test_trades_positions_and_the_ledger_reconcile():
    model = run_model("mature_market", 2, check=True)
    trades = model.trade_frame()
    secondary_trades = trades[trades["market"] == "secondary"]
    assert len(secondary_trades) > 0
    assert secondary_trades["price"].sum() == pytest.approx(
        model.ledger.flow_total("abs_secondary"), rel=1e-12
    )
    for investor in model.investors:
        for (deal, tranche), notional in investor.holdings.items():
            spv = model.spvs[deal]
            assert spv.holders[tranche].get(investor.account, 0.0) == pytest.approx(
                notional, abs=1e-9
            )


def test_bad_market_parameters_are_a_clear_error():
    with pytest.raises(ConfigError) as exc:
        NPLMarketModel(scenario="restart_2016", rng=1, secondary__forced_sale_floor=1.5)
    assert "secondary.forced_sale_floor" in str(exc.value) and "<= 1" in str(exc.value)
