"""The policy carve-out: the State's one-off transfer of banks' NPLs to the AMCs at book value,
paid with AMC bonds (China 1999–2000), and the coupons on those bonds afterwards.

The carved-out loans are tracked so that the AMCs' cumulative cash recovery on them can be compared
with the public record.
"""

from __future__ import annotations

import numpy as np

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.economy.world import EconomyWorld


class CarveOut:
    """The carve-out the law may order, its bonds, and the recoveries on what it moved."""

    def __init__(
        self,
        world: EconomyWorld,
        rng: np.random.Generator,
        banks: list[StateBank],
        amcs: list[AssetManagementCompany],
    ):
        self.world = world
        self.rng = rng
        self.banks = banks
        self.amcs = amcs
        self.carved_out = np.zeros(world.loans.n, dtype=bool)
        self.face = 0.0
        self.recovered = 0.0

    def execute(self) -> None:
        """Move a random ``carveout_share`` of every bank's NPLs to its paired AMC at book value,
        in the quarter the regime orders it."""
        world = self.world
        regime, loans = world.regime, world.loans
        if not regime.policy_carveout or regime.carveout_quarter != world.quarter:
            return
        for k, bank in enumerate(self.banks):
            idx = bank.own_npls()
            take = idx[self.rng.random(idx.size) < regime.carveout_share]
            if take.size == 0:
                continue
            # Each AMC was paired with one bank in 1999 (Huarong-ICBC, Great Wall-ABC, Orient-BOC,
            # Cinda-CCB); banks are matched to AMCs in order.
            amc = self.amcs[k % len(self.amcs)]
            face = float(loans.principal[take].sum())
            world.npl_exits.record(take)
            loans.transfer(take, amc.account, loans.principal[take])
            self.carved_out[take] = True
            world.holdings.move_npls(bank.account, amc.account, face, face, face)
            amc.take_carveout(bank.account, face)
            bank.receive_amc_bonds(face)
            self.face += face
            world.log_event("policy_carveout", bank.name, f"to {amc.name} at book value", face)

    def pay_bond_coupons(self) -> None:
        """AMCs pay interest on their funding and on the bonds they gave the banks."""
        by_account = {bank.account: bank for bank in self.banks}
        for amc in self.amcs:
            for bank_account, amount in amc.pay_coupons().items():
                by_account[bank_account].receive_amc_coupon(amount)

    def record_recoveries(self, closed: np.ndarray, recovery: np.ndarray) -> None:
        """Cash recovered this quarter on resolved loans ``closed`` that were carved out."""
        self.recovered += float(recovery[self.carved_out[closed]].sum())

    def forget(self, slots: np.ndarray) -> None:
        """Slots re-lent to new borrowers no longer hold carved-out loans."""
        self.carved_out[slots] = False

    @property
    def recovery_to_date(self) -> float:
        """Cash recovered on carved-out loans / their face (NaN before any carve-out)."""
        return self.recovered / self.face if self.face > 0 else float("nan")
