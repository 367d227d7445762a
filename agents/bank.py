"""StateBank: a state-owned commercial bank — originator of loans, settlor of securitisations.

The bank keeps its balance sheet — reserves at the central bank, government and policy-bank
bonds, interbank placements, other securities, AMC bonds, loans from the loan book less
loan-loss provisions; deposits (stable and less stable), interbank funding, central-bank
facilities, subordinated debt, preference shares and equity — books the quarter's income,
provisions to the prudential rules and its own target, pays tax and distributions, keeps its
capital structure (``bank_capital``) and its liquidity (``bank_treasury``), answers the
supervisor's corrective action, and decides each quarter which non-performing loans to keep
working out and which to dispose of (``bank_disposal``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa

from nplsim.agents.bank_capital import CapitalAdequacy
from nplsim.agents.bank_disposal import DisposalPolicy
from nplsim.agents.bank_treasury import Treasury
from nplsim.agents.originator import Originator
from nplsim.market.disposal import ShadowPrices
from nplsim.market.errors import ConfigError

if TYPE_CHECKING:
    from nplsim.agents.world import World
    from nplsim.market.scenario import BankSpec

# How much riskier the loans of a bank with no internal control are than those of a perfect one:
# PD multiplier 1 + WEAK_CONTROL_PD_UPLIFT·(1 − internal_control) (assumption; the study names weak
# internal control as the second cause of NPLs).
WEAK_CONTROL_PD_UPLIFT = 1.5
FLOWS = (
    "interest_income", "recoveries", "workout_costs", "written_off", "npl_resolved", "new_npl",
    "new_lending", "principal_repaid", "npl_sold_amc", "amc_sale_proceeds", "npl_carved_out",
    "npl_securitised", "securitisation_proceeds", "transfer_costs", "abs_income", "amc_coupon",
    "provision_expense", "interest_expense", "fire_sale_losses", "capital_injected",
    "instruments_issued", "dividends", "net_income",
)  # fmt: skip


@dataclass(frozen=True)
class DisposalPlan:
    """A mandated NPL disposal plan: the NPL ratio must fall from ``start_ratio`` in quarter
    ``start_q`` to ``target`` by quarter ``due_q``, in equal steps (its milestones)."""

    target: float
    start_ratio: float
    start_q: int
    due_q: int

    def milestone(self, quarter: int) -> float:
        """The NPL ratio the plan asks for by the end of ``quarter``."""
        done = min(max(quarter - self.start_q + 1, 0) / max(self.due_q - self.start_q, 1), 1.0)
        return self.start_ratio + done * (self.target - self.start_ratio)


class StateBank(Treasury, CapitalAdequacy, DisposalPolicy, Originator, mesa.Agent):
    """A state-owned commercial bank with a full balance sheet and a disposal policy.

    Balances are CNY bn. Cash (reserves) is the bank's ledger account; loans are its slots in the
    loan book.
    """

    originator_kind = "bank"  # as the law names originators (regime ``originators_allowed``)

    def __init__(self, model: mesa.Model, world: World, spec: BankSpec, account: int):
        super().__init__(model)
        self.world = world
        self.name = spec.name
        self.spec = spec
        self.account = account
        self.pd_multiplier = 1.0 + WEAK_CONTROL_PD_UPLIFT * (1.0 - spec.internal_control)
        self.workout_skill = spec.workout_skill
        self.init_originator(world.scenario.securitisation.initial_price_belief)
        self.gov_bonds = self.policy_bonds = self.placements = self.investments = 0.0
        self.amc_bonds = self.provisions = 0.0
        self.deposits_stable = self.deposits_other = 0.0
        self.interbank = self.slf = self.mlf = 0.0
        self.sub_debt = self.at1 = self.equity = 0.0
        self.principal_due_q = 0.0
        self.amc_price_belief = 1.0
        self.shadow = ShadowPrices(capital=0.0, npl=0.0)
        self.profit_since_close = 0.0
        # the supervisor's measures in force (``Supervisor.review``)
        self.payouts_stopped = False
        self.lending_restrained = False
        self.disposal_plan: DisposalPlan | None = None
        self.reset_flows()

    # ------------------------------------------------------------------ balance sheet
    @property
    def cash(self) -> float:
        """Reserves at the central bank (the ledger balance)."""
        return self.world.ledger.balance(self.account)

    @property
    def performing_loans(self) -> float:
        """Performing principal held, CNY bn."""
        return float(self.world.holdings.performing[self.account])

    @property
    def gross_npl(self) -> float:
        """Non-performing principal held, CNY bn."""
        return float(self.world.holdings.npl[self.account])

    @property
    def gross_loans(self) -> float:
        """Performing plus non-performing principal."""
        return self.performing_loans + self.gross_npl

    @property
    def total_assets(self) -> float:
        """Assets net of loan-loss provisions."""
        return (
            self.cash + self.bonds + self.placements + self.investments + self.amc_bonds
            + self.retained_abs + self.pending_securitisation + self.gross_loans - self.provisions
        )  # fmt: skip

    @property
    def liabilities(self) -> float:
        """Deposits, interbank and central-bank funding and subordinated debt."""
        return self.deposits + self.interbank + self.central_bank_borrowing + self.sub_debt

    @property
    def balance_gap(self) -> float:
        """Assets − liabilities − preference shares − equity: zero when the sheet balances."""
        return self.total_assets - self.liabilities - self.at1 - self.equity

    # ------------------------------------------------------------------ asset quality
    @property
    def npl_on_books(self) -> float:
        """NPLs the supervisor counts: those held plus securitised pools not derecognised."""
        return self.gross_npl + self.pool_face_on_books

    @property
    def npl_ratio(self) -> float:
        """Supervisory NPL ratio: NPLs on the books / (gross loans + pools not derecognised)."""
        kept = self.pool_face_on_books
        return _ratio(self.gross_npl + kept, self.gross_loans + kept)

    @property
    def provision_coverage(self) -> float:
        """Loan-loss provisions / NPLs on the books."""
        return _ratio(self.provisions, self.npl_on_books)

    @property
    def distressed(self) -> bool:
        """In distress: capital below its requirement by the scenario's distress gap."""
        gap = self.world.scenario.securitisation.distress_car_gap
        return self.car < self.car_requirement - gap

    # ------------------------------------------------------------------ regulatory pressure
    @property
    def npl_ratio_target(self) -> float:
        """The NPL ratio the bank is held to: the supervisory target, or the milestone of a
        mandated disposal plan."""
        target = self.world.prudential.npl_ratio_target
        if self.disposal_plan is None:
            return target
        return min(target, self.disposal_plan.milestone(self.world.quarter))

    @property
    def npl_pressure_weight(self) -> float:
        """Weight of the NPL shadow price: the bank's own, or the supervisor's under a plan."""
        own = self.world.scenario.npl_pressure_weight
        if self.disposal_plan is None:
            return own
        return max(own, self.world.prudential.pca_npl_pressure)

    def mandate_disposal(self, target: float, quarters: int) -> float:
        """Put the bank under a plan to bring its NPL ratio to ``target`` within ``quarters``
        (CNY bn of NPLs above the target now)."""
        quarter = self.world.quarter
        self.disposal_plan = DisposalPlan(target, self.npl_ratio, quarter, quarter + quarters)
        return (self.npl_ratio - target) * self.gross_loans

    # ------------------------------------------------------------------ opening
    def open_books(self) -> None:
        """The opening balance sheet, once its loans are in the book: provisions to the rules
        and the bank's target; bonds, placements and capital as the scenario's shares; deposits
        from the opening loan-to-deposit ratio; reserves at their target; interbank funding at
        its share; other securities absorb the rest (or, if negative, more interbank funding).
        Owners pay in the equity plus the loss allowance already charged against it.

        Raises:
            ConfigError: the provisions the rules ask would exceed the gross loans.
        """
        gross, spec = self.gross_loans, self.liquidity_spec
        config = self.world.scenario
        self.provisions = self.provision_target()
        if self.provisions > gross:
            raise ConfigError(
                "scenario", "initial_npl_ratio",
                f"{self.name}: provisions on this NPL stock would exceed the loans themselves",
                "a lower initial_npl_ratio, provision_coverage_min or provision_coverage_target",
            )  # fmt: skip
        self.gov_bonds = self.spec.bond_share * gross
        self.policy_bonds = self.spec.policy_bond_share * gross
        self.equity = self.spec.equity_ratio * gross
        deposits = gross / spec.loan_to_deposit
        self.deposits_stable = spec.stable_deposit_share * deposits
        self.deposits_other = deposits - self.deposits_stable
        self.placements = spec.placement_share * deposits
        self.interbank = spec.wholesale_share * deposits
        reserves = (config.reserve_ratio + spec.excess_reserve_share) * deposits
        for _ in range(3):  # instruments scale with RWA, which the residual securities change
            self.at1 = self.spec.at1_ratio * self.risk_weighted_assets
            self.sub_debt = self.spec.sub_debt_ratio * self.risk_weighted_assets
            funding = deposits + self.interbank + self.sub_debt + self.at1 + self.equity
            uses = gross - self.provisions + reserves + self.bonds + self.placements
            self.investments = max(funding - uses, 0.0)
        self.interbank += max(uses - funding, 0.0)
        ledger, outside = self.world.ledger, self.world.ledger.outside
        for payer, amount, kind in (
            (outside["depositors"], deposits, "opening_deposits"),
            (outside["owners"], self.equity + self.provisions, "opening_capital"),
            (outside["capital_market"], self.at1 + self.sub_debt, "opening_instruments"),
            (outside["money_market"], self.interbank, "opening_interbank"),
        ):
            ledger.transfer(payer, self.account, amount, kind)
        for payee, amount, kind in (
            (outside["borrowers"], gross, "opening_loans"),
            (outside["government"], self.gov_bonds, "opening_bonds"),
            (outside["capital_market"], self.policy_bonds + self.investments, "opening_bonds"),
            (outside["money_market"], self.placements, "opening_placements"),
        ):
            ledger.transfer(self.account, payee, amount, kind)

    # ------------------------------------------------------------------ the quarter's flows
    def reset_flows(self) -> None:
        """Zero the quarter's flow accounts."""
        self.flows = dict.fromkeys(FLOWS, 0.0)

    def _book_pnl(self, amount: float) -> None:
        """Profit or loss: changes equity and the taxable profit since the last close."""
        self.equity += amount
        self.profit_since_close += amount

    def book_new_lending(self, amount: float) -> None:
        """Loans it made this quarter (cash already moved through the ledger)."""
        self.flows["new_lending"] += amount

    def lending_budget(self) -> float:
        """What the bank may lend this quarter (CNY bn): the principal its performing borrowers
        repaid plus the scenario's loan growth; only the repaid principal while its liquidity is
        short of its targets (it does not grow its book on borrowed reserves, and cash from its
        NPLs rebuilds its liquidity; assumption); and, while the supervisor restrains the growth
        of its risk-weighted assets, the growth the rules still allow."""
        back = self.flows["principal_repaid"]
        if self.liquidity_short:
            return back
        growth = (1.0 + self.world.scenario.loan_growth_annual) ** 0.25 - 1.0
        if self.lending_restrained:
            growth = min(growth, self.world.prudential.pca_rwa_growth_cap / 4)
        return back + growth * self.gross_loans

    def book_loan_flows(
        self,
        interest: float,
        recoveries: float,
        workout_costs: float,
        carrying_closed: float,
        written_off: float,
        new_npl: float,
        principal_repaid: float = 0.0,
    ) -> None:
        """Record the loan book's quarter: interest, repayments, defaults, recoveries and
        write-offs. Cash has already moved through the ledger; losses on closed NPLs are
        charged to provisions."""
        self._book_pnl(interest - workout_costs)
        self.provisions -= carrying_closed - recoveries
        for key, value in (
            ("interest_income", interest), ("recoveries", recoveries),
            ("workout_costs", workout_costs), ("written_off", written_off),
            ("npl_resolved", carrying_closed - written_off), ("new_npl", new_npl),
            ("principal_repaid", principal_repaid),
        ):  # fmt: skip
            self.flows[key] += value

    def close_books(self) -> None:
        """Deposits, interest, opex, provisions, tax, distributions, capital and liquidity."""
        config = self.world.scenario
        ledger, outside = self.world.ledger, self.world.ledger.outside
        self.principal_due_q = self.flows["principal_repaid"]  # the treasury's next-quarter guess
        growth = (1.0 + config.deposit_growth_annual) ** 0.25 - 1.0
        self._change_deposits(growth)
        self._earn_and_pay()
        opex = max(self.total_assets, 0.0) * config.opex_rate / 4
        ledger.transfer(self.account, outside["service_providers"], opex, "operating_cost")
        self._book_pnl(-opex)
        self.provide()
        profit = self.profit_since_close
        tax = max(profit, 0.0) * config.tax_rate
        ledger.transfer(self.account, outside["government"], tax, "bank_tax")
        self.equity -= tax
        self.flows["net_income"] = profit - tax
        self.profit_since_close = 0.0
        self._distribute(profit - tax)
        self._issue_instruments()
        self.manage_liquidity()

    def _change_deposits(self, growth: float) -> None:
        """Both deposit classes grow at the scenario's rate; cash moves with them."""
        ledger = self.world.ledger
        change = self.deposits * growth
        if change >= 0:
            ledger.transfer(ledger.outside["depositors"], self.account, change, "deposit_inflow")
        else:
            ledger.transfer(self.account, ledger.outside["depositors"], -change, "deposit_outflow")
        self.deposits_stable *= 1.0 + growth
        self.deposits_other *= 1.0 + growth

    def _earn_and_pay(self) -> None:
        """A quarter's interest on reserves, bonds, placements and securities, and on every
        interest-bearing liability (annual rates / 4)."""
        world, spec = self.world, self.liquidity_spec
        outside, funding = world.ledger.outside, world.funding
        gov_yield = world.scenario.macro.gov_bond_yield
        income = (
            (outside["central_bank"], self.cash * spec.reserve_rate, "reserve_interest"),
            (outside["government"], self.gov_bonds * gov_yield, "bond_coupon"),
            (
                outside["capital_market"],
                self.policy_bonds * (gov_yield + spec.policy_bond_spread)
                + self.investments * spec.investment_yield,
                "bond_coupon",
            ),
            (
                outside["money_market"],
                self.placements * funding.interbank_rate,
                "placement_interest",
            ),
        )
        for payer, annual, kind in income:
            self._move(payer, self.account, max(annual, 0.0) / 4, kind)
            self._book_pnl(max(annual, 0.0) / 4)
        rates, balances = self.funding_rates(), self.funding_balances()
        payees = {
            "deposits": outside["depositors"], "interbank": outside["money_market"],
            "slf": outside["central_bank"], "mlf": outside["central_bank"],
            "sub_debt": outside["capital_market"],
        }  # fmt: skip
        for item, payee in payees.items():
            amount = balances[item] * rates[item] / 4
            self._move(self.account, payee, amount, f"{item}_interest")
            self._book_pnl(-amount)
            self.flows["interest_expense"] += amount

    def _distribute(self, after_tax: float) -> None:
        """Preference dividends and ordinary dividends (``payout_ratio`` of profit), unless the
        supervisor has stopped distributions or the bank has no common equity left."""
        if self.payouts_stopped or self.equity <= 0:
            return
        outside = self.world.ledger.outside
        preference = self.at1 * self.liquidity_spec.at1_rate / 4
        ordinary = max(after_tax - preference, 0.0) * self.world.scenario.payout_ratio
        self._move(self.account, outside["capital_market"], preference, "at1_dividend")
        self._move(self.account, outside["owners"], ordinary, "dividend")
        self.equity -= preference + ordinary
        self.flows["dividends"] += preference + ordinary

    def _issue_instruments(self) -> None:
        """Keep additional tier 1 and subordinated debt at their shares of RWA."""
        at1, sub_debt = self.instruments_to_issue()
        self._move(self.world.ledger.outside["capital_market"], self.account, at1 + sub_debt,
                   "capital_issue")  # fmt: skip
        self.at1 += at1
        self.sub_debt += sub_debt
        self.flows["instruments_issued"] += at1 + sub_debt

    # ------------------------------------------------------------------ provisions
    def provision_floor(self) -> float:
        """Provisions the prudential rules require: the larger of the coverage and loan-ratio
        rules (CNY bn)."""
        rules = self.world.prudential
        return max(
            rules.provision_coverage_min * self.npl_on_books,
            rules.loan_provision_ratio_min * self.gross_loans,
        )

    def provision_target(self) -> float:
        """Provisions the bank aims at: the rules' floor, or its own coverage target if higher."""
        own = self.world.scenario.provision_coverage_target * self.npl_on_books
        return max(self.provision_floor(), own)

    def provide(self) -> None:
        """Move provisions towards the bank's target (``provision_adjustment`` of the gap a
        quarter), never below the rules' floor; the change goes through P&L."""
        adjust = self.world.scenario.provision_adjustment
        wanted = self.provisions + adjust * (self.provision_target() - self.provisions)
        expense = max(wanted, self.provision_floor()) - self.provisions
        self.provisions += expense
        self.flows["provision_expense"] += expense
        self._book_pnl(-expense)

    # ------------------------------------------------------------------ authorities
    def receive_capital(self, amount: float) -> None:
        """Common equity injected by the State as owner (cash from the government account)."""
        ledger = self.world.ledger
        ledger.transfer(ledger.outside["government"], self.account, amount, "recapitalisation")
        self.equity += amount
        self.flows["capital_injected"] += amount

    def _book_closing(self, carrying: float, cash: float, retained_value: float) -> None:
        """A deal's closing difference from the pool's carrying value goes to provisions."""
        self.provisions -= carrying - cash - retained_value
        self.provide()

    def receive_amc_bonds(self, face: float) -> None:
        """Policy carve-out: NPLs leave at book value in exchange for AMC bonds."""
        self.amc_bonds += face
        self.flows["npl_carved_out"] += face
        self.provide()

    def receive_amc_coupon(self, amount: float) -> None:
        """Coupon on AMC bonds (cash moved in the ledger by the AMC)."""
        self.flows["amc_coupon"] += amount
        self._book_pnl(amount)

    # ------------------------------------------------------------------ output
    def record(self) -> dict[str, float | str | int]:
        """One row of ``banks.parquet``: balance sheet, ratios and the quarter's flows."""
        return {
            "quarter": self.world.quarter,
            "bank": self.name,
            "cash": self.cash,
            "required_reserves": self.required_reserves,
            "gov_bonds": self.gov_bonds,
            "policy_bonds": self.policy_bonds,
            "placements": self.placements,
            "investments": self.investments,
            "amc_bonds": self.amc_bonds,
            "retained_abs": self.retained_abs,
            "pending_securitisation": self.pending_securitisation,
            "sec_price_belief": self.sec_price_belief,
            "performing_loans": self.performing_loans,
            "gross_npl": self.gross_npl,
            "npl_on_books": self.npl_on_books,
            "provisions": self.provisions,
            "total_assets": self.total_assets,
            "deposits_stable": self.deposits_stable,
            "deposits_other": self.deposits_other,
            "interbank_borrowing": self.interbank,
            "slf": self.slf,
            "mlf": self.mlf,
            "sub_debt": self.sub_debt,
            "at1": self.at1,
            "equity": self.equity,
            "npl_ratio": self.npl_ratio,
            "provision_coverage": self.provision_coverage,
            "rwa": self.risk_weighted_assets,
            "cet1_ratio": self.cet1_ratio,
            "tier1_ratio": self.tier1_ratio,
            "car": self.car,
            "car_requirement": self.car_requirement,
            "hqla": self.hqla,
            "lcr": self.lcr,
            "liquidity_ratio": self.liquidity_ratio,
            "loan_to_deposit": self.loan_to_deposit,
            "funding_cost": self.funding_cost,
            "marginal_funding_cost": self.marginal_funding_cost,
            "liquidity_created_amc": self.flows["amc_sale_proceeds"],
            "liquidity_created_securitisation": self.flows["securitisation_proceeds"]
            + self.flows["abs_income"],
            "liquidity_created_workout": self.flows["recoveries"] - self.flows["workout_costs"],
            "shadow_price_capital": self.shadow.capital,
            "shadow_price_npl": self.shadow.npl,
            "amc_price_belief": self.amc_price_belief,
            "payouts_stopped": self.payouts_stopped,
            "lending_restrained": self.lending_restrained,
            "npl_plan_milestone": float("nan")
            if self.disposal_plan is None
            else self.disposal_plan.milestone(self.world.quarter),
            **self.flows,
        }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")
