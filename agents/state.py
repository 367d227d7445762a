"""The State as owner of the state banks: it recapitalises them and can order a policy carve-out.

Recapitalisation (facts: recapitalisations-2003: foreign-exchange reserves injected into BOC and
CCB in 2003 and ICBC in 2005): a systemic bank whose CET1 falls below the critical level is topped
up at once to that level plus ``recap_margin``; from ``recap_from_quarter`` on, a bank the
supervisor has escalated (its capital plan's deadline passed) is recapitalised to every
requirement plus the margin, on condition that it brings its NPL ratio down to the supervisory
target (a mandated disposal plan, as the 2004-05 sales that went with the recapitalisations:
facts: commercial-sales-2004). The carve-out (facts: carveout-1999): from ``carveout_quarter`` on,
while its banks' NPL ratio is above ``carveout_npl_trigger``, the State orders once that
``carveout_share`` of every bank's NPLs move to the AMCs at book value against AMC bonds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from nplsim.agents.bank import StateBank
    from nplsim.agents.supervisor import Case
    from nplsim.agents.world import World


class State(mesa.Agent):
    """The State as owner of the state banks: recapitalises them and orders carve-outs."""

    def __init__(self, model: mesa.Model, world: World, name: str = "State"):
        super().__init__(model)
        self.world = world
        self.name = name
        self.carveout_ordered = False
        self.injected = 0.0

    def carveout_order(self, banks: list[StateBank]) -> float:
        """The share of every bank's NPLs the State orders moved to the AMCs now (0 if none)."""
        spec, quarter = self.world.scenario.state, self.world.quarter
        if self.carveout_ordered or spec.carveout_quarter is None or spec.carveout_share <= 0:
            return 0.0
        npl = sum(b.npl_on_books for b in banks)
        loans = sum(b.gross_loans + b.pool_face_on_books for b in banks)
        ratio = npl / loans if loans > 0 else 0.0
        if quarter < spec.carveout_quarter or ratio <= spec.carveout_npl_trigger:
            return 0.0
        self.carveout_ordered = True
        self.world.log_event("carveout_order", self.name,
                             f"{spec.carveout_share:.0%} of NPLs to the AMCs at NPL ratio "
                             f"{ratio:.1%}", npl * spec.carveout_share)  # fmt: skip
        return spec.carveout_share

    def recapitalise(self, bank: StateBank, case: Case) -> float:
        """Inject the common equity the rule above asks for into ``bank`` (CNY bn injected)."""
        spec, rules = self.world.scenario.state, self.world.prudential
        if not spec.recapitalises or not bank.spec.systemic:
            return 0.0
        amount = bank.capital_shortfall({"cet1": rules.pca_critical_cet1 + spec.recap_margin})
        if bank.cet1_ratio >= rules.pca_critical_cet1:
            amount = 0.0
        if case.escalated and self.world.quarter >= spec.recap_from_quarter:
            required = rules.requirements(bank.spec.systemic)
            restore = {tier: ratio + spec.recap_margin for tier, ratio in required.items()}
            amount = max(amount, bank.capital_shortfall(restore))
        if amount <= 0:
            return 0.0
        bank.receive_capital(amount)
        self.injected += amount
        self.world.log_event("recapitalisation", bank.name, "common equity from the State", amount)
        target = rules.npl_ratio_target
        if case.escalated and bank.npl_ratio > target:  # the owner's condition: clean up the book
            excess = bank.mandate_disposal(target, rules.pca_deadline_q)
            detail = f"owner's condition: NPL ratio to {target:.1%}"
            self.world.log_event("npl_disposal_plan", bank.name, detail, excess)
        return amount
