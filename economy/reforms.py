"""A change of the law in force: the one way the regime of a running model changes.

Used by the scheduled reform events of a scenario and by the app's "Reform now"; both go through
:func:`apply_regime`, so a reform always updates the same state and leaves the same trace.
"""

from __future__ import annotations

from nplsim.economy.world import EconomyWorld
from nplsim.market.loans import collateral_realisation
from nplsim.market.regime import LegalRegime
from nplsim.market.scenario import ScenarioConfig, event_regime


def apply_regime(world: EconomyWorld, name: str, regime: LegalRegime, detail: str) -> None:
    """Put ``regime`` (from preset ``name``) in force from now on and log the reform.

    Enforcement efficiency also sets how much of their collateral value creditors realise.
    """
    world.regime = regime
    world.regime_name = name
    world.loans.collateral_realisation = collateral_realisation(regime.enforcement_efficiency)
    world.log_event("reform", "regime", detail, 0.0)


def apply_scheduled_reforms(world: EconomyWorld, config: ScenarioConfig) -> None:
    """The scenario's reform events of this quarter, in the order the scenario lists them."""
    for event in config.events:
        if event.quarter != world.quarter:
            continue
        name, regime = event_regime(event, world.regime_name, world.regime)
        apply_regime(world, name, regime, f"{name} {event.overrides or ''}".strip())
