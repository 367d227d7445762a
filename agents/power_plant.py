"""PowerPlant: a coal-fired plant that sells power, services its bank debt and finances capacity.

The plant's balance sheet: cash (its ledger account) and plant at book value; bank debt (its loans
in the common loan book) and the tariff receivables it has sold forward to ABS vehicles; equity.
Each quarter it pays what its loans were charged, generates at the dispatch the coal price allows,
receives what the grid pays beyond the receivables it sold, buys coal, pays its costs and its
owners, and defaults on its bank loans when its cash cannot meet the next quarter's debt service.
Once a year the tariff follows last year's coal price (the linkage rule) and the plant may have a
project, funded by its owners' project capital and the cheapest route.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from nplsim.market import power, route_costs
from nplsim.market.information_costs import information_cost
from nplsim.market.scenario import InvestorSpec

if TYPE_CHECKING:
    from nplsim.agents.bank import StateBank
    from nplsim.agents.world import World


class PowerPlant(mesa.Agent):
    """One plant. Capacity in MW, hours a year, tariff in CNY/kWh, money in CNY bn."""

    def __init__(self, model: mesa.Model, world: World, index: int, account: int,
                 capacity_mw: float, hours_per_year: float, tariff: float,
                 coal_kg_per_kwh: float):  # fmt: skip
        super().__init__(model)
        self.world = world
        self.index = index
        self.name = f"Plant {index + 1:02d}"
        self.account = account
        self.capacity_mw = float(capacity_mw)
        self.hours_per_year = float(hours_per_year)
        self.base_tariff = float(tariff)  # at the reference coal price
        self.tariff = float(tariff)
        self.coal_kg_per_kwh = float(coal_kg_per_kwh)
        self.house_bank: StateBank | None = None
        self.statement_debt = 0.0  # its bank debt, performing and defaulted, per its lenders
        self.statement_npl = 0.0  # of which non-performing
        self.ppe = 0.0
        self.equity = 0.0
        self.abs_obligation = 0.0
        self.in_default = False
        self.npl_created = 0.0
        self.owner_support = 0.0
        self.profit_q = 0.0  # net profit of the quarter so far
        self.hours_q = 0.0
        self.quarter_ops = power.Generation(*(np.zeros(1) for _ in range(4)))
        self.delivered = 0.0
        self.capex_need = 0.0
        self.route = ""
        self.raised = 0.0
        self.quotes: dict[str, Any] = {}
        self.reset_year()

    # ------------------------------------------------------------------ balance sheet
    @property
    def cash(self) -> float:
        """Cash (the ledger balance)."""
        return self.world.ledger.balance(self.account)

    @property
    def bank_debt(self) -> float:
        """Principal of its performing and defaulted bank loans (recourse, interest-bearing)."""
        return float(self.statement_debt)

    @property
    def total_assets(self) -> float:
        """Cash plus plant at book value."""
        return self.cash + self.ppe

    @property
    def liabilities(self) -> float:
        """Bank debt plus the receivables sold forward to ABS vehicles (non-recourse)."""
        return self.bank_debt + self.abs_obligation

    @property
    def balance_gap(self) -> float:
        """Assets − liabilities − equity: zero when the balance sheet balances."""
        return self.total_assets - self.liabilities - self.equity

    @property
    def debt_ratio(self) -> float:
        """Bank debt / total assets, as its accounts show it: a true sale of receivables is not
        borrowing, so ABS funding stays off this ratio."""
        return float(power.debt_ratio(self.bank_debt, self.total_assets))

    @property
    def adjusted_leverage(self) -> float:
        """Debt-like liabilities / total assets: bank debt plus the receivables sold forward,
        which take the first cut of its revenue as debt service would."""
        return float(power.debt_ratio(self.liabilities, self.total_assets))

    @property
    def characteristics(self) -> np.ndarray:
        """What sets a plant apart for an appraiser: heat rate, hours and tariff."""
        return np.array([self.coal_kg_per_kwh, self.hours_per_year, self.base_tariff])

    def _book_pnl(self, amount: float, item: str = "", sign: float = 1.0) -> None:
        """A gain (or loss) to equity, also added to the year's ``item`` times ``sign``; all but
        dividends are the quarter's profit."""
        self.equity += amount
        if item != "dividends":
            self.profit_q += amount
        if item:
            self.year[item] += sign * amount

    def reset_year(self) -> None:
        """Zero the flows accumulated over the year (for ``power.parquet``)."""
        self.year = dict.fromkeys(
            ("revenue", "fuel", "opex", "ebitda", "interest", "debt_service", "abs_cost",
             "depreciation", "dividends", "capex", "rolled_over"), 0.0,
        )  # fmt: skip

    def pay(self, payee: int, amount: float, kind: str) -> None:
        """Pay from cash; the owners (a provincial state group) cover what the cash cannot."""
        short = amount - max(self.cash, 0.0)
        if short > 0:
            self.world.ledger.transfer(
                self.world.ledger.outside["owners"], self.account, short, "owner_support"
            )
            self.equity += short
            self.owner_support += short
        self.world.ledger.transfer(self.account, payee, amount, kind)

    def open_books(self, ppe: float, cash: float, house_bank: StateBank) -> None:
        """Opening balance sheet: plant at book value, working cash from the owners, and the bank
        loans already in the loan book; ``house_bank`` lends to it from now on."""
        self.house_bank = house_bank
        self.ppe = ppe
        self.world.ledger.transfer(
            self.world.ledger.outside["owners"], self.account, cash, "opening_equity"
        )
        self.equity = self.total_assets - self.bank_debt

    # ------------------------------------------------------------------ the quarter
    def settle_loans(self, interest: float, instalment: float, closed: float,
                     recovery: float) -> None:  # fmt: skip
        """Pay what the loan book charged its performing loans; a defaulted loan that creditors
        closed leaves the books against the collateral they realised (a gain on the rest)."""
        self.profit_q = 0.0  # a new quarter's accounts
        borrowers = self.world.ledger.outside["borrowers"]
        self.pay(borrowers, interest + instalment, "plant_debt_service")
        self._book_pnl(-interest, "interest", -1.0)
        self.year["debt_service"] += interest + instalment
        if closed > 0:
            from_plant = min(recovery, self.ppe)
            self.ppe -= from_plant
            self.pay(borrowers, recovery - from_plant, "plant_collateral")
            self._book_pnl(closed - recovery)
        self.in_default = self.statement_npl > 0

    def default_on_loans(self, face: float) -> None:
        """It cannot meet its debt service: its bank loans of ``face`` are now non-performing."""
        self.in_default = True
        self.npl_created += face

    def loan_statement(self, debt: float, npl: float) -> None:
        """Its lenders' statement: bank debt outstanding (CNY bn), and how much of it is
        non-performing."""
        self.statement_debt = debt
        self.statement_npl = npl

    def set_tariff(self, shift: float) -> None:
        """The provincial tariff rule moved the benchmark by ``shift`` CNY/kWh."""
        self.tariff = self.base_tariff + shift

    def generate(self, dispatch: float, noise: float, coal_price: float) -> power.Generation:
        """Run at the dispatch coal allows (less when in default: no coal on credit), buying coal
        at ``coal_price`` (CNY/t)."""
        spec = self.world.scenario.power
        share = dispatch * (spec.distress_dispatch if self.in_default else 1.0)
        shock = np.exp(spec.hours_noise_q * noise - spec.hours_noise_q**2 / 2)
        self.quarter_ops = power.generate(
            np.array([self.capacity_mw]), np.array([self.hours_per_year]), share * shock,
            np.array([self.tariff]), np.array([self.coal_kg_per_kwh]), coal_price,
            spec.opex_cny_per_kw_year,
        )  # fmt: skip
        self.hours_q = float(self.quarter_ops.hours_q[0])
        self.delivered = 0.0
        return self.quarter_ops

    def receivables(self, pledged_mw: np.ndarray) -> np.ndarray:
        """Receivables this quarter's generation creates on ``pledged_mw`` of its capacity."""
        return power.receivables(pledged_mw, self.hours_q, self.tariff)

    def abs_settled(self, delivered: float, principal_reduction: float) -> None:
        """A vehicle took ``delivered`` of its receivables and its share of the deal's principal
        fell by ``principal_reduction`` (repaid, or extinguished at the legal final maturity)."""
        self.delivered += delivered
        self.abs_obligation = max(self.abs_obligation - principal_reduction, 0.0)
        self._book_pnl(principal_reduction - delivered, "abs_cost", -1.0)

    def sell_power(self) -> None:
        """The grid pays for the quarter's power beyond the receivables sold; coal and running
        costs are paid; the plant depreciates."""
        ops, ledger = self.quarter_ops, self.world.ledger
        revenue, fuel, opex = float(ops.revenue[0]), float(ops.fuel[0]), float(ops.opex[0])
        paid = max(revenue - self.delivered, 0.0)
        ledger.transfer(ledger.outside["power grid"], self.account, paid, "power_sales")
        self.pay(ledger.outside["coal suppliers"], fuel, "coal_purchase")
        self.pay(ledger.outside["service_providers"], opex, "plant_opex")
        depreciation = self.ppe / (4 * self.world.scenario.power.depreciation_years)
        self.ppe -= depreciation
        self._book_pnl(paid + self.delivered, "revenue")
        self._book_pnl(-fuel, "fuel", -1.0)
        self._book_pnl(-opex, "opex", -1.0)
        self._book_pnl(-depreciation, "depreciation", -1.0)
        self.year["ebitda"] += revenue - fuel - opex

    def buffer(self, debt_service_next: float) -> float:
        """Cash the plant keeps: some quarters of debt service, coal and running costs."""
        ops = self.quarter_ops
        costs = float(ops.fuel[0] + ops.opex[0])
        return self.world.scenario.power.cash_buffer_q * (debt_service_next + costs)

    def cash_short(self, debt_service_next: float) -> bool:
        """Whether cash falls short of the next quarter's debt service."""
        return debt_service_next > 0 and self.cash < debt_service_next * (1 - 1e-12)

    def refinancing_wanted(self, principal_paid: float, loan: route_costs.RouteCost) -> bool:
        """Borrowing new to repay old: whether the owners have the plant refinance the principal
        it repaid on its bank loans with ``loan`` — while it costs them less than their required
        return (``refinance_hurdle``) they take the cash instead of paying the debt down."""
        if self.in_default or principal_paid <= 0 or not loan.available:
            return False
        return loan.total / 1e4 <= self.world.scenario.power.refinance_hurdle

    def rescue_need(self, debt_service_next: float) -> float:
        """What the plant asks its house bank to lend when its cash falls short of the next debt
        service, at whatever price: enough to pay it and keep its running-cost buffer (0 when its
        cash suffices, or in default)."""
        if self.in_default or not self.cash_short(debt_service_next):
            return 0.0
        return debt_service_next + self.buffer(0.0) - self.cash

    def close_quarter(self, debt_service_next: float) -> bool:
        """Distress test, then dividends: True when cash cannot meet the next quarter's debt
        service, so the plant defaults on its bank loans."""
        if self.cash_short(debt_service_next):
            return True
        surplus = self.cash - self.buffer(debt_service_next)
        if surplus > 0 and not self.in_default:
            dividend = self.world.scenario.power.payout_share * surplus
            self.pay(self.world.ledger.outside["owners"], dividend, "plant_dividend")
            self._book_pnl(-dividend, "dividends", -1.0)
        return False

    # ------------------------------------------------------------------ the year's project
    def draw_project(self, arrival: float, size: float) -> float:
        """A project arrives with the scenario's yearly chance; its cost is lognormal around a
        share of what building the plant new would cost (CNY bn, 0 if none)."""
        spec = self.world.scenario.power
        self.capex_need, self.route, self.raised, self.quotes = 0.0, "", 0.0, {}
        if self.in_default or arrival >= spec.capex_prob_annual:
            return 0.0
        new_cost = self.capacity_mw * spec.build_cost_cny_per_kw / 1e6
        sigma = spec.capex_dispersion
        self.capex_need = spec.capex_share * new_cost * float(np.exp(sigma * size - sigma**2 / 2))
        return self.capex_need

    @property
    def financing_need(self) -> float:
        """The part of the project raised outside: all but the plant's own project capital."""
        return (1.0 - self.world.scenario.power.equity_share) * self.capex_need

    @property
    def project_mw(self) -> float:
        """Capacity the project builds, whose tariff receivables back an ABS."""
        return power.capacity_added_mw(
            self.capex_need, self.world.scenario.power.build_cost_cny_per_kw
        )

    def quote_loan(
        self, amount: float, new_assets: float, rollover: bool = False
    ) -> route_costs.RouteCost:
        """(a) What its house bank would charge for ``amount`` funding ``new_assets`` (a project),
        or for a ``rollover`` (the cash stays with the plant). The bank prices the loan on the
        common funding base (``route_costs.loan_yield``): its default risk at the plant's adjusted
        leverage after the loan (receivables sold forward count as debt), its loss given default
        from the power-plant segment's collateral, the cost of appraising and monitoring the
        plant. It lends no further above ``max_loan_debt_ratio`` and only what it has. A rollover
        is open even where projects are not financed by loans."""
        config = self.world.scenario
        spec = config.power
        if (not rollover and "loan" not in spec.routes) or self.house_bank is None:
            return route_costs.RouteCost()
        leverage = self.leverage_after(amount, amount if rollover else new_assets)
        segment = config.segments["power_plant"]
        lgd = route_costs.loss_given_default(
            segment.secured_share, segment.collateral_cover, segment.haircut,
            segment.unsecured_recovery, self.world.loans.collateral_realisation,
        )  # fmt: skip
        risk_aversion, liquidity_premium = lender_terms(config.investors)
        rate = route_costs.loan_yield(
            config.macro.gov_bond_yield, route_costs.merton_default_prob(leverage,
                                                                         spec.asset_volatility),
            lgd, risk_aversion, liquidity_premium,
        ).total  # fmt: skip
        knowing = information_cost(
            np.array([amount]), 1.0, self.world.regime.disclosure_level, False, spec.information
        )
        if rollover:  # the bank knows its borrower: nothing to appraise
            knowing = dataclasses.replace(knowing, appraisal=0.0)
        open_ = leverage <= spec.max_loan_debt_ratio and self.house_bank.cash >= amount
        return route_costs.loan_cost(
            amount, rate, knowing, self.bank_debt + amount, spec.loan_maturity_q, open_
        )

    def leverage_after(self, amount: float, new_assets: float) -> float:
        """Adjusted leverage once it raises ``amount`` (bank debt or receivables sold forward) and
        adds ``new_assets``; infinite without assets."""
        assets = self.total_assets + new_assets
        return (self.liabilities + amount) / assets if assets > 0 else math.inf

    def receive_financing(self, payer: int, amount: float, route: str, upfront_cost: float) -> None:
        """Cash from a bank loan or an ABS issue; an ABS issue is a forward sale of receivables
        (a non-recourse obligation), whose upfront costs the plant bears."""
        self.world.ledger.transfer(payer, self.account, amount - upfront_cost, f"plant_{route}")
        if route in ("standalone", "pooled"):
            self.abs_obligation += amount
            self._book_pnl(-upfront_cost, "abs_cost", -1.0)
        if route == "rollover":
            self.year["rolled_over"] += amount
        else:
            self.route, self.raised = route, amount

    def invest(self) -> None:
        """Build the project: the owners put in the project capital, the contractors are paid,
        and the plant adds the project at cost and its new capacity."""
        spec, ledger = self.world.scenario.power, self.world.ledger
        capital = spec.equity_share * self.capex_need
        ledger.transfer(ledger.outside["owners"], self.account, capital, "project_capital")
        self.equity += capital
        self.pay(ledger.outside["power contractors"], self.capex_need, "plant_capex")
        self.ppe += self.capex_need
        self.capacity_mw += power.capacity_added_mw(self.capex_need, spec.build_cost_cny_per_kw)
        self.year["capex"] += self.capex_need

    def record_quotes(self, columns: dict[str, Any]) -> None:
        """What each route quoted it in this year's financing round (``power.parquet``)."""
        self.quotes.update(columns)

    # ------------------------------------------------------------------ output
    def record(self, year: int) -> dict[str, Any]:
        """One row of ``power.parquet``: the plant at the end of a year, its year's flows, and the
        costs it was quoted by each route in that year's financing round."""
        quotes = self.quotes or NO_QUOTES  # no project this year: no quotes
        return {
            "year": year,
            "quarter": self.world.quarter,
            "plant": self.name,
            "house_bank": self.house_bank.name if self.house_bank else "",
            "capacity_mw": self.capacity_mw,
            "cash": self.cash,
            "ppe": self.ppe,
            "total_assets": self.total_assets,
            "bank_debt": self.bank_debt,
            "abs_obligation": self.abs_obligation,
            "equity": self.equity,
            "tariff": self.tariff,
            "debt_ratio": self.debt_ratio,
            "adjusted_leverage": self.adjusted_leverage,
            "in_default": self.in_default,
            "npl_created": self.npl_created,
            "owner_support": self.owner_support,
            **self.year,
            "capex_need": self.capex_need,
            "route": self.route,
            "raised": self.raised,
            **quotes,
        }


# The route-cost columns of ``power.parquet`` for a plant that was quoted nothing.
NO_QUOTES: dict[str, float | bool | str] = {
    key: value
    for route in route_costs.ROUTES
    for key, value in route_costs.RouteCost().columns(route, "no project").items()
}


def lender_terms(investors: list[InvestorSpec]) -> tuple[float, float]:
    """How a bank prices a plant loan: as its treasury would price a bond of the same risk that it
    cannot sell (the scenario's first bank-treasury investors: their risk aversion and their full
    liquidity premium, annual); ``InvestorSpec``'s defaults where the scenario has none."""
    treasury = next((i for i in investors if i.investor_class == "bank_treasury"), None)
    if treasury is None:
        treasury = InvestorSpec(investor_class="bank_treasury", count=1, capacity_cny_bn=1.0)
    return treasury.risk_aversion, treasury.liquidity_premium_bp / 1e4
