"""Per-account loan aggregates: performing principal, NPL principal and NPL carrying value.

Agents read their loan positions from these arrays (indexed by ledger account) instead of summing
the loan book. They are recounted from the book when a phase rewrites many loans and kept current
incrementally after each transfer in between; the invariant checks compare them with a recount.
"""

from __future__ import annotations

import numpy as np

from nplsim.market.loans import LoanBook

KEYS = ("performing", "npl", "npl_carrying")


class HolderTotals:
    """Arrays over ledger accounts, CNY bn: ``performing``, ``npl`` and ``npl_carrying``."""

    def __init__(self) -> None:
        self.performing = np.zeros(0)
        self.npl = np.zeros(0)
        self.npl_carrying = np.zeros(0)

    def __getitem__(self, key: str) -> np.ndarray:
        return getattr(self, key)

    def recount(self, loans: LoanBook, n_accounts: int) -> None:
        """Recompute every aggregate from the loan book."""
        fresh = loans.holder_totals(n_accounts)
        for key in KEYS:
            setattr(self, key, fresh[key])

    def add_account(self) -> None:
        """A new ledger account (a vehicle) starts with nothing."""
        for key in KEYS:
            setattr(self, key, np.append(getattr(self, key), 0))

    def move_npls(
        self, seller: int, buyer: int, face: float, carrying: float, price: float
    ) -> None:
        """NPLs of ``face`` carried at ``carrying`` changed hands; the buyer carries them at
        ``price``."""
        self.npl[seller] -= face
        self.npl[buyer] += face
        self.npl_carrying[seller] -= carrying
        self.npl_carrying[buyer] += price

    def stale(self, loans: LoanBook, n_accounts: int) -> list[str]:
        """The aggregates that differ from a recount of the loan book."""
        fresh = loans.holder_totals(n_accounts)
        return [
            key
            for key in KEYS
            if not np.allclose(fresh[key], getattr(self, key), rtol=1e-9, atol=1e-6)
        ]
