"""Investor: a buyer of asset-backed securities in the primary market (the investment relationship).

Investors of several classes — bank treasuries, insurers, mutual funds, qualified foreign investors,
distressed-debt funds, and retail where the regime allows — bid for the tranches their mandate
permits. Each asks for a yield of risk-free + expected loss + unexpected-loss premium + legal-risk
premium + information premium + liquidity premium (priced by the underwriter from the investor
community's view of the pool and its originator, ``nplsim.economy.investor_view``), bids the share
of its cash it puts into one issue, and holds what it is allotted, receiving the SPV's payments
through the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from nplsim.agents.securities import SecuritiesAccount

if TYPE_CHECKING:
    from nplsim.agents.world import World
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
# Share of a receivables issue each eligible investor bids for, cash allowing (assumption; the
# power sector's book sizes demand by the issue, not by investors' cash).
RECEIVABLES_ISSUE_SHARE = 0.15


class Investor(SecuritiesAccount, mesa.Agent):
    """One investor: cash in the ledger, holdings per (deal, tranche) in notional (CNY bn)."""

    def __init__(
        self, model: mesa.Model, world: World, spec: InvestorSpec, index: int, account: int
    ):
        super().__init__(model)
        self.world = world
        self.name = f"{spec.investor_class} {index + 1}"
        self.investor_class = spec.investor_class
        self.spec = spec
        self.account = account
        self.risk_aversion = spec.risk_aversion
        self.init_securities()

    @property
    def cash(self) -> float:
        """Cash (the ledger balance)."""
        return self.world.ledger.balance(self.account)

    def eligible(self, tranche: str, rating: str = "unrated") -> bool:
        """Whether the regime admits this class and its mandate allows the tranche and rating."""
        regime = self.world.regime
        if self.investor_class not in regime.investor_classes_allowed:
            return False
        if self.spec.foreign and not regime.foreign_investors_allowed:
            return False
        floor = RATING_ORDER.index(RATING_FLOOR[self.investor_class])
        return tranche in MANDATES[self.investor_class] and RATING_ORDER.index(rating) <= floor

    def liquidity_premium(self, share: float) -> float:
        """The premium it asks for holding an illiquid security (annual, decimal): its stated
        premium times the ``share`` that the observed depth of the secondary market leaves."""
        return self.spec.liquidity_premium_bp / 1e4 * share

    def bid_quantity(self, size: float) -> float:
        """How much of a tranche of ``size`` it bids for: its usual share of its cash for one new
        issue, within its concentration limit. Demand is what investors' balance sheets allow, so
        the bid-to-cover falls as deals grow and as investors' cash is spent."""
        return max(0.0, min(self.spec.appetite * self.cash, CONCENTRATION_LIMIT * size))

    def receivables_bid_quantity(self, size: float) -> float:
        """How much of a receivables issue of ``size`` it bids for: a fixed share of the issue,
        within its cash."""
        return max(0.0, min(RECEIVABLES_ISSUE_SHARE * size, self.cash))
