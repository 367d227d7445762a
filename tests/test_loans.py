"""Tests of the loan book: servicing, Vasicek defaults, workout, valuation tables and aggregates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from nplsim.market.loans import (
    SEGMENT_CODE,
    SEGMENTS,
    LoanBook,
    SegmentTable,
    Status,
    asset_correlation,
    effective_correlation,
    recovery_timing_factor,
)
from nplsim.market.workout_value import (
    collections_outlook,
    workout_value_table,
)

N = 20_000
RATE = 0.0435
FACTS_RECOVERY = np.array([84.2, 72.7, 62.8, 59.8, 59.1, 43.7])
PRIVATE = SEGMENT_CODE["private"]
MORTGAGE = SEGMENT_CODE["mortgage"]
CARD = SEGMENT_CODE["retail_card"]


def _segments(**overrides: list[float]) -> SegmentTable:
    """A six-segment calibration; mortgages 0.15 and cards 0.04 correlation, others IRB."""
    k = len(SEGMENTS)
    base = {
        "pd_annual": [0.01, 0.02, 0.04, 0.05, 0.01, 0.02],
        "spread": [0.0, 0.005, 0.02, 0.08, 0.0, 0.01],
        "maturity_q": [20, 16, 12, 4, 80, 40],
        "secured_share": [0.5] * k,
        "collateral_cover": [1.2] * k,
        "haircut": [0.4] * k,
        "unsecured_recovery": [0.2] * k,
        "correlation": [np.nan, np.nan, np.nan, 0.04, 0.15, np.nan],
    }
    base.update(overrides)
    data = {key: np.asarray(value, dtype=float) for key, value in base.items()}
    data["maturity_q"] = data["maturity_q"].astype(np.int64)
    return SegmentTable(**data)


def _book(
    n: int = N,
    segment: int | np.ndarray = PRIVATE,
    principal: float | np.ndarray = 1.0,
    secured: bool | np.ndarray = False,
    remaining_share: float | np.ndarray = 1.0,
    pd_multiplier: float | np.ndarray = 1.0,
    segments: SegmentTable | None = None,
    originator: int | np.ndarray = 0,
) -> LoanBook:
    """A book with every slot filled by a freshly originated performing loan.

    A per-slot ``pd_multiplier`` gives every slot its own originating account (multipliers are
    a property of the originator)."""
    book = LoanBook(n, segments or _segments())
    slots = np.arange(n)
    if np.ndim(pd_multiplier):
        originator, by_account = slots, np.asarray(pd_multiplier, dtype=float)
    else:
        by_account = np.full(int(np.max(originator)) + 1, float(pd_multiplier))
    book.originate(
        slots=slots,
        originator=np.broadcast_to(np.asarray(originator, dtype=np.intp), n),
        segment=np.broadcast_to(np.asarray(segment, dtype=np.int8), n),
        principal=np.broadcast_to(np.asarray(principal, dtype=float), n).copy(),
        pd_multiplier_by_account=by_account,
        benchmark_rate=RATE,
        secured_draw=np.where(np.broadcast_to(secured, n), 0.0, 1.0),
        remaining_share=np.broadcast_to(np.asarray(remaining_share, dtype=float), n),
    )
    return book


def _make_npl(book: LoanBook, idx: np.ndarray | slice, default_q: int = 0) -> None:
    book.mark_npl(idx, default_q)
    book.quality[idx] = 1.0


# ---------------------------------------------------------------------------- origination
def test_originate_sets_rate_collateral_and_vasicek_parameters():
    book = _book(n=4, segment=np.array([PRIVATE, MORTGAGE, CARD, 0]), secured=True)
    seg = book.segments
    np.testing.assert_allclose(book.rate, RATE + seg.spread[book.segment])
    np.testing.assert_allclose(book.collateral, 1.2)
    np.testing.assert_allclose(norm.cdf(book.threshold), seg.pd_annual[book.segment], rtol=1e-10)
    np.testing.assert_allclose(book.sqrt_rho[1:3] ** 2, [0.15, 0.04])
    assert (book.status == Status.PERFORMING).all()
    assert (book.carrying == book.principal).all()
    assert book.free_slots().size == 0


def test_unsecured_draw_leaves_no_collateral_and_pd_multiplier_scales_pd():
    book = _book(n=2, secured=False, pd_multiplier=np.array([1.0, 2.0]))
    assert (book.collateral == 0).all()
    np.testing.assert_allclose(norm.cdf(book.threshold), [0.04, 0.08], rtol=1e-9)


# ---------------------------------------------------------------------------- servicing
def test_interest_is_quarter_of_annual_rate_on_performing_loans_only():
    rng = np.random.default_rng(1)
    principal = rng.uniform(0.1, 2.0, N)
    book = _book(principal=principal, originator=np.arange(N))  # one account a loan
    npl = rng.random(N) < 0.3
    _make_npl(book, npl)
    before = book.principal.copy()
    served = book.service_performing(N)
    interest, paid = served.interest, served.principal_paid
    np.testing.assert_allclose(interest[~npl], before[~npl] * book.rate[~npl] / 4)
    assert (interest[npl] == 0).all()
    assert (paid[npl] == 0).all()
    np.testing.assert_array_equal(book.principal[npl], before[npl])  # NPLs do not amortise
    assert served.matured.size == 0


def test_service_sums_by_holder_account():
    book = _book(n=6, principal=np.arange(1.0, 7.0), originator=np.array([0, 1, 1, 2, 2, 2]))
    before = book.principal.copy()
    served = book.service_performing(4)
    np.testing.assert_allclose(served.interest, np.array([1, 5, 15, 0]) * (RATE + 0.02) / 4)
    np.testing.assert_allclose(served.principal_paid, np.array([1, 5, 15, 0]) / 12)
    np.testing.assert_allclose(before - book.principal, np.arange(1.0, 7.0) / 12)


def test_equal_principal_amortisation_repays_over_term_then_matures():
    maturity = 12  # private segment
    principal = np.linspace(0.5, 3.0, 100)
    book = _book(n=100, principal=principal, originator=np.arange(100))
    paid_total = np.zeros(100)
    for q in range(maturity):
        assert (book.status == Status.PERFORMING).all()
        served = book.service_performing(100)
        paid = served.principal_paid
        np.testing.assert_allclose(paid, principal / maturity)  # equal instalments
        paid_total += paid
        assert served.matured.size == (100 if q == maturity - 1 else 0)
        np.testing.assert_allclose(book.carrying, book.principal)
    np.testing.assert_allclose(paid_total, principal)
    assert (book.status == Status.RESOLVED).all()
    assert (book.principal == 0).all() and (book.carrying == 0).all()
    assert book.free_slots().size == 100
    served = book.service_performing(100)  # resolved slots pay nothing more
    assert (served.interest == 0).all() and (served.principal_paid == 0).all()


def test_seasoned_loan_matures_after_its_remaining_share_of_term():
    book = _book(n=3, remaining_share=np.array([1.0, 0.5, 0.01]))
    np.testing.assert_array_equal(book.remaining_q, [12, 6, 1])
    quarters_to_mature = np.full(3, -1)
    for q in range(12):
        quarters_to_mature[book.service_performing(1).matured] = q + 1
    np.testing.assert_array_equal(quarters_to_mature, [12, 6, 1])


# ---------------------------------------------------------------------------- Vasicek defaults
def _default_rate(z: float, seed: int, segment: int = PRIVATE, n: int = N) -> float:
    book = _book(n=n, segment=segment)
    rng = np.random.default_rng(seed)
    defaulted = book.default(5, z, rng.random(n), np.ones(n))
    return defaulted.size / n


def test_default_rate_at_z0_is_the_conditional_median_pd():
    """At Z=0 defaults follow Φ(Φ⁻¹(PD_q)/√(1−ρ)), which is *below* PD_q (median < mean)."""
    pd_annual = 0.04
    pd_q = 1 - (1 - pd_annual) ** 0.25
    rho = asset_correlation(np.array(pd_annual), np.array(np.nan))
    expected = norm.cdf(norm.ppf(pd_q) / np.sqrt(1 - rho))
    rate = _default_rate(0.0, seed=11)
    se = np.sqrt(expected * (1 - expected) / N)
    assert abs(rate - expected) < 4 * se
    assert rate < pd_q


def test_low_correlation_segment_at_z0_defaults_close_to_pd():
    """Retail cards (ρ = 0.04): at Z = 0 the rate is Φ(Φ⁻¹(PD_q)/√(1−ρ)), below PD_q."""
    pd_q = 1 - (1 - 0.05) ** 0.25
    expected = norm.cdf(norm.ppf(pd_q) / np.sqrt(1 - 0.04))
    rates = np.array([_default_rate(0.0, seed=seed, segment=CARD) for seed in range(12, 17)])
    se = np.sqrt(expected * (1 - expected) / (N * rates.size))
    assert abs(rates.mean() - expected) < 4 * se


def test_average_default_rate_over_the_cycle_equals_quarterly_pd():
    """Integrating the conditional PD over Z ~ N(0,1) gives back the unconditional PD_q."""
    pd_q = 1 - (1 - 0.04) ** 0.25
    k = 200
    zs = norm.ppf((np.arange(k) + 0.5) / k)  # stratified draws of Z
    rates = [_default_rate(z, seed=100 + i, n=5_000) for i, z in enumerate(zs)]
    se = np.sqrt(pd_q * (1 - pd_q) / (k * 5_000))
    assert abs(np.mean(rates) - pd_q) < 4 * se + 2e-4  # + stratification error


def test_bad_times_raise_and_good_times_lower_defaults():
    rates = [_default_rate(z, seed=21) for z in (-2.0, -1.0, 0.0, 1.0, 2.0)]
    assert np.all(np.diff(rates) < 0)
    assert rates[0] > 3 * rates[2] > 9 * rates[4]


@pytest.mark.parametrize("z", [-2.5, -0.7, 0.0, 1.3])
def test_conditional_pd_matches_scipy_norm(z):
    seg_codes = np.arange(len(SEGMENTS), dtype=np.int8).repeat(3)
    mult = np.tile([0.5, 1.0, 3.0], len(SEGMENTS))
    n = seg_codes.size
    book = _book(n=n, segment=seg_codes, pd_multiplier=mult)
    seg = book.segments
    pd_annual = seg.pd_annual[seg_codes] * mult
    w = (1 - np.exp(-50 * pd_annual)) / (1 - np.exp(-50))
    corr = seg.correlation[seg_codes]
    rho = np.where(np.isnan(corr), 0.12 * w + 0.24 * (1 - w), corr)
    # the one-year conditional PD, spread over the year's four quarters
    annual = norm.cdf((norm.ppf(pd_annual) - np.sqrt(rho) * z) / np.sqrt(1 - rho))
    cond = 1 - (1 - annual) ** 0.25
    # a uniform draw just below the conditional PD defaults; one just above does not
    below = book.default(3, z, cond * (1 - 1e-9), np.ones(n))
    np.testing.assert_array_equal(below, np.arange(n))
    fresh = _book(n=n, segment=seg_codes, pd_multiplier=mult)
    above = fresh.default(3, z, cond * (1 + 1e-9), np.ones(n))
    assert above.size == 0


@pytest.mark.parametrize("z", [-6.0, -2.0, -0.3, 0.0, 0.8, 6.0])
def test_defaults_equal_testing_every_slot(z):
    """Only slots below the hazard at the largest barrier are tested; the result is that of
    testing every slot against its own quarterly hazard."""
    rng = np.random.default_rng(17)
    n = 20_000
    seg_codes = rng.integers(0, len(SEGMENTS), n).astype(np.int8)
    book = _book(n=n, segment=seg_codes, pd_multiplier=rng.uniform(0.2, 8.0, n))
    _make_npl(book, rng.random(n) < 0.1, default_q=0)
    uniform = rng.random(n)
    performing = book.status == Status.PERFORMING
    barrier = (book.threshold - book.sqrt_rho * z) / book.sqrt_one_minus_rho
    hazard = 1 - (1 - norm.cdf(barrier)) ** 0.25
    expected = np.flatnonzero(performing & (uniform < hazard))
    assert 0 < expected.size < n
    np.testing.assert_array_equal(book.default(1, z, uniform), expected)


def test_default_only_hits_performing_loans_and_records_quarter_and_quality():
    book = _book(n=10)
    _make_npl(book, slice(0, 5), default_q=1)
    quality = np.linspace(0.5, 1.5, 10)
    defaulted = book.default(7, 0.0, np.zeros(10), quality)  # every shock is fatal
    np.testing.assert_array_equal(defaulted, np.arange(5, 10))
    np.testing.assert_array_equal(book.default_q, [1] * 5 + [7] * 5)
    np.testing.assert_allclose(book.quality[5:], quality[5:])
    np.testing.assert_allclose(book.quality[:5], 1.0)
    assert (book.status == Status.NPL).all()
    np.testing.assert_array_equal(book.age_q(9), [8] * 5 + [2] * 5)


# ---------------------------------------------------------------------------- IRB correlation
@pytest.mark.parametrize(
    ("pd", "expected"),
    [
        (0.0003, 0.12 * 0.014888 + 0.24 * 0.985112),
        (0.01, 0.12 * 0.393469 + 0.24 * 0.606531),
        (0.03, 0.12 * 0.776870 + 0.24 * 0.223130),
        (0.2, 0.12 * 0.9999546 + 0.24 * 4.54e-5),
    ],
)
def test_asset_correlation_matches_bcbs_corporate_formula(pd, expected):
    got = asset_correlation(np.array([pd]), np.array([np.nan]))[0]
    assert got == pytest.approx(expected, abs=2e-6)
    assert 0.12 <= got <= 0.24


def test_asset_correlation_falls_with_pd_and_uses_segment_values():
    pds = np.array([0.001, 0.01, 0.05, 0.2, 0.5])
    corporate = asset_correlation(pds, np.full(5, np.nan))
    assert np.all(np.diff(corporate) < 0)
    np.testing.assert_allclose(asset_correlation(pds, np.full(5, 0.15)), 0.15)
    np.testing.assert_allclose(asset_correlation(pds, np.full(5, 0.04)), 0.04)


# ---------------------------------------------------------------------------- workout
def test_higher_hazard_resolves_more_at_one_minus_exp_rate():
    book = _book(originator=np.arange(N) % 2)
    _make_npl(book, slice(None), default_q=0)
    hazard = np.array([0.05, 0.5])
    uniform = np.random.default_rng(31).random(N)
    out = book.work_out(1, hazard, np.zeros(2), uniform, 28)
    resolved = np.isin(np.arange(N), out.resolved_slots)
    share = np.array([resolved[book.originator == h].mean() for h in (0, 1)])
    expected = -np.expm1(-hazard)
    se = np.sqrt(expected * (1 - expected) / (N / 2))
    assert np.all(np.abs(share - expected) < 4 * se)
    assert share[1] > 5 * share[0]
    assert out.written_off_slots.size == 0


def test_write_off_exactly_at_write_off_age():
    w = 6
    book = _book(n=50)
    _make_npl(book, slice(None), default_q=0)
    hazard, cost = np.zeros(1), np.zeros(1)
    for q in range(w):
        out = book.work_out(q, hazard, cost, np.ones(50), w)
        assert out.slots.size == 0, f"closed early at age {q}"
    before = book.principal.copy()
    out = book.work_out(w, hazard, cost, np.ones(50), w)
    np.testing.assert_array_equal(out.written_off_slots, np.arange(50))
    assert out.resolved_slots.size == 0
    assert (out.recovery == 0).all() and (out.cost == 0).all()
    np.testing.assert_allclose(out.face, before)
    np.testing.assert_allclose(out.carrying, before)
    assert (book.status == Status.WRITTEN_OFF).all() and (book.principal == 0).all()
    assert book.free_slots().size == 50


def test_a_charged_off_claim_stays_pursued_and_recovers_on_its_claim():
    """A holder that charges NPLs off at age 6 and pursues them to 10: the charge-off reports
    face and carrying value once, keeps the slot an NPL with its claim, and frees nothing; a later
    resolution recovers on the claim with no face left to close; at the end age the rest closes
    unrecovered."""
    book = _book(n=50)
    _make_npl(book, slice(None), default_q=0)
    hazard, cost, never, always = np.zeros(1), np.zeros(1), np.ones(50), np.zeros(50)
    face = book.principal.copy()
    base = book.base_recovery()
    out = book.work_out(6, hazard, cost, never, np.array([10]), np.array([6]))
    np.testing.assert_array_equal(out.written_off_slots, np.arange(50))
    np.testing.assert_allclose(out.face, face)
    assert (book.status == Status.NPL).all() and (book.principal == 0).all()
    np.testing.assert_allclose(book.written_off_claim, face)
    np.testing.assert_allclose(book.base_recovery(), base)  # recoveries computed on the claim
    assert book.free_slots().size == 0 and book.npl_index().size == 50
    out = book.work_out(7, hazard, cost, never, np.array([10]), np.array([6]))
    assert out.slots.size == 0  # charged off once
    resolve = np.where(np.arange(50) < 20, 0.0, 1.0)
    out = book.work_out(8, np.array([50.0]), cost, resolve, np.array([10]), np.array([6]))
    np.testing.assert_array_equal(out.resolved_slots, np.arange(20))
    np.testing.assert_allclose(out.recovery, base[:20] * 62.8 / 84.2)
    assert (out.face == 0).all() and (out.carrying == 0).all()
    assert (book.written_off_claim[:20] == 0).all() and (book.status[:20] == Status.RESOLVED).all()
    np.testing.assert_array_equal(book.free_slots(), np.arange(20))
    out = book.work_out(10, hazard, cost, always, np.array([10]), np.array([6]))
    np.testing.assert_array_equal(out.written_off_slots, np.arange(20, 50))
    assert (out.face == 0).all() and (book.written_off_claim == 0).all()
    assert book.free_slots().size == 50


def test_value_within_a_horizon_is_the_table_value_cut_at_the_horizon():
    """``expected_workout_value_within`` equals the backward recursion's value where the horizon
    reaches the end age, and is smaller where a deal's legal final maturity cuts it."""
    from nplsim.market.workout_value import expected_workout_value, expected_workout_value_within

    book = _book(n=6, secured=True)
    _make_npl(book, slice(None), default_q=0)
    p, delta, end, cost = 0.1, 0.99, 40, 0.05
    table = workout_value_table(p, delta, end, cost)
    full = expected_workout_value(book, np.arange(6), 9, table, delta)
    np.testing.assert_allclose(
        expected_workout_value_within(book, np.arange(6), 9, p, delta, end, cost, 40), full
    )
    cut = expected_workout_value_within(book, np.arange(6), 9, p, delta, end, cost, 20)
    assert (cut < full).all() and (cut > 0.7 * full).all()


def test_a_sale_at_the_horizon_at_the_holders_own_value_restores_the_full_value():
    """With the loans left at the horizon sold for what working them out further is worth to the
    holder (``terminal[a] = δ·G[a + 1]``), collecting to the horizon and selling is worth as much
    as working them out to the end; a sale at a discount is worth less, and more than none."""
    from nplsim.market.workout_value import (
        collections_outlook,
        expected_workout_value,
        expected_workout_value_within,
    )

    book = _book(n=6, secured=True)
    _make_npl(book, slice(None), default_q=0)
    idx, quarter = np.arange(6), 9
    p, delta, end = 0.1, 0.99, 40
    table = workout_value_table(p, delta, end, 0.0)
    own = np.append(delta * table[1:], 0.0)
    full = expected_workout_value(book, idx, quarter, table, delta)
    value = lambda terminal: expected_workout_value_within(  # noqa: E731
        book, idx, quarter, p, delta, end, 0.0, 20, terminal=terminal
    )
    np.testing.assert_allclose(value(own), full)
    assert (value(None) < value(0.8 * own)).all() and (value(0.8 * own) < full).all()
    # quarter by quarter, undiscounted: the sale adds the survivors' price in the last quarter
    with_sale = collections_outlook(book, idx, quarter, p, end, 20, terminal=own)
    without = collections_outlook(book, idx, quarter, p, end, 20)
    np.testing.assert_allclose(with_sale.schedule[:-1], without.schedule[:-1])
    survivors = (1 - p) ** 20 * book.base_recovery(idx) * own[book.age_q(quarter, idx) + 20]
    np.testing.assert_allclose(with_sale.schedule[-1] - without.schedule[-1], survivors.sum())
    assert with_sale.cv2[-1] < without.cv2[-1]  # a pool that sells its rest is surer


def test_resolution_recovers_base_recovery_times_timing_factor_less_cost():
    book = _book(n=8, secured=True)
    _make_npl(book, slice(None), default_q=0)
    book.carrying[:] = 0.4  # bought at a discount
    quarter = 9  # age 9 -> third year
    base = book.base_recovery()
    out = book.work_out(quarter, np.array([50.0]), np.array([0.1]), np.full(8, 0.5), 28)
    np.testing.assert_array_equal(out.resolved_slots, np.arange(8))
    np.testing.assert_allclose(out.recovery, base * 62.8 / 84.2)
    np.testing.assert_allclose(out.cost, 0.1 * out.recovery)
    np.testing.assert_allclose(out.face, 1.0)
    np.testing.assert_allclose(out.carrying, 0.4)
    np.testing.assert_allclose(book.recovered, out.recovery)
    assert (book.status == Status.RESOLVED).all()


def test_recovery_timing_factor_reproduces_facts_table():
    ages = np.arange(0, 40)
    got = recovery_timing_factor(ages)
    expected = FACTS_RECOVERY[np.minimum(ages // 4, 5)] / 84.2
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(
        recovery_timing_factor(np.array([0, 3, 4, 19, 20, 399])),
        np.array([84.2, 84.2, 72.7, 59.1, 43.7, 43.7]) / 84.2,
    )
    assert np.all(np.diff(got) <= 0)


# ---------------------------------------------------------------------------- base recovery
def test_base_recovery_formula_and_cap_at_principal():
    book = _book(n=3, secured=True)  # collateral 1.2, haircut 0.4 -> secured part 0.72
    book.quality[:] = [1.0, 1.2, 3.0]
    expected = np.minimum((0.72 + 0.2 * 0.28) * book.quality, 1.0)
    np.testing.assert_allclose(book.base_recovery(), expected)
    assert book.base_recovery()[2] == 1.0  # capped
    assert (book.base_recovery() <= book.principal).all()


def test_base_recovery_rises_with_collateral_and_detached_collateral_is_unsecured():
    book = _book(n=5, secured=True)
    book.collateral[:] = [0.0, 0.5, 1.0, 1.5, 2.0]
    rec = book.base_recovery()
    assert np.all(np.diff(rec[:4]) > 0)
    assert rec[0] == pytest.approx(0.2)
    book.collateral_share[:] = 0.0
    np.testing.assert_allclose(book.base_recovery(), 0.2)


def test_outsiders_see_an_unbiased_estimate_of_quality_and_the_insider_the_quality():
    n, sigma = 200_000, 0.6
    book = _book(n=n)
    book.mark_npl(np.arange(n), 3)
    book.quality[:] = np.exp(sigma * np.random.default_rng(8).standard_normal(n) - sigma**2 / 2)
    book.quality_dispersion = sigma
    book.signal_key = np.uint64(12345)
    np.testing.assert_allclose(book.public_quality(disclosure=1.0), book.quality)
    np.testing.assert_allclose(book.public_quality(disclosure=0.0), 1.0)
    for d in (0.3, 0.7):
        seen = book.public_quality(disclosure=d)
        residual = book.quality / seen
        assert seen.mean() == pytest.approx(1.0, abs=0.01)
        assert np.log(seen).var() == pytest.approx(d * sigma**2, rel=0.02)
        assert residual.mean() == pytest.approx(1.0, abs=0.01)
        assert abs(np.corrcoef(np.log(residual), np.log(seen))[0, 1]) < 0.01  # private part
    # the noise belongs to the loan: asked again, or for a subset, it is the same
    np.testing.assert_allclose(
        book.public_quality(np.arange(5), 0.5), book.public_quality(disclosure=0.5)[:5]
    )
    blind = book.base_recovery(disclosure=0.0)
    np.testing.assert_allclose(blind, 0.2)  # unsecured recovery at quality 1


# ---------------------------------------------------------------------------- valuation table
def test_workout_value_falls_with_age_and_is_zero_at_write_off():
    table = workout_value_table(0.1, 0.98, 28, 0.08)
    assert table.shape == (29,)
    assert table[28] == 0.0
    assert np.all(np.diff(table) < 0)
    assert 0 < table[0] < 0.92


def test_workout_value_rises_with_resolution_probability():
    values = np.array([workout_value_table(p, 0.98, 20, 0.05) for p in (0.02, 0.1, 0.3, 0.9)])
    assert np.all(np.diff(values[:, :-1], axis=0) > 0)
    assert values[-1, 0] == pytest.approx(0.95 * (0.9 + 0.1 * 0.98 * 0.9), rel=0.01)


def test_workout_value_table_equals_explicit_sum():
    p, delta, w, c = 0.15, 0.97, 24, 0.06
    table = workout_value_table(p, delta, w, c)
    timing = recovery_timing_factor(np.arange(w))
    for a in (0, 5, 13, 23):
        k = np.arange(a, w)
        explicit = (1 - c) * np.sum(p * ((1 - p) * delta) ** (k - a) * timing[k])
        assert table[a] == pytest.approx(explicit, rel=1e-12)


def test_workout_value_table_matches_monte_carlo_of_its_process():
    """Resolve with probability p each quarter at ages a..W−1, discounting by δ per quarter."""
    p, delta, w, c = 0.2, 0.95, 12, 0.1
    rng = np.random.default_rng(41)
    n = 200_000
    first = rng.geometric(p, n) - 1  # quarters until resolution
    table = workout_value_table(p, delta, w, c)
    for a in (0, 6):
        age = a + first
        pv = np.where(age < w, delta**first * recovery_timing_factor(np.minimum(age, w)), 0.0)
        pv *= 1 - c
        assert pv.mean() == pytest.approx(table[a], abs=4 * pv.std() / np.sqrt(n))


def test_workout_value_table_matches_simulated_loan_book_workout():
    p, w = 0.3, 4
    hazard = np.array([-np.log1p(-p)])
    book = _book()
    _make_npl(book, slice(None), default_q=0)
    base = book.base_recovery().copy()
    rng = np.random.default_rng(51)
    total = np.zeros(N)
    for q in range(w + 3):
        out = book.work_out(q, hazard, np.zeros(1), rng.random(N), w)
        total[out.slots] += out.recovery
    pv = total / base
    table = workout_value_table(p, 1.0, w, 0.0)
    assert pv.mean() == pytest.approx(table[0], abs=4 * pv.std() / np.sqrt(N))


def test_collections_and_their_dispersion_match_simulated_workouts_of_a_small_pool():
    """Pools of three loans (principal 1, 2 and 5; defaulted 0, 5 and 9 quarters before) worked
    out by ``work_out`` for ten quarters: mean and squared coefficient of variation of each
    pool's collections cumulated to each quarter, across 10,000 pools, match the law investors
    use (``collections_outlook``) within 4 standard errors / 10%."""
    p, w, horizon, start = 0.15, 28, 10, 10
    hazard = np.array([-np.log1p(-p)])
    pools = N // 2
    book = _book(n=3 * pools, principal=np.tile([1.0, 2.0, 5.0], pools))
    for k, age in enumerate((0, 5, 9)):
        _make_npl(book, slice(k, None, 3), default_q=start - age)
    pool = np.arange(3)
    mean, cv2 = collections_outlook(book, pool, start, p, w, horizon)
    rng = np.random.default_rng(71)
    paid = np.zeros((pools, horizon))
    for q in range(horizon):
        out = book.work_out(start + 1 + q, hazard, np.zeros(1), rng.random(book.principal.size), w)
        np.add.at(paid[:, q], out.slots // 3, out.recovery)
    cumulative = paid.cumsum(axis=1)
    assert mean.sum() > 0 and np.all(cv2 > 0.05)  # a pool of three loans is lumpy
    simulated_mean = cumulative.mean(axis=0)
    error = 4 * cumulative.std(axis=0) / np.sqrt(pools)
    assert np.all(np.abs(simulated_mean - mean.cumsum()) <= error), (simulated_mean, mean.cumsum())
    simulated_cv2 = cumulative.var(axis=0) / simulated_mean**2
    np.testing.assert_allclose(simulated_cv2, cv2, rtol=0.10)


# ---------------------------------------------------------------------------- ownership, totals
def test_transfer_changes_holder_and_carrying_only():
    book = _book(n=10)
    principal = book.principal.copy()
    idx = np.array([2, 5, 7])
    book.transfer(idx, 9, np.array([0.3, 0.4, 0.5]))
    np.testing.assert_array_equal(book.holder, [0, 0, 9, 0, 0, 9, 0, 9, 0, 0])
    np.testing.assert_allclose(book.carrying[idx], [0.3, 0.4, 0.5])
    np.testing.assert_allclose(np.delete(book.carrying, idx), 1.0)
    np.testing.assert_array_equal(book.principal, principal)
    np.testing.assert_array_equal(book.originator, 0)


def test_sum_by_holder_and_holder_totals_equal_pandas_groupby():
    rng = np.random.default_rng(61)
    n, n_accounts = 5_000, 7  # account 5 only buys, account 6 holds nothing
    book = _book(n=n, principal=rng.uniform(0.1, 2.0, n), originator=rng.integers(0, 5, n))
    npl = rng.random(n) < 0.25
    _make_npl(book, npl)
    book.status[rng.random(n) < 0.1] = Status.WRITTEN_OFF
    sold = np.flatnonzero(npl)[::3]
    book.transfer(sold, 5, book.principal[sold] * 0.3)
    frame = pd.DataFrame(
        {
            "holder": book.holder,
            "status": book.status,
            "principal": book.principal,
            "carrying": book.carrying,
        }
    )
    idx = pd.RangeIndex(n_accounts)

    def by(mask: pd.Series, col: str) -> np.ndarray:
        grouped = frame[mask].groupby("holder")[col].sum()
        return grouped.reindex(idx, fill_value=0).to_numpy(dtype=float)

    is_npl = frame.status == Status.NPL
    totals = book.holder_totals(n_accounts)
    np.testing.assert_allclose(
        totals["performing"], by(frame.status == Status.PERFORMING, "principal")
    )
    np.testing.assert_allclose(totals["npl"], by(is_npl, "principal"))
    np.testing.assert_allclose(totals["npl_carrying"], by(is_npl, "carrying"))
    count = frame[is_npl].groupby("holder").size().reindex(idx, fill_value=0).to_numpy()
    np.testing.assert_array_equal(totals["npl_count"], count)
    np.testing.assert_allclose(
        book.sum_by_holder(book.carrying, n_accounts), by(frame.status >= 0, "carrying")
    )
    assert totals["npl"][6] == 0 and totals["npl"].shape == (n_accounts,)
    assert totals["npl_carrying"][5] == pytest.approx(0.3 * totals["npl"][5])


@pytest.mark.parametrize("layout", ["contiguous", "fragmented", "performing_sold"])
def test_performing_sums_by_holder_match_a_scatter_over_the_book(layout):
    rng = np.random.default_rng(5)
    n = 10_000
    originator = np.repeat([3, 1, 4, 1], n // 4)  # contiguous runs (one account twice)
    if layout == "fragmented":
        originator = rng.permutation(originator)
    book = _book(n=n, principal=rng.uniform(0.1, 2.0, n), originator=originator)
    _make_npl(book, rng.random(n) < 0.2)
    book.transfer(np.flatnonzero(book.status == Status.NPL)[:100], 0, np.zeros(100))
    if layout == "performing_sold":
        book.transfer(np.flatnonzero(book.status == Status.PERFORMING)[:50], 2, np.ones(50))
    values = np.where(book.status == Status.PERFORMING, rng.random(n), 0.0)
    np.testing.assert_allclose(
        book.sum_performing_by_holder(values, 6), book.sum_by_holder(values, 6), rtol=1e-12
    )


def test_npls_of_a_book_without_npls_is_empty():
    # regression (found by fuzzing): grouping an empty NPL index raised in zip(strict=True)
    book = _book(n=50)
    assert book.npls_of(0).size == 0
    _make_npl(book, [3, 7])
    book.transfer(np.array([7]), 2, np.zeros(1))
    np.testing.assert_array_equal(book.npls_of(0), [3])
    np.testing.assert_array_equal(book.npls_of(2), [7])


# ---------------------------------------------------------------------------- factor variance
@pytest.mark.parametrize("factor_sd", [0.25, 1.0, 1.6])
def test_a_calmer_factor_keeps_the_mean_pd_and_shrinks_its_swings(factor_sd):
    """With an effective correlation ρσ²/(1−ρ+ρσ²), a unit factor gives the one-year PDs of a
    factor of s.d. σ at correlation ρ: the mean PD is kept, the spread across Z shrinks."""
    rho, pd_annual = np.array([0.2]), 0.02
    effective = effective_correlation(rho, factor_sd)[0]
    z = np.linspace(-6, 6, 4001)
    density = norm.pdf(z)
    level = norm.ppf(pd_annual)
    unit = norm.cdf((level - np.sqrt(effective) * z) / np.sqrt(1 - effective))
    scaled = norm.cdf(
        (level * np.sqrt(1 - rho[0] + rho[0] * factor_sd**2) - np.sqrt(rho[0]) * factor_sd * z)
        / np.sqrt(1 - rho[0])
    )
    np.testing.assert_allclose(unit, scaled, rtol=1e-9)
    mean = np.trapezoid(unit * density, z)
    assert mean == pytest.approx(pd_annual, rel=1e-6)
    spread = np.sqrt(np.trapezoid((unit - mean) ** 2 * density, z))
    basel = np.sqrt(np.trapezoid((norm.cdf((level - np.sqrt(rho[0]) * z) / np.sqrt(
        1 - rho[0])) - pd_annual) ** 2 * density, z))  # fmt: skip
    if factor_sd == 1.0:
        assert spread == pytest.approx(basel, rel=1e-9)
    else:
        assert (spread < basel) == (factor_sd < 1)
