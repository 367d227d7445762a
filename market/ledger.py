"""The ledger: every cash movement is a transfer between two named accounts.

Agents (banks, AMCs, SPVs, ...) and the outside world (borrowers, depositors, government,
central bank, service providers, owners, the capital and money markets) each have one cash account.
Transfers only move money, so the sum of all balances stays zero: the system is stock-flow
consistent by construction, and a test can check it. Transfers are recorded per quarter,
aggregated by (kind, payer, payee).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
import pandas as pd

OUTSIDE_ACCOUNTS: tuple[str, ...] = (
    "borrowers",
    "depositors",
    "government",
    "central_bank",
    "service_providers",
    "owners",
    "capital_market",
    "money_market",
)


class Ledger:
    """Cash accounts of every agent and of the outside world, moved only by transfers.

    Outside accounts may run negative (they are the rest of the world); agent accounts are checked
    for non-negativity by the invariant tests at the end of each quarter.
    """

    def __init__(self, clock: Callable[[], int] = lambda: 0) -> None:
        """``clock`` tells the quarter in which transfers are recorded (the model's step count)."""
        self.names: list[str] = []
        self.kinds: list[str] = []
        self.balances = np.zeros(0)
        self.clock = clock
        self._flows: dict[tuple[int, str, int, int], float] = defaultdict(float)
        self.outside = {name: self.open_account(name, "outside") for name in OUTSIDE_ACCOUNTS}

    def open_account(self, name: str, kind: str) -> int:
        """Open a zero-balance account and return its index."""
        self.names.append(name)
        self.kinds.append(kind)
        self.balances = np.append(self.balances, 0.0)
        return len(self.names) - 1

    @property
    def n_accounts(self) -> int:
        """Number of accounts opened so far."""
        return len(self.names)

    def balance(self, account: int) -> float:
        """Cash balance of one account."""
        return float(self.balances[account])

    def transfer(self, payer: int, payee: int, amount: float, kind: str) -> None:
        """Move ``amount`` (>= 0) of cash from ``payer`` to ``payee``."""
        if not amount >= 0.0:
            raise ValueError(f"transfer {kind!r}: amount must be >= 0, got {amount}")
        if amount == 0.0:
            return
        self.balances[payer] -= amount
        self.balances[payee] += amount
        self._flows[(self.clock(), kind, payer, payee)] += amount

    def pay_each(self, payer: int, amounts: np.ndarray, kind: str) -> None:
        """One payer pays every account ``i`` the amount ``amounts[i]`` (array over accounts)."""
        for payee in np.flatnonzero(amounts):
            self.transfer(payer, int(payee), float(amounts[payee]), kind)

    def collect_each(self, payee: int, amounts: np.ndarray, kind: str) -> None:
        """Every account ``i`` pays ``amounts[i]`` to one payee (array over accounts)."""
        for payer in np.flatnonzero(amounts):
            self.transfer(int(payer), payee, float(amounts[payer]), kind)

    def total(self) -> float:
        """Sum of all balances; zero (to rounding) when money is conserved."""
        return float(self.balances.sum())

    def gross(self) -> float:
        """Sum of absolute balances, the scale against which conservation is judged."""
        return float(np.abs(self.balances).sum())

    def flows(self) -> pd.DataFrame:
        """All transfers so far, one row per (quarter, kind, payer, payee), tidy."""
        rows = [
            (q, kind, self.names[payer], self.names[payee], amount)
            for (q, kind, payer, payee), amount in self._flows.items()
        ]
        return pd.DataFrame(rows, columns=["quarter", "kind", "payer", "payee", "amount_cny_bn"])

    def flow_total(self, kind: str, quarter: int | None = None) -> float:
        """Total of one kind of transfer, in one quarter or overall."""
        return sum(
            amount
            for (q, k, _, _), amount in self._flows.items()
            if k == kind and (quarter is None or q == quarter)
        )
