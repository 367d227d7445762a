"""The power sector (phase 9b): coal plants, their bank debt, and the Securitization Center.

Plants pay what their bank loans were charged, generate at the dispatch the coal price allows (the
price is drawn in phase 2, ``economy.coal_market``), sell power at the regulated tariff
(receivables they sold go to their ABS vehicles), finance new capacity once a year by the cheapest
route open to them — a loan from their house bank, a stand-alone receivables ABS, or a place in the
centre's pool — and default on their bank loans when cash cannot meet the next quarter's debt
service. Their loans live in the common loan book; a default turns them into the banks' NPLs.
"""

from __future__ import annotations

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
from nplsim.economy.coal_market import CoalMarket
from nplsim.economy.opening import OpeningBook
from nplsim.economy.receivables_desk import ReceivablesDesk
from nplsim.economy.world import EconomyWorld
from nplsim.market import plant_loans, power, route_costs
from nplsim.market.credit import workout_quality
from nplsim.market.loans import SEGMENTS, Status
from nplsim.market.workout_value import end_ages_by_account


class PowerSector:
    """The plants, their loans and ABS, and the centre; a no-op without a power block."""

    def __init__(
        self,
        model: mesa.Model,
        world: EconomyWorld,
        rng: np.random.Generator,
        coal: CoalMarket,
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
        self.coal = coal
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
        for plant in self.plants:
            plant.generate(coal.dispatch, 0.0, coal.price)  # a normal quarter: working cash
        book = np.array([p.capacity_mw * spec.build_cost_cny_per_kw / 1e6 for p in self.plants])
        book *= spec.book_value_share
        working = np.array([plant.buffer(0.0) for plant in self.plants])
        power_loans = (  # the banks' opening power-plant loans
            (loans.segment == SEGMENTS.index("power_plant")) & (loans.status == Status.PERFORMING)
            & np.isin(loans.holder, self.bank_accounts)
        )  # fmt: skip
        # A plant keeps cash_buffer_q quarters of its debt service too, so its debt is the opening
        # debt ratio of book value, working cash and that buffer: D = DR (B + W + b s D).
        service = _service_per_unit(loans, power_loans)
        target = spec.initial_debt_ratio * (book + working)
        target /= 1.0 - spec.initial_debt_ratio * spec.cash_buffer_q * service
        small = loans.principal <= plant_loans.LARGEST_OPENING_LOAN * np.median(target)
        candidates = plant_loans.enough_loans(  # loans small enough to build a plant's debt
            loans.principal, rng.permutation(np.flatnonzero(power_loans & small)),
            np.flatnonzero(power_loans & ~small), float(target.sum()),
        )  # fmt: skip
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
        self.books = FinancingBooks()
        world.holdings.recount(loans, ledger.n_accounts)
        self.record_plants()

    @property
    def vehicles(self) -> list[ReceivablesVehicle]:
        """Every receivables ABS issued so far."""
        return self.desk.vehicles if self.desk is not None else []

    def _quote_pool(self, plants: list[PowerPlant], amounts: np.ndarray) -> AbsQuote:
        return self.desk.quote(plants, amounts, True, self.coal.dispatch)

    def run(self) -> None:
        """Power plants pay what their bank loans were charged, generate at the dispatch the coal
        price allows, sell power (receivables they sold go to their ABS vehicles), finance new
        capacity once a year by the cheapest route open to them, and default on their bank loans
        when cash cannot meet the next quarter's debt service (docs/ODD.md, power sector). No-op
        without plants."""
        if not self.plants:
            return
        plants, loans, coal = self.plants, self.world.loans, self.coal
        self.flows = dict.fromkeys(self.flows, 0.0)
        draws = power.QuarterDraws.draw(self.rng, len(plants))
        new_year = self.world.quarter % 4 == 1  # the first quarter of each year
        if new_year:
            self.set_tariffs()
        end_age, _ = end_ages_by_account(
            self.world.scenario, self.world.ledger.n_accounts, self.bank_accounts
        )
        due = self.plant_loans.settle(loans, self.world.quarter, end_age, len(plants))
        self.refresh_loans()
        for k, plant in enumerate(plants):
            plant.settle_loans(due.interest[k], due.principal[k], due.closed_principal[k],
                               due.recovery[k])  # fmt: skip
            plant.generate(coal.dispatch, draws.hours[k], coal.fuel_price)
        for vehicle in self.vehicles:
            self.flows["abs_investor_losses"] += vehicle.service()
        for plant in plants:
            plant.sell_power()
        if new_year:
            self.finance_capex(draws)
            self.refresh_loans()
        for k, plant in enumerate(plants):
            service = self.roll_over(plant, due.principal[k], draws.secured[k])
            if plant.close_quarter(service):
                self.default_plant(plant, draws.quality[k], draws.legal[k])
        self.desk.observe_plants(plants)
        self.plant_loans.snapshot(loans)
        self.refresh_loans()
        self.world.holdings.recount(self.world.loans, self.world.ledger.n_accounts)
        if self.world.quarter % 4 == 0 or self.world.quarter == self.world.scenario.quarters:
            self.record_plants()

    def roll_over(self, plant: PowerPlant, principal_paid: float, secured_draw: float) -> float:
        """The house bank rolls the plant over: it refinances the principal just repaid where the
        owners want that, and lends what the plant lacks for the next debt service, as long as
        the plant's adjusted leverage stays within the bank's limit. Returns the plant's debt
        service due next quarter."""
        loans = self.world.loans
        if principal_paid > 0:
            quote = plant.quote_loan(principal_paid, 0.0, rollover=True)
            if plant.refinancing_wanted(principal_paid, quote):
                self.lend_to_plant(plant, principal_paid, quote, secured_draw, "rollover")
        service = self.plant_loans.scheduled_service_of(loans, plant.index)
        need = plant.rescue_need(service)
        if need > 0:
            quote = plant.quote_loan(need, 0.0, rollover=True)
            if self.lend_to_plant(plant, need, quote, secured_draw, "rollover"):
                service = self.plant_loans.scheduled_service_of(loans, plant.index)
        return service

    def own_debt_service(self, plants: list[PowerPlant]) -> np.ndarray:
        """What each plant must pay its banks next quarter from its own cash: interest and
        instalments, less the instalments its house bank would refinance at a price its owners
        accept (``refinancing_wanted``: borrowing new to repay old, as in calm years)."""
        loans, n = self.world.loans, len(self.plants)
        index = [plant.index for plant in plants]
        service = self.plant_loans.scheduled_service(loans, n)[index]
        interest = self.plant_loans.scheduled_interest(loans, n)[index]
        rolled = np.array([
            due > 0 and plant.refinancing_wanted(
                float(due), plant.quote_loan(float(due), 0.0, rollover=True)
            )
            for plant, due in zip(plants, service - interest, strict=True)
        ], dtype=bool)  # fmt: skip
        return np.where(rolled, interest, service)

    def set_tariffs(self) -> None:
        """The tariff rule: the benchmark follows last year's average coal price (the linkage)."""
        spec = self.world.scenario.power
        shift = power.linked_tariff_shift(
            self.coal.past_year_average(), spec.coal.reference_cny_per_t, spec.coal_kg_per_kwh,
            spec.tariff_pass_through, spec.tariff_cap, spec.tariff_cny_per_kwh,
        )  # fmt: skip
        for plant in self.plants:
            plant.set_tariff(shift)

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
        costs: dict[PowerPlant, dict[str, route_costs.RouteCost]] = {}
        closed_by: dict[PowerPlant, dict[str, str]] = {}
        standalone = {}
        for plant in projects:
            need = plant.financing_need
            standalone[plant] = self.desk.quote(
                [plant], np.array([need]), False, self.coal.dispatch
            )
            costs[plant] = {
                "loan": plant.quote_loan(need, plant.capex_need),
                "standalone": standalone[plant].cost,
                "pooled": route_costs.RouteCost(),
            }
            closed_by[plant] = {"loan": "", "standalone": standalone[plant].reason,
                                "pooled": "no centre" if self.centre is None else ""}  # fmt: skip
            self.books.quote_coupon(standalone[plant])
        pool = None
        if self.centre is not None and projects:
            cheapest = {
                p: min((c.total for c in costs[p].values() if c.available), default=np.inf)
                for p in projects
            }
            cover = self.desk.liquidity_cover(
                projects, np.array([p.financing_need for p in projects]),
                self.own_debt_service(projects),
            )  # fmt: skip
            admitted = self.centre.admit(projects, cover)
            for plant in projects:
                if plant not in admitted:
                    closed_by[plant]["pooled"] = "cash flow does not cover the debt service"
            if admitted:
                pool, seen = self.centre.form_pool(admitted, cheapest, self._quote_pool)
                for plant, (cost, reason) in seen.items():
                    costs[plant]["pooled"], closed_by[plant]["pooled"] = cost, reason
        members = pool.plants if pool is not None and self.desk.issue(pool) is not None else []
        for k, plant in enumerate(plants):
            if plant not in costs:
                continue
            for route in route_costs.ROUTES:
                plant.record_quotes(costs[plant][route].columns(route, closed_by[plant][route]))
                self.books.quote(route, costs[plant][route])
            ranked = sorted(
                (r for r in ("loan", "standalone") if costs[plant][r].available),
                key=lambda r, c=costs[plant]: c[r].total,
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
                self.books.fund(plant.route, plant.capex_need, plant.raised,
                                costs[plant][plant.route])  # fmt: skip
                self.flows["capex_funded"] += plant.capex_need
            else:
                self.books.unfunded(plant.capex_need)
                self.flows["capex_unfunded"] += plant.capex_need

    def lend_to_plant(self, plant: PowerPlant, amount: float, cost: route_costs.RouteCost,
                      secured_draw: float, purpose: str) -> bool:  # fmt: skip
        """The house bank lends at the quoted all-in rate, for a project (``purpose`` "loan") or to
        roll the plant over ("rollover"). A project loan takes the slot of one of the ordinary
        loans the bank made this quarter, which is prepaid; a rollover adds the new money to the
        plant's largest loan from the bank (``PlantLoans.top_up``), so a plant's loans do not
        multiply with its rollovers."""
        bank, loans = plant.house_bank, self.world.loans
        spec = self.world.scenario.power
        if not cost.available or bank is None or bank.cash < amount:
            return False
        slot = self.plant_loans.largest_loan(loans, plant.index, bank.account)
        replaced = 0.0
        if purpose == "rollover" and slot >= 0:
            self.plant_loans.top_up(loans, slot, amount, cost.total / 1e4, spec.loan_maturity_q)
        else:
            slot = self.plant_loans.fresh_slot(loans, bank.account)
            if slot < 0:
                return False
            replaced = float(loans.principal[slot])
            self.world.ledger.transfer(self.world.ledger.outside["borrowers"], bank.account,
                                       replaced, "loan_prepaid")  # fmt: skip
            loans.originate(
                np.array([slot]), np.array([bank.account]),
                np.array([SEGMENTS.index("power_plant")]), np.array([amount]),
                self.opening.pd_multiplier_by_account, self.world.scenario.macro.benchmark_rate,
                np.array([secured_draw]), np.ones(1),
            )  # fmt: skip
            loans.rate[slot] = cost.total / 1e4
            loans.remaining_q[slot] = spec.loan_maturity_q
            self.plant_loans.assign(np.array([slot]), np.array([plant.index]), loans)
        plant.loan_statement(plant.statement_debt + amount, plant.statement_npl)
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
        debt = float(self.debt.sum())
        assets = sum(p.total_assets for p in plants)
        abs_owed = sum(p.abs_obligation for p in plants)
        return {
            "coal_price": self.coal.price,
            "power_tariff": float(np.mean([p.tariff for p in plants])),
            "power_debt_ratio": _div(debt, assets),
            "power_debt_ratio_median": float(np.nanmedian([p.debt_ratio for p in plants])),
            "power_adjusted_leverage": _div(debt + abs_owed, assets),
            "power_adjusted_leverage_median": float(
                np.nanmedian([p.adjusted_leverage for p in plants])
            ),
            "power_bank_debt": debt,
            "power_abs_outstanding": sum(v.balance for v in self.vehicles if v.live),
            "power_npl_new": flows["npl_new"],
            "power_npl_created": sum(p.npl_created for p in plants),
            "power_bank_npl": float(loans.principal[bad].sum()),
            "power_abs_investor_losses": flows["abs_investor_losses"],
            "power_capex_funded": flows["capex_funded"],
            "power_capex_unfunded": flows["capex_unfunded"],
            "power_rolled_over": flows["rolled_over"],
            **self.books.metrics(),
            "power_plants_in_default": float(sum(p.in_default for p in plants)),
            "power_loss_making_share": float(np.mean([p.profit_q < 0 for p in plants])),
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


def _service_per_unit(loans, idx: np.ndarray) -> float:
    """Next quarter's interest and instalment per unit of principal of the loans ``idx``."""
    principal = loans.principal[idx]
    due = principal * (loans.rate[idx] / 4 + 1 / np.maximum(loans.remaining_q[idx], 1))
    return float(due.sum() / principal.sum()) if principal.sum() > 0 else 0.0


class FinancingBooks:
    """What the financing rounds raised, by route, and what it cost (bp a year, weighted by the
    amount raised), cumulative from the start: the realised all-in cost and its components, the
    mean quote of every route and component where the route was open, and the coupon of
    stand-alone ABS quotes."""

    PARTS = (*route_costs.COMPONENTS, "total")

    def __init__(self):
        self.capex = dict.fromkeys(route_costs.ROUTES, 0.0)  # project cost funded, by route
        self.capex_unfunded = 0.0
        self.raised = 0.0
        self.cost = dict.fromkeys(route_costs.COMPONENTS, 0.0)  # Σ amount × bp
        self.quoted = {route: dict.fromkeys(self.PARTS, 0.0) for route in route_costs.ROUTES}
        self.quotes = dict.fromkeys(route_costs.ROUTES, 0)
        self.coupons = [0.0, 0]

    def fund(self, route: str, capex: float, raised: float, cost: route_costs.RouteCost) -> None:
        """A project of ``capex`` was financed by ``raised`` through ``route`` at ``cost``."""
        self.capex[route] += capex
        self.raised += raised
        for component in route_costs.COMPONENTS:
            self.cost[component] += raised * cost.component(component)

    def unfunded(self, capex: float) -> None:
        """A project no route would finance."""
        self.capex_unfunded += capex

    def quote(self, route: str, cost: route_costs.RouteCost) -> None:
        """A plant was quoted ``cost`` for ``route`` (counted only where the route was open)."""
        if cost.available:
            self.quotes[route] += 1
            for part in self.PARTS:
                self.quoted[route][part] += cost.component(part)

    def quote_coupon(self, quote: AbsQuote) -> None:
        """The coupon a stand-alone deal's book cleared at, where it could be placed."""
        if quote.available:
            self.coupons[0] += quote.coupon
            self.coupons[1] += 1

    def metrics(self) -> dict[str, float]:
        """The financing columns of ``model.parquet``; NaN before anything was funded or quoted,
        and for a route never open (its quote is undefined, not zero)."""
        funded = sum(self.capex.values())
        components = {c: _div(self.cost[c], self.raised) for c in route_costs.COMPONENTS}
        quotes = {
            f"power_quote_{route}_bp" if part == "total" else f"power_quote_{route}_{part}_bp":
            _div(self.quoted[route][part], self.quotes[route])
            for route in route_costs.ROUTES for part in self.PARTS
        }  # fmt: skip
        return {
            "power_funded_share": _div(funded, funded + self.capex_unfunded),
            **{f"power_share_{r}": _div(self.capex[r], funded) for r in route_costs.ROUTES},
            "power_cost_bp": sum(components.values()),
            **{f"power_cost_{c}_bp": value for c, value in components.items()},
            **quotes,
            "power_standalone_coupon": _div(*self.coupons),
        }
