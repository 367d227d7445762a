"""The power sector (phase 9b): coal plants, their bank debt, and the Securitization Center.

Plants pay what their bank loans were charged, generate at the dispatch the coal price allows, sell
power (receivables they sold go to their ABS vehicles), finance new capacity once a year by the
cheapest route open to them — a loan from their house bank, a stand-alone receivables ABS, or a
place in the centre's pool — and default on their bank loans when cash cannot meet the next
quarter's debt service. Their loans live in the common loan book; a default turns them into the
banks' NPLs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mesa
import numpy as np
import pandas as pd

from nplsim.agents.bank import StateBank
from nplsim.agents.investor import Investor
from nplsim.agents.power_plant import PowerPlant
from nplsim.agents.securitization_center import (
    AbsQuote,
    ReceivablesVehicle,
    SecuritizationCenter,
)
from nplsim.agents.underwriter import Underwriter
from nplsim.economy.opening import OpeningBook
from nplsim.economy.receivables_desk import ReceivablesDesk
from nplsim.economy.world import EconomyWorld
from nplsim.market import plant_loans, power
from nplsim.market.credit import workout_quality
from nplsim.market.loans import SEGMENTS, Status


class PowerSector:
    """The plants, their loans and ABS, and the centre; a no-op without a power block."""

    def __init__(
        self,
        model: mesa.Model,
        world: EconomyWorld,
        rng: np.random.Generator,
        opening: OpeningBook,
        banks: list[StateBank],
        investors: list[Investor],
        underwriter: Underwriter,
        liquidity_share: Callable[[], float],
    ):
        """Plants with their opening balance sheets, and the centre. A plant's bank debt is a set
        of the banks' opening power-plant loans, handed out until it reaches the scenario's debt
        ratio; its book value follows from its capacity. No plants without a power block."""
        self.world = world
        self.rng = rng
        self.opening = opening
        self.banks = banks
        self.bank_accounts = np.array([bank.account for bank in banks])
        self.plants: list[PowerPlant] = []
        self.centre: SecuritizationCenter | None = None
        self.rows: list[dict[str, Any]] = []
        self.desk: ReceivablesDesk | None = None
        spec = world.scenario.power
        if spec is None:
            return
        ledger, loans = world.ledger, world.loans
        for name in ("power grid", "coal suppliers", "power contractors"):
            ledger.outside[name] = ledger.open_account(name, "outside")
        fleet = power.draw_fleet(spec, rng)
        for k in range(spec.n_plants):
            account = ledger.open_account(f"Plant {k + 1:02d}", "power_plant")
            self.plants.append(PowerPlant(
                model, world, k, account, fleet.capacity_mw[k], fleet.hours_per_year[k],
                fleet.tariff[k], fleet.coal_kg_per_kwh[k],
            ))  # fmt: skip
        self.coal_gap = spec.coal.initial_log_gap
        self.coal_price = spec.coal.reference_cny_per_t * math.exp(self.coal_gap)
        self.dispatch = power.dispatch_factor(
            self.coal_price, spec.coal.reference_cny_per_t, spec.dispatch_coal_elasticity,
            spec.min_dispatch,
        )  # fmt: skip
        for plant in self.plants:
            plant.generate(self.dispatch, 0.0, self.coal_price)  # a normal quarter: working cash
        book = np.array([p.capacity_mw * spec.build_cost_cny_per_kw / 1e6 for p in self.plants])
        book *= spec.book_value_share
        working = np.array([plant.buffer(0.0) for plant in self.plants])
        target = spec.initial_debt_ratio * (book + working)
        candidates = rng.permutation(np.flatnonzero(  # loans small enough to build a plant's debt
            (loans.segment == SEGMENTS.index("power_plant")) & (loans.status == Status.PERFORMING)
            & np.isin(loans.holder, self.bank_accounts)
            & (loans.principal <= plant_loans.LARGEST_OPENING_LOAN * np.median(target))
        ))  # fmt: skip
        owner = plant_loans.assign_by_target(loans.principal[candidates], target)
        self.plant_loans = plant_loans.PlantLoans(loans.n)
        self.plant_loans.assign(candidates[owner >= 0], owner[owner >= 0], loans)
        self.refresh_loans()
        service = self.plant_loans.scheduled_service(loans, len(self.plants))
        mapped = self.plant_loans.mapped
        for k, plant in enumerate(self.plants):
            mine = mapped[self.plant_loans.plant[mapped] == k]
            lent = [float(loans.principal[mine][loans.holder[mine] == b.account].sum())
                    for b in banks]  # fmt: skip
            house_bank = banks[int(np.argmax(lent)) if max(lent) > 0 else k % len(banks)]
            plant.open_books(book[k], plant.buffer(service[k]), house_bank)
        self.plant_loans.snapshot(loans)
        if spec.centre:
            self.centre = SecuritizationCenter(
                model, world, ledger.open_account("Securitization Center", "centre")
            )
        self.desk = ReceivablesDesk(
            model, world, investors, underwriter, self.centre, liquidity_share
        )
        self.flows = dict.fromkeys(
            ("npl_new", "abs_investor_losses", "capex_funded", "capex_unfunded", "rolled_over"),
            0.0,
        )
        self.round_cost = dict.fromkeys(power.ROUTES, float("nan"))
        self.funded = dict.fromkeys(power.ROUTES, 0.0)
        world.holdings.recount(loans, ledger.n_accounts)
        self.record_plants()

    @property
    def vehicles(self) -> list[ReceivablesVehicle]:
        """Every receivables ABS issued so far."""
        return self.desk.vehicles if self.desk is not None else []

    def _quote_pool(self, plants: list[PowerPlant], amounts: np.ndarray) -> AbsQuote:
        return self.desk.quote(plants, amounts, True, self.dispatch)

    def run(self) -> None:
        """Power plants pay what their bank loans were charged, generate at the dispatch the coal
        price allows, sell power (receivables they sold go to their ABS vehicles), finance new
        capacity once a year by the cheapest route open to them, and default on their bank loans
        when cash cannot meet the next quarter's debt service (docs/ODD.md, power sector). No-op
        without plants."""
        if not self.plants:
            return
        plants, loans = self.plants, self.world.loans
        self.flows = dict.fromkeys(self.flows, 0.0)
        self.round_cost = dict.fromkeys(power.ROUTES, float("nan"))
        draws = power.QuarterDraws.draw(self.rng, len(plants))
        self.draw_coal_price(draws.coal)
        due = self.plant_loans.settle(
            loans, self.world.quarter, self.world.scenario.write_off_age_q, len(plants)
        )
        self.refresh_loans()
        for k, plant in enumerate(plants):
            plant.settle_loans(due.interest[k], due.principal[k], due.closed_principal[k],
                               due.recovery[k])  # fmt: skip
            plant.generate(self.dispatch, draws.hours[k], self.coal_price)
        for vehicle in self.vehicles:
            self.flows["abs_investor_losses"] += vehicle.service()
        for plant in plants:
            plant.sell_power()
        if self.world.quarter % 4 == 1:  # the first quarter of each year
            self.finance_capex(draws)
            self.refresh_loans()
        service = self.plant_loans.scheduled_service(loans, len(plants))
        for k, plant in enumerate(plants):
            need = plant.rollover_need(service[k], due.interest[k])
            if need > 0 and self.lend_to_plant(
                plant,
                need,
                plant.quote_loan(need, 0.0, repaid=service[k]),
                draws.secured[k],
                "rollover",
            ):
                service = self.plant_loans.scheduled_service(loans, len(plants))
            if plant.close_quarter(service[k]):
                self.default_plant(plant, draws.quality[k], draws.legal[k])
        self.plant_loans.snapshot(loans)
        self.refresh_loans()
        self.world.holdings.recount(self.world.loans, self.world.ledger.n_accounts)
        if self.world.quarter % 4 == 0 or self.world.quarter == self.world.scenario.quarters:
            self.record_plants()

    def draw_coal_price(self, epsilon: float) -> None:
        """The coal price's log gap to its reference mean-reverts, takes an innovation and any
        scheduled jump; dear coal cuts dispatch. This is the power scenario's macro draw, made at
        the start of the plants' phase from the power stream so no other phase's draws change."""
        spec = self.world.scenario.power
        coal = spec.coal
        jump = sum(s.log_jump for s in coal.shocks if s.quarter == self.world.quarter)
        self.coal_gap = power.coal_log_gap_step(
            self.coal_gap, coal.persistence_q, coal.volatility_q, epsilon, jump
        )
        self.coal_price = coal.reference_cny_per_t * math.exp(self.coal_gap)
        self.dispatch = power.dispatch_factor(
            self.coal_price, coal.reference_cny_per_t, spec.dispatch_coal_elasticity,
            spec.min_dispatch,
        )  # fmt: skip
        if jump:
            self.world.log_event("coal_shock", "coal market", f"log price jump {jump:+.2f}", jump)

    def refresh_loans(self) -> None:
        """Each plant's bank debt and defaulted debt, from its loans in the loan book."""
        n = len(self.plants)
        self.debt = self.plant_loans.debt_by_plant(self.world.loans, n)
        npl = self.plant_loans.npl_by_plant(self.world.loans, n)
        for plant in self.plants:
            plant.loan_statement(self.debt[plant.index], npl[plant.index])

    def finance_capex(self, draws: power.QuarterDraws) -> None:
        """The year's financing round: a plant with a project is quoted a loan by its house bank,
        a stand-alone ABS and, where a centre exists, a place in the centre's pool; it takes the
        cheapest route open to it and falls back to the next when a deal cannot be placed."""
        plants = self.plants
        projects = [
            plant for k, plant in enumerate(plants)
            if plant.draw_project(draws.project[k], draws.size[k]) > 0
        ]  # fmt: skip
        costs: dict[PowerPlant, dict[str, power.RouteCost]] = {}
        closed_by: dict[PowerPlant, dict[str, str]] = {}
        standalone = {}
        for plant in projects:
            need = plant.financing_need
            standalone[plant] = self.desk.quote([plant], np.array([need]), False, self.dispatch)
            costs[plant] = {
                "loan": plant.quote_loan(need, plant.capex_need),
                "standalone": standalone[plant].cost,
                "pooled": power.RouteCost.unavailable(),
            }
            closed_by[plant] = {"loan": "", "standalone": standalone[plant].reason,
                                "pooled": "no centre" if self.centre is None else ""}  # fmt: skip
        pool = None
        if self.centre is not None and projects:
            cheapest = {
                p: min((c.total[0] for c in costs[p].values() if c.available[0]), default=np.inf)
                for p in projects
            }
            pool, seen = self.centre.form_pool(projects, cheapest, self._quote_pool)
            for plant, (cost, reason) in seen.items():
                costs[plant]["pooled"], closed_by[plant]["pooled"] = cost, reason
        for route in power.ROUTES:
            quoted = [c[route].total[0] for c in costs.values() if c[route].available[0]]
            self.round_cost[route] = float(np.mean(quoted)) if quoted else float("nan")
        members = pool.plants if pool is not None and self.desk.issue(pool) is not None else []
        for k, plant in enumerate(plants):
            if plant not in costs:
                continue
            for route in power.ROUTES:
                plant.record_quotes(costs[plant][route].columns(route, closed_by[plant][route]))
            ranked = sorted(
                (r for r in ("loan", "standalone") if costs[plant][r].available[0]),
                key=lambda r, c=costs[plant]: c[r].total[0],
            )
            for route in [] if plant in members else ranked:
                if route == "standalone" and self.desk.issue(standalone[plant]) is not None:
                    break
                if route == "loan" and self.lend_to_plant(
                    plant, plant.financing_need, costs[plant]["loan"], draws.secured[k], "loan"
                ):
                    break
            if plant.route:
                plant.invest()
                self.funded[plant.route] += plant.capex_need
                self.flows["capex_funded"] += plant.capex_need
            else:
                self.flows["capex_unfunded"] += plant.capex_need

    def lend_to_plant(self, plant: PowerPlant, amount: float, cost: power.RouteCost,
                      secured_draw: float, purpose: str) -> bool:  # fmt: skip
        """The house bank lends at the quoted all-in rate, for a project (``purpose`` "loan") or to
        roll over debt the plant cannot repay from cash ("rollover"): one of the ordinary loans
        it made this quarter is prepaid, and its slot in the loan book becomes the plant's loan."""
        bank, loans = plant.house_bank, self.world.loans
        if not cost.available[0] or bank is None:
            return False
        slot = self.plant_loans.fresh_slot(loans, bank.account)
        if slot < 0 or bank.cash < amount:
            return False
        replaced = float(loans.principal[slot])
        self.world.ledger.transfer(self.world.ledger.outside["borrowers"], bank.account, replaced,
                             "loan_prepaid")  # fmt: skip
        loans.originate(
            np.array([slot]), np.array([bank.account]), np.array([SEGMENTS.index("power_plant")]),
            np.array([amount]), self.opening.pd_multiplier_by_account,
            self.world.scenario.macro.benchmark_rate, np.array([secured_draw]), np.ones(1),
        )  # fmt: skip
        loans.rate[slot] = cost.total[0] / 1e4
        loans.remaining_q[slot] = self.world.scenario.power.loan_maturity_q
        self.plant_loans.assign(np.array([slot]), np.array([plant.index]), loans)
        bank.book_new_lending(amount - replaced)
        plant.receive_financing(bank.account, amount, purpose, 0.0)
        if purpose == "rollover":
            self.flows["rolled_over"] += amount
        return True

    def default_plant(self, plant: PowerPlant, quality_draw: float, legal_draw: float) -> None:
        """Cross-default: all the plant's bank loans become NPLs of whoever holds them and enter
        the ordinary workout and disposal; where bankruptcy remoteness fails, a court may also
        pull the receivables it sold back into its estate for a while."""
        loans, sigma = self.world.loans, self.world.scenario.borrower_quality_dispersion
        quality = float(workout_quality(sigma, np.asarray(quality_draw)))
        slots = self.plant_loans.default_plant(loans, plant.index, self.world.quarter, quality)
        face = float(loans.principal[slots].sum())
        by_holder = np.bincount(
            loans.holder[slots],
            weights=loans.principal[slots],
            minlength=self.world.ledger.n_accounts,
        )
        for bank in self.banks:
            if by_holder[bank.account] > 0:
                bank.book_loan_flows(0.0, 0.0, 0.0, 0.0, 0.0, new_npl=by_holder[bank.account])
        plant.default_on_loans(face)
        self.flows["npl_new"] += face
        for vehicle in self.vehicles:
            if vehicle.live and plant in vehicle.plants:
                vehicle.recharacterise(plant, legal_draw)
        self.world.log_event(
            "plant_default", plant.name, f"{slots.size} bank loans non-performing", face
        )

    def metrics(self) -> dict[str, float]:
        """The power sector's columns of ``model.parquet`` (NaN or 0 without plants)."""
        if not self.plants:
            return power.empty_metrics()
        loans, plants, flows = self.world.loans, self.plants, self.flows
        idx = self.plant_loans.mapped
        bad = idx[
            (loans.status[idx] == Status.NPL) & np.isin(loans.holder[idx], self.bank_accounts)
        ]
        funded = sum(self.funded.values())
        debt = float(self.debt.sum())
        return {
            "coal_price": self.coal_price,
            "power_debt_ratio": _div(debt, sum(p.total_assets for p in plants)),
            "power_bank_debt": debt,
            "power_abs_outstanding": sum(v.balance for v in self.vehicles if v.live),
            "power_npl_new": flows["npl_new"],
            "power_npl_created": sum(p.npl_created for p in plants),
            "power_bank_npl": float(loans.principal[bad].sum()),
            "power_abs_investor_losses": flows["abs_investor_losses"],
            "power_capex_funded": flows["capex_funded"],
            "power_capex_unfunded": flows["capex_unfunded"],
            "power_rolled_over": flows["rolled_over"],
            **{f"power_share_{r}": _div(self.funded[r], funded) for r in power.ROUTES},
            **{f"power_cost_{r}_bp": self.round_cost[r] for r in power.ROUTES},
            "power_plants_in_default": float(sum(p.in_default for p in plants)),
        }

    def violations(self) -> list[str]:
        """Plants' balance sheets balance, vehicles hold no negative cash and their holders own
        exactly the balance, the centre keeps nothing, and plant loans are live power loans."""
        if not self.plants:
            return []
        problems, loans = [], self.world.loans
        if not np.allclose(self.plant_loans.debt_by_plant(loans, len(self.plants)),
                           self.debt, rtol=1e-9, atol=1e-9):  # fmt: skip
            problems.append("stale plant debt")
        owed = np.zeros(len(self.plants))
        for vehicle in self.vehicles:
            for plant, balance in zip(vehicle.plants, vehicle.member_balance, strict=True):
                owed[plant.index] += balance
            held = sum(vehicle.holders.values())
            if vehicle.cash < -1e-9 or abs(held - vehicle.balance) > 1e-7 * max(held, 1.0):
                problems.append(f"{vehicle.name}: cash {vehicle.cash:.6g}, holders {held:.6g}")
        for plant in self.plants:
            size = max(plant.total_assets, plant.liabilities, 1.0)
            if abs(plant.balance_gap) > 1e-7 * size:
                problems.append(f"{plant.name}: balance sheet gap {plant.balance_gap:.6g}")
            if min(plant.cash, plant.ppe) < -1e-9 * size:
                problems.append(f"{plant.name}: negative cash or plant")
            if abs(plant.abs_obligation - owed[plant.index]) > 1e-7 * size:
                problems.append(f"{plant.name}: receivables sold {plant.abs_obligation:.6g}")
        if self.centre is not None and abs(self.centre.cash) > 1e-9:
            problems.append(f"centre keeps cash {self.centre.cash:.6g}")
        idx = self.plant_loans.mapped
        power_code = SEGMENTS.index("power_plant")
        if (loans.status[idx] > Status.NPL).any() or (loans.segment[idx] != power_code).any():
            problems.append("a plant's loan slot is closed or not a power-plant loan")
        return problems

    def record_plants(self) -> None:
        """Rows of ``power.parquet`` for the year just ended (year 0 = the opening position)."""
        year = (self.world.quarter + 3) // 4
        self.rows.extend(plant.record(year) for plant in self.plants)
        for plant in self.plants:
            plant.reset_year()

    def frame(self) -> pd.DataFrame:
        """``power.parquet``: one row per plant and year (empty without power plants)."""
        return pd.DataFrame(self.rows)


def _div(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")
