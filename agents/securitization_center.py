"""SecuritizationCenter and ReceivablesVehicle: power plants' tariff receivables turned into ABS.

A receivables vehicle is the trust that buys the tariff receivables of the capacity a project
builds, from one plant (a stand-alone deal) or from many (a pool the provincial Securitization
Center puts together), and pays its investors from what the grid pays for that power. The sale is
true: investors have no claim on the plant beyond the receivables, and bear the loss when they fall
short. In a pool, each plant's receivables may also cover the others' shortfalls up to an
overcollateralisation limit, and the pool shares one set of fixed costs and one trustee report.

The centre is the study's proposal, not a documented institution (facts: no-shanxi-centre): it is
modelled as a design to test. It forms a pool from the plants for which pooling is the cheapest
route, and charges the pool its running costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mesa
import numpy as np

from nplsim.market import power, pricing, route_costs

if TYPE_CHECKING:
    from nplsim.agents.power_plant import PowerPlant
    from nplsim.agents.world import World


@dataclass
class AbsQuote:
    """A priced receivables deal for some plants: what it would cost each of them (bp)."""

    pooled: bool
    plants: list[PowerPlant]
    amounts: np.ndarray
    pledged_mw: np.ndarray
    cost: route_costs.RouteCost = field(default_factory=route_costs.RouteCost)
    rated: bool = True
    rating: str = "unrated"
    default_prob: float = float("nan")
    coupon: float = float("nan")  # what the investors' book clears at
    legal: pricing.ClaimRisk = pricing.NO_RISK  # recharacterisation risk from members' distress
    fees: route_costs.DealFees | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        """Whether the deal can be done at the quoted cost."""
        return self.cost.available


class ReceivablesVehicle(mesa.Agent):
    """One power ABS: members' pledged capacity, their share of the balance, and the holders."""

    def __init__(self, model: mesa.Model, world: World, vehicle_id: int, account: int,
                 quote: AbsQuote, holders: dict[int, float],
                 centre: SecuritizationCenter | None):  # fmt: skip
        super().__init__(model)
        self.world = world
        self.centre = centre  # the arranger of a pooled deal, paid its running costs
        self.vehicle_id = vehicle_id
        self.kind = "pooled" if quote.pooled else "standalone"
        self.name = f"Power ABS {vehicle_id} ({self.kind})"
        self.account = account
        self.plants = quote.plants
        self.pledged_mw = quote.pledged_mw
        self.member_balance = quote.amounts.copy()
        self.original = float(quote.amounts.sum())
        self.coupon = quote.coupon
        self.rating = quote.rating
        self.fees = quote.fees
        self.tenor_q = world.scenario.power.abs_tenor_q
        self.issue_quarter = world.quarter
        self.final_quarter = world.quarter + self.tenor_q
        self.holders = holders
        self.arrears = 0.0
        self.live = True
        self.frozen_until = np.full(len(self.plants), -1)
        self.losses = 0.0

    @property
    def cash(self) -> float:
        """Collections not yet paid out (the ledger balance)."""
        return self.world.ledger.balance(self.account)

    @property
    def balance(self) -> float:
        """Principal still owed to investors."""
        return float(self.member_balance.sum())

    def scheduled_service(self) -> np.ndarray:
        """What each member's receivables are due to pay next quarter on the deal's schedule: its
        share of the principal instalment, the interest with its tax and the running fees (0 once
        the deal is retired)."""
        balance = self.balance
        if not self.live or balance <= 0:
            return np.zeros(len(self.plants))
        fees = self.fees
        due = (
            self.original / self.tenor_q + balance * self.coupon / 4 * (1 + fees.tax_rate)
            + fees.trustee_bp / 1e4 / 4 * balance
            + (fees.monitoring_per_year + fees.centre_per_year) / 4
        )  # fmt: skip
        return due * self.member_balance / balance

    def recharacterise(self, plant: PowerPlant, draw: float) -> bool:
        """A member plant defaulted: with probability 1 − bankruptcy remoteness a court treats its
        receivables as the plant's estate, and the vehicle collects nothing from it for a while."""
        world = self.world
        if draw < world.regime.bankruptcy_remoteness or plant not in self.plants:
            return False
        self.frozen_until[self.plants.index(plant)] = (
            world.quarter + world.scenario.securitisation.freeze_q
        )
        world.log_event("power_recharacterisation", plant.name, self.name, self.balance)
        return True

    def service(self) -> float:
        """One quarter: collect what is due from the members' receivables (the grid pays the
        vehicle), pay fees, interest with its tax, and principal; at the legal final maturity,
        write off what is left. Returns the investors' loss of the quarter."""
        world, fees = self.world, self.fees
        if not self.live or world.quarter <= self.issue_quarter:
            return 0.0
        final = world.quarter >= self.final_quarter
        balance = self.balance
        interest_due = balance * self.coupon / 4
        principal_due = balance if final else min(self.original / self.tenor_q + self.arrears,
                                                  balance)  # fmt: skip
        running = fees.trustee_bp / 1e4 / 4 * balance + fees.monitoring_per_year / 4
        centre_fee = fees.centre_per_year / 4
        due = running + centre_fee + interest_due * (1 + fees.tax_rate) + principal_due
        share = due * self.member_balance / balance if balance > 0 else self.member_balance * 0
        frozen = self.frozen_until > world.quarter
        available = np.array([
            0.0 if frozen[k] else float(plant.receivables(self.pledged_mw[k : k + 1])[0])
            for k, plant in enumerate(self.plants)
        ])  # fmt: skip
        oc = world.scenario.power.overcollateralisation if self.kind == "pooled" else 0.0
        taken = power.collect(share, available, oc)
        ledger, outside = world.ledger, world.ledger.outside
        ledger.transfer(outside["power grid"], self.account, float(taken.sum()),
                        "receivables_collected")  # fmt: skip
        paid = power.pay_out(max(self.cash, 0.0), running + centre_fee, interest_due,
                             fees.tax_rate, principal_due)  # fmt: skip
        to_centre = paid.fees * centre_fee / (running + centre_fee) if paid.fees > 0 else 0.0
        ledger.transfer(self.account, outside["service_providers"],
                        max(paid.fees - to_centre, 0.0), "power_abs_fees")  # fmt: skip
        if to_centre > 0:
            self.centre.charge(self.account, to_centre)
        ledger.transfer(self.account, outside["government"], paid.tax, "power_abs_tax")
        left = self.cash - paid.interest - paid.principal if final else 0.0
        principal = min(paid.principal + max(left, 0.0), balance)
        self._pay_holders(paid.interest, "power_abs_interest")
        self._pay_holders(principal, "power_abs_principal")
        self.arrears = 0.0 if final else principal_due - principal
        repaid = principal * self.member_balance / balance if balance > 0 else taken * 0
        for k, plant in enumerate(self.plants):
            plant.abs_settled(float(taken[k]), float(repaid[k]))
        self.member_balance = np.maximum(self.member_balance - repaid, 0.0)
        self._reduce_holders(principal)
        loss = paid.interest_shortfall
        if final:
            written_off = self.member_balance.copy()
            for k, plant in enumerate(self.plants):
                plant.abs_settled(0.0, float(written_off[k]))
            self._reduce_holders(float(written_off.sum()))
            self.member_balance[:] = 0.0
            loss += float(written_off.sum())
            self.live = False
            world.log_event("power_abs_matured", self.kind, self.name, float(written_off.sum()))
        self.losses += loss
        return loss

    def _pay_holders(self, amount: float, kind: str) -> None:
        total = sum(self.holders.values())
        if amount <= 0 or total <= 0:
            return
        for account, notional in self.holders.items():
            self.world.ledger.transfer(self.account, account, amount * notional / total, kind)

    def _reduce_holders(self, amount: float) -> None:
        total = sum(self.holders.values())
        if amount <= 0 or total <= 0:
            return
        cut = min(amount / total, 1.0)
        for account in self.holders:
            self.holders[account] *= 1.0 - cut


class SecuritizationCenter(mesa.Agent):
    """The provincial centre: pools plants' receivables into one vehicle a year and runs it."""

    def __init__(self, model: mesa.Model, world: World, account: int):
        super().__init__(model)
        self.world = world
        self.name = "Securitization Center"
        self.account = account
        self.fees_earned = 0.0

    @property
    def cash(self) -> float:
        """The centre's cash: its fees, spent on its running costs the same quarter."""
        return self.world.ledger.balance(self.account)

    def form_pool(
        self,
        candidates: list[PowerPlant],
        alternative: dict[PowerPlant, float],
        price_pool: Callable[[list[PowerPlant], np.ndarray], AbsQuote],
    ) -> tuple[AbsQuote | None, dict]:
        """Find the largest pool every member prefers to its other routes. Plants are invited in
        order of what their other routes would cost them (dearest first): a pool of the first k
        forms if its cost beats the k-th plant's alternative. Fixed costs make a larger pool
        cheaper, so the centre looks from all candidates downwards.

        ``price_pool`` prices a pool of given plants and amounts (the deal desk's quote).

        Returns:
            The pool's quote (None if no pool forms) and, for each candidate, the pooled cost it
            was quoted and why the pool was closed to it ('' if open): the formed pool's for its
            members, the pool offered to every candidate for the others.
        """
        order = sorted(candidates, key=lambda p: -alternative[p])
        offered = price_pool(order, self._amounts(order))
        seen = {plant: (offered.cost, offered.reason) for plant in candidates}
        for k in range(len(order), self.world.scenario.power.centre_min_plants - 1, -1):
            members = order[:k]
            quote = offered if k == len(order) else price_pool(members, self._amounts(members))
            if quote.available and quote.cost.total <= alternative[members[-1]]:
                seen.update({plant: (quote.cost, "") for plant in members})
                return quote, seen
        return None, seen

    def admit(self, candidates: list[PowerPlant], cover: np.ndarray) -> list[PowerPlant]:
        """The centre's underwriting screen: a plant joins a pool only if its own cash and
        projected cash flow cover its debt service after the pool's schedule
        (``cover``, the underwriter's liquidity cover, against ``centre_liquidity_cover``): a
        future-flow deal is paid only while its originator keeps generating, so the centre does
        not sell the receivables of a plant the faster schedule would leave short of cash."""
        floor = self.world.scenario.power.centre_liquidity_cover
        if floor <= 0:
            return list(candidates)
        return [plant for plant, c in zip(candidates, cover, strict=True) if c >= floor]

    @staticmethod
    def _amounts(plants: list[PowerPlant]) -> np.ndarray:
        return np.array([plant.financing_need for plant in plants])

    def charge(self, payer: int, amount: float) -> None:
        """A pool pays the centre's running cost; the centre spends it on its staff and systems."""
        ledger = self.world.ledger
        ledger.transfer(payer, self.account, amount, "centre_fee")
        ledger.transfer(self.account, ledger.outside["service_providers"], amount, "centre_costs")
        self.fees_earned += amount
