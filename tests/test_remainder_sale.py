"""A trust sells what it has not collected by its deal's legal final maturity
(``securitisation.remainder_sale``): the expected price investors and originators put on it, the
sale in the NPL auction, and what it does to the market."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import run_model
from scipy import stats

from nplsim.market.loans import resolution_probability
from nplsim.market.remainder_sale import admitted_bidders, buyer_may_bid, expected_price_per_base
from nplsim.market.scenario import load_scenario

SEEDS = range(1, 11)
OFF = {"securitisation__remainder_sale": False}


def _world(**regime_overrides):
    """What the price rule reads of the economy: the scenario, the law, the courts' speed."""
    config, _ = load_scenario("restart_2016")
    return SimpleNamespace(
        scenario=config,
        regime=load_scenario("restart_2016", regime_overrides)[1],
        resolve_probability=lambda skill: resolution_probability(0.08 * skill),
    )


def test_the_expected_price_falls_with_age_and_ends_with_the_claim():
    world = _world()
    price = expected_price_per_base(world)
    end = world.scenario.claim_end_age_q
    # sold after the quarter's workout, a loan's next chance is a quarter older: none from end - 1
    assert price.size == end + 1 and (price[end - 1 :] == 0.0).all()
    assert (price[: end - 1] > 0).all() and (np.diff(price) <= 0).all()


def test_the_bulk_rule_narrows_the_bidders_and_the_price():
    """Where bulk transfers may go only to AMCs, a pool of many borrowers is bid for by the AMCs
    alone (the funds, with their own skill and required return, drop out); a small one is not."""
    world = _world(
        bulk_transfer_to_amc_only=True, npl_buyers_allowed=["local_amc", "distressed_fund"]
    )
    threshold = world.regime.bulk_threshold
    few, many = admitted_bidders(world, threshold - 1), admitted_bidders(world, threshold)
    funds = sum(
        b.kind == "distressed_fund" and buyer_may_bid(world.regime, b.kind, b.foreign)
        for b in world.scenario.npl_buyers
    )
    assert len(few) - len(many) == funds > 0
    assert (expected_price_per_base(world, threshold) <= expected_price_per_base(world, 1)).all()


def _remainder_trades(model):
    trades = model.blotter.frame()
    return trades[trades["market"] == "remainder_sale"]


def test_a_maturing_trust_sells_what_it_has_not_collected_to_a_bidder():
    """Over 40 quarters deals reach their legal final maturity; their trusts sell the rest of
    their pools in the NPL auction to an AMC or fund, and the price is the quarter's
    ``remainder_sales`` (every invariant holds every quarter); switched off, nothing is sold."""
    model = run_model("restart_2016", 1, check=True)
    sold = _remainder_trades(model)
    assert len(sold) > 0
    bidders = {a.name for a in model.amcs} | {b.name for b in model.npl_buyers}
    assert set(sold["buyer"]) <= bidders
    assert set(sold["seller"]) <= {spv.name for spv in model.spvs}
    assert (sold["price"] > 0).all() and (sold["price"] < sold["face"]).all()
    flows = model.model_frame()["remainder_sales"]
    assert flows.sum() == pytest.approx(sold["price"].sum(), rel=1e-12)
    off = run_model("restart_2016", 1, **OFF)
    assert len(_remainder_trades(off)) == 0 and off.model_frame()["remainder_sales"].sum() == 0


@pytest.mark.slow
def test_selling_the_remainder_raises_what_is_issued():
    """A pool is worth its collections to the legal final maturity plus what the rest then
    fetches; without the sale the rest is written off, and less is issued (10 paired seeds,
    40 quarters; measured +5.0 [+2.6, +7.4] CNY bn)."""

    def issued(**overrides):
        return np.array(
            [
                run_model("restart_2016", s, **overrides).model_frame()["abs_issued"].sum()
                for s in SEEDS
            ]
        )

    diff = issued() - issued(**OFF)
    half = stats.t.ppf(0.975, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size)
    assert diff.mean() - half > 0.0, (diff.mean(), half)
