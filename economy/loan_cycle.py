"""Phases 3–4 of the quarter: the loan book's cash flows settled through the ledger, and new
lending in every slot that freed up.

Performing loans pay interest and amortise, some default (the one-factor model on this quarter's
``Z``), NPLs are worked out by whoever holds them at that holder's hazard and cost, and old ones are
written off. Banks then re-lend their freed slots, a government-directed share to directed SOEs.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import numpy as np

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.agents.spv import SpecialPurposeVehicle
from nplsim.economy.opening import OpeningBook
from nplsim.economy.world import EconomyWorld
from nplsim.market.credit import draw_segments, workout_quality
from nplsim.market.slotdraws import new_key, slot_uniforms
from nplsim.market.workout_value import end_ages_by_account


class LoanCycle:
    """Settles the loan book's quarter and re-lends freed slots."""

    def __init__(
        self,
        world: EconomyWorld,
        streams: dict[str, np.random.Generator],
        opening: OpeningBook,
        banks: list[StateBank],
        amcs: list[AssetManagementCompany],
        vehicles: Iterable[SpecialPurposeVehicle],
    ):
        self.world = world
        self.streams = streams
        self.opening = opening
        self.banks = banks
        self.amcs = amcs
        self.vehicles = vehicles
        self.bank_accounts = np.array([bank.account for bank in banks])

    def settle(self, z: float) -> dict[str, float]:
        """Advance every loan one quarter at systematic factor ``z`` and settle the cash."""
        world = self.world
        loans, n, quarter = world.loans, world.ledger.n_accounts, world.quarter
        served = loans.service_performing(n)
        uniform = self.streams["defaults"].random(loans.n)  # the idiosyncratic shock of each slot
        went_bad = loans.default(quarter, z, uniform)
        loans.quality[went_bad] = workout_quality(
            world.scenario.borrower_quality_dispersion,
            self.streams["quality"].standard_normal(went_bad.size),
        )
        new_npl = np.bincount(
            loans.holder[went_bad], weights=loans.principal[went_bad], minlength=n
        )
        out = loans.work_out(
            quarter,
            self.hazard_by_account(),
            self.workout_cost_by_account(),
            partial(slot_uniforms, new_key(self.streams["recoveries"])),  # a draw per NPL slot
            *self.end_ages_by_account(),
        )
        closed, off = out.slots, out.written_off_slots
        world.npl_exits.record(closed, out.face)

        def by_holder(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
            return np.bincount(loans.holder[idx], weights=values, minlength=n)

        by = {  # sums per ledger account; NPL flows only over the few loans that moved
            "interest": served.interest,
            "principal": served.principal_paid,
            "recovery": by_holder(closed, out.recovery),
            "cost": by_holder(closed, out.cost),
            "face_closed": by_holder(closed, out.face),
            "carrying_closed": by_holder(closed, out.carrying),
            "written_off": by_holder(off, out.face[out.written_off]),
            "new_npl": new_npl,
        }
        ledger, outside = world.ledger, world.ledger.outside
        ledger.pay_each(outside["borrowers"], by["interest"], "loan_interest")
        ledger.pay_each(outside["borrowers"], by["principal"], "loan_principal")
        ledger.pay_each(outside["borrowers"], by["recovery"], "npl_recovery")
        ledger.collect_each(outside["service_providers"], by["cost"], "workout_cost")
        totals = world.holdings
        totals.performing -= by["principal"] + by["new_npl"]
        totals.npl += by["new_npl"] - by["face_closed"]
        totals.npl_carrying += by["new_npl"] - by["carrying_closed"]
        for bank in self.banks:
            a = bank.account
            bank.book_loan_flows(
                interest=by["interest"][a],
                recoveries=by["recovery"][a],
                workout_costs=by["cost"][a],
                carrying_closed=by["carrying_closed"][a],
                written_off=by["written_off"][a],
                new_npl=by["new_npl"][a],
                principal_repaid=by["principal"][a],
            )
        for amc in self.amcs:
            a = amc.account
            amc.book_loan_flows(by["recovery"][a], by["cost"][a], by["carrying_closed"][a])
        return {
            "bank_recovered_cash": float(by["recovery"][self.bank_accounts].sum()),
            "bank_face_closed": float(by["carrying_closed"][self.bank_accounts].sum()),
            "new_npl": float(by["new_npl"][self.bank_accounts].sum()),
            "resolved_count": int(closed.size - off.size),
        }

    def relend(self) -> None:
        """Banks re-lend their freed slots up to their lending budgets, a government-directed share
        to directed SOEs."""
        world = self.world
        loans, config = world.loans, world.scenario
        key = new_key(self.streams["lending"])  # every quarter: common random numbers by slot
        free = loans.free_slots()
        growth_index = (1.0 + config.loan_growth_annual) ** (world.quarter / 4)
        free = self._within_budgets(free, self.opening.slot_size[free] * growth_index)
        if free.size == 0:
            return
        originator = loans.originator[free]
        segment = draw_segments(config, slot_uniforms(key, free, lane=0, lanes=2))
        principal = self.opening.slot_size[free] * growth_index
        loans.originate(
            free,
            None,  # each slot's own originator re-lends it
            segment,
            principal,
            self.opening.pd_multiplier_by_account,
            config.macro.benchmark_rate,
            slot_uniforms(key, free, lane=1, lanes=2),
            np.ones(free.size),
        )
        lent = np.bincount(originator, weights=principal, minlength=world.ledger.n_accounts)
        world.ledger.collect_each(world.ledger.outside["borrowers"], lent, "new_lending")
        world.holdings.performing += lent
        for bank in self.banks:
            bank.book_new_lending(float(lent[bank.account]))

    def _within_budgets(self, free: np.ndarray, principal: np.ndarray) -> np.ndarray:
        """The free slots the banks fill: each bank's, in slot order, while their principal fits
        in its lending budget (the rest stay free for later quarters)."""
        keep = np.ones(free.size, dtype=bool)
        originator = self.world.loans.originator[free]
        for bank in self.banks:
            mine = originator == bank.account
            keep[mine] = np.cumsum(principal[mine]) <= bank.lending_budget()
        return free[keep]

    def hazard_by_account(self) -> np.ndarray:
        """Resolution intensity for loans held by each ledger account: a vehicle's loans are
        worked out by its servicer."""
        world = self.world
        hazard = np.zeros(world.ledger.n_accounts)
        for holder in (*self.banks, *self.amcs):
            hazard[holder.account] = world.workout_hazard(holder.workout_skill)
        for spv in self.vehicles:
            hazard[spv.account] = hazard[spv.servicer.account] * spv.enforcement_share()
        return hazard

    def end_ages_by_account(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Age at which each account's loans are closed unrecovered, and at which a bank charges
        them off while it keeps pursuing them (``workout_value.end_ages_by_account``)."""
        world = self.world
        return end_ages_by_account(world.scenario, world.ledger.n_accounts, self.bank_accounts)

    def workout_cost_by_account(self) -> np.ndarray:
        """Workout cost per unit recovered for loans held by each ledger account."""
        cost = np.zeros(self.world.ledger.n_accounts)
        cost[self.bank_accounts] = self.world.scenario.bank_workout_cost
        for amc in self.amcs:
            cost[amc.account] = amc.cost_per_recovered
        return cost
