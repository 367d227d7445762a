"""Investor: a buyer of asset-backed securities in the primary market (the investment relationship).

Investors of several classes — bank treasuries, insurers, mutual funds, qualified foreign investors,
distressed-debt funds, and retail where the regime allows — bid for the tranches their mandate
permits. Each asks for a yield of risk-free + expected loss + unexpected-loss premium + legal-risk
premium + information premium + liquidity premium, and holds what it is allotted, receiving the
SPV's payments through the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from nplsim.market.model import NPLMarketModel
    from nplsim.market.scenario import InvestorSpec

# Mandates (assumption): which tranches each class may buy.
MANDATES: dict[str, frozenset[str]] = {
    "bank_treasury": frozenset({"senior"}),
    "insurer": frozenset({"senior"}),
    "retail": frozenset({"senior"}),
    "mutual_fund": frozenset({"senior", "mezz"}),
    "qfii": frozenset({"senior", "mezz"}),
    "distressed_fund": frozenset({"mezz", "sub"}),
}
# Rating floors of the mandates (assumption): the lowest rating each class may hold.
RATING_FLOOR: dict[str, str] = {
    "bank_treasury": "A",
    "insurer": "AA",
    "retail": "AA",
    "mutual_fund": "BBB",
    "qfii": "BBB",
    "distressed_fund": "unrated",
}
RATING_ORDER = ("AAA", "AA", "A", "BBB", "BB", "unrated")
CONCENTRATION_LIMIT = 0.4  # largest share of one tranche a single investor takes (assumption)


class Investor(mesa.Agent):
    """One investor: cash in the ledger, holdings per (deal, tranche) in notional (CNY bn)."""

    def __init__(self, model: NPLMarketModel, spec: InvestorSpec, index: int, account: int):
        super().__init__(model)
        self.name = f"{spec.investor_class} {index + 1}"
        self.investor_class = spec.investor_class
        self.spec = spec
        self.account = account
        self.risk_aversion = spec.risk_aversion
        self.holdings: dict[tuple[int, str], float] = {}
        self.losses = 0.0

    @property
    def cash(self) -> float:
        """Cash (the ledger balance)."""
        return self.model.ledger.balance(self.account)

    def eligible(self, tranche: str, rating: str = "unrated") -> bool:
        """Whether the regime admits this class and its mandate allows the tranche and rating."""
        regime = self.model.regime
        if self.investor_class not in regime.investor_classes_allowed:
            return False
        if self.spec.foreign and not regime.foreign_investors_allowed:
            return False
        floor = RATING_ORDER.index(RATING_FLOOR[self.investor_class])
        return tranche in MANDATES[self.investor_class] and RATING_ORDER.index(rating) <= floor

    def bid_quantity(self, size: float) -> float:
        """How much of a tranche of ``size`` it bids for: its usual share of a new issue, within
        its concentration limit and its cash. The investor base scales with the market, so depth
        is a matter of how many classes the regime admits, not of the deal's size."""
        share = min(self.spec.appetite, CONCENTRATION_LIMIT)
        return max(0.0, min(share * size, self.cash))

    def receive(self, deal: int, tranche: str, amount: float) -> None:
        """Record an allotment of ``amount`` notional of a tranche."""
        key = (deal, tranche)
        self.holdings[key] = self.holdings.get(key, 0.0) + amount

    def reduce(self, deal: int, tranche: str, notional: float, loss: bool) -> None:
        """A holding's notional fell: repaid, or written off (a loss) when ``loss``."""
        key = (deal, tranche)
        self.holdings[key] = max(self.holdings.get(key, 0.0) - notional, 0.0)
        if loss:
            self.losses += notional
