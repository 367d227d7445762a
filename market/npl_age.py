"""How long NPLs stay on the banks' books: the age of the stock and the age at which NPLs leave.

The institutions that take NPLs off a bank's books — the workout (resolution and write-off), the
NPL auctions, the true sale to an SPV and the policy carve-out — report the slots that leave just
before they do; ages are quarters since default, weighted by face. Plain numpy.
"""

from __future__ import annotations

import numpy as np

from nplsim.market.loans import LoanBook


class NplExits:
    """The face and face-weighted age of bank NPLs that left the banks this quarter."""

    def __init__(self, loans: LoanBook, clock, bank_accounts: np.ndarray):
        self.loans = loans
        self.clock = clock
        self.bank_accounts = np.asarray(bank_accounts)
        self.face = 0.0
        self.face_age = 0.0

    def reset(self) -> None:
        """A new quarter: nothing has left yet."""
        self.face = 0.0
        self.face_age = 0.0

    def record(self, slots: np.ndarray, face: np.ndarray | None = None) -> None:
        """NPLs ``slots`` are about to leave their holder; those a bank holds are counted, with
        ``face`` where the book has already cleared their principal (a resolution)."""
        loans = self.loans
        slots = np.asarray(slots)
        face = loans.principal[slots] if face is None else np.asarray(face)
        banks = np.isin(loans.holder[slots], self.bank_accounts)
        age = self.clock() - loans.default_q[slots[banks]]
        self.face += float(face[banks].sum())
        self.face_age += float((face[banks] * age).sum())

    @property
    def exit_age(self) -> float:
        """Face-weighted mean age (quarters) of the NPLs that left the banks (NaN if none)."""
        return self.face_age / self.face if self.face > 0 else float("nan")

    def stock_age(self) -> float:
        """Face-weighted mean age (quarters) of the NPLs the banks hold (NaN if none)."""
        loans = self.loans
        idx = loans.npl_index()
        idx = idx[np.isin(loans.holder[idx], self.bank_accounts)]
        face = loans.principal[idx]
        if face.sum() <= 0:
            return float("nan")
        return float(np.average(self.clock() - loans.default_q[idx], weights=face))
