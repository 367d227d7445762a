"""The priority of payments is data end to end: a scenario names it or writes it out, the engine
runs it, and the trustee pays each step's money to the role the same list names."""

from __future__ import annotations

import numpy as np
import pytest

from nplsim import NPLMarketModel
from nplsim.market import waterfall
from nplsim.market.errors import ConfigError
from nplsim.market.scenario import load_scenario
from nplsim.market.waterfall import PeriodInputs, Step, new_deal_book, run_waterfall

SEEDS = (1, 2, 3, 4, 5)


def _book() -> waterfall.DealBook:
    book = new_deal_book()
    book.append(senior=60.0, mezz=20.0, sub=20.0, senior_coupon=0.04, mezz_coupon=0.08)
    return book


def test_pro_rata_shares_principal_by_balance_and_sequential_does_not():
    inputs = PeriodInputs(collections=np.array([20.0]))
    sequential, pro_rata = _book(), _book()
    run_waterfall(sequential, inputs, *waterfall.PRIORITIES["sequential"])
    out = run_waterfall(pro_rata, inputs, *waterfall.PRIORITIES["pro_rata"])
    assert sequential.balance["mezz"][0] == 20.0  # nothing to the mezzanine while senior is due
    interest = 60.0 * 0.04 / 4 + 20.0 * 0.08 / 4
    principal = 20.0 - interest
    paid_senior = out.paid[("principal", "senior")][0]
    paid_mezz = out.paid[("principal", "mezz")][0]
    assert paid_senior + paid_mezz == pytest.approx(principal, rel=1e-12)
    assert paid_senior / paid_mezz == pytest.approx(60.0 / 20.0, rel=1e-12)
    assert pro_rata.balance["mezz"][0] == pytest.approx(20.0 - paid_mezz, rel=1e-12)


def test_a_pro_rata_step_needs_two_tranches():
    with pytest.raises(ValueError, match="two or more"):
        Step("pro_rata_principal", "senior")
    assert Step.parse("pro_rata_principal senior+mezz").tranches == ("senior", "mezz")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fancy", "unknown priority of payments 'fancy'"),
        ({"normal": ["tax", "fee bribe", "residual sub"], "after_trigger": ["residual sub"]},
         "unknown fee 'bribe'"),
        ({"normal": ["tax"], "after_trigger": ["residual sub"]}, "must end with one residual"),
        ({"normal": ["interest junior", "residual sub"], "after_trigger": ["residual sub"]},
         "target must be one of"),
    ],
)  # fmt: skip
def test_a_bad_priority_of_payments_is_refused_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=message) as caught:
        load_scenario("restart_2016", {"securitisation.waterfall": value})
    assert "securitisation.waterfall" in str(caught.value)


def _mezz_repaid_before_senior(model: NPLMarketModel) -> int:
    """Live deals whose mezzanine has been paid down while their senior is still outstanding."""
    book = model.desk.book
    return sum(
        1
        for spv in model.desk.live()
        if book.balance["senior"][spv.terms.book_index] > 1e-9
        and book.balance["mezz"][spv.terms.book_index] < spv.terms.record["mezz_size"] - 1e-9
    )


# a credit cycle that pushes banks into securitisation (conftest.VOLATILE)
CYCLE = {"macro__credit_factor_sd": 1.0, "disposal_lag_q": 4}


@pytest.mark.slow
def test_a_scenario_with_its_own_priority_of_payments_runs_and_routes_by_it():
    written_out = {
        "normal": ["tax", "fee trustee", "fee servicer_base", "fee guarantee_fee", "capped_cost",
                   "interest senior", "interest mezz", "pro_rata_principal senior+mezz",
                   "reserve_topup", "fee servicer_incentive", "residual sub"],
        "after_trigger": [str(step) for step in waterfall.ACCELERATED],
    }  # fmt: skip
    found = {"written out": 0, "sequential": 0}  # deal-quarters with the mezz paid down first
    for seed in SEEDS:
        models = {
            "written out": NPLMarketModel(
                scenario="mature_market", rng=seed, n_loans=8000, quarters=24, **CYCLE,
                **{"securitisation.waterfall": written_out, "securitisation.with_mezz": True},
            ),
            "sequential": NPLMarketModel(
                scenario="mature_market", rng=seed, n_loans=8000, quarters=24, **CYCLE,
                **{"securitisation.with_mezz": True},
            ),
        }  # fmt: skip
        for name, model in models.items():
            while model.running:
                model.step()
                assert model.invariant_violations() == []
                found[name] += _mezz_repaid_before_senior(model)
    # Sequential pays the mezzanine nothing while the senior is outstanding (pass-through
    # principal); the written-out pro-rata list pays both in the same quarters.
    assert found["sequential"] == 0
    assert found["written out"] > 0
