"""Tests of the waterfall engine: priority, credit support, triggers, final maturity, conservation,
independence of deals, and the realised yield."""

from __future__ import annotations

import copy

import numpy as np
import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nplsim.market.waterfall import (
    ACCELERATED,
    SEQUENTIAL,
    TRANCHES,
    DealBook,
    PeriodInputs,
    PeriodPayments,
    Step,
    new_deal_book,
    realised_yield,
    run_waterfall,
)

TOL = 1e-12
FEE_NAMES = ("trustee", "servicer_base", "guarantee_fee", "servicer_incentive")


def _one_deal(**terms) -> DealBook:
    book = new_deal_book()
    book.append(**terms)
    return book


def _inputs(n: int = 1, **fields) -> PeriodInputs:
    """Inputs with nothing due but what ``fields`` sets (scalars broadcast over deals)."""
    fees = fields.pop("fees_due", {})
    collections = np.broadcast_to(np.asarray(fields.pop("collections"), dtype=float), (n,))
    return PeriodInputs(collections=collections, fees_due=fees, **fields)


# --- random structures -------------------------------------------------------------------------


def _random_deals(rng: np.random.Generator, n: int) -> list[dict]:
    deals = []
    for _ in range(n):
        senior = rng.uniform(0.0, 50.0)
        reserve = rng.uniform(0.0, 2.0) * (rng.random() < 0.7)
        deals.append(
            {
                "senior": senior,
                "mezz": rng.uniform(0.0, 15.0) * (rng.random() < 0.6),
                "sub": rng.uniform(0.0, 20.0),
                "senior_coupon": rng.uniform(0.0, 0.08),
                "mezz_coupon": rng.uniform(0.0, 0.12),
                "reserve": reserve,
                "reserve_target": reserve * rng.uniform(0.0, 2.0),
            }
        )
    return deals


def _book_of(deals: list[dict]) -> DealBook:
    book = new_deal_book()
    for deal in deals:
        book.append(**deal)
    return book


def _random_quarter(rng: np.random.Generator, n: int, trigger_ratio: float) -> dict:
    def sparse(high: float) -> np.ndarray:
        return rng.uniform(0.0, high, n) * (rng.random(n) < 0.7)

    return {
        "collections": sparse(20.0),
        "taxes_due": sparse(0.5),
        "fees_due": {name: sparse(0.5) for name in FEE_NAMES},
        "disposal_costs": sparse(2.0),
        "cost_cap": sparse(1.5),
        "guarantee_available": sparse(3.0),
        "final": rng.random(n) < 0.2,
        "trigger_ratio": trigger_ratio,
    }


def _slice(quarter: dict, i: int) -> PeriodInputs:
    def one(a):
        return a[i : i + 1]

    return PeriodInputs(
        collections=one(quarter["collections"]),
        taxes_due=one(quarter["taxes_due"]),
        fees_due={k: one(v) for k, v in quarter["fees_due"].items()},
        disposal_costs=one(quarter["disposal_costs"]),
        cost_cap=one(quarter["cost_cap"]),
        guarantee_available=one(quarter["guarantee_available"]),
        final=one(quarter["final"]),
        trigger_ratio=quarter["trigger_ratio"],
    )


def _check_period(
    before: DealBook,
    after: DealBook,
    inputs: PeriodInputs,
    out: PeriodPayments,
    sequential: tuple[Step, ...] = SEQUENTIAL,
    accelerated: tuple[Step, ...] = ACCELERATED,
) -> None:
    """Every invariant of one quarter that holds whatever the priority of payments."""
    n = before.n
    collections = np.asarray(inputs.collections)
    final = np.broadcast_to(inputs.final, (n,))
    guarantee_available = np.broadcast_to(inputs.guarantee_available, (n,))

    arrays = [out.reserve_drawn, out.reserve_added, out.guarantee_drawn, out.residual]
    arrays += [out.cash_left, *out.paid.values(), *out.due.values()]
    arrays += [*out.principal_written_off.values(), *out.interest_unpaid.values()]
    arrays += [after.reserve, *after.balance.values(), *after.interest_shortfall.values()]
    assert all(np.all(a >= 0.0) for a in arrays)

    sources = collections + out.reserve_drawn + out.guarantee_drawn
    scale = sources + 1.0
    gap = out.paid_out() + out.cash_left - (sources - out.reserve_added)
    assert np.all(np.abs(gap) <= 1e-9 * scale)
    assert np.all(out.paid_out() <= sources * (1 + 1e-12))
    assert np.all(out.guarantee_drawn <= guarantee_available * (1 + 1e-12))

    # The trigger is sticky and fires exactly on the documented condition.
    fired = before.cumulative_collections + collections < (
        inputs.trigger_ratio * before.expected_cumulative
    )
    np.testing.assert_array_equal(after.accelerated, before.accelerated | fired)
    np.testing.assert_allclose(
        after.cumulative_collections, before.cumulative_collections + collections
    )

    # Priority: once a step is short, later steps get nothing from cash; only senior interest and
    # principal may still be paid, and only out of the reserve and the guarantee.
    released = np.where(final, before.reserve, 0.0)
    support = out.reserve_drawn - released + out.guarantee_drawn
    for i in range(n):
        steps = accelerated if after.accelerated[i] else sequential
        short = False
        for step in steps:
            paid, due = out.paid[step.key][i], out.due[step.key][i]
            if short:
                senior = step.target == "senior" and step.kind in ("interest", "principal")
                assert paid <= (support[i] if senior else 0.0) + TOL, (i, step)
            short = short or paid < due - TOL

    # Reserve draws only for senior shortfalls, guarantee only once the reserve is empty.
    senior_due = out.due[("interest", "senior")] + np.where(
        final, out.due[("principal", "senior")], 0.0
    )
    assert np.all(support <= senior_due + TOL)
    assert np.all(after.reserve[out.guarantee_drawn > TOL] <= TOL)
    assert np.all(out.reserve_drawn - released <= before.reserve + out.reserve_added + TOL)
    assert np.all(
        out.paid[("capped_cost", "")] <= np.minimum(inputs.disposal_costs, inputs.cost_cap) + TOL
    )

    # Balances move only by principal and residual payments, and are written off at final.
    for t in TRANCHES:
        principal = out.paid.get(("principal", t), 0.0)
        residual = out.paid.get(("residual", t), 0.0)
        remaining = np.maximum(before.balance[t] - principal - residual, 0.0)
        np.testing.assert_allclose(after.balance[t], np.where(final, 0.0, remaining), atol=1e-9)
        np.testing.assert_allclose(
            out.principal_written_off[t], np.where(final, remaining, 0.0), atol=1e-9
        )
        owed = before.interest_shortfall[t] + before.balance[t] * before.coupon[t] / 4.0
        unpaid = np.maximum(owed - out.paid.get(("interest", t), 0.0), 0.0)
        np.testing.assert_allclose(after.interest_shortfall[t], np.where(final, 0.0, unpaid))
        np.testing.assert_allclose(out.interest_unpaid[t], np.where(final, unpaid, 0.0))
    assert np.all(after.reserve[final] == 0.0)


def _check_seniority(before: DealBook, after: DealBook, out: PeriodPayments) -> None:
    """Standard lists: no class is paid before every more senior class is current and repaid."""
    final_unpaid = {t: out.interest_unpaid[t] + after.interest_shortfall[t] for t in TRANCHES}
    left = {t: out.principal_written_off[t] + after.balance[t] for t in TRANCHES}
    mezz_paid = out.paid[("interest", "mezz")] + out.paid[("principal", "mezz")]
    got = mezz_paid > TOL
    assert np.all(final_unpaid["senior"][got] <= 1e-9) and np.all(left["senior"][got] <= 1e-9)
    got = out.residual > TOL
    for t in ("senior", "mezz"):
        assert np.all(final_unpaid[t][got] <= 1e-9) and np.all(left[t][got] <= 1e-9)
    for key in [("tax", ""), ("capped_cost", "")] + [("fee", f) for f in FEE_NAMES]:
        np.testing.assert_allclose(out.paid[key][got], out.due[key][got])


# --- construction and validation ---------------------------------------------------------------


def test_lists_follow_the_documented_order():
    assert [s.key for s in SEQUENTIAL] == [
        ("tax", ""),
        ("fee", "trustee"),
        ("fee", "servicer_base"),
        ("fee", "guarantee_fee"),
        ("capped_cost", ""),
        ("interest", "senior"),
        ("principal", "senior"),
        ("interest", "mezz"),
        ("principal", "mezz"),
        ("reserve_topup", ""),
        ("fee", "servicer_incentive"),
        ("residual", "sub"),
    ]
    assert [s for s in SEQUENTIAL if s.kind != "reserve_topup"] == list(ACCELERATED)


@pytest.mark.parametrize(
    ("kind", "target"),
    [("interest", "junior"), ("residual", ""), ("fee", ""), ("tax", "x"), ("bribe", "")],
)
def test_step_rejects_a_bad_kind_or_target(kind, target):
    with pytest.raises(ValueError, match="step"):
        Step(kind, target)


def test_book_appends_deals_one_at_a_time():
    book = new_deal_book()
    assert book.n == 0
    assert book.append(senior=10.0, sub=2.0, senior_coupon=0.04, reserve=0.3) == 0
    assert book.append(senior=5.0, mezz=1.0, mezz_coupon=0.07) == 1
    assert book.n == 2 and book.reserve_target.tolist() == [0.3, 0.0]
    assert book.balance["mezz"].tolist() == [0.0, 1.0] and not book.accelerated.any()
    assert new_deal_book(3).n == 3
    with pytest.raises(ValueError, match="senior"):
        book.append(senior=-1.0)


def test_bad_inputs_are_rejected_before_the_book_changes():
    book = _one_deal(senior=10.0, senior_coupon=0.04, reserve=1.0)
    state = copy.deepcopy(book)
    bad = [
        _inputs(collections=-1.0),
        PeriodInputs(collections=np.ones(2)),
        _inputs(collections=1.0, fees_due={"trustee_typo": np.ones(1)}),
        _inputs(collections=1.0, final=np.array([1])),
    ]
    for inputs in bad:
        with pytest.raises(ValueError, match="PeriodInputs"):
            run_waterfall(book, inputs)
    assert book.balance["senior"][0] == state.balance["senior"][0] and book.reserve[0] == 1.0


# --- crafted cases -----------------------------------------------------------------------------


def test_junior_steps_get_nothing_while_a_senior_one_is_short():
    book = _one_deal(senior=100.0, senior_coupon=0.04, sub=5.0)
    fees = {"trustee": 0.4, "servicer_base": 0.5, "guarantee_fee": 0.1, "servicer_incentive": 1.0}
    out = run_waterfall(
        book,
        _inputs(collections=1.0, taxes_due=0.4, fees_due=fees, disposal_costs=1.0, cost_cap=0.5),
    )
    paid = {key: float(v[0]) for key, v in out.paid.items()}
    assert paid[("tax", "")] == 0.4 and paid[("fee", "trustee")] == 0.4
    assert paid[("fee", "servicer_base")] == pytest.approx(0.2)
    for key, amount in paid.items():
        if key not in [("tax", ""), ("fee", "trustee"), ("fee", "servicer_base")]:
            assert amount == 0.0, key
    assert book.interest_shortfall["senior"][0] == pytest.approx(1.0)


def test_disposal_costs_are_paid_only_up_to_the_cap():
    book = _one_deal(senior=10.0)
    out = run_waterfall(book, _inputs(collections=5.0, disposal_costs=3.0, cost_cap=1.0))
    assert out.paid[("capped_cost", "")][0] == 1.0
    assert out.paid[("principal", "senior")][0] == 4.0


def test_senior_shortfall_draws_reserve_then_guarantee_and_carries_the_rest():
    book = _one_deal(senior=100.0, senior_coupon=0.04, mezz=20.0, mezz_coupon=0.08, reserve=0.5)
    out = run_waterfall(book, _inputs(collections=0.3, guarantee_available=0.15))
    assert out.reserve_drawn[0] == 0.5 and out.guarantee_drawn[0] == 0.15
    assert out.paid[("interest", "senior")][0] == pytest.approx(0.95)
    assert book.interest_shortfall["senior"][0] == pytest.approx(0.05)
    assert out.paid[("interest", "mezz")][0] == 0.0
    assert book.interest_shortfall["mezz"][0] == pytest.approx(0.4)

    # Next quarter the carried interest is owed again, not compounded; the mezzanine is never
    # supported even with guarantee capacity to spare.
    out = run_waterfall(book, _inputs(collections=0.0, guarantee_available=10.0))
    assert out.due[("interest", "senior")][0] == pytest.approx(1.05)
    assert out.guarantee_drawn[0] == pytest.approx(1.05) and out.reserve_drawn[0] == 0.0
    assert book.interest_shortfall["senior"][0] == 0.0
    assert book.interest_shortfall["mezz"][0] == pytest.approx(0.8)
    assert out.paid[("principal", "senior")][0] == 0.0


def test_trigger_switches_to_accelerated_and_stays():
    book = new_deal_book()
    for _ in range(2):
        book.append(
            senior=10.0,
            senior_coupon=0.04,
            mezz=5.0,
            mezz_coupon=0.08,
            sub=2.0,
            reserve=0.2,
            reserve_target=0.5,
        )
    book.expected_cumulative[:] = [10.0, 0.0]  # deal 0 falls behind its plan, deal 1 has none
    out = run_waterfall(book, _inputs(2, collections=5.0, trigger_ratio=0.8))
    assert book.accelerated.tolist() == [True, False]
    assert out.paid[("principal", "senior")][0] == pytest.approx(4.9)
    assert out.paid[("interest", "mezz")][0] == 0.0

    book.expected_cumulative[:] = [20.0, 0.0]
    out = run_waterfall(book, _inputs(2, collections=100.0, trigger_ratio=0.8))
    assert book.accelerated.tolist() == [True, False]  # back on plan, still accelerated
    assert book.balance["senior"].tolist() == [0.0, 0.0]
    assert out.paid[("interest", "mezz")][0] == pytest.approx(0.1 + 0.1)
    assert out.reserve_added.tolist() == [0.0, pytest.approx(0.3)]
    assert out.residual[0] == pytest.approx(out.residual[1] + 0.3)


def test_accelerated_deal_pays_no_mezz_interest_before_senior_principal():
    book = _one_deal(senior=10.0, senior_coupon=0.04, mezz=5.0, mezz_coupon=0.08)
    book.accelerated[:] = True
    out = run_waterfall(book, _inputs(collections=9.0))
    assert out.paid[("principal", "senior")][0] == pytest.approx(8.9)
    assert out.paid[("interest", "mezz")][0] == 0.0


def test_final_maturity_releases_the_reserve_and_writes_off_what_is_unpaid():
    book = new_deal_book()
    for _ in range(2):
        book.append(senior=10.0, senior_coupon=0.04, mezz=5.0, mezz_coupon=0.08, sub=3.0)
    book.reserve[:] = 0.5
    inputs = _inputs(2, collections=np.array([6.0, 30.0]), guarantee_available=2.0, final=True)
    out = run_waterfall(book, inputs)

    # Deal 0: 6.5 of cash pays senior interest 0.1 and principal 6.4, the guarantee 2 more.
    assert out.reserve_drawn.tolist() == [0.5, 0.5]
    assert out.guarantee_drawn.tolist() == [2.0, 0.0]
    assert out.paid[("principal", "senior")][0] == pytest.approx(8.4)
    assert out.principal_written_off["senior"][0] == pytest.approx(1.6)
    assert out.principal_written_off["mezz"][0] == 5.0
    assert out.principal_written_off["sub"][0] == 3.0
    assert out.interest_unpaid["mezz"][0] == pytest.approx(0.1)
    # Deal 1: all repaid; the released reserve flows down to the sub, uncapped by its notional.
    assert out.residual[1] == pytest.approx(30.5 - 10.1 - 5.1)
    assert all(out.principal_written_off[t][1] == 0.0 for t in TRANCHES)
    for t in TRANCHES:
        assert book.balance[t].tolist() == [0.0, 0.0]
        assert book.interest_shortfall[t].tolist() == [0.0, 0.0]
    assert book.reserve.tolist() == [0.0, 0.0]


def test_priority_is_data_a_regime_can_reorder():
    """A list paying mezzanine interest before senior principal pays it while the senior is out."""
    interest_first = list(SEQUENTIAL)
    interest_first.remove(Step("interest", "mezz"))
    interest_first.insert(
        interest_first.index(Step("principal", "senior")), Step("interest", "mezz")
    )
    book = _one_deal(senior=10.0, senior_coupon=0.04, mezz=5.0, mezz_coupon=0.08)
    out = run_waterfall(book, _inputs(collections=3.0), sequential=tuple(interest_first))
    assert out.paid[("interest", "mezz")][0] == pytest.approx(0.1)
    assert book.balance["senior"][0] == pytest.approx(10.0 - 2.8)


# --- properties over random structures ---------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 20),
    quarters=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    trigger_ratio=st.sampled_from([0.0, 0.5, 0.9, 1.2]),
)
def test_invariants_and_no_cross_deal_leakage(n, quarters, seed, trigger_ratio):
    rng = np.random.default_rng(seed)
    deals = _random_deals(rng, n)
    book = _book_of(deals)
    alone = [_book_of([deal]) for deal in deals]
    for _ in range(quarters):
        step_expected = rng.uniform(0.0, 15.0, n)
        book.expected_cumulative += step_expected
        for i, single in enumerate(alone):
            single.expected_cumulative += step_expected[i]
        quarter = _random_quarter(rng, n, trigger_ratio)
        inputs = PeriodInputs(**quarter)
        before = copy.deepcopy(book)
        out = run_waterfall(book, inputs)
        _check_period(before, book, inputs, out)
        _check_seniority(before, book, out)
        for i, single in enumerate(alone):
            single_out = run_waterfall(single, _slice(quarter, i))
            for key, paid in single_out.paid.items():
                assert paid[0] == out.paid[key][i], key
            for name in ("reserve_drawn", "reserve_added", "guarantee_drawn", "residual"):
                assert getattr(single_out, name)[0] == getattr(out, name)[i], name
            for t in TRANCHES:
                assert single.balance[t][0] == book.balance[t][i]
                assert single.interest_shortfall[t][0] == book.interest_shortfall[t][i]
                assert single_out.principal_written_off[t][0] == out.principal_written_off[t][i]
            assert single.reserve[0] == book.reserve[i]
            assert single.accelerated[0] == book.accelerated[i]


@settings(max_examples=40, deadline=None)
@given(
    order=st.permutations(SEQUENTIAL[:-1]),
    seed=st.integers(0, 2**32 - 1),
    trigger_ratio=st.sampled_from([0.0, 0.9]),
)
def test_any_priority_list_conserves_cash_and_respects_its_own_order(order, seed, trigger_ratio):
    steps = (*order, SEQUENTIAL[-1])
    rng = np.random.default_rng(seed)
    book = _book_of(_random_deals(rng, 8))
    for _ in range(3):
        book.expected_cumulative += rng.uniform(0.0, 15.0, 8)
        inputs = PeriodInputs(**_random_quarter(rng, 8, trigger_ratio))
        before = copy.deepcopy(book)
        out = run_waterfall(book, inputs, sequential=steps, accelerated=steps)
        _check_period(before, book, inputs, out, steps, steps)


# --- realised yield ----------------------------------------------------------------------------


def test_realised_yield_of_known_cash_flows():
    assert realised_yield(np.array([0, 0, 0, 0, 110.0]), 100.0) == pytest.approx(0.1, abs=1e-12)
    par_bond = np.array([0.0] + [1.0] * 7 + [101.0])
    assert realised_yield(par_bond, 100.0) == pytest.approx(1.01**4 - 1.0, abs=1e-12)
    assert realised_yield(np.zeros(5), 100.0) == -1.0
    with pytest.raises(ValueError, match="price"):
        realised_yield(par_bond, 0.0)
    with pytest.raises(ValueError, match="cashflows"):
        realised_yield(-par_bond, 100.0)


@pytest.mark.parametrize("seed", range(8))
def test_realised_yield_of_simulated_senior_cash_flows_matches_numpy_financial(seed):
    rng = np.random.default_rng(seed)
    n, horizon = 6, 16
    deals = _random_deals(rng, n)
    for deal in deals:
        deal["senior"] = rng.uniform(5.0, 50.0)
    book = _book_of(deals)
    face = book.balance["senior"].copy()
    flows = np.zeros((horizon + 1, n))
    for q in range(1, horizon + 1):
        quarter = _random_quarter(rng, n, 0.0)
        quarter["collections"] = rng.uniform(0.0, 0.15, n) * face
        quarter["final"] = np.full(n, q == horizon)
        flows[q] = run_waterfall(book, PeriodInputs(**quarter)).tranche_cash("senior")
    for i in range(n):
        price = face[i] * rng.uniform(0.8, 1.05)
        quarterly = npf.irr(np.concatenate([[-price], flows[1:, i]]))
        assert realised_yield(flows[:, i], price) == pytest.approx(
            (1.0 + quarterly) ** 4 - 1.0, abs=1e-8
        )
