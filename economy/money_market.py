"""Phase 2b: the money market opens — the quarter's interbank rate and funding conditions, and the
scheduled liquidity shocks.

The interbank rate is the scenario's base rate, plus the spike of any interbank freeze in force,
plus a premium that rises with how much the banks leaned on the central bank at the end of the
last quarter; during a freeze lenders roll over only part of the banks' maturing funding; during
a fire sale bonds sell at a discount. A deposit outflow takes deposits from the banks it hits at
the start of the quarter, before they close their books.
"""

from __future__ import annotations

from nplsim.agents.bank import StateBank
from nplsim.economy.world import EconomyWorld
from nplsim.market.liquidity import FundingConditions, stressed_interbank_rate


def base_conditions(world: EconomyWorld) -> FundingConditions:
    """Funding conditions without stress: the scenario's rates (quarter 0)."""
    macro, spec = world.scenario.macro, world.scenario.liquidity
    return FundingConditions(
        interbank_rate=macro.interbank_rate,
        slf_rate=macro.interbank_rate + spec.slf_spread,
        mlf_rate=spec.mlf_rate,
    )


class MoneyMarket:
    """The interbank market and the central bank's facilities, as the banks meet them."""

    def __init__(self, world: EconomyWorld, banks: list[StateBank]):
        self.world = world
        self.banks = banks

    def open(self) -> None:
        """Set the quarter's funding conditions and let the scheduled liquidity shocks hit."""
        world = self.world
        macro, spec, quarter = world.scenario.macro, world.scenario.liquidity, world.quarter
        active = [s for s in spec.shocks if s.active(quarter)]
        spike = sum(s.size for s in active if s.kind == "interbank_freeze")
        rollover = min((s.rollover for s in active if s.kind == "interbank_freeze"), default=1.0)
        discount = max((s.size for s in active if s.kind == "fire_sale"), default=0.0)
        borrowing = sum(b.central_bank_borrowing for b in self.banks)
        hqla = sum(b.hqla for b in self.banks)
        rate = stressed_interbank_rate(
            macro.interbank_rate, spike, spec.interbank_stress_slope, borrowing, hqla
        )
        world.funding = FundingConditions(
            interbank_rate=rate,
            slf_rate=rate + spec.slf_spread,
            mlf_rate=spec.mlf_rate,
            rollover=rollover,
            fire_sale_discount=discount,
            stressed=bool(active),
        )
        for shock in active:
            label = shock.label or shock.kind.replace("_", " ")
            if shock.kind != "deposit_outflow":
                if shock.quarter == quarter:
                    world.log_event(shock.kind, "money market", label, shock.size)
                continue
            for bank in self.banks:
                if shock.hits(bank.name):
                    withdrawn = bank.lose_deposits(shock.size)
                    world.log_event("deposit_outflow", bank.name, label, withdrawn)
