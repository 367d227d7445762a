"""A change of the rules in force: the one way the law or the prudential rules of a running
model change.

Used by the scheduled reform events of a scenario and by the app's "Reform now"; both go through
:func:`apply_regime` (the law) or :func:`apply_prudential` (the bank regulator's rules), so a
reform always updates the same state and leaves the same trace.
"""

from __future__ import annotations

from nplsim.economy.world import EconomyWorld
from nplsim.market.loans import collateral_realisation
from nplsim.market.prudential_rules import PrudentialRules, event_prudential, split_overrides
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


def apply_prudential(world: EconomyWorld, name: str, rules: PrudentialRules, detail: str) -> None:
    """Put the prudential ``rules`` (from preset ``name``) in force from now on and log it."""
    world.prudential = rules
    world.prudential_name = name
    world.log_event("prudential_reform", "supervisor", detail, 0.0)


def apply_scheduled_reforms(world: EconomyWorld, config: ScenarioConfig) -> None:
    """The scenario's reform events of this quarter, in the order the scenario lists them: a
    change of the law, of the prudential rules, or both."""
    for event in config.events:
        if event.quarter != world.quarter:
            continue
        legal, prudential = split_overrides(event.overrides, "events")
        if event.regime is not None or legal or not (event.prudential or prudential):
            name, regime = event_regime(event, world.regime_name, world.regime)
            apply_regime(world, name, regime, f"{name} {legal or ''}".strip())
        if event.prudential is not None or prudential:
            name, rules = event_prudential(
                event, world.prudential_name, config.prudential_overrides
            )
            apply_prudential(world, name, rules, f"{name} {prudential or ''}".strip())
