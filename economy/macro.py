"""Phase 2: the quarter's systematic credit shock.

The one-factor default model is driven by ``Z_t = φ·Z_{t−1} + √(1−φ²)·ε_t + s_t``, an AR(1) with
unit stationary variance and scheduled shocks ``s_t`` (negative: bad times, more defaults).
"""

from __future__ import annotations

import math

import numpy as np

from nplsim.economy.world import EconomyWorld


class Macro:
    """The systematic factor ``Z`` and its scheduled shocks."""

    def __init__(self, world: EconomyWorld, rng: np.random.Generator):
        self.world = world
        self.rng = rng
        self.z = world.scenario.macro.z_initial

    def draw(self) -> None:
        """Move ``Z`` one quarter on, with any shock scheduled for it."""
        macro, quarter = self.world.scenario.macro, self.world.quarter
        phi = macro.z_persistence
        shock = sum(s.z for s in macro.shocks if s.quarter == quarter)
        epsilon = self.rng.standard_normal()
        self.z = phi * self.z + math.sqrt(1.0 - phi**2) * epsilon + shock
        if shock:
            self.world.log_event("macro_shock", "economy", f"z shock {shock:+.2f}", shock)
