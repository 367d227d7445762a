"""SpecialPurposeVehicle: the trust (or company) that buys a pool of NPLs and issues securities.

Created per deal at the cut-off, when the pool's loans change holder in the loan book (a true sale)
and the regime's transfer frictions apply. Collections from the cut-off belong to the vehicle. At
closing the deal desk structures and sells the tranches and the vehicle goes live with its terms;
afterwards it pays its collections each quarter through the declarative waterfall
(``nplsim.market.waterfall``) to the holders of its tranches, the servicer (agency relationship),
the trustee, the guarantor and the tax office. If its originator becomes distressed and bankruptcy
remoteness fails, a court freezes its collections for a while (recharacterisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mesa
import numpy as np

from nplsim.agents.world import World
from nplsim.market.loans import Status
from nplsim.market.waterfall import TRANCHES

PENDING, LIVE, CLOSED = "pending", "live", "closed"
# Assumption (facts: civil-code-546): until its debtors are bound by notice of the transfer, the
# vehicle cannot sue them in its own name; only this share of the servicer's workout (voluntary
# payments and settlements) goes on.
UNNOTIFIED_ENFORCEMENT_SHARE = 0.5


@dataclass(frozen=True)
class PoolAtCutoff:
    """The pool as it left the originator (CNY bn).

    Attributes:
        n_loans: loans in the pool.
        face: outstanding principal.
        face_with_interest: principal plus accrued interest (the pool face of deal statistics).
        carrying: the originator's carrying value.
        reference_value: the originator's view of the pool as an outside buyer would see it.
        notice_cost: debtor-notice cost of the transfer.
        stamp_duty: stamp duty on the transfer.
        borrowers: real borrowers behind the pool's loans.
        lemons_factor: investors' rational expectation of realised / disclosed value, given how
            the originator chose the pool (``nplsim.market.learning``).
    """

    n_loans: int
    face: float
    face_with_interest: float
    carrying: float
    reference_value: float
    notice_cost: float
    stamp_duty: float
    borrowers: float
    lemons_factor: float


@dataclass(frozen=True)
class DealTerms:
    """What closing fixes for the deal's life.

    Attributes:
        book_index: the deal's row in the deal desk's ``DealBook`` (tranche balances, coupons).
        expected_mean: investors' expected discounted collections at closing.
        guarantor: the guarantor of the senior tranche, or None.
        guarantee_fee_rate: the guarantee's annual fee per unit of senior balance.
        risk_weight: capital risk weight of each tranche for a holder that derecognised the pool.
        derecognised: whether the originator took the pool off its balance sheet.
        spv_form: the vehicle's legal form (a company pays entity tax).
        collection_factor: investors' ratio of realised to disclosed collections at closing.
        collection_sigma: the log-s.d. of collections investors priced on.
        record: the deal's row of ``deals.parquet``.
    """

    book_index: int
    expected_mean: float
    guarantor: Any
    guarantee_fee_rate: float
    risk_weight: dict[str, float]
    derecognised: bool
    spv_form: str
    collection_factor: float
    collection_sigma: float
    record: dict[str, Any] = field(default_factory=dict)


class SpecialPurposeVehicle(mesa.Agent):
    """One securitisation deal's vehicle: pool, cash in the ledger, tranches and their holders."""

    def __init__(
        self,
        model: mesa.Model,
        world: World,
        deal_id: int,
        account: int,
        originator: Any,
        servicer: Any,
        slots: np.ndarray,
        closing_quarter: int,
        notified_quarter: int,
        pool: PoolAtCutoff,
    ):
        super().__init__(model)
        self.world = world
        self.deal_id = deal_id
        self.name = f"SPV {deal_id}"
        self.account = account
        self.originator = originator
        self.servicer = servicer
        self.slots = slots
        self.pool = pool
        self.cutoff_quarter = world.quarter
        self.closing_quarter = closing_quarter
        self.notified_quarter = notified_quarter
        self.cash_reported = 0.0  # cash at the trustee's last report (collections come on top)
        self.final_quarter = closing_quarter + world.scenario.securitisation.tenor_q
        self.state = PENDING
        self.terms: DealTerms | None = None
        self.holders: dict[str, dict[int, float]] = {t: {} for t in TRANCHES}
        self.frozen_until = -1
        self.distress_tested = False
        # holders' shares when a tranche last had notional: the sub's residual keeps flowing to
        # them after its notional is paid down
        self.last_shares: dict[str, dict[int, float]] = {t: {} for t in TRANCHES}
        self.tranche_cashflows: dict[str, list[float]] = {t: [] for t in TRANCHES}

    # ------------------------------------------------------------------ state
    @property
    def cash(self) -> float:
        """Cash held by the vehicle (collections not yet paid out, and the reserve)."""
        return self.world.ledger.balance(self.account)

    @property
    def live_slots(self) -> np.ndarray:
        """Pool loans still being worked out."""
        loans = self.world.loans
        keep = (loans.holder[self.slots] == self.account) & (loans.status[self.slots] == Status.NPL)
        return self.slots[keep]

    @property
    def frozen(self) -> bool:
        """Whether a recharacterisation currently freezes the collections."""
        return self.world.quarter < self.frozen_until

    def enforcement_share(self) -> float:
        """Share of its servicer's workout hazard the pool gets: all of it in the quarters after
        the debtors have been notified of the transfer, ``UNNOTIFIED_ENFORCEMENT_SHARE`` until
        then (the true sale happens after the quarter's workout, so a notice that takes ``n``
        quarters holds back the next ``n`` workouts)."""
        if self.world.quarter > self.notified_quarter:
            return 1.0
        return UNNOTIFIED_ENFORCEMENT_SHARE

    @property
    def guarantor(self) -> Any:
        """The senior tranche's guarantor (None before closing or without one)."""
        return self.terms.guarantor if self.terms is not None else None

    def outstanding_on_books(self) -> float:
        """Pool principal the originator still reports as its own: while the deal is live and the
        pool was not derecognised (0 otherwise), and only the loans younger than the age at which
        it would write them off (the trust pursues them longer)."""
        if self.state != LIVE or self.terms.derecognised:
            return 0.0
        loans, idx = self.world.loans, self.live_slots
        young = loans.age_q(self.world.quarter, idx) < self.world.scenario.write_off_age_q
        return float(loans.principal[idx[young]].sum())

    def rating(self, tranche: str) -> str:
        """The tranche's rating at issue ("unrated" if none)."""
        return self.terms.record.get(f"{tranche}_rating", "unrated")

    # ------------------------------------------------------------------ life of the deal
    def register(self, tranche: str, account: int, notional: float) -> None:
        """An allotment at issue: ``account`` holds ``notional`` of the tranche."""
        self.holders[tranche][account] = notional

    def go_live(self, terms: DealTerms) -> None:
        """Closing: the tranches are issued on ``terms``."""
        self.terms = terms
        self.state = LIVE

    def close(self) -> None:
        """Legal final maturity: the deal ends."""
        self.state = CLOSED

    def test_distress(self, originator_distressed: bool) -> bool:
        """Whether a court should now consider this pool: the first quarter of each episode of
        the originator's distress, while collections are not already frozen."""
        if not originator_distressed:
            self.distress_tested = False
            return False
        if self.distress_tested or self.frozen:
            return False
        self.distress_tested = True
        return True

    def freeze(self, until: int) -> None:
        """A court recharacterised the pool: collections are frozen until quarter ``until``."""
        self.frozen_until = until

    # ------------------------------------------------------------------ payments
    def record_tranche_cash(self, tranche: str, amount: float) -> None:
        """What the tranche's holders received this quarter (interest, principal, residual)."""
        self.tranche_cashflows[tranche].append(amount)

    def pay_holders(self, tranche: str, amount: float, principal: bool) -> list[tuple[int, float]]:
        """Pay ``amount`` to a tranche's holders pro rata to their notional (to the last holders
        once the notional is gone: the subordinated tranche's residual has no cap); return what
        each account received."""
        holders = self.holders[tranche]
        total = sum(holders.values())
        if total > 0:
            self.last_shares[tranche] = {a: q / total for a, q in holders.items() if q > 0}
        shares = self.last_shares[tranche]
        if amount <= 0 or not shares:
            return []
        kind = f"abs_{'principal' if principal else 'interest'}"
        paid = []
        for account, weight in shares.items():
            share = amount * weight
            self.world.ledger.transfer(self.account, account, share, kind)
            paid.append((account, share))
        return paid

    def reduce_holdings(self, tranche: str, amount: float) -> list[tuple[int, float]]:
        """Reduce holders' notional pro rata by ``amount`` (repaid or written off); return each
        account's cut."""
        holders = self.holders[tranche]
        total = sum(holders.values())
        if amount <= 0 or total <= 0:
            return []
        share = min(amount / total, 1.0)
        cuts = []
        for account in holders:
            cut = holders[account] * share
            holders[account] -= cut
            cuts.append((account, cut))
        return cuts

    def move_position(self, tranche: str, seller: int, buyer: int, notional: float) -> None:
        """A secondary trade: ``notional`` of the tranche passes from ``seller`` to ``buyer``."""
        holders = self.holders[tranche]
        holders[seller] -= notional
        holders[buyer] = holders.get(buyer, 0.0) + notional
