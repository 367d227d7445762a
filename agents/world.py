"""What an agent may see of the economy, and the only way it acts on it.

Agents are handed a :class:`World` when they are created and use nothing else: they read the law
in force, the scenario's documented parameters and the quarter; they find their loans in the loan
registry and their positions in the per-account aggregates; they pay and are paid through the
ledger; they report what happens to the event log. They never see the model, and never another
agent's private state: counterparties meet in institutions (the AMC auction house, the deal desk,
the ABS market), which call the agents' own methods.
"""

from __future__ import annotations

from typing import Protocol

from nplsim.market.holdings import HolderTotals
from nplsim.market.ledger import Ledger
from nplsim.market.liquidity import FundingConditions
from nplsim.market.loans import LoanBook
from nplsim.market.prudential_rules import PrudentialRules
from nplsim.market.regime import LegalRegime
from nplsim.market.scenario import ScenarioConfig


class World(Protocol):
    """The economy as an agent sees it."""

    @property
    def quarter(self) -> int:
        """The current quarter (0 = the opening balance sheets)."""
        ...

    @property
    def regime(self) -> LegalRegime:
        """The law in force this quarter."""
        ...

    @property
    def prudential(self) -> PrudentialRules:
        """The bank regulator's rules in force this quarter."""
        ...

    @property
    def funding(self) -> FundingConditions:
        """What the money market and the central bank offer banks this quarter."""
        ...

    @property
    def scenario(self) -> ScenarioConfig:
        """The economy's documented parameters (read only)."""
        ...

    @property
    def ledger(self) -> Ledger:
        """The payment system: every agent's cash is its account here."""
        ...

    @property
    def loans(self) -> LoanBook:
        """The loan registry: which account holds each loan, and its terms and status."""
        ...

    @property
    def holdings(self) -> HolderTotals:
        """Performing principal, NPL principal and NPL carrying value by account."""
        ...

    def workout_hazard(self, skill: float) -> float:
        """Quarterly NPL resolution intensity of a workout team of ``skill`` under the law in
        force (every holder faces the same courts)."""
        ...

    def resolve_probability(self, skill: float) -> float:
        """Chance that a workout team of ``skill`` resolves an NPL within a quarter."""
        ...

    def log_event(self, kind: str, agent: str, detail: str, amount: float) -> None:
        """Report an event of this quarter (``events.parquet``)."""
        ...
