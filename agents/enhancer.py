"""CreditEnhancer: sells guarantees on senior tranches (the guarantee relationship).

A guarantor writes guarantees for a fee priced off the expected and unexpected loss it covers, up
to a multiple of its capital; the underwriter buys a guarantee only where the larger senior it
allows raises more than the fee costs. A guarantor pays claims out of its capital and, if a claim
exceeds what it has, defaults — voiding every guarantee it wrote (counterparty risk). A
state-backed scheme (GACS-style, facts: gacs) is a guarantor that cannot default, offered only
where the regime has one. What a guarantee is worth to investors scales with the regime's
``guarantee_enforceability``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from nplsim.market.pricing import ClaimRisk, risk_premium

if TYPE_CHECKING:
    from nplsim.agents.world import World


class CreditEnhancer(mesa.Agent):
    """A guarantor of senior tranches, with capital in the ledger (CNY bn)."""

    def __init__(
        self,
        model: mesa.Model,
        world: World,
        name: str,
        account: int,
        max_leverage: float,
        fee_markup: float,
        state_backed: bool = False,
    ):
        super().__init__(model)
        self.world = world
        self.name = name
        self.account = account
        self.max_leverage = max_leverage
        self.fee_markup = fee_markup
        self.state_backed = state_backed
        self.exposure: dict[int, float] = {}  # deal -> guaranteed senior balance
        self.defaulted = False
        self.claims_paid = 0.0
        self.fees_earned = 0.0

    @property
    def capital(self) -> float:
        """Cash available to pay claims (the ledger balance)."""
        return self.world.ledger.balance(self.account)

    @property
    def cash(self) -> float:
        """Cash in the ledger (the same as its capital)."""
        return self.capital

    @property
    def capacity(self) -> float:
        """Further senior balance it can guarantee."""
        if self.defaulted:
            return 0.0
        if self.state_backed:
            return float("inf")
        return max(self.max_leverage * self.capital - sum(self.exposure.values()), 0.0)

    def fee_rate(self, covered: ClaimRisk, years: float) -> float:
        """Annual fee per unit guaranteed: the markup on the expected- and unexpected-loss
        premium of the losses it covers over ``years`` (the state scheme: the regime's fee)."""
        if self.state_backed:
            return self.world.regime.state_guarantee_fee_bp / 1e4
        return self.fee_markup * sum(risk_premium(covered, years))

    def write(self, deal: int, senior_balance: float) -> None:
        """Guarantee a deal's senior tranche."""
        self.exposure[deal] = senior_balance

    def available_for(self, deal: int, enforceability: float) -> float:
        """What this quarter's claim on ``deal`` can be paid: nothing once defaulted or released."""
        if self.defaulted or deal not in self.exposure:
            return 0.0
        limit = self.exposure[deal] * enforceability
        if self.state_backed:
            return limit
        # several deals may claim in one quarter: each can draw its share of the capital
        total = sum(self.exposure.values())
        share = self.exposure[deal] / total if total > 0 else 0.0
        return min(limit, max(self.capital, 0.0) * share)

    def pay_claim(self, deal: int, spv_account: int, amount: float) -> None:
        """Pay a claim into the SPV; default when the claim exhausts the guarantor's capital."""
        if amount <= 0:
            return
        ledger = self.world.ledger
        payer = ledger.outside["government"] if self.state_backed else self.account
        ledger.transfer(payer, spv_account, amount, "guarantee_claim")
        self.claims_paid += amount
        if not self.state_backed and not self.defaulted and self.capital <= 1e-12 and self.exposure:
            self.defaulted = True
            self.world.log_event(
                "enhancer_default", self.name, "capital exhausted; guarantees void", amount
            )

    def update_exposure(self, deal: int, senior_balance: float) -> None:
        """Track the guaranteed balance as the senior amortises; release when repaid."""
        if senior_balance <= 0:
            self.exposure.pop(deal, None)
        elif deal in self.exposure:
            self.exposure[deal] = senior_balance
