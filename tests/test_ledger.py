"""Tests of the ledger: conservation of money, validation, bulk transfers and the flow record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nplsim.market.ledger import OUTSIDE_ACCOUNTS, Ledger


class Clock:
    """A settable quarter for the ledger to read, as the model's step count is."""

    def __init__(self) -> None:
        self.quarter = 0

    def __call__(self) -> int:
        return self.quarter


def _ledger(n_agents: int = 3) -> tuple[Ledger, list[int]]:
    ledger = Ledger(Clock())
    return ledger, [ledger.open_account(f"bank_{i}", "bank") for i in range(n_agents)]


def test_outside_accounts_open_first_and_agents_follow():
    ledger, agents = _ledger(2)
    assert list(ledger.outside) == list(OUTSIDE_ACCOUNTS)
    assert list(ledger.outside.values()) == list(range(len(OUTSIDE_ACCOUNTS)))
    assert agents == [len(OUTSIDE_ACCOUNTS), len(OUTSIDE_ACCOUNTS) + 1]
    assert ledger.n_accounts == len(OUTSIDE_ACCOUNTS) + 2
    assert ledger.kinds[agents[0]] == "bank" and ledger.names[agents[1]] == "bank_1"
    assert ledger.total() == 0.0 and ledger.gross() == 0.0


N_ACCOUNTS = len(OUTSIDE_ACCOUNTS) + 4
transfers = st.lists(
    st.tuples(
        st.integers(0, N_ACCOUNTS - 1),
        st.integers(0, N_ACCOUNTS - 1),
        st.floats(0.0, 1e4, allow_nan=False, allow_infinity=False),
        st.integers(0, 5),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(transfers)
def test_random_transfers_conserve_money_and_match_net_flows(moves):
    ledger, _ = _ledger(4)
    expected = np.zeros(ledger.n_accounts)
    for payer, payee, amount, quarter in moves:
        ledger.clock.quarter = quarter
        ledger.transfer(payer, payee, amount, "kind")
        expected[payer] -= amount
        expected[payee] += amount
    assert abs(ledger.total()) <= 1e-9 * max(1.0, ledger.gross())
    np.testing.assert_allclose(ledger.balances, expected, rtol=1e-12, atol=1e-9)
    flows = ledger.flows()
    assert flows.amount_cny_bn.sum() == pytest.approx(sum(m[2] for m in moves))
    assert (flows.amount_cny_bn > 0).all()


@pytest.mark.parametrize("amount", [-1e-12, -5.0, float("nan")])
def test_negative_or_nan_amount_raises(amount):
    ledger, (a, b, _) = _ledger()
    with pytest.raises(ValueError, match="must be >= 0"):
        ledger.transfer(a, b, amount, "bad")
    assert ledger.gross() == 0.0 and ledger.flows().empty


def test_zero_amount_records_nothing():
    ledger, (a, b, _) = _ledger()
    ledger.transfer(a, b, 0.0, "nothing")
    assert ledger.gross() == 0.0
    assert ledger.flows().empty
    assert ledger.flow_total("nothing") == 0


def test_transfer_moves_cash_between_two_accounts():
    ledger, (a, b, c) = _ledger()
    ledger.transfer(a, b, 2.5, "x")
    assert ledger.balance(a) == -2.5 and ledger.balance(b) == 2.5 and ledger.balance(c) == 0.0


def test_pay_each_and_collect_each():
    ledger, agents = _ledger(3)
    borrowers = ledger.outside["borrowers"]
    providers = ledger.outside["service_providers"]
    amounts = np.zeros(ledger.n_accounts)
    amounts[agents] = [1.0, 0.0, 3.0]
    ledger.pay_each(borrowers, amounts, "loan_interest")
    assert ledger.balance(borrowers) == -4.0
    np.testing.assert_allclose(ledger.balances[agents], [1.0, 0.0, 3.0])
    costs = np.zeros(ledger.n_accounts)
    costs[agents] = [0.5, 0.0, 1.0]
    ledger.collect_each(providers, costs, "workout_cost")
    assert ledger.balance(providers) == 1.5
    np.testing.assert_allclose(ledger.balances[agents], [0.5, 0.0, 2.0])
    flows = ledger.flows()
    assert len(flows) == 4  # zero entries are skipped
    assert set(flows[flows.kind == "workout_cost"].payee) == {"service_providers"}
    assert ledger.total() == pytest.approx(0.0)
    with pytest.raises(ValueError):
        ledger.pay_each(borrowers, -amounts, "bad")


def test_flows_tidy_frame_aggregates_by_quarter_kind_payer_payee():
    ledger, (a, b, _) = _ledger()
    ledger.transfer(a, b, 1.0, "fee")
    ledger.transfer(a, b, 2.0, "fee")  # same key: one row
    ledger.transfer(b, a, 0.5, "fee")  # other direction: another row
    ledger.transfer(a, b, 4.0, "coupon")
    ledger.clock.quarter = 1
    ledger.transfer(a, b, 8.0, "fee")
    flows = ledger.flows()
    assert list(flows.columns) == ["quarter", "kind", "payer", "payee", "amount_cny_bn"]
    assert len(flows) == 4
    expected = pd.DataFrame(
        [
            (0, "fee", "bank_0", "bank_1", 3.0),
            (0, "fee", "bank_1", "bank_0", 0.5),
            (0, "coupon", "bank_0", "bank_1", 4.0),
            (1, "fee", "bank_0", "bank_1", 8.0),
        ],
        columns=flows.columns,
    )
    key = ["quarter", "kind", "payer"]
    pd.testing.assert_frame_equal(
        flows.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
    )
    assert ledger.flow_total("fee", 0) == 3.5
    assert ledger.flow_total("fee", 1) == 8.0
    assert ledger.flow_total("fee") == 11.5
    assert ledger.flow_total("coupon", 1) == 0
    assert ledger.flow_total("missing") == 0
