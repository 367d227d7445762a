"""The supervisor: the banking regulator's prompt corrective action by capital band.

At the end of every quarter the supervisor reads each bank's three capital ratios and puts it in
a band, after the four supervisory categories of the 2012 capital rules (assumption; not in
docs/facts.md): (1) every ratio at or above its minimum plus buffers; (2) every ratio at or above
its minimum but some in the buffers; (3) some ratio below its minimum; (4) CET1 below the
critical level. Measures add up down the bands:

- band 2: distributions stop, and the bank must carry out a capital plan that restores its
  requirement within ``pca_deadline_q`` quarters;
- band 3: the growth of its risk-weighted assets is restrained (``pca_rwa_growth_cap``), and if
  its NPL ratio is above the supervisory target a disposal plan is mandated, to reach the target
  in ``pca_deadline_q`` quarters (where the rules give plans weight, ``pca_npl_pressure`` > 0);
- band 4: the bank is critically undercapitalised (the State, as owner, must recapitalise it).

A bank whose plan's deadline passes while it is still short is escalated: band-3 measures apply
whatever its band, and the State is told. Capital measures are lifted when the bank is back in
band 1; a disposal plan runs until the NPL ratio reaches its target. Every measure taken, missed
deadline and lifting is an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from nplsim.agents.bank import StateBank
    from nplsim.agents.world import World

ADEQUATE, IN_BUFFER, BELOW_MINIMUM, CRITICAL = 1, 2, 3, 4


@dataclass
class Case:
    """The supervisor's file on one bank.

    Attributes:
        band: the capital band of the last review.
        plan_due: the quarter by which the capital plan must restore the requirement.
        escalated: the deadline passed with the bank still short.
    """

    band: int = ADEQUATE
    plan_due: int | None = None
    escalated: bool = False


class Supervisor(mesa.Agent):
    """The banking regulator: reviews banks' capital each quarter and applies prompt corrective
    action by capital band."""

    def __init__(self, model: mesa.Model, world: World, name: str = "Banking regulator"):
        super().__init__(model)
        self.world = world
        self.name = name
        self.cases: dict[str, Case] = {}

    def band(self, bank: StateBank) -> int:
        """The bank's capital band under the prudential rules in force."""
        rules = self.world.prudential
        ratios = bank.capital_ratios()
        if not ratios["cet1"] >= rules.pca_critical_cet1:  # NaN (no assets) counts as critical
            return CRITICAL
        minima, required = rules.minima(), rules.requirements(bank.spec.systemic)
        if any(ratios[t] < minima[t] for t in ratios):
            return BELOW_MINIMUM
        if any(ratios[t] < required[t] for t in ratios):
            return IN_BUFFER
        return ADEQUATE

    def review(self, bank: StateBank) -> Case:
        """Band the bank and apply, escalate or lift the measures its band calls for."""
        case = self.cases.setdefault(bank.name, Case())
        quarter, rules = self.world.quarter, self.world.prudential
        plan = bank.disposal_plan
        if plan is not None and bank.npl_ratio <= plan.target:
            bank.disposal_plan = None
            self._log("npl_disposal_plan_met", bank, "NPL ratio at the plan's target", 0.0)
        band = self.band(bank)
        if band == ADEQUATE:
            if case.band != ADEQUATE or case.escalated:
                self._log("measures_lifted", bank, "back above every requirement", 0.0)
            self._lift(bank)
            self.cases[bank.name] = Case()
            return self.cases[bank.name]
        shortfall = bank.capital_shortfall(rules.requirements(bank.spec.systemic))
        if not bank.payouts_stopped:
            bank.payouts_stopped = True
            self._log("dividend_stop", bank, "distributions stopped", 0.0)
        if case.plan_due is None:
            case.plan_due = quarter + rules.pca_deadline_q
            self._log("capital_plan", bank, f"restore the requirement by quarter {case.plan_due}",
                      shortfall)  # fmt: skip
        elif quarter >= case.plan_due and not case.escalated:
            case.escalated = True
            self._log("capital_plan_missed", bank, "deadline passed; escalated", shortfall)
        if band >= BELOW_MINIMUM or case.escalated:
            self._restrain(bank)
        if band == CRITICAL and case.band != CRITICAL:
            self._log("critically_undercapitalised", bank, "CET1 below the critical level",
                      shortfall)  # fmt: skip
        case.band = band
        return case

    def _restrain(self, bank: StateBank) -> None:
        """Band-3 measures: restrain RWA growth; mandate NPL disposal above the target."""
        rules = self.world.prudential
        if not bank.lending_restrained:
            bank.lending_restrained = True
            self._log("rwa_restraint", bank, "growth of risk-weighted assets restrained", 0.0)
        target = rules.npl_ratio_target
        if bank.disposal_plan is None and bank.npl_ratio > target and rules.pca_npl_pressure > 0:
            excess = bank.mandate_disposal(target, rules.pca_deadline_q)
            self._log("npl_disposal_plan", bank, f"bring the NPL ratio to {target:.1%}", excess)

    @staticmethod
    def _lift(bank: StateBank) -> None:
        """Capital measures end; a disposal plan runs until its target is met."""
        bank.payouts_stopped = False
        bank.lending_restrained = False

    def _log(self, kind: str, bank: StateBank, detail: str, amount: float) -> None:
        self.world.log_event(kind, bank.name, detail, amount)
