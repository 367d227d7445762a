"""What every originator of a securitisation does, bank or AMC (the settlor of the trust).

At the cut-off the pool leaves the originator's books for a receivable; at closing the receivable
becomes cash plus the tranches the originator retains; the retained tranches then pay coupons,
principal or residual until they are repaid or written off; and the originator learns from each
deal what securitisation pays relative to its view of the pool. Concrete agents say how a gain or
loss reaches their equity (``_book_pnl``) and how the closing difference is booked
(``_book_closing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nplsim.market import deal_timing, pricing, remainder_sale
from nplsim.market.disposal import DealEconomics
from nplsim.market.workout_value import expected_workout_value_within

# facts: npl-abs-2016-deals: the subordinated tranche was 19-33% of issuance, the senior the rest
# (rated AAA). A first-loss retention of r of the issue therefore bears about r / SUB_SHARE of the
# pool's shortfalls, and a vertical slice carries the senior's and the sub's weights in proportion.
SUB_SHARE_OF_ISSUE = 0.25


@dataclass(frozen=True)
class SelectionIncentives:
    """What drives an originator's choice of loans for a deal, per unit of each loan's disclosed
    value (investors use it to form their rational expectation of the pool,
    ``nplsim.market.learning``).

    Attributes:
        price_ratio, retained_share, servicing_share: as in ``DealEconomics``.
        hold_ratio: the originator's value of keeping each loan per unit of investors' value of
            it at its real quality.
        other_gain: capital relief and NPL-ratio gains less transfer costs, per unit of
            disclosed value.
        alternative: what the best other disposal channel pays (with its own capital and NPL
            gains), per unit of disclosed value (``-inf`` where there is none).
        public_value: investors' disclosed value of each loan.
    """

    price_ratio: float
    retained_share: float
    servicing_share: float
    hold_ratio: np.ndarray
    other_gain: np.ndarray
    alternative: np.ndarray
    public_value: np.ndarray


class PoolOnBooks(Protocol):
    """A securitised pool its originator still reports (the trustee's statement)."""

    def outstanding_on_books(self) -> float:
        """Pool principal outstanding while the pool stays on the originator's books."""
        ...


class Originator:
    """Mixin for agents that securitise: pending pools, retained tranches, a price belief.

    Expects ``self.world``, ``self.flows``, ``self._book_pnl(amount)`` and
    ``self._book_closing(carrying, cash, retained_value)`` on the concrete class.
    """

    def init_originator(self, price_belief: float) -> None:
        """Set up the originator's state (call from ``__init__``)."""
        self.pending_securitisation = 0.0
        # (deal, tranche) -> [notional, book value]
        self.retained: dict[tuple[int, str], list[float]] = {}
        # (deal, tranche) -> capital risk weight, None where the pool was not derecognised
        self.retained_weight: dict[tuple[int, str], float | None] = {}
        # its deals whose pools stay on its balance sheet, by deal id
        self.pools_on_books: dict[int, PoolOnBooks] = {}
        self.sec_price_belief = price_belief

    @property
    def pool_face_on_books(self) -> float:
        """Outstanding principal of its securitised pools that were not derecognised (CNY bn)."""
        total = 0.0
        for pool in self.pools_on_books.values():
            total += pool.outstanding_on_books()
        return total

    @property
    def securitisation_rwa(self) -> float:
        """Risk-weighted retained tranches of derecognised deals (a pool that was not derecognised
        is weighted as the originator's own loans instead)."""
        rwa = 0.0
        for key, (_, value) in self.retained.items():
            weight = self.retained_weight[key]
            if weight is not None:
                rwa += weight * value
        return rwa

    @property
    def retained_abs(self) -> float:
        """Book value of the tranches retained from its own deals (CNY bn)."""
        return sum(value for _, value in self.retained.values())

    # ------------------------------------------------------------------ what a deal pays
    def retained_share(self) -> float:
        """Economic share of a pool's collections the originator keeps under the regime's risk
        retention: the vertical slice itself, or a first-loss slice's share of the shortfalls."""
        regime = self.world.regime
        if regime.retention_form == "vertical":
            return regime.risk_retention
        return min(1.0, regime.risk_retention / SUB_SHARE_OF_ISSUE)

    def retention_risk_weight(self) -> float:
        """Capital risk weight the originator expects on the slice it must retain, under the
        prudential rules in force: a first-loss slice is unrated; a vertical slice carries the
        senior's (AAA) and the sub's weights in proportion to the issue."""
        weight = self.world.prudential.securitisation_weight
        if self.world.regime.retention_form == "first_loss":
            return weight("unrated")
        return (1.0 - SUB_SHARE_OF_ISSUE) * weight("AAA") + SUB_SHARE_OF_ISSUE * weight("unrated")

    def servicing_share(self) -> float:
        """Base servicing fees per unit of a pool's value, where the originator services its own
        deals (0 where its paired AMC does)."""
        spec = self.world.scenario.securitisation
        if spec.servicer != "originator":
            return 0.0
        return spec.servicer_base_fee / (1.0 - spec.disposal_cost_cap)

    def investor_value(self, idx: np.ndarray, disclosure: float) -> np.ndarray:
        """Investors' value of the loans' collections (CNY bn per loan): worked out by this
        originator as servicer, net of the capped disposal costs and the vehicle's taxes under
        the regime's SPV form, discounted at the risk-free
        rate, the borrower's quality as ``disclosure`` reveals it (1: as the originator knows
        it), collected until the deal's legal final maturity (``deal_timing``; a bulk pool's
        approval delay is left out of this estimate), when what is left is sold
        (``remainder_sale``, where deals provide for it)."""
        world, config = self.world, self.world.scenario
        regime, spec = world.regime, config.securitisation
        return expected_workout_value_within(
            world.loans, idx, world.quarter, world.resolve_probability(self.workout_skill),
            (1.0 + config.macro.gov_bond_yield) ** -0.25, config.claim_end_age_q,
            pricing.collection_leakage(regime, spec, regime.spv_form),
            deal_timing.collection_horizon_q(regime, spec), disclosure,
            remainder_sale.terminal_prices(world),
        )  # fmt: skip

    def transfer_costs(self, idx: np.ndarray) -> np.ndarray:
        """Debtor notice (per real borrower) and stamp duty of transferring each loan (CNY bn)."""
        regime, loans = self.world.regime, self.world.loans
        notice = 0.0
        if regime.debtor_notice != "none":
            notice = regime.notice_cost_per_borrower_cny * loans.borrowers(idx) * 1e-9
        return notice + regime.stamp_duty_bp / 1e4 * loans.principal[idx]

    def deal_economics(self, idx: np.ndarray) -> DealEconomics:
        """What putting each loan into a deal would pay the originator (see ``DealEconomics``)."""
        disclosure = self.world.regime.disclosure_level
        return DealEconomics(
            price_ratio=self.sec_price_belief,
            retained_share=self.retained_share(),
            servicing_share=self.servicing_share(),
            public_value=self.investor_value(idx, disclosure),
            informed_value=self.investor_value(idx, 1.0),
            variable_cost=self.transfer_costs(idx),
        )

    def prepare_payment(self, amount: float) -> None:
        """Make sure ``amount`` of cash is at hand for a payment (an AMC may need to borrow)."""

    def transfer_to_spv(self, carrying: float, face: float, costs: float) -> None:
        """True sale at the cut-off: the pool leaves for a receivable settled at closing; the
        transfer costs (debtor notice, stamp duty) are paid and expensed."""
        self.pending_securitisation += carrying
        self.flows["npl_securitised"] += face
        self.flows["transfer_costs"] += costs
        self._book_pnl(-costs)

    def settle_securitisation(
        self, carrying: float, cash: float, retained: dict[tuple[int, str], list[float]],
        reference_value: float, risk_weight: dict[str, float] | None, pool: PoolOnBooks,
        deal: int,
    ) -> None:  # fmt: skip
        """Closing: the receivable becomes cash plus the retained tranches; the price belief
        learns from what the deal paid against the originator's view of the pool.

        ``risk_weight`` gives each tranche's capital weight where the pool was derecognised; where
        it was not (None), the pool stays on the books (``pool`` reports it) and the retained
        tranches carry no weight of their own.
        """
        retained_value = sum(value for _, value in retained.values())
        self.pending_securitisation -= carrying
        self.retained.update(retained)
        for key in retained:
            self.retained_weight[key] = None if risk_weight is None else risk_weight[key[1]]
        if risk_weight is None:
            self.pools_on_books[deal] = pool
            self.pools_on_books = dict(sorted(self.pools_on_books.items()))
        self._book_closing(carrying, cash, retained_value)
        self.flows["securitisation_proceeds"] += cash
        if reference_value > 0:
            rate = self.world.scenario.price_learning_rate
            observed = (cash + retained_value) / reference_value
            self.sec_price_belief += rate * (observed - self.sec_price_belief)

    def receive_tranche_payment(
        self, deal: int, tranche: str, amount: float, principal: bool
    ) -> None:
        """A payment on a retained tranche: principal (and the sub's residual) returns book value
        at the tranche's price ratio, the rest is income."""
        if amount <= 0:
            return
        position = self.retained.get((deal, tranche))
        if position is None:  # a residual after the notional was repaid: all of it is income
            self._book_pnl(amount)
            self.flows["abs_income"] += amount
            return
        notional, value = position
        returned = min(value, amount * value / notional) if principal and notional > 0 else 0.0
        position[1] = value - returned
        self._book_pnl(amount - returned)
        self.flows["abs_income"] += amount - returned

    def reduce_retained(self, deal: int, tranche: str, notional: float, loss: bool) -> None:
        """Notional of a retained tranche repaid (its value already returned) or written off."""
        position = self.retained.get((deal, tranche))
        if position is None or notional <= 0:
            return
        ratio = position[1] / position[0] if position[0] > 0 else 0.0
        position[0] = max(position[0] - notional, 0.0)
        if loss:
            lost = min(position[1], notional * ratio)
            position[1] -= lost
            self._book_pnl(-lost)
        if position[0] <= 1e-12:
            self._book_pnl(-position[1])  # book value the tranche can no longer return
            del self.retained[(deal, tranche)]
            del self.retained_weight[(deal, tranche)]

    def earn_servicing_fee(self, amount: float) -> None:
        """Base and incentive fees for servicing a securitised pool (agency relationship)."""
        self._book_pnl(amount)

    def recover_from_recharacterisation(self, amount: float) -> None:
        """Collections a court returned to the originator's estate after recharacterising a pool."""
        self._book_pnl(amount)
