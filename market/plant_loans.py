"""Power plants' bank loans in the common loan book: which slots they are, and their settlement.

Plant loans are ordinary loans of the banks (segment ``power_plant``), served, worked out and sold
like any other; ``PlantLoans`` remembers which slots belong to which plant and turns the loan book's
quarter into each plant's debt service, defaults and recoveries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nplsim.market.loans import LoanBook, Status, recovery_timing_factor

# A Vasicek threshold no draw can fall below: plant loans default when their plant cannot pay,
# not by the loan book's one-factor draw.
NO_DEFAULT_THRESHOLD = -40.0
# Largest opening loan a plant takes over, as a share of the median plant's target debt: a plant's
# debt is many loans, so no single one carries it past its debt ratio (assumption).
LARGEST_OPENING_LOAN = 0.25


def owed(loans: LoanBook, idx: np.ndarray) -> np.ndarray:
    """What the borrowers of slots ``idx`` still owe: principal on the holder's books, or a claim
    the holder has written off and still pursues."""
    return loans.principal[idx] + loans.written_off_claim[idx]


@dataclass
class Settlement:
    """A quarter's changes to plant loans, per plant (CNY bn)."""

    interest: np.ndarray
    principal: np.ndarray
    closed_principal: np.ndarray  # defaulted loans resolved, written off or charged off
    recovery: np.ndarray  # what creditors recovered on them from the plant's assets


class PlantLoans:
    """Which loan-book slots are power plants' loans, and their state at the last settlement.

    The loan book serves every performing loan in phase 3 and works out NPLs whoever holds them;
    at the plant's turn (phase 9) the plant pays what its performing loans were charged, and
    defaulted loans that have been closed leave its balance sheet against the collateral the
    creditors realised. A freed slot is re-lent by the bank, so closures are recognised from the
    state snapshot taken at the end of the previous settlement.
    """

    def __init__(self, n_slots: int):
        self.plant = np.full(n_slots, -1, dtype=np.int32)
        self.principal = np.zeros(n_slots)
        self.rate = np.zeros(n_slots)
        self.remaining_q = np.zeros(n_slots, dtype=np.int16)
        self.status = np.full(n_slots, Status.RESOLVED, dtype=np.int8)
        self.default_q = np.full(n_slots, -1, dtype=np.int16)
        self.holder = np.zeros(n_slots, dtype=np.intp)
        self.base_recovery = np.zeros(n_slots)
        self._mapped: np.ndarray | None = None

    @property
    def mapped(self) -> np.ndarray:
        """Slots that hold a plant's loan (kept until a slot is assigned or released)."""
        if self._mapped is None:
            self._mapped = np.flatnonzero(self.plant >= 0)
        return self._mapped

    def assign(self, slots: np.ndarray, plants: np.ndarray, loans: LoanBook) -> None:
        """Make ``slots`` the loans of ``plants`` (they default only when the plant does)."""
        self.plant[slots] = plants
        self._mapped = None
        loans.threshold[slots] = NO_DEFAULT_THRESHOLD

    def snapshot(self, loans: LoanBook) -> None:
        """Remember the plant slots' state for the next settlement."""
        idx = self.mapped
        for name in ("rate", "remaining_q", "status", "default_q", "holder"):
            getattr(self, name)[idx] = getattr(loans, name)[idx]
        self.principal[idx] = owed(loans, idx)
        npl = idx[loans.status[idx] == Status.NPL]
        self.base_recovery[idx] = 0.0
        self.base_recovery[npl] = loans.base_recovery(npl)

    def settle(self, loans: LoanBook, quarter: int, end_age_by_account: np.ndarray,
               n_plants: int) -> Settlement:  # fmt: skip
        """What each plant owes for the loan book's quarter, and which of its loans are gone.

        Performing loans paid interest and an instalment in phase 3; a loan that matured is
        repaid. A defaulted loan is closed once the loan book resolved it (recovering a share of
        its base recovery that falls with its age, facts: recovery-timing), closed it
        unrecovered at its holder's end age (``end_age_by_account``), or a vehicle wrote it off
        at its legal final maturity. A bank's write-off of a claim it still pursues does not
        close it: the plant still owes it.
        """
        idx = self.mapped
        owner = self.plant[idx]
        was_performing = self.status[idx] == Status.PERFORMING
        interest = np.where(was_performing, self.principal[idx] * self.rate[idx] / 4, 0.0)
        instalment = np.where(
            was_performing, self.principal[idx] / np.maximum(self.remaining_q[idx], 1), 0.0
        )
        matured = was_performing & (self.remaining_q[idx] <= 1)
        was_npl = self.status[idx] == Status.NPL
        still_npl = (loans.status[idx] == Status.NPL) & (
            loans.default_q[idx] == self.default_q[idx]
        )
        closed = was_npl & ~still_npl
        age = quarter - self.default_q[idx].astype(int)
        end_age = np.asarray(end_age_by_account)[self.holder[idx]]
        charged_off = (loans.status[idx] == Status.WRITTEN_OFF) | (age >= end_age)
        recovered = closed & ~charged_off
        recovery = np.where(
            recovered, self.base_recovery[idx] * recovery_timing_factor(np.maximum(age, 0)), 0.0
        )
        closed_principal = np.where(closed, self.principal[idx], 0.0)
        self.plant[idx[matured | closed]] = -1
        self._mapped = None

        def by_plant(values: np.ndarray) -> np.ndarray:
            return np.bincount(owner, weights=values, minlength=n_plants)

        return Settlement(
            interest=by_plant(interest),
            principal=by_plant(instalment),
            closed_principal=by_plant(closed_principal),
            recovery=by_plant(np.minimum(recovery, closed_principal)),
        )

    def debt_by_plant(self, loans: LoanBook, n_plants: int) -> np.ndarray:
        """Outstanding principal of each plant's performing and defaulted loans (a claim its bank
        has written off but still pursues included)."""
        idx = self.mapped
        return np.bincount(self.plant[idx], weights=owed(loans, idx), minlength=n_plants)

    def npl_by_plant(self, loans: LoanBook, n_plants: int) -> np.ndarray:
        """Principal of each plant's defaulted loans still open."""
        idx = self.mapped
        npl = np.where(loans.status[idx] == Status.NPL, owed(loans, idx), 0.0)
        return np.bincount(self.plant[idx], weights=npl, minlength=n_plants)

    def scheduled_service(self, loans: LoanBook, n_plants: int) -> np.ndarray:
        """Interest and instalment each plant's performing loans will be charged next quarter."""
        idx = self.mapped
        return np.bincount(self.plant[idx], weights=_due(loans, idx), minlength=n_plants)

    def scheduled_interest(self, loans: LoanBook, n_plants: int) -> np.ndarray:
        """The interest part of ``scheduled_service``: next quarter's interest on each plant's
        performing loans."""
        idx = self.mapped
        interest = np.where(loans.status[idx] == Status.PERFORMING,
                            loans.principal[idx] * loans.rate[idx] / 4, 0.0)  # fmt: skip
        return np.bincount(self.plant[idx], weights=interest, minlength=n_plants)

    def scheduled_service_of(self, loans: LoanBook, plant: int) -> float:
        """Interest and instalment one plant's performing loans will be charged next quarter."""
        idx = self.mapped
        return float(_due(loans, idx[self.plant[idx] == plant]).sum())

    def default_plant(self, loans: LoanBook, plant: int, quarter: int,
                      quality: float) -> np.ndarray:  # fmt: skip
        """Cross-default: every performing loan of ``plant`` becomes non-performing now; returns
        the slots that did."""
        idx = self.mapped
        slots = idx[(self.plant[idx] == plant) & (loans.status[idx] == Status.PERFORMING)]
        loans.mark_npl(slots, quarter)
        loans.quality[slots] = quality
        return slots

    def largest_loan(self, loans: LoanBook, plant: int, bank_account: int) -> int:
        """The plant's largest performing loan held by ``bank_account`` (−1 if none)."""
        idx = self.mapped
        mine = idx[
            (self.plant[idx] == plant)
            & (loans.status[idx] == Status.PERFORMING)
            & (loans.holder[idx] == bank_account)
        ]
        return int(mine[np.argmax(loans.principal[mine])]) if mine.size else -1

    @staticmethod
    def top_up(loans: LoanBook, slot: int, amount: float, rate: float, tenor_q: int) -> None:
        """Borrowing new to repay old on one performing loan: ``amount`` of new money joins its
        principal (and its collateral in proportion), the old principal keeps its rate and the
        new money carries ``rate``, and the loan runs ``tenor_q`` quarters again."""
        old = float(loans.principal[slot])
        new = old + amount
        loans.rate[slot] = (old * float(loans.rate[slot]) + amount * rate) / new
        loans.collateral[slot] *= new / old
        loans.principal[slot] = new
        loans.carrying[slot] += amount
        loans.remaining_q[slot] = tenor_q

    def fresh_slot(self, loans: LoanBook, bank_account: int) -> int:
        """A slot the bank lent to an ordinary borrower this quarter (−1 if none): the plant's
        loan takes its place in the bank's new lending."""
        maturity = loans.segments.maturity_q[loans.segment].astype(int)
        fresh = (
            (loans.status == Status.PERFORMING)
            & (loans.holder == bank_account)
            & (loans.originator == bank_account)
            & (loans.remaining_q == maturity)
            & (self.plant < 0)
        )
        hits = np.flatnonzero(fresh)
        return int(hits[0]) if hits.size else -1


def _due(loans: LoanBook, idx: np.ndarray) -> np.ndarray:
    """Next quarter's interest and equal instalment of the loans ``idx`` (0 unless performing)."""
    principal = loans.principal[idx]
    due = principal * loans.rate[idx] / 4 + principal / np.maximum(loans.remaining_q[idx], 1)
    return np.where(loans.status[idx] == Status.PERFORMING, due, 0.0)


def enough_loans(principal: np.ndarray, chosen: np.ndarray, spare: np.ndarray,
                 total: float) -> np.ndarray:  # fmt: skip
    """``chosen`` loans, then as many of the smallest ``spare`` loans as their principal needs to
    reach ``total``: with few loan slots a segment's loans are few and large, and the small ones
    alone may not carry the plants' opening debt, which must not depend on the number of slots.

    Args:
        principal: principal of every loan slot.
        chosen: slots handed out first, in order.
        spare: slots that may be added, smallest first.
        total: the principal the slots must reach (CNY bn).
    """
    short = total - float(principal[chosen].sum())
    if short <= 0 or spare.size == 0:
        return chosen
    spare = spare[np.argsort(principal[spare], kind="stable")]
    need = int(np.searchsorted(np.cumsum(principal[spare]), short)) + 1
    return np.concatenate([chosen, spare[:need]])


def assign_by_target(principal: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Hand consecutive loans to plants until each reaches its target debt; −1 for loans left.

    Args:
        principal: principal of the candidate loans, in the order they are handed out.
        targets: each plant's target debt (CNY bn).

    Returns:
        The plant index of each candidate loan, or −1.
    """
    edges = np.cumsum(targets)
    middle = np.cumsum(principal) - np.asarray(principal) / 2
    owner = np.searchsorted(edges, middle, side="right")
    return np.where(owner < len(targets), owner, -1)
