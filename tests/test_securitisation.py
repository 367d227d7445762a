"""The securitisation channel: its economics against the legal regime, end to end in the model."""

from __future__ import annotations

import numpy as np
import numpy_financial as npf
import pandas as pd
import pytest
from conftest import VOLATILE
from conftest import run_model as _run_model
from scipy import stats

from nplsim import NPLMarketModel
from nplsim.market import waterfall


def run_model(*args, **overrides):
    """A run in the credit cycle that makes deals (``conftest.VOLATILE``)."""
    return _run_model(*args, **{**VOLATILE, **overrides})


SEEDS = (1, 2, 3)


def paired_ci(diff: np.ndarray) -> tuple[float, float]:
    """95% t-interval of the mean of paired differences over seeds."""
    half = stats.t.ppf(0.975, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size)
    return float(diff.mean() - half), float(diff.mean() + half)


def deals(scenario: str = "restart_2016", seeds=SEEDS, **overrides) -> pd.DataFrame:
    """All deals of full runs over the seeds, tagged with the seed."""
    frames = []
    for seed in seeds:
        frame = run_model(scenario, seed, **overrides).deal_frame()
        frames.append(frame.assign(seed=seed))
    return pd.concat(frames, ignore_index=True)


def test_a_regime_that_forbids_securitisation_has_no_deals():
    model = run_model("restart_2016", 1, securitisation_allowed=False, spv_form="none")
    assert model.deal_frame().empty
    assert model.model_frame()["abs_issued"].sum() == 0
    assert model.model_frame()["npl_securitised"].sum() == 0


def test_deals_happen_and_every_invariant_holds_with_spvs_investors_and_enhancers():
    model = run_model("mature_market", 2, check=True)
    frame = model.deal_frame()
    assert len(frame) >= 2
    assert model.model_frame()["abs_outstanding"].max() > 0
    assert {"Guarantor A", "Guarantor B", "State guarantee scheme"} & set(frame["guarantor"])


@pytest.mark.slow
def test_better_disclosure_lowers_the_information_premium_and_enlarges_the_senior():
    """Twenty paired seeds: the same economy with clearer pool data has a smaller information
    premium and a larger senior share (the rating agencies' stress widens with opacity); each
    per-seed mean's paired difference has a 95% t-interval on the right side of 0 (measured:
    −25.0 bp [−35.9, −14.1] and +0.23 [+0.19, +0.27]; seeds 1-10 alone give −17.2 bp
    [−34.6, +0.1], one seed at +27 bp)."""
    seeds = range(1, 21)
    opaque = deals(disclosure_level=0.2, seeds=seeds).groupby("seed")
    clear = deals(disclosure_level=0.9, seeds=seeds).groupby("seed")
    premium = (clear["senior_information_premium_bp"].mean()
               - opaque["senior_information_premium_bp"].mean())  # fmt: skip
    assert paired_ci(premium.to_numpy())[1] < 0.0, premium
    share = lambda g: g.apply(lambda d: (d["senior_size"] / d["issued_total"]).mean())  # noqa: E731
    senior = share(clear) - share(opaque)
    assert paired_ci(senior.to_numpy())[0] > 0.0, senior


@pytest.mark.slow
def test_individual_debtor_notice_is_slower_and_costlier_than_public_announcement():
    public = deals(debtor_notice="public_announcement", notice_cost_per_borrower_cny=2.0,
                   notice_delay_q=0)  # fmt: skip
    individual = deals(debtor_notice="individual", notice_cost_per_borrower_cny=30.0,
                       notice_delay_q=2)  # fmt: skip
    assert len(public) and len(individual)
    assert individual["closing_lag_q"].min() > public["closing_lag_q"].max()
    per_borrower = lambda d: d["notice_cost"].sum() / d["pool_borrowers"].sum()  # noqa: E731
    assert per_borrower(individual) == pytest.approx(30.0e-9, rel=1e-6)
    assert per_borrower(public) == pytest.approx(2.0e-9, rel=1e-6)


@pytest.mark.parametrize("form", ["vertical", "first_loss"])
def test_retention_is_always_met(form):
    frame = deals(seeds=(1, 2), risk_retention=0.1, retention_form=form)
    assert len(frame)
    assert (frame["retained"] >= frame["retention_required"] - 1e-9).all()


@pytest.mark.slow
def test_derecognition_gives_capital_relief_and_so_more_securitisation():
    """Under capital pressure (the credit cycle of ``VOLATILE`` pushes the banks into their
    buffers, where the supervisor stops payouts), a deal that removes the pool from the books
    (releasing its provisions and NPL stock) beats one that leaves it there as funding."""

    def securitised(derecognition: bool) -> float:
        return sum(
            run_model("strengthened", seed, derecognition_allowed=derecognition)
            .model_frame()["npl_securitised"].sum()
            for seed in SEEDS
        )  # fmt: skip

    assert securitised(True) > 1.2 * securitised(False)


def test_without_derecognition_the_pool_stays_on_the_books():
    """Banks rarely choose a deal that brings no relief, so put one together by hand."""
    model = NPLMarketModel(scenario="mature_market", rng=1, n_loans=20_000,
                           derecognition_allowed=False)  # fmt: skip
    for _ in range(4):
        model.step()
    bank = max(model.banks, key=lambda b: b.own_npls().size)
    before = bank.npl_on_books
    spv = model.desk.open_vehicle(bank, bank.own_npls()[:200])
    while spv.state != "live":
        model.step()
    assert not spv.terms.derecognised
    pool = bank.pool_face_on_books
    assert pool > 0
    assert bank.npl_on_books == pytest.approx(bank.gross_npl + pool)
    assert bank.provision_target() >= model.prudential.provision_coverage_min * bank.npl_on_books
    assert bank.securitisation_rwa == 0.0  # the pool is weighted as NPLs, not as tranches
    assert before > 0 and model.invariant_violations() == []


@pytest.mark.xfail(
    strict=True,
    reason="calibration gap: the model issues 9.1% of pool face (mean of seeds 1-10, s.d. 1.1%)"
    " where the 2016 deals issued 15-34% (facts: restart-2016, npl-abs-2016-deals): banks put"
    " their oldest NPLs into deals, whose collections lie years ahead; with the claim ending at"
    " the write-off age it is 5.8%, and where only the buyers of a claim pursue it after the"
    " write-off 15.5% (see docs/securitisation.md)",
)
def test_restart_2016_issues_about_a_third_of_pool_face():
    """facts: restart-2016: CNY 15.6 bn issued against CNY 46.1 bn principal + interest (34%)."""
    frame = deals()
    ratio = frame["issued_total"].sum() / frame["pool_face"].sum()
    assert 0.15 < ratio < 0.45, ratio


def issued_to_pool_face(**overrides) -> np.ndarray:
    """Per seed (1-10): ABS issued over the pools' face, over every deal of the run."""
    ratios = []
    for seed in range(1, 11):
        frame = run_model("restart_2016", seed, **overrides).deal_frame()
        ratios.append(frame["issued_total"].sum() / frame["pool_face"].sum())
    return np.array(ratios)


@pytest.mark.slow
def test_claims_pursued_past_the_write_off_lift_issued_to_pool_face_into_the_record():
    """facts: restart-2016, npl-abs-2016-deals: the 2016 deals issued 15-34% of their pools'
    principal and interest. Where only the buyers of a claim pursue it past the banks' write-off
    age (``banks_pursue_written_off = false``, facts: claim-pursuit) the mean over 10 seeds lies
    in that range (measured: 0.155, s.d. 0.023, the record's low end); with the claim ending at
    the write-off age the pools are worth little past the disposal lag and the share is below
    the record (measured: 0.058)."""
    pursued = issued_to_pool_face(banks_pursue_written_off=False)
    ended = issued_to_pool_face(claim_life_q=12)  # restart_2016's write-off age
    assert 0.15 <= pursued.mean() <= 0.45, (pursued.mean(), pursued)
    assert paired_ci(ended)[1] < 0.15 and paired_ci(pursued - ended)[0] > 0.0, (ended, pursued)


@pytest.mark.slow
def test_a_short_book_clears_at_the_top_of_its_range_not_at_the_issuers_cap():
    """Bids above the bookbuilding range's top (the underwriter's estimate of the required yield
    plus ``price_range_width``) are rejected and a firm commitment takes the balance at the top,
    as in a standby underwriting of the balance. Over 10 seeds no senior coupon exceeds its
    reference yield plus the width; with the range reaching the issuer's cap (width None) short
    books cleared at 800 bp over risk-free (measured: 5.6% of seniors, size-weighted mean spread
    332 bp against 138 bp with the range)."""
    width = 0.015
    ranged, capped = [], []
    no_range = {"securitisation__price_range_width": None}
    for seed in range(1, 11):
        for frames, overrides in ((ranged, {}), (capped, no_range)):
            frames.append(run_model("restart_2016", seed, **overrides).deal_frame())
    ranged, capped = pd.concat(ranged), pd.concat(capped)
    parts = ["senior_expected_loss_bp", "senior_unexpected_loss_bp", "senior_legal_premium_bp",
             "senior_information_premium_bp", "senior_liquidity_premium_bp"]  # fmt: skip
    sold = ranged.dropna(subset=["senior_spread_bp"])
    assert len(sold) > 100
    assert (sold["senior_spread_bp"] <= sold[parts].sum(axis=1) + width * 1e4 + 1e-6).all()
    assert (capped["senior_spread_bp"] >= 800 - 1e-6).any()
    assert (sold["senior_spread_bp"] >= 800 - 1e-6).sum() == 0


def test_senior_realised_yield_equals_an_independent_irr():
    model = run_model("mature_market", 2)
    spv = next(s for s in model.spvs if s.state == "closed" and s.terms.record["senior_size"] > 0)
    flows = np.array(spv.tranche_cashflows["senior"])
    price = spv.terms.record["senior_size"]
    ours = waterfall.realised_yield(np.concatenate([[0.0], flows]), price)
    theirs = (1 + npf.irr(np.concatenate([[-price], flows]))) ** 4 - 1
    assert ours == pytest.approx(theirs, abs=1e-8)
    assert ours > 0


@pytest.mark.slow
def test_recharacterisation_hits_investors_only_when_remoteness_fails():
    def run(remoteness: float):
        frames = [
            run_model("restart_2016", seed, bankruptcy_remoteness=remoteness,
                      car_min=0.25, securitisation__distress_car_gap=0.0).model_frame()
            for seed in SEEDS
        ]  # fmt: skip
        return pd.concat(frames)

    safe, fragile = run(1.0), run(0.0)
    assert safe["recharacterisations"].sum() == 0
    assert fragile["recharacterisations"].sum() > 0

    # investors price weak remoteness and buy less, so compare losses per CNY of ABS issued
    def loss_rate(frame: pd.DataFrame) -> float:
        return frame["investor_losses"].sum() / frame["abs_issued"].sum()

    assert loss_rate(fragile) > 1.1 * loss_rate(safe)


@pytest.mark.slow
def test_amcs_originate_deals_only_where_the_regime_lets_them():
    amc_names = {"Huarong", "Great Wall", "Orient", "Cinda"}
    banks_only = deals("pilot_2005", seeds=(1, 2), originators_allowed=["bank"])
    amcs_only = deals("pilot_2005", seeds=(1, 2), originators_allowed=["amc"])
    assert len(banks_only) and not set(banks_only["originator"]) & amc_names
    assert len(amcs_only) and set(amcs_only["originator"]) <= amc_names


def test_mandates_bind_on_tranche_and_rating(small_model):
    by_class = {i.investor_class: i for i in small_model.investors}
    assert by_class["insurer"].eligible("senior", "AA")
    assert not by_class["insurer"].eligible("senior", "BBB")  # below its rating floor
    assert not by_class["insurer"].eligible("mezz", "AA")  # outside its mandate
    assert by_class["mutual_fund"].eligible("mezz", "BBB")
    assert by_class["distressed_fund"].eligible("sub", "unrated")
    assert not by_class["retail"].eligible("senior", "AA")  # restart_2016 admits no retail
