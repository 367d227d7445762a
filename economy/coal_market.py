"""Phase 2 (power scenarios): the coal price, a systematic shock drawn with the credit factor.

The log gap of the coal price to its reference mean-reverts, takes an innovation from the power
stream and any scheduled jump (``g' = φ·g + σ·ε + jump``); dear coal cuts the dispatch of coal
plants. Drawn at the start of the quarter, before anyone acts, so every institution of the quarter
sees the same coal price; the power stream keeps the draws of the other streams unchanged (common
random numbers). Inert in a world without power plants.
"""

from __future__ import annotations

import math

import numpy as np

from nplsim.economy.world import EconomyWorld
from nplsim.market import power


class CoalMarket:
    """The coal price, its dispatch factor and its history (for the tariff rule)."""

    def __init__(self, world: EconomyWorld, rng: np.random.Generator):
        self.world = world
        self.rng = rng
        spec = world.scenario.power
        self.active = spec is not None
        self.gap = spec.coal.initial_log_gap if spec is not None else 0.0
        self.price = spec.coal.reference_cny_per_t * math.exp(self.gap) if spec else math.nan
        self.dispatch = self._dispatch() if spec is not None else 1.0
        self.history = [self.price]  # the price of every quarter so far, quarter 0 first

    def _dispatch(self) -> float:
        spec = self.world.scenario.power
        return power.dispatch_factor(
            self.price, spec.coal.reference_cny_per_t, spec.dispatch_coal_elasticity,
            spec.min_dispatch,
        )  # fmt: skip

    def draw(self) -> None:
        """Move the coal price one quarter on, with any jump scheduled for it."""
        if not self.active:
            return
        coal = self.world.scenario.power.coal
        jump = sum(s.log_jump for s in coal.shocks if s.quarter == self.world.quarter)
        epsilon = float(self.rng.standard_normal())
        self.gap = power.coal_log_gap_step(
            self.gap, coal.persistence_q, coal.volatility_q, epsilon, jump
        )
        self.price = coal.reference_cny_per_t * math.exp(self.gap)
        self.dispatch = self._dispatch()
        self.history.append(self.price)
        if jump:
            self.world.log_event("coal_shock", "coal market", f"log price jump {jump:+.2f}", jump)

    @property
    def fuel_price(self) -> float:
        """What plants pay for coal this quarter (CNY/t): ``contract_share`` under long-term
        contracts at the reference price, the rest at the spot price."""
        coal = self.world.scenario.power.coal
        spot_share = 1.0 - coal.contract_share
        return coal.contract_share * coal.reference_cny_per_t + spot_share * self.price

    def past_year_average(self) -> float:
        """The average coal price of the four quarters before this one (fewer at the start)."""
        quarter = self.world.quarter
        return float(np.mean(self.history[max(quarter - 4, 0) : max(quarter, 1)]))
