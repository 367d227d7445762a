"""Power-plant securitisation (docs/ODD.md, power sector): the sector's debt problem, the funding
base every route is priced on, the cost technology behind information and supervision, and what
the Securitization Center changes, each economic claim over 5-10 seeds with a stated tolerance."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nplsim.economy.measurement import MODEL_COLUMNS
from nplsim.economy.model import NPLMarketModel
from nplsim.experiments.cli import main
from nplsim.experiments.compare import compare, paired_difference
from nplsim.experiments.metrics import DERIVED_PATHS, registry
from nplsim.experiments.run import run_to_directory
from nplsim.market import power, pricing, route_costs
from nplsim.market.errors import ConfigError
from nplsim.market.information_costs import (
    InformationSpec,
    appraisal_effort,
    information_cost,
    similarity,
)
from nplsim.market.legal_risk import court_reach
from nplsim.market.loans import LoanBook, SegmentTable, Status
from nplsim.market.plant_loans import PlantLoans
from nplsim.market.streams import STREAMS, split_streams

SMALL = {"n_loans": 20000}  # the Shanxi scenarios' own loan slots
SEEDS = tuple(range(1, 11))  # economic claims over ten seeds
FEW = tuple(range(1, 6))  # or five, where each run is a whole sweep of settings
SHANXI = ("shanxi_power", "shanxi_no_centre", "shanxi_centre_reformed")
SQUEEZE = range(21, 33)  # the 2021-22 squeeze and the year after it
CALM = range(1, 21)  # 2016-2020
HORIZON = 32  # end-2023: through the squeeze and a year after it


@functools.cache
def _frames(scenario: str, seed: int, overrides: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    model = run_model(scenario, seed, **{**SMALL, "quarters": HORIZON, **json.loads(overrides)})
    return model.model_frame().set_index("quarter"), model.power_frame()


def frames(scenario: str, seed: int, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small Shanxi run to end-2023 unless overridden (model and power tables), computed once
    per process."""
    return _frames(scenario, seed, json.dumps(overrides, sort_keys=True))


def final(scenario: str, column: str, seeds=SEEDS, **overrides) -> np.ndarray:
    """The column at the horizon, one value per seed."""
    return np.array([frames(scenario, s, **overrides)[0][column].iloc[-1] for s in seeds])


# ---------------------------------------------------------------------------------- cost technology
def test_with_one_plant_in_the_pool_the_information_saving_vanishes():
    spec = InformationSpec()
    one = np.array([0.5])
    costs = [
        information_cost(one, alike, disclosure, reporting, spec)
        for alike in (0.0, 1.0) for disclosure in (0.0, 1.0) for reporting in (False, True)
    ]  # fmt: skip
    assert len({c.appraisal for c in costs}) == 1  # loan, stand-alone, a pool of one: the same
    assert costs[0].appraisal == pytest.approx(
        (spec.appraisal_fixed_cny_m + spec.appraisal_plant_cny_m * (1 - spec.tolerance)) / 1e3
    )
    deal = route_costs.deal_fees(0.5, costs[0], True, 0.4, 0.0, 30.0, 0.001, 3.0, 3.0, 0.03)
    pool = route_costs.deal_fees(0.5, costs[-1], True, 0.4, 0.002, 30.0, 0.001, 3.0, 3.0, 0.03)
    alone = route_costs.abs_cost(0.5, 0.05, deal, 20)
    pooled = route_costs.abs_cost(0.5, 0.05, pool, 20)
    assert pooled.information == alone.information  # bp a year: the saving is exactly zero


def pool_saving(n: int, alike: float, disclosure: float) -> float:
    """Appraisal saved per plant by pooling ``n`` equal plants instead of ``n`` own deals."""
    spec = InformationSpec()
    alone = information_cost(np.array([0.5]), 1.0, disclosure, False, spec).appraisal
    pooled = information_cost(np.full(n, 0.5), alike, disclosure, True, spec).appraisal
    return alone - pooled / n


def test_the_pool_saving_grows_with_size_and_similarity_and_shrinks_with_disclosure_problems():
    sizes = [pool_saving(n, 0.5, 0.8) for n in (1, 2, 5, 10, 20, 40)]
    assert sizes[0] == 0 and all(b > a for a, b in zip(sizes, sizes[1:], strict=False)), sizes
    alike = [pool_saving(10, s, 0.8) for s in (0.0, 0.3, 0.6, 0.9)]
    assert all(b > a for a, b in zip(alike, alike[1:], strict=False)), alike
    open_ = [pool_saving(10, 0.6, d) for d in (0.0, 0.3, 0.6, 1.0)]
    assert all(b > a for a, b in zip(open_, open_[1:], strict=False)), open_
    # diversification alone (dissimilar plants, no disclosure) still lowers what must be known
    assert appraisal_effort(1 / 10, 0.05) < appraisal_effort(1.0, 0.05)
    assert appraisal_effort(1 / 20, 0.05) == 0.0  # a pool this large needs no plant-level digging


def test_a_trustee_report_replaces_monitoring_and_similar_plants_look_alike():
    spec = InformationSpec()
    amounts = np.full(10, 0.5)
    own = information_cost(amounts, 0.5, 0.5, False, spec).monitoring_per_year
    reported = information_cost(amounts, 0.5, 0.5, True, spec).monitoring_per_year
    ratio = spec.reporting_plant_cny_m_per_year / spec.monitoring_plant_cny_m_per_year
    assert reported == pytest.approx(own * ratio)
    same = np.tile([0.38, 4500.0, 0.332], (5, 1))
    assert similarity(same, 0.15) == 1.0 and similarity(same[:1], 0.15) == 1.0
    spread = same * np.exp(np.random.default_rng(1).normal(0, 0.1, same.shape))
    assert 0 < similarity(spread, 0.15) < similarity(spread, 0.5) < 1


# ---------------------------------------------------------------------------------- funding base
def test_every_route_starts_from_the_same_risk_free_rate():
    rf, liquidity = 0.035, 0.005
    loan = route_costs.loan_yield(rf, 0.0, 0.5, 1.0, liquidity)
    abs_ = pricing.required_yield(rf, 5.0, pricing.ClaimRisk(0.0, 0.0), liquidity)
    assert loan.risk_free == abs_.risk_free == rf
    assert loan.total == pytest.approx(abs_.total) == pytest.approx(rf + liquidity)
    # the routes part only by their own premia: a recharacterisable true sale pays a legal one
    reach = 0.05 * court_reach(0.6, "trust")  # a member's distress, a court that reaches the pool
    weak = pricing.required_yield(rf, 5.0, pricing.ClaimRisk(0.0, 0.0), liquidity,
                                  legal=pricing.ClaimRisk(reach * 0.5, reach))  # fmt: skip
    assert weak.legal > 0 and loan.legal == 0


def test_the_abs_legal_premium_comes_from_the_members_distress_and_the_courts_reach():
    """A receivables ABS is recharacterised when a member plant (its originator) falls into
    distress and a court reaches its receivables: no distress, no legal premium, whatever the
    law; a special SPV statute (remoteness 0.95) prices under a third of today's trust (0.6); a
    pool of ten members carries the same expected legal loss as one of them alone but a smaller
    premium, its risk spread over members."""
    amounts, rf, liquidity = np.full(10, 0.4), 0.035, 0.005

    def premium(distress: np.ndarray, remoteness: float) -> float:
        legal = route_costs.pool_legal_risk(distress, amounts[: distress.size],
                                            court_reach(remoteness, "trust"), 0.3)  # fmt: skip
        return pricing.required_yield(rf, 5.0, pricing.NO_RISK, liquidity, legal=legal).legal

    assert premium(np.zeros(10), 0.0) == 0.0
    distressed = np.full(10, 0.2)
    assert premium(distressed, 0.95) < premium(distressed, 0.6) / 3
    alone = route_costs.pool_legal_risk(distressed[:1], amounts[:1], 0.4, 0.3)
    pooled = route_costs.pool_legal_risk(distressed, amounts, 0.4, 0.3)
    assert pooled.loss_share == pytest.approx(alone.loss_share)
    assert pooled.default_prob > alone.default_prob
    assert 0 < premium(distressed, 0.6) < premium(distressed[:1], 0.6)
    # a riskier member raises the pool's premium
    assert premium(np.r_[0.9, distressed[1:]], 0.6) > premium(distressed, 0.6)


def test_the_loan_price_rises_with_leverage_through_default_risk():
    lgd = route_costs.loss_given_default(0.8, 1.0, 0.5, 0.25, 0.9)
    assert 0 < lgd < 1
    leverage = (0.6, 0.75, 0.85, 0.95, 1.2)
    pds = [route_costs.merton_default_prob(x, 0.07) for x in leverage]
    assert all(b > a for a, b in zip(pds, pds[1:], strict=False)) and pds[0] < 1e-6
    rates = [route_costs.loan_yield(0.035, p, lgd, 1.0, 0.005).total for p in pds]
    assert all(b > a for a, b in zip(rates, rates[1:], strict=False))
    assert route_costs.merton_default_prob(float("nan"), 0.07) == 1.0  # no assets left
    assert route_costs.merton_default_prob(float("inf"), 0.07) == 1.0


def test_pooling_diversifies_receivables_risk():
    spec = power.PowerSpec()
    one = route_costs.pool_sigma(spec.revenue_sigma_q, spec.revenue_correlation, 1.0)
    many = route_costs.pool_sigma(spec.revenue_sigma_q, spec.revenue_correlation, 1 / 20)
    assert many < one
    assert route_costs.abs_default_prob(2.0, many, 20) < route_costs.abs_default_prob(2.0, one, 20)


def test_the_tariff_rule_passes_on_part_of_dear_coal_within_a_cap():
    shift = power.linked_tariff_shift
    assert shift(568.0, 568.0, 0.38, 0.7, 0.2, 0.332) == 0.0
    small = shift(668.0, 568.0, 0.38, 0.7, 0.2, 0.332)
    assert small == pytest.approx(0.7 * 0.38 * 100 / 1e3)
    assert shift(1268.0, 568.0, 0.38, 0.7, 0.2, 0.332) == pytest.approx(0.2 * 0.332)
    assert shift(300.0, 568.0, 0.38, 0.7, 0.2, 0.332) < 0


def test_choose_route_takes_the_cheapest_open_route():
    total = np.array([[600.0, 550.0, 500.0], [600.0, 550.0, 500.0], [600.0, np.nan, 700.0]])
    available = np.array([[True, True, True], [True, True, False], [False, False, False]])
    assert route_costs.choose_route(total, available).tolist() == [2, 1, -1]


def test_cross_collateral_covers_a_members_shortfall_only_in_a_pool():
    share = np.array([1.0, 1.0, 1.0])
    available = np.array([0.2, 3.0, 3.0])
    pooled = power.collect(share, available, overcollateralisation=0.5)
    assert pooled.sum() == pytest.approx(3.0) and pooled[0] == pytest.approx(0.2)
    alone = power.collect(np.array([1.0]), np.array([0.2]), overcollateralisation=0.5)
    assert alone.sum() == pytest.approx(0.2)
    paid = power.pay_out(1.0, fees_due=0.1, interest_due=0.5, tax_rate=0.1, principal_due=1.0)
    assert (paid.fees, paid.interest, paid.principal) == pytest.approx((0.1, 0.5, 0.35))
    assert paid.fees + paid.interest + paid.tax + paid.principal == pytest.approx(1.0)


def test_plant_loans_settle_instalments_maturities_and_closed_npls():
    table = SegmentTable(*(np.array([x]) for x in (0.01, 0.0, 4, 0.0, 0.0, 0.0, 0.5, 0.1)))
    loans = LoanBook(3, table)
    loans.originate(np.arange(3), np.zeros(3, dtype=int), np.zeros(3, dtype=int), np.ones(3),
                    np.ones(3), 0.04, np.ones(3), np.array([1.0, 0.25, 1.0]))  # fmt: skip
    plant_loans = PlantLoans(3)
    plant_loans.assign(np.arange(3), np.array([0, 0, 1]), loans)
    assert plant_loans.largest_loan(loans, 0, 0) in (0, 1)
    plant_loans.default_plant(loans, 1, quarter=0, quality=1.0)
    assert plant_loans.largest_loan(loans, 1, 0) == -1  # a defaulted loan is not rolled over
    plant_loans.snapshot(loans)
    loans.service_performing(1)
    loans.work_out(1, np.array([50.0]), np.zeros(1), np.zeros(3), end_age_by_holder=8)
    settled = plant_loans.settle(loans, 1, np.array([8]), 2)  # one account: end age 8
    assert settled.interest.tolist() == pytest.approx([0.02, 0.0])
    assert settled.principal.tolist() == pytest.approx([0.25 + 1.0, 0.0])
    assert settled.closed_principal.tolist() == pytest.approx([0.0, 1.0])
    assert 0 < settled.recovery[1] <= 0.5
    assert plant_loans.mapped.tolist() == [0]  # the matured and the resolved loans are gone
    assert loans.status[0] == Status.PERFORMING


# ---------------------------------------------------------------------------------- the sector
@pytest.mark.slow
def test_no_centre_plants_stay_highly_leveraged_before_the_squeeze():
    """Over ten seeds the median plant's bank debt ratio never falls below 70% in 2016-20 (the
    study's starting problem; facts: power-debt); owners who may not borrow new to repay old
    de-lever below it (the mechanism switched off)."""
    calm = [frames("shanxi_no_centre", s)[0].loc[CALM, "power_debt_ratio_median"] for s in SEEDS]
    assert min(path.min() for path in calm) >= 0.70
    assert np.mean([path.iloc[-1] for path in calm]) >= 0.78
    repaid = [frames("shanxi_no_centre", s, quarters=20, power__refinance_hurdle=0.0)[0]
              .loc[20, "power_debt_ratio_median"] for s in FEW]  # fmt: skip
    assert np.mean(repaid) < 0.70
    # the adjusted leverage is reported beside it and is never below it
    for s in SEEDS:
        model = frames("shanxi_no_centre", s)[0]
        assert (model["power_adjusted_leverage"] >= model["power_debt_ratio"] - 1e-12).all()


@pytest.mark.slow
def test_plant_loans_turn_bad_in_the_coal_squeeze():
    """Over ten seeds plant loans go bad in the squeeze years at least five times as fast as in
    2016-20, some plants (10-80%) default, and without the squeeze most of it disappears."""
    new = np.array([frames("shanxi_no_centre", s)[0]["power_npl_new"] for s in SEEDS])
    calm, squeeze = new[:, list(CALM)].mean(), new[:, list(SQUEEZE)].mean()
    assert squeeze > 5 * calm, (calm, squeeze)
    assert (new[:, list(SQUEEZE)].sum(axis=1) > 0).sum() >= 9
    defaulted = []
    for s in SEEDS:
        plants = frames("shanxi_no_centre", s)[1]
        defaulted.append(plants.loc[plants.year == 8, "npl_created"].gt(0).mean())
    assert 0.1 <= np.mean(defaulted) <= 0.8, defaulted
    calm_coal = np.array([frames("shanxi_no_centre", s, power__coal__shocks=[])[0]
                          ["power_npl_new"] for s in SEEDS])  # fmt: skip
    assert calm_coal[:, list(SQUEEZE)].sum() < 0.3 * new[:, list(SQUEEZE)].sum()
    # and they are the banks' bad assets: on the banks' books, in the ordinary workout
    model = frames("shanxi_no_centre", 1)[0]
    assert model["power_npl_created"].iloc[-1] == pytest.approx(model["power_npl_new"].sum())
    assert model["power_bank_npl"].max() > 0


@pytest.mark.parametrize("seed", FEW)
def test_the_opening_debt_does_not_depend_on_the_number_of_loan_slots(seed):
    """With few slots a segment's loans are few and large; the plants still take over loans
    until they reach the scenario's opening debt ratio (at 3,000 slots they once opened at 63%
    for want of small loans)."""
    debt = {}
    for n in (1500, 3000, 20000):
        model = NPLMarketModel(scenario="shanxi_no_centre", rng=seed, n_loans=n, quarters=1)
        debt[n] = model.power.plant_loans.debt_by_plant(model.world.loans, len(model.plants))
        assert model.invariant_violations() == []
    for n in (1500, 3000):
        assert debt[n].sum() == pytest.approx(debt[20000].sum(), rel=0.03), n


def test_the_coal_price_is_a_systematic_shock_every_world_shares():
    paths = {name: frames(name, 3)[0]["coal_price"] for name in SHANXI}
    for path in paths.values():
        pd.testing.assert_series_equal(path, paths["shanxi_no_centre"])
    model = NPLMarketModel(scenario="shanxi_power", rng=3, **SMALL, quarters=2)
    model.step()
    assert model.coal.history == pytest.approx(list(paths["shanxi_power"].iloc[:2]))
    plant = model.plants[0]  # the plants' quarter ran on the price drawn in phase 2
    spec = model.config.power
    fuel = plant.hours_q * plant.capacity_mw * 1e3 * plant.coal_kg_per_kwh / 1e3
    assert float(plant.quarter_ops.fuel[0]) == pytest.approx(fuel * model.coal.fuel_price / 1e9)
    assert model.coal.fuel_price == pytest.approx(
        spec.coal.contract_share * spec.coal.reference_cny_per_t
        + (1 - spec.coal.contract_share) * model.coal.price
    )


# ---------------------------------------------------------------------------------- the centre
def paired(column: str, b: str, a: str = "shanxi_no_centre", seeds=SEEDS) -> dict:
    """Paired difference B − A at the horizon over seeds (common random numbers)."""
    return paired_difference(final(a, column, seeds), final(b, column, seeds))


REFORMED = ("shanxi_reformed_no_centre", "shanxi_centre_reformed")  # the study's law, centre or not
TWENTY = tuple(range(1, 21))
NOTHING_SHARED = {  # a cost technology in which pooling shares no appraisal and no monitoring
    "power__information__appraisal_fixed_cny_m": 0.0,
    "power__information__tolerance": 0.0,
    "power__information__similarity_bandwidth": 1e-6,
    "power__information__reporting_plant_cny_m_per_year": 1.0,
}


def centre_effect(column: str, seeds=SEEDS, **overrides) -> dict:
    """Paired difference at the horizon that the centre makes under the study's law."""
    no_centre, centre = (final(name, column, seeds, **overrides) for name in REFORMED)
    return paired_difference(no_centre, centre)


@pytest.mark.slow
def test_under_the_studys_law_the_centre_lowers_the_cost_of_financing_by_mechanism():
    """Paired seeds, the study's legal reforms with and without the centre: with the centre
    plants pay less for what they raise, and the saving splits into interest, information,
    supervision and issuance, which add up to it: less interest (a diversified slice of
    receivables instead of a leveraged plant), less information (an appraisal shared across alike
    plants), less supervision (a trustee's standard report instead of each holder's monitoring),
    more issuance (deal fees and the centre's running cost). The pool quotes less than a bank loan
    for information and supervision. Over 20 seeds the plants' bank debt ratio (−0.04 [−0.06,
    −0.02]) and adjusted leverage (−0.03 [−0.05, −0.02]) are lower at end-2023, and so are the
    plant loans gone bad (−7.8 CNY bn [−11.0, −4.6]). With a cost technology that shares nothing
    the information and supervision savings vanish; the interest saving does not (a diversified
    slice of receivables is still a cheaper claim than a loan to a leveraged plant)."""
    total = centre_effect("power_cost_bp")
    assert total["ci_high"] < 0, total
    parts = {c: centre_effect(f"power_cost_{c}_bp") for c in route_costs.COMPONENTS}
    assert sum(p["diff"] for p in parts.values()) == pytest.approx(total["diff"])
    for saving in ("interest", "information", "supervision"):
        assert parts[saving]["ci_high"] < 0, (saving, parts[saving])
    assert parts["issuance"]["ci_low"] > 0, parts["issuance"]
    for component in ("information", "supervision"):
        quotes = [final(REFORMED[1], f"power_quote_{r}_{component}_bp") for r in ("loan", "pooled")]
        assert paired_difference(*quotes)["ci_high"] < 0, component
    assert centre_effect("power_share_pooled")["ci_low"] > 0.3
    for outcome in ("power_debt_ratio", "power_adjusted_leverage", "power_npl_created"):
        assert centre_effect(outcome, TWENTY)["ci_high"] < 0, outcome

    for component in ("information", "supervision"):
        assert centre_effect(f"power_cost_{component}_bp", **NOTHING_SHARED)["ci_low"] > -0.5


@pytest.mark.slow
def test_the_centre_lowers_the_cost_of_financing_by_mechanism():
    """Ten paired seeds: with the centre under today's law plants pay less for what they raise;
    the saving splits into interest, information, supervision and issuance, which add up to it:
    less interest (a diversified slice of receivables instead of a leveraged plant), less
    supervision (a trustee's standard report instead of each lender's monitoring), more issuance
    (deal fees); what the pool quotes for information and supervision is below a bank's. Plants'
    bank debt is lower (receivables sold forward leave the banks' books), and so are the plant
    loans that go bad (20 seeds: −3.5 CNY bn [−5.5, −1.4]; on seeds 1-10 alone the CI reaches
    +0.1)."""
    total = paired("power_cost_bp", "shanxi_power")
    assert total["ci_high"] < 0, total
    parts = {c: paired(f"power_cost_{c}_bp", "shanxi_power") for c in route_costs.COMPONENTS}
    assert sum(p["diff"] for p in parts.values()) == pytest.approx(total["diff"])
    assert parts["interest"]["ci_high"] < 0 and parts["supervision"]["ci_high"] < 0
    assert parts["information"]["ci_high"] < 1.0  # never dearer to know the plants (bp)
    assert parts["issuance"]["ci_low"] > 0
    for component in ("information", "supervision"):
        quotes = {r: final("shanxi_power", f"power_quote_{r}_{component}_bp")
                  for r in ("loan", "pooled")}  # fmt: skip
        assert paired_difference(quotes["loan"], quotes["pooled"])["ci_high"] < 0, component
    assert paired("power_debt_ratio", "shanxi_power")["ci_high"] < 0
    assert paired("power_share_pooled", "shanxi_power")["ci_low"] > 0.05
    npl = paired_difference(final("shanxi_no_centre", "power_npl_created", TWENTY),
                            final("shanxi_power", "power_npl_created", TWENTY))  # fmt: skip
    assert npl["ci_high"] < 0, npl


@pytest.mark.slow
def test_under_todays_law_the_pool_is_a_squeeze_route():
    """Twenty seeds: under today's law (trust form, remoteness 0.6, a thin investor base, VAT and
    stamp duty) a pool's one price is dearer than a bank loan for most plants in the calm years:
    in 2016-20 its quote exceeds the same plant's loan quote in about 70% of projects
    (median difference above +10 bp; the record's order too: China Huaneng's AAA receivables note
    of 2017 paid 5.50% against a 4.90% loan benchmark), so plants join the centre's pools in the
    2021-22 squeeze and after it, when a leveraged plant's loan is dear."""
    premium, dearer, late = [], [], []
    for seed in TWENTY:
        plants = frames("shanxi_power", seed)[1]
        projects = plants[plants["capex_need"] > 0]
        calm = projects[projects["year"] <= 5].dropna(subset=["loan_total_bp", "pooled_total_bp"])
        gap = calm["pooled_total_bp"] - calm["loan_total_bp"]
        premium.append(float(gap.median()))
        dearer.append(float((gap > 0).mean()))
        pooled = projects[projects["route"] == "pooled"]
        if len(pooled):  # the share of what the pools raised from 2021 on
            late.append(pooled["raised"][pooled["year"] >= 6].sum() / pooled["raised"].sum())
    assert np.mean(dearer) > 0.6, dearer
    assert paired_difference(np.zeros(len(premium)), np.array(premium))["ci_low"] > 10, premium
    assert len(late) >= 15 and np.mean(late) > 0.7, late


def test_the_liquidity_cover_counts_every_debt_service_the_plant_pays_from_its_own_cash():
    model = NPLMarketModel(scenario="shanxi_power", rng=3, **SMALL, quarters=2,
                           power__centre_liquidity_cover=1.2)  # fmt: skip
    model.step()
    sector, plants = model.power, model.plants[:6]
    own = sector.own_debt_service(plants)
    scheduled = sector.plant_loans.scheduled_service(model.world.loans, len(model.plants))[:6]
    interest = sector.plant_loans.scheduled_interest(model.world.loans, len(model.plants))[:6]
    # in a calm year the owners refinance repaid principal: only interest is paid from cash
    assert (own <= scheduled + 1e-15).all() and (own >= interest - 1e-15).all()
    assert (interest < scheduled).all()
    none = sector.desk.liquidity_cover(plants, np.zeros(6), own)
    pooled = sector.desk.liquidity_cover(plants, np.full(6, 0.5), own)
    assert (pooled < none).all()  # the pool's schedule is a use of cash
    plant = plants[0]  # no project, no ABS sold yet
    ebitda = float(plant.quarter_ops.ebitda[0])
    assert none[0] == pytest.approx((plant.cash + 4 * ebitda) / (4 * own[0]))
    centre = model.power.centre
    assert centre.admit(plants, np.r_[1.2, 1.19, np.full(4, np.inf)]) == [plants[0], *plants[2:]]
    off = NPLMarketModel(scenario="shanxi_power", rng=3, **SMALL, quarters=1)  # no screen
    assert off.power.centre.admit(plants, np.full(6, -1.0)) == plants


def centre_only_defaults(**overrides) -> float:
    """Plant debt turned bad by end-2023 in the world with the centre under today's law at
    plants that never defaulted without it, summed over ten seeds (CNY bn)."""
    face = 0.0
    for s in SEEDS:
        created = [frames(name, s, **(overrides if name == "shanxi_power" else {}))[1]
                   .query("year == 8").set_index("plant")["npl_created"]
                   for name in ("shanxi_power", "shanxi_no_centre")]  # fmt: skip
        face += float(created[0][created[1] == 0].sum())
    return face


SCREEN = {"power__centre_liquidity_cover": 1.2}  # a rating agency's "adequate" liquidity


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="the screen was adopted at 3,000 loan slots, where the plants opened at 63% bank debt"
    " instead of the scenario's 80% (too few small loans to hand out); with the opening debt at"
    " 80% the debt of plants that default only because the centre exists is 13.2 CNY bn with the"
    " screen and 6.2 without it over seeds 1-10 (9.1 and 11.5 over seeds 11-20), while the plants"
    " the centre keeps out of default fall from 23.6 to 2.8: the screen is off by default"
    " (docs/securitisation.md)",
)
def test_a_liquidity_screen_keeps_plants_the_pool_would_push_into_default_out_of_it():
    """Ten paired seeds: a pool's five-year amortising schedule takes cash faster than a bank
    loan, and a plant that joins one in the 2021-22 squeeze without the cash flow to carry it may
    default where it would not have. A centre that admits a plant only if its cash and a year's
    projected cash flow cover a year's debt service after the pool's schedule 1.2 times should
    cut the debt of plants that default only because the centre exists to under half of what it
    is without the screen."""
    screened = centre_only_defaults(**SCREEN)
    unscreened = centre_only_defaults()
    assert unscreened > 0 and screened < 0.5 * unscreened, (screened, unscreened)


@pytest.mark.slow
def test_the_centre_and_the_reforms_lower_adjusted_leverage_and_bad_assets():
    """Ten paired seeds: with the centre and the study's legal reforms most projects go to the
    pool, the plants' adjusted leverage (receivables sold counted as debt) is lower over the run,
    and fewer plant loans go bad; the bank-debt ratio falls much further than the adjusted one
    (part of the de-levering is the true sale's accounting)."""
    reform = "shanxi_centre_reformed"

    def run_mean(name: str, column: str) -> np.ndarray:
        return np.array([frames(name, s)[0][column].iloc[1:].mean() for s in SEEDS])

    def mean_diff(column: str) -> dict:
        return paired_difference(run_mean("shanxi_no_centre", column), run_mean(reform, column))

    adjusted, bank = mean_diff("power_adjusted_leverage"), mean_diff("power_debt_ratio")
    assert adjusted["ci_high"] < 0, adjusted
    assert bank["diff"] < 2 * adjusted["diff"]
    assert paired("power_npl_created", reform)["ci_high"] < 0
    assert (
        paired("power_cost_bp", reform)["ci_high"]
        < paired("power_cost_bp", "shanxi_power")["ci_low"]
    )
    assert paired("power_share_pooled", reform)["ci_low"] > 0.3


@pytest.mark.slow
def test_pooled_quotes_beat_stand_alone_deals_on_information_and_supervision():
    """Ten seeds of a fleet whose projects are all the same size (so a pool's bp and a plant's
    own deal's bp spread the same costs): the centre's pool saves on information and supervision
    per plant against a stand-alone deal; with a technology that shares nothing (no fixed part, no
    diversification relief, nothing carried over, no standard reporting) the saving vanishes."""
    equal = {"power__capacity_dispersion": 0.0, "power__capex_dispersion": 0.0, "quarters": 9}

    def non_interest(route: str, **overrides) -> np.ndarray:
        return sum(
            final("shanxi_power", f"power_quote_{route}_{c}_bp", SEEDS, **equal, **overrides)
            for c in ("information", "supervision")
        )

    saving = non_interest("standalone") - non_interest("pooled")
    assert (saving > 0).all() and saving.mean() > 40, saving
    nothing_shared = {
        "power__information__appraisal_fixed_cny_m": 0.0,
        "power__information__tolerance": 0.0,
        "power__information__similarity_bandwidth": 1e-6,
        "power__information__reporting_plant_cny_m_per_year": 1.0,
    }
    off = non_interest("standalone", **nothing_shared) - non_interest("pooled", **nothing_shared)
    assert abs(off.mean()) < 0.1 * saving.mean(), off


def test_the_law_closes_or_prices_the_abs_routes():
    """Five seeds, the first financing round: without an SPV law or with a thin investor base the
    ABS routes close and plants borrow; under weak law the ABS routes cost more than a loan."""

    def first_round(**overrides) -> pd.DataFrame:
        rounds = [frames("shanxi_centre_reformed", s, quarters=1, **overrides)[1] for s in FEW]
        rows = pd.concat(rounds)
        return rows[(rows.year == 1) & (rows.capex_need > 0)]

    no_law = first_round(securitisation_allowed=False, spv_form="none")
    assert not no_law[["standalone_available", "pooled_available"]].to_numpy().any()
    assert set(no_law["standalone_closed_by"]) == {"no SPV law"}
    assert set(no_law["route"]) <= {"loan", ""}
    thin = first_round(investor_classes_allowed=["insurer"], foreign_investors_allowed=False)
    assert not thin[["standalone_available", "pooled_available"]].to_numpy().any()
    assert thin["pooled_closed_by"].str.startswith("investors the law admits").all()
    weak = first_round(investor_classes_allowed=["insurer", "retail"], bankruptcy_remoteness=0.1,
                       investor_protection=0.1, foreign_investors_allowed=False)  # fmt: skip
    reformed = first_round()
    for route in ("standalone", "pooled"):
        open_ = weak[weak[f"{route}_available"]]
        assert len(open_) and open_[f"{route}_interest_bp"].median() > (
            reformed[f"{route}_interest_bp"].median() + 50
        )


@pytest.mark.slow
def test_abs_funding_lowers_the_bank_debt_ratio_more_than_leverage():
    """Five seeds: plants that fund projects only by ABS report lower bank-debt ratios than plants
    that fund them by loans; counted as debt, the receivables sold close most of that gap."""
    loans = [frames("shanxi_power", s, quarters=20, power__routes=["loan"])[0] for s in FEW]
    abs_ = [frames("shanxi_power", s, quarters=20, power__routes=["standalone", "pooled"])[0]
            for s in FEW]  # fmt: skip
    bank = np.mean([a["power_debt_ratio"].iloc[-1] - b["power_debt_ratio"].iloc[-1]
                    for a, b in zip(abs_, loans, strict=True)])  # fmt: skip
    adjusted = np.mean([a["power_adjusted_leverage"].iloc[-1] - b["power_adjusted_leverage"]
                        .iloc[-1] for a, b in zip(abs_, loans, strict=True)])  # fmt: skip
    assert bank < -0.03 and abs(adjusted) < 0.5 * abs(bank), (bank, adjusted)
    assert all((m["power_share_loan"].dropna() == 0).all() for m in abs_)


@pytest.mark.slow
def test_receivables_that_fall_short_are_abs_investors_losses():
    squeeze = [{"quarter": 6, "log_jump": 1.6}]
    hit = [frames("shanxi_no_centre", s, quarters=16, power__routes=["standalone"],
                  power__coal__shocks=squeeze)[0] for s in FEW]  # fmt: skip
    calm = [frames("shanxi_no_centre", s, quarters=16, power__routes=["standalone"],
                   power__coal__shocks=[], power__coal__volatility_q=0.0)[0]
            for s in FEW]  # fmt: skip
    lost = [m["power_abs_investor_losses"].sum() for m in hit]
    assert sum(loss > 0 for loss in lost) >= 4
    assert sum(m["power_abs_investor_losses"].sum() for m in calm) < 0.1 * sum(lost)


# ---------------------------------------------------------------------------------- experiments
def test_power_outcomes_are_nan_safe_metrics_for_compare_sweep_and_sensitivity():
    result = compare(
        "shanxi_no_centre", "shanxi_power", seeds=3, quarters=6, overrides_a=SMALL,
        overrides_b=SMALL, workers=1,
        metrics=["power_cost_bp", "power_share_pooled", "power_funded_share",
                 "power_adjusted_leverage", "power_bank_npl", "power_quote_pooled_bp"],
    )  # fmt: skip
    table = result.table.set_index(["metric", "statistic"])
    for metric in ("power_cost_bp", "power_share_pooled", "power_funded_share",
                   "power_adjusted_leverage", "power_bank_npl"):  # fmt: skip
        assert table.loc[(metric, "final"), "n_seeds"] == 3, metric
    assert table.loc[("power_quote_pooled_bp", "final"), "n_seeds"] == 0  # no centre, no quote
    power_outcomes = [m for m in registry().values() if m.power]
    assert power_outcomes and all(
        m.source in MODEL_COLUMNS or m.source in DERIVED_PATHS for m in power_outcomes
    )


def test_cli_routes_compares_the_routes_with_intervals(tmp_path, capsys):
    out = tmp_path / "routes"
    code = main(["routes", "shanxi_power", "--seeds", "3", "--seed-start", "1", "--quarters",
                 "5", "--set", "n_loans=3000", "--workers", "1", "--out", str(out),
                 "--quiet"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "95% CIs" in printed and "pooled" in printed
    table = pd.read_csv(out / "routes.csv")
    assert len(table) == 3 * 5 and set(table["route"]) == set(route_costs.ROUTES)
    loan = table[(table.route == "loan") & (table.component == "total")].iloc[0]
    assert loan["diff_bp"] == 0 and loan["n_seeds"] == 3
    total = table[table.component == "total"].set_index("route")
    assert np.isfinite(total.loc["pooled", ["diff_ci_low", "diff_ci_high"]]).all()
    parts = table[(table.route == "pooled") & (table.component != "total")]["mean_bp"].sum()
    assert parts == pytest.approx(total.loc["pooled", "mean_bp"])
    bad = tmp_path / "bad"
    assert main(["routes", "restart_2016", "--seeds", "1", "--out", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no power plants" in err and not bad.exists()


# ---------------------------------------------------------------------------------- guarantees
@pytest.mark.parametrize("scenario", SHANXI)
def test_invariants_hold_every_quarter_with_plants_vehicles_and_the_centre(scenario):
    run_model(scenario, 4, check=True, quarters=36, **SMALL)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n_plants=st.integers(1, 40),
    routes=st.sets(st.sampled_from(route_costs.ROUTES), min_size=1),
    centre=st.booleans(),
    jump=st.floats(-0.5, 1.5),
    n_loans=st.integers(500, 4000),
    disclosure=st.floats(0.0, 1.0),
)
def test_invariants_hold_for_random_fleets(seed, n_plants, routes, centre, jump, n_loans,
                                           disclosure):  # fmt: skip
    run_model(
        "shanxi_power", seed, check=True, quarters=12, n_loans=n_loans,
        power__n_plants=n_plants, power__routes=sorted(routes), power__centre=centre,
        power__coal__shocks=[{"quarter": 6, "log_jump": jump}], disclosure_level=disclosure,
    )  # fmt: skip


@pytest.mark.slow
def test_same_seed_same_bytes_and_a_power_table(tmp_path):
    overrides = {**SMALL, "quarters": 12}
    for name in ("a", "b"):
        run_to_directory("shanxi_power", 5, tmp_path / name, overrides)
    for table in ("model", "banks", "deals", "trades", "events", "power"):
        a = (tmp_path / "a" / f"{table}.parquet").read_bytes()
        assert a == (tmp_path / "b" / f"{table}.parquet").read_bytes(), table
    plants = pd.read_parquet(tmp_path / "a" / "power.parquet")
    assert len(plants) == 30 * 4 and set(plants["year"]) == {0, 1, 2, 3}


def test_appending_the_power_stream_keeps_every_other_stream():
    streams = split_streams(11)
    power = STREAMS.index("power")
    older = np.random.SeedSequence(11).spawn(power)
    for name, child in zip(STREAMS[:power], older, strict=True):
        assert streams[name].random() == np.random.default_rng(child).random()


def test_a_world_without_plants_has_empty_power_columns():
    model = run_model("restart_2016", 1, quarters=3, n_loans=2000)
    frame = model.model_frame()
    assert list(frame.columns) == list(MODEL_COLUMNS)
    assert frame["coal_price"].isna().all() and (frame["power_bank_debt"] == 0).all()
    assert frame["power_cost_bp"].isna().all() and frame["power_funded_share"].isna().all()
    assert model.power_frame().empty and not model.plants and model.power.violations() == []


@pytest.mark.slow
def test_cli_run_writes_power_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "shanxi_power", "--seed", "2", "--quarters", "6", "--out", str(out),
                 "--set", "n_loans=3000", "--quiet"])  # fmt: skip
    assert code == 0
    assert "npl_ratio" in capsys.readouterr().out
    plants = pd.read_parquet(out / "power.parquet")
    assert {"debt_ratio", "adjusted_leverage", "tariff", "route", "loan_total_bp",
            "pooled_information_bp"} <= set(plants.columns)  # fmt: skip
    model = pd.read_parquet(out / "model.parquet")
    assert model["coal_price"].notna().all() and model["power_bank_debt"].iloc[0] > 0
    for name in ("costs", "debt_ratios", "bad_assets"):
        assert (out / "figures" / f"power_{name}.png").stat().st_size > 10_000


def test_python_api_runs_the_power_scenario():
    model = NPLMarketModel(scenario="shanxi_power", rng=3, n_loans=3000, quarters=5)
    while model.running:
        model.step()
    frame = model.power_frame()
    assert len(frame) == 30 * 3 and frame["total_assets"].gt(0).all()
    assert model.model_frame()["power_capex_funded"].sum() > 0
    assert model.power.centre is not None and model.power.centre.fees_earned >= 0


@pytest.mark.parametrize(
    ("setting", "mentions"),
    [
        ("power.n_plants=0", "power.n_plants"),
        ("power.routes=['bus']", "power.routes"),
        ("power.capex_share=-1", "power.capex_share"),
        ("power.information.tolerance=2", "power.information.tolerance"),
        ("power.coal.persistence_q=1.5", "power.coal.persistence_q"),
        ("power.plants=3", "power.plants: unknown key"),
    ],
)
def test_bad_power_parameters_are_one_line_and_exit_2(tmp_path, capsys, setting, mentions):
    out = tmp_path / "out"
    code = main(["run", "shanxi_power", "--set", setting, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and mentions in err, err
    assert not out.exists()


def test_bad_power_block_in_a_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('regime = "shanxi_centre_today"\n[power]\nn_plants = "many"\n')
    with pytest.raises(ConfigError) as info:
        NPLMarketModel(scenario=path, rng=1)
    assert info.value.source == str(path) and info.value.key == "power.n_plants"
    with pytest.raises(ConfigError, match="power.hours_per_year"):
        NPLMarketModel(scenario="shanxi_power", rng=1, power__hours_per_year=10_000)


def test_a_power_block_can_be_added_to_any_scenario():
    model = run_model("restart_2016", 2, quarters=5, n_loans=4000, power__n_plants=5,
                      check=True)  # fmt: skip
    assert len(model.plants) == 5 and len(model.power_frame()) == 5 * 3


def test_a_plant_still_owes_a_loan_its_bank_has_written_off_and_still_pursues():
    """With banks pursuing written-off claims (and a short write-off age, so that plant loans
    reach it), a charged-off plant loan stays on the plant's books until its claim is resolved
    or ends, and the plant pays what the bank recovers: every invariant, the plants' balance
    sheets included, holds every quarter."""
    model = run_model("shanxi_power", 3, check=True, n_loans=4000, write_off_age_q=6,
                      claim_life_q=40, banks_pursue_written_off=True)  # fmt: skip
    assert model.model_frame()["written_off"].sum() > 0
