"""SpecialPurposeVehicle: the trust (or company) that buys a pool of NPLs and issues securities.

Created per deal. At the cut-off the pool's loans change holder in the loan book (a true sale) and
the regime's transfer frictions apply: debtor notice (cost and delay), whether collateral follows
the claim, the bulk-transfer rule's approval, stamp duty. Collections from the cut-off belong to the
SPV. At closing the underwriter structures and sells the tranches; afterwards the SPV pays its
collections each quarter through the declarative waterfall (``nplsim.market.waterfall``) to the
holders of its tranches, the servicer (agency relationship), the trustee, the guarantor and the tax
office. If its originator becomes distressed and bankruptcy remoteness fails, the pool is
recharacterised: collections are frozen and investors lose a share that investor protection softens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np
from nplsim.market.loans import Status

if TYPE_CHECKING:
    from nplsim.market.model import NPLMarketModel

PENDING, LIVE, CLOSED = "pending", "live", "closed"


class SpecialPurposeVehicle(mesa.Agent):
    """One securitisation deal's vehicle: pool, cash in the ledger, tranches and their holders."""

    def __init__(
        self,
        model: NPLMarketModel,
        deal_id: int,
        account: int,
        originator,
        servicer,
        slots: np.ndarray,
        closing_quarter: int,
    ):
        super().__init__(model)
        self.deal_id = deal_id
        self.name = f"SPV {deal_id}"
        self.account = account
        self.originator = originator
        self.servicer = servicer
        self.slots = slots
        self.cutoff_quarter = model.quarter
        self.closing_quarter = closing_quarter
        self.final_quarter = closing_quarter + model.config.securitisation.tenor_q
        self.state = PENDING
        self.book_index = -1  # row in the model's DealBook once live
        self.holders: dict[str, dict[int, float]] = {"senior": {}, "mezz": {}, "sub": {}}
        self.guarantor = None
        self.record: dict[str, float | int | str] = {}
        self.frozen_until = -1
        self.frozen_cash = 0.0
        self.distress_tested = False
        self.view_cache: tuple = (None, None)
        # holders' shares when a tranche last had notional: the sub's residual keeps flowing to
        # them after its notional is paid down
        self.last_shares: dict[str, dict[int, float]] = {"senior": {}, "mezz": {}, "sub": {}}
        self.tranche_cashflows: dict[str, list[float]] = {"senior": [], "mezz": [], "sub": []}
        self.derecognised = model.regime.derecognition_allowed
        self.risk_weight: dict[str, float] = {}

    @property
    def cash(self) -> float:
        """Cash held by the vehicle (collections not yet paid out, and the reserve)."""
        return self.model.ledger.balance(self.account)

    @property
    def live_slots(self) -> np.ndarray:
        """Pool loans still being worked out."""
        loans = self.model.loans
        keep = (loans.holder[self.slots] == self.account) & (loans.status[self.slots] == Status.NPL)
        return self.slots[keep]

    @property
    def frozen(self) -> bool:
        """Whether a recharacterisation currently freezes the collections."""
        return self.model.quarter < self.frozen_until

    def pay_holders(self, tranche: str, amount: float, principal: bool) -> None:
        """Pay ``amount`` to a tranche's holders pro rata to their notional (to the last holders
        once the notional is gone: the subordinated tranche's residual has no cap)."""
        holders = self.holders[tranche]
        total = sum(holders.values())
        if total > 0:
            self.last_shares[tranche] = {a: q / total for a, q in holders.items() if q > 0}
        shares = self.last_shares[tranche]
        if amount <= 0 or not shares:
            return
        kind = f"abs_{'principal' if principal else 'interest'}"
        for account, weight in shares.items():
            share = amount * weight
            self.model.ledger.transfer(self.account, account, share, kind)
            self.model.holder_received(account, self.deal_id, tranche, share, principal)

    def reduce_holdings(self, tranche: str, amount: float, loss: bool) -> None:
        """Reduce holders' notional pro rata by ``amount`` (repaid, or written off if ``loss``)."""
        holders = self.holders[tranche]
        total = sum(holders.values())
        if amount <= 0 or total <= 0:
            return
        share = min(amount / total, 1.0)
        for account in holders:
            cut = holders[account] * share
            holders[account] -= cut
            self.model.holder_reduced(account, self.deal_id, tranche, cut, loss)
