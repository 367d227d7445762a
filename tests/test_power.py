"""Power-plant securitisation (docs/ODD.md, power sector): the route costs, the plants' balance
sheets and the
bank bad assets a coal shock creates, against the law and the Securitization Center."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nplsim.economy.measurement import MODEL_COLUMNS
from nplsim.economy.model import NPLMarketModel
from nplsim.experiments.cli import main
from nplsim.experiments.run import run_to_directory
from nplsim.market import power
from nplsim.market.errors import ConfigError
from nplsim.market.loans import LoanBook, SegmentTable, Status
from nplsim.market.plant_loans import PlantLoans
from nplsim.market.scenario import load_scenario
from nplsim.market.streams import STREAMS, split_streams

SMALL = {"n_loans": 3000}
SEEDS = (1, 2, 3)
SHANXI = ("shanxi_power", "shanxi_no_centre", "shanxi_centre_today", "shanxi_centre_reformed")


def shanxi(seed: int = 1, scenario: str = "shanxi_power", check: bool = False, **overrides):
    """A small Shanxi run to its horizon (28 quarters unless overridden)."""
    return run_model(scenario, seed, check=check, **{"quarters": 28, **SMALL, **overrides})


def coal_shock(log_jump: float) -> list[dict]:
    return [{"quarter": 21, "log_jump": log_jump}]


# ---------------------------------------------------------------------------------- route costs
def pooled_and_standalone(n_plants: int, amount: float = 0.5, coupon: float = 0.045):
    """Per-plant information + supervision + issuance of a pool of ``n_plants`` equal plants and
    of one plant's stand-alone deal, under today's Shanxi law."""
    spec = power.PowerSpec()
    config, regime = load_scenario("shanxi_power")
    sec = config.securitisation

    def cost(n: int, pooled: bool) -> float:
        size = n * amount
        concentration = 1.0 / n
        fees = power.deal_fees(
            size, n, pooled, True, spec, sec.underwriting_bp, sec.fixed_cost_cny_bn,
            sec.trustee_bp_per_year, regime.stamp_duty_bp, regime.vat_rate,
        )  # fmt: skip
        info = power.information_premium(regime.disclosure_level, True, concentration, spec)
        return float(power.abs_cost(size, coupon, info, fees, spec.abs_tenor_q).non_interest[0])

    return cost(n_plants, True), cost(1, False)


def test_pooling_lowers_information_supervision_and_issuance_more_the_more_plants():
    sizes = (2, 5, 10, 20, 40, 80)
    gaps = []
    for n in sizes:
        pooled, alone = pooled_and_standalone(n)
        gaps.append(alone - pooled)
    assert all(b > a for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[0] < 0 < gaps[2], "a two-plant pool does not pay for the centre; ten plants do"


def test_pooling_diversifies_receivables_risk_and_opacity():
    spec = power.PowerSpec()
    one = power.pool_sigma(spec.revenue_sigma_q, spec.revenue_correlation, 1.0)
    many = power.pool_sigma(spec.revenue_sigma_q, spec.revenue_correlation, 1 / 20)
    assert many < one
    assert power.abs_default_prob(2.0, many, 20) < power.abs_default_prob(2.0, one, 20)
    premium = [power.information_premium(d, r, 1.0, spec) for d, r in ((0.3, False), (0.8, False),
                                                                      (0.8, True))]  # fmt: skip
    assert premium[0] > premium[1] > premium[2] > 0
    assert power.information_premium(0.8, True, 1 / 20, spec) < premium[2]


def test_the_loan_route_prices_leverage_and_closes_above_the_bank_limit():
    spec = power.PowerSpec()
    cost = power.loan_cost(np.full(3, 0.5), np.array([0.5, 0.8, 0.9]), spec, 0.005, 60)
    assert cost.interest[0] < cost.interest[1] < cost.interest[2]
    assert cost.available.tolist() == [True, True, False]
    assert (cost.issuance == 0).all() and (cost.information > spec.bank_information_bp).all()
    assert cost.interest[0] == pytest.approx(1e4 * (spec.loan_benchmark_rate + 0.005))


def test_choose_route_takes_the_cheapest_open_route():
    total = np.array([[600.0, 550.0, 500.0], [600.0, 550.0, 500.0], [600.0, np.nan, 700.0]])
    available = np.array([[True, True, True], [True, True, False], [False, False, False]])
    assert power.choose_route(total, available).tolist() == [2, 1, -1]


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
    plant_loans.default_plant(loans, 1, quarter=0, quality=1.0)
    plant_loans.snapshot(loans)
    loans.service_performing(1)
    loans.work_out(1, np.array([50.0]), np.zeros(1), np.zeros(3), write_off_age_q=8)
    settled = plant_loans.settle(loans, 1, 8, 2)
    assert settled.interest.tolist() == pytest.approx([0.02, 0.0])
    assert settled.principal.tolist() == pytest.approx([0.25 + 1.0, 0.0])
    assert settled.closed_principal.tolist() == pytest.approx([0.0, 1.0])
    assert 0 < settled.recovery[1] <= 0.5
    assert plant_loans.mapped.tolist() == [0]  # the matured and the resolved loans are gone
    assert loans.status[0] == Status.PERFORMING


# ---------------------------------------------------------------------------------- the model
def test_abs_funding_leaves_plants_less_indebted_than_loan_funding():
    loans = shanxi(1, power__routes=["loan"]).power_frame()
    abs_ = shanxi(1, power__routes=["standalone", "pooled"]).power_frame()
    last = loans["year"].max()
    assert abs_.loc[abs_.year == last, "debt_ratio"].median() < (
        0.5 * loans.loc[loans.year == last, "debt_ratio"].median()
    )
    assert (abs_.loc[abs_.year == last, "abs_obligation"] > 0).any()
    assert (loans["abs_obligation"] == 0).all()
    assert set(abs_.loc[abs_.route != "", "route"]) <= {"standalone", "pooled"}


def test_a_coal_shock_creates_more_bank_bad_assets_when_plants_are_loan_funded():
    created = {}
    for routes in (("loan",), ("standalone", "pooled")):
        for jump in (0.0, 0.9):
            created[routes, jump] = [
                shanxi(seed, power__routes=list(routes), power__coal__shocks=coal_shock(jump))
                .model_frame()["power_npl_created"].iloc[-1]
                for seed in SEEDS
            ]  # fmt: skip
    loan_shock = np.array(created[("loan",), 0.9])
    abs_shock = np.array(created[("standalone", "pooled"), 0.9])
    assert (loan_shock >= abs_shock).all() and loan_shock.sum() > 1.5 * abs_shock.sum(), created
    assert loan_shock.sum() > sum(created[("loan",), 0.0])


def test_receivables_that_fall_short_are_abs_investors_losses():
    severe = [shanxi(s, power__routes=["standalone"], power__coal__shocks=coal_shock(1.2))
              for s in SEEDS]  # fmt: skip
    calm = shanxi(1, power__routes=["standalone"], power__coal__shocks=[])
    assert sum(m.model_frame()["power_abs_investor_losses"].sum() for m in severe) > 0
    assert calm.model_frame()["power_abs_investor_losses"].sum() == pytest.approx(0, abs=1e-12)
    defaults = severe[0].event_frame()
    assert (defaults["kind"] == "plant_default").any()


def test_plant_defaults_become_npls_in_the_loan_book_and_are_worked_out():
    model = shanxi(2, power__routes=["loan"], power__coal__shocks=coal_shock(1.2), quarters=40)
    frame = model.model_frame()
    assert frame["power_npl_new"].sum() > 0
    assert frame["power_npl_created"].iloc[-1] == pytest.approx(frame["power_npl_new"].sum())
    peak = frame["power_bank_npl"].max()
    assert 0 < frame["power_bank_npl"].iloc[-1] < peak  # worked out, sold or written off
    assert model.bank_frame()["new_npl"].sum() >= frame["power_npl_new"].sum()


def first_round(scenario: str = "shanxi_centre_reformed", **overrides) -> pd.DataFrame:
    """The quotes of the first year's financing round under changed law or institutions."""
    frame = shanxi(1, scenario=scenario, quarters=1, **overrides).power_frame()
    return frame[(frame.year == 1) & (frame.capex_need > 0)]


def test_without_an_spv_law_or_with_a_thin_investor_base_abs_is_dearer_or_closed():
    reformed = first_round()
    assert reformed["pooled_total_bp"].median() < reformed["loan_total_bp"].median()
    assert (reformed["route"] != "loan").all()
    no_law = first_round(securitisation_allowed=False, spv_form="none")
    assert not no_law[["standalone_available", "pooled_available"]].to_numpy().any()
    assert set(no_law["standalone_closed_by"]) == {"no SPV law"}
    assert (no_law["route"] == "loan").all()
    thin = first_round(investor_classes_allowed=["insurer"], foreign_investors_allowed=False)
    assert not thin[["standalone_available", "pooled_available"]].to_numpy().any()
    assert thin["pooled_closed_by"].str.startswith("investors the law admits").all()
    assert (thin["route"] == "loan").all()
    weak = first_round(investor_classes_allowed=["insurer", "retail"], bankruptcy_remoteness=0.1,
                       investor_protection=0.1, foreign_investors_allowed=False)  # fmt: skip
    for route in ("standalone", "pooled"):
        both = weak[f"{route}_available"] & reformed[f"{route}_available"]
        assert both.any()
        assert (weak.loc[both, f"{route}_total_bp"] > reformed.loc[both, f"{route}_total_bp"]).all()


def test_the_centre_and_the_reforms_change_the_route_mix_the_study_way():
    shares = {
        name: shanxi(1, scenario=name).model_frame().iloc[-1]
        for name in ("shanxi_no_centre", "shanxi_centre_today", "shanxi_centre_reformed")
    }
    assert shares["shanxi_no_centre"]["power_share_pooled"] == 0
    assert shares["shanxi_centre_today"]["power_share_pooled"] > 0.5
    reformed, today = shares["shanxi_centre_reformed"], shares["shanxi_centre_today"]
    assert reformed["power_share_loan"] <= today["power_share_loan"]
    assert reformed["power_debt_ratio"] <= today["power_debt_ratio"]


def test_pooled_quotes_beat_standalone_on_non_interest_costs_in_the_model():
    frame = shanxi(1, scenario="shanxi_centre_today").power_frame()
    both = frame[frame.standalone_available & frame.pooled_available]
    assert len(both) > 10
    non_interest = {
        r: both[[f"{r}_{c}_bp" for c in ("information", "supervision", "issuance")]].sum(axis=1)
        for r in ("standalone", "pooled")
    }
    assert non_interest["pooled"].median() < non_interest["standalone"].median()
    assert (non_interest["pooled"] < non_interest["standalone"]).mean() > 0.75


# ---------------------------------------------------------------------------------- guarantees
@pytest.mark.parametrize("scenario", SHANXI[1:])
def test_invariants_hold_every_quarter_with_plants_vehicles_and_the_centre(scenario):
    model = shanxi(4, scenario=scenario, check=True, quarters=40,
                   power__coal__shocks=coal_shock(1.0))  # fmt: skip
    assert model.power.vehicles and any(p.in_default or p.npl_created for p in model.plants)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n_plants=st.integers(1, 40),
    routes=st.sets(st.sampled_from(power.ROUTES), min_size=1),
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
    assert model.power_frame().empty and not model.plants and model.power.violations() == []


def test_cli_run_writes_power_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "shanxi_power", "--seed", "2", "--quarters", "6", "--out", str(out),
                 "--set", "n_loans=3000", "--quiet"])  # fmt: skip
    assert code == 0
    assert "npl_ratio" in capsys.readouterr().out
    plants = pd.read_parquet(out / "power.parquet")
    assert {"debt_ratio", "route", "loan_total_bp", "pooled_information_bp"} <= set(plants.columns)
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
        ("power.max_loan_debt_ratio=0.5", "max_loan_debt_ratio"),
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
