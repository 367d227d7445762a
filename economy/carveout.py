"""The policy carve-out: the transfer of banks' NPLs to the AMCs at book value, paid with AMC bonds,
that the State orders (China 1999–2000, ``nplsim.agents.state.State``), and the coupons on those
bonds afterwards.
"""

from __future__ import annotations

import numpy as np

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.economy.world import EconomyWorld


class CarveOut:
    """The carve-out the State may order, and the coupons on the bonds it was paid with."""

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

    def execute(self, share: float) -> None:
        """Move a random ``share`` of every bank's NPLs to its paired AMC at book value."""
        world = self.world
        loans = world.loans
        for k, bank in enumerate(self.banks):
            idx = bank.own_npls()
            take = idx[self.rng.random(idx.size) < share]
            if take.size == 0:
                continue
            # Each AMC was paired with one bank in 1999 (Huarong-ICBC, Great Wall-ABC, Orient-BOC,
            # Cinda-CCB); banks are matched to AMCs in order.
            amc = self.amcs[k % len(self.amcs)]
            face = float(loans.principal[take].sum())
            world.npl_exits.record(take)
            loans.transfer(take, amc.account, loans.principal[take])
            world.holdings.move_npls(bank.account, amc.account, face, face, face)
            amc.take_carveout(bank.account, face)
            bank.receive_amc_bonds(face)
            world.log_event("policy_carveout", bank.name, f"to {amc.name} at book value", face)

    def pay_bond_coupons(self) -> None:
        """AMCs pay interest on their funding and on the bonds they gave the banks."""
        by_account = {bank.account: bank for bank in self.banks}
        for amc in self.amcs:
            for bank_account, amount in amc.pay_coupons().items():
                by_account[bank_account].receive_amc_coupon(amount)
