"""The economy's shared infrastructure, as the agents see it (``nplsim.agents.world.World``).

One object holds the public facts every agent and institution may use: the scenario, the law and
the prudential rules in force (changed only by :mod:`nplsim.economy.reforms`), the money market's
conditions of the quarter (set by :class:`nplsim.economy.money_market.MoneyMarket`), the clock, the
ledger, the loan registry with its per-account aggregates, and the event log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nplsim.market.eventlog import EventLog
from nplsim.market.holdings import HolderTotals
from nplsim.market.ledger import Ledger
from nplsim.market.liquidity import FundingConditions
from nplsim.market.loans import LoanBook, resolution_probability
from nplsim.market.npl_age import NplExits
from nplsim.market.prudential_rules import PrudentialRules
from nplsim.market.regime import LegalRegime
from nplsim.market.scenario import ScenarioConfig


@dataclass
class EconomyWorld:
    """Implements ``nplsim.agents.world.World`` for one model.

    Attributes:
        scenario: the validated scenario.
        regime: the law in force; ``regime_name`` the preset it came from.
        initial_regime: the law at quarter 0 (recorded in the manifest).
        prudential: the prudential rules in force; ``prudential_name`` their preset.
        funding: the money market's and central bank's conditions of the quarter.
        ledger, loans, holdings, events: the payment system, the loan registry, its per-account
            aggregates and the event log.
    """

    scenario: ScenarioConfig
    regime: LegalRegime
    regime_name: str
    ledger: Ledger
    loans: LoanBook
    holdings: HolderTotals
    events: EventLog
    clock: Callable[[], int]
    prudential: PrudentialRules
    prudential_name: str
    funding: FundingConditions

    def __post_init__(self) -> None:
        self.initial_regime = self.regime
        self.initial_prudential = self.prudential
        self.npl_exits: NplExits | None = None  # NPLs leaving the banks (set once banks exist)

    @property
    def quarter(self) -> int:
        """The current quarter: the model's step count (one clock)."""
        return self.clock()

    def workout_hazard(self, skill: float) -> float:
        """Quarterly NPL resolution intensity of a holder with workout ``skill`` (banks, AMCs and
        servicers face the same courts; they differ in their teams)."""
        return self.scenario.bank_base_hazard * skill * self.regime.enforcement_efficiency

    def resolve_probability(self, skill: float) -> float:
        """Chance that a holder with workout ``skill`` resolves an NPL within a quarter."""
        return resolution_probability(self.workout_hazard(skill))

    def log_event(self, kind: str, agent: str, detail: str, amount: float) -> None:
        """Record an event of this quarter."""
        self.events(kind, agent, detail, amount)
