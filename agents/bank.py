"""StateBank: a state-owned commercial bank — originator of loans, settlor of securitisations.

The bank keeps its balance sheet (cash and reserves, government bonds, AMC bonds, loans from the
loan book, loan-loss provisions; deposits, interbank funding, equity), books the quarter's income,
provisions to the regime's rules, manages liquidity, and decides each quarter which non-performing
loans to keep working out and which to dispose of, under a shadow price of capital.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from nplsim.agents.bank_disposal import DisposalPolicy
from nplsim.agents.originator import Originator
from nplsim.market.disposal import ShadowPrices
from nplsim.market.errors import ConfigError

if TYPE_CHECKING:
    from nplsim.agents.world import World
    from nplsim.market.scenario import BankSpec

# Basel risk weights: performing loans 100%; past-due loans net of provisions 150% when specific
# provisions are below 20% of the outstanding, 100% otherwise (Basel II standardised approach).
PAST_DUE_WEIGHT_LOW_PROVISIONS = 1.5
PAST_DUE_WEIGHT = 1.0
LOW_PROVISION_SHARE = 0.2  # specific provisions below this share of past-due loans: 150% weight
LIQUIDITY_BUFFER = 0.05  # kept above the regulatory liquidity-ratio floor (assumption)
CASH_BUFFER = 0.01  # cash kept above required reserves, share of deposits (assumption)
# How much riskier the loans of a bank with no internal control are than those of a perfect one:
# PD multiplier 1 + WEAK_CONTROL_PD_UPLIFT·(1 − internal_control) (assumption; the study names weak
# internal control as the second cause of NPLs).
WEAK_CONTROL_PD_UPLIFT = 1.5


class StateBank(DisposalPolicy, Originator, mesa.Agent):
    """A state-owned commercial bank with a full balance sheet and a disposal policy.

    Balances are CNY bn. Cash is the bank's ledger account; loans are its slots in the loan book.
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
        self.gov_bonds = 0.0
        self.amc_bonds = 0.0
        self.init_originator(world.scenario.securitisation.initial_price_belief)
        self.provisions = 0.0
        self.deposits = 0.0
        self.interbank = 0.0
        self.equity = 0.0
        self.amc_price_belief = 1.0
        self.shadow = ShadowPrices(capital=0.0, npl=0.0)
        self.profit_since_close = 0.0
        self.reset_flows()

    # ------------------------------------------------------------------ balance sheet
    @property
    def cash(self) -> float:
        """Cash and central-bank reserves (the ledger balance)."""
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
            self.cash
            + self.gov_bonds
            + self.amc_bonds
            + self.retained_abs
            + self.pending_securitisation
            + self.gross_loans
            - self.provisions
        )

    @property
    def liabilities(self) -> float:
        """Deposits plus interbank and central-bank funding."""
        return self.deposits + self.interbank

    @property
    def balance_gap(self) -> float:
        """Assets − liabilities − equity: zero when the balance sheet balances."""
        return self.total_assets - self.liabilities - self.equity

    # ------------------------------------------------------------------ ratios
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
    def risk_weighted_assets(self) -> float:
        """Performing 100%, past-due net of provisions 100–150%, bonds 0% (CNY bn)."""
        npl = self.npl_on_books
        net_npl = max(npl - self.provisions, 0.0)
        weight = self._past_due_weight(npl)
        pending = weight * self.pending_securitisation
        return self.performing_loans + weight * net_npl + pending + self.securitisation_rwa

    @property
    def distressed(self) -> bool:
        """In distress: capital below the regime's minimum by the scenario's distress gap."""
        gap = self.world.scenario.securitisation.distress_car_gap
        return self.car < self.car_requirement - gap

    # ------------------------------------------------------------------ capital tiers
    # What other institutions (the deal desk, the supervisor) may read of the bank's capital.
    @property
    def cet1(self) -> float:
        """Common equity tier 1: book equity (CNY bn)."""
        return self.equity

    @property
    def additional_tier1(self) -> float:
        """Additional tier 1 instruments, e.g. preference shares (CNY bn; none yet)."""
        return 0.0

    @property
    def tier2(self) -> float:
        """Tier 2 capital: subordinated debt and eligible provisions (CNY bn; none yet)."""
        return 0.0

    @property
    def total_capital(self) -> float:
        """CET1 + additional tier 1 + tier 2 (CNY bn)."""
        return self.cet1 + self.additional_tier1 + self.tier2

    @property
    def cet1_ratio(self) -> float:
        """CET1 / risk-weighted assets."""
        return _ratio(self.cet1, self.risk_weighted_assets)

    @property
    def tier1_ratio(self) -> float:
        """(CET1 + additional tier 1) / risk-weighted assets."""
        return _ratio(self.cet1 + self.additional_tier1, self.risk_weighted_assets)

    @property
    def car(self) -> float:
        """Capital adequacy ratio: total capital / risk-weighted assets."""
        return _ratio(self.total_capital, self.risk_weighted_assets)

    @property
    def car_requirement(self) -> float:
        """The total-capital ratio this bank must hold, buffers included (decimal)."""
        return self.world.regime.car_min

    @property
    def capital_headroom(self) -> float:
        """Total capital above what the requirement asks on today's risk-weighted assets
        (CNY bn; negative when short)."""
        return self.total_capital - self.car_requirement * self.risk_weighted_assets

    # ------------------------------------------------------------------ funding
    @property
    def marginal_funding_cost(self) -> float:
        """Annual rate the bank pays on the next yuan it must raise (decimal): today the
        interbank rate, at which it borrows any shortfall."""
        return self.world.scenario.macro.interbank_rate

    @property
    def liquid_assets(self) -> float:
        """Cash plus government bonds."""
        return self.cash + self.gov_bonds

    @property
    def hqla(self) -> float:
        """High-quality liquid assets after haircuts, the LCR's numerator (CNY bn)."""
        return self.liquid_assets

    @property
    def lcr_headroom(self) -> float:
        """High-quality liquid assets above what the LCR minimum asks (CNY bn; negative when
        short)."""
        outflows = self.world.scenario.lcr_runoff * self.deposits + self.interbank
        return self.hqla - self.world.regime.lcr_min * outflows

    @property
    def short_term_liabilities(self) -> float:
        """Demand deposits plus interbank funding."""
        return self.world.scenario.demand_deposit_share * self.deposits + self.interbank

    @property
    def liquidity_ratio(self) -> float:
        """Liquid assets / short-term liabilities (regulatory floor 25%, facts: liquidity-rules)."""
        return _ratio(self.liquid_assets, self.short_term_liabilities)

    @property
    def lcr(self) -> float:
        """High-quality liquid assets / 30-day net outflows (deposit run-off plus interbank)."""
        outflows = self.world.scenario.lcr_runoff * self.deposits + self.interbank
        return _ratio(self.liquid_assets, outflows)

    @property
    def loan_to_deposit(self) -> float:
        """Gross loans / deposits."""
        return _ratio(self.gross_loans, self.deposits)

    @property
    def npl_risk_weight(self) -> float:
        """Risk weight on net past-due loans (see ``risk_weighted_assets``)."""
        return self._past_due_weight(self.npl_on_books)

    def _past_due_weight(self, npl: float) -> float:
        low = self.provisions < LOW_PROVISION_SHARE * npl
        return PAST_DUE_WEIGHT_LOW_PROVISIONS if low else PAST_DUE_WEIGHT

    # ------------------------------------------------------------------ the quarter
    def open_books(self, reserve_ratio: float) -> None:
        """The opening balance sheet, once its loans are in the book: provisions to the rule,
        bonds and equity as the scenario's shares of the loans, and deposits to close it, with
        required reserves held in cash. Owners pay in the equity plus the loss allowance already
        charged against it.

        Raises:
            ConfigError: the regime's provisions would exceed the bank's funding.
        """
        gross = self.gross_loans
        self.provisions = self.provision_target()
        self.gov_bonds = self.spec.bond_share * gross
        self.equity = self.spec.equity_ratio * gross
        self.deposits = (self.gov_bonds + gross - self.provisions - self.equity) / (
            1 - reserve_ratio
        )
        if self.deposits <= 0:
            raise ConfigError(
                "scenario",
                "initial_npl_ratio",
                f"{self.name}: the regime's provisions on this NPL stock exceed the bank's "
                "funding (deposits would be negative)",
                "a lower initial_npl_ratio or provision_coverage_min, or more bond_share",
            )
        ledger, outside = self.world.ledger, self.world.ledger.outside
        ledger.transfer(outside["depositors"], self.account, self.deposits, "opening_deposits")
        ledger.transfer(
            outside["owners"], self.account, self.equity + self.provisions, "opening_capital"
        )
        ledger.transfer(self.account, outside["borrowers"], gross, "opening_loans")
        ledger.transfer(self.account, outside["government"], self.gov_bonds, "opening_bonds")

    def book_new_lending(self, amount: float) -> None:
        """Loans it made this quarter (cash already moved through the ledger)."""
        self.flows["new_lending"] += amount

    def reset_flows(self) -> None:
        """Zero the quarter's flow accounts."""
        self.flows = dict.fromkeys(
            (
                "interest_income",
                "recoveries",
                "workout_costs",
                "written_off",
                "npl_resolved",
                "new_npl",
                "new_lending",
                "npl_sold_amc",
                "amc_sale_proceeds",
                "npl_carved_out",
                "npl_securitised",
                "securitisation_proceeds",
                "transfer_costs",
                "abs_income",
                "amc_coupon",
                "provision_expense",
                "net_income",
            ),
            0.0,
        )

    def _book_pnl(self, amount: float) -> None:
        """Profit or loss: changes equity and the taxable profit since the last close."""
        self.equity += amount
        self.profit_since_close += amount

    def book_loan_flows(
        self,
        interest: float,
        recoveries: float,
        workout_costs: float,
        carrying_closed: float,
        written_off: float,
        new_npl: float,
    ) -> None:
        """Record the loan book's quarter: interest, defaults, recoveries and write-offs.

        Cash has already moved through the ledger; losses on closed NPLs are charged to provisions.
        """
        self._book_pnl(interest - workout_costs)
        self.provisions -= carrying_closed - recoveries
        self.flows["interest_income"] += interest
        self.flows["recoveries"] += recoveries
        self.flows["workout_costs"] += workout_costs
        self.flows["written_off"] += written_off
        self.flows["npl_resolved"] += carrying_closed - written_off
        self.flows["new_npl"] += new_npl

    def close_books(self) -> None:
        """Deposits, funding costs, opex, provisions, tax, dividends and liquidity."""
        world, config = self.world, self.world.scenario
        ledger, outside = world.ledger, world.ledger.outside
        macro = config.macro
        growth = (1.0 + config.deposit_growth_annual) ** 0.25 - 1.0
        deposit_change = self.deposits * growth
        if deposit_change >= 0:
            ledger.transfer(outside["depositors"], self.account, deposit_change, "deposit_inflow")
        else:
            ledger.transfer(self.account, outside["depositors"], -deposit_change, "deposit_outflow")
        self.deposits += deposit_change

        coupon = self.gov_bonds * macro.gov_bond_yield / 4
        ledger.transfer(outside["government"], self.account, coupon, "bond_coupon")
        self._book_pnl(coupon)
        for amount, payee, kind in (
            (self.deposits * macro.deposit_rate / 4, outside["depositors"], "deposit_interest"),
            (
                self.interbank * macro.interbank_rate / 4,
                outside["central_bank"],
                "interbank_interest",
            ),
            (
                max(self.total_assets, 0.0) * config.opex_rate / 4,
                outside["service_providers"],
                "operating_cost",
            ),
        ):
            ledger.transfer(self.account, payee, amount, kind)
            self._book_pnl(-amount)
        self.provide()

        profit = self.profit_since_close
        tax = max(profit, 0.0) * config.tax_rate
        ledger.transfer(self.account, outside["government"], tax, "bank_tax")
        dividend = max(profit - tax, 0.0) * config.payout_ratio if self.car > 0 else 0.0
        ledger.transfer(self.account, outside["owners"], dividend, "dividend")
        self.equity -= tax + dividend
        self.flows["net_income"] = profit - tax
        self.profit_since_close = 0.0
        self.manage_liquidity()

    def provide(self) -> None:
        """Bring loan-loss provisions to the regime's requirement; the change goes through P&L."""
        target = self.provision_target()
        expense = target - self.provisions
        self.provisions = target
        self.flows["provision_expense"] += expense
        self._book_pnl(-expense)

    def provision_target(self) -> float:
        """Provisions required by the regime: the larger of the coverage and loan-ratio rules."""
        regime = self.world.regime
        return max(
            regime.provision_coverage_min * self.npl_on_books,
            regime.loan_provision_ratio_min * self.gross_loans,
        )

    def manage_liquidity(self) -> None:
        """Keep required reserves in cash and liquid assets above the regulatory floor.

        Surplus cash repays interbank funding, then buys government bonds; a shortfall sells bonds,
        then borrows interbank. If the liquidity ratio is still short of floor + buffer, the bank
        borrows term funding and holds it in bonds.
        """
        ledger, outside = self.world.ledger, self.world.ledger.outside
        desired_cash = (self.world.scenario.reserve_ratio + CASH_BUFFER) * self.deposits
        surplus = self.cash - desired_cash
        if surplus > 0:
            repay = min(surplus, self.interbank)
            ledger.transfer(self.account, outside["central_bank"], repay, "interbank_repay")
            self.interbank -= repay
            buy = surplus - repay
            ledger.transfer(self.account, outside["government"], buy, "bond_purchase")
            self.gov_bonds += buy
        else:
            sell = min(-surplus, self.gov_bonds)
            ledger.transfer(outside["government"], self.account, sell, "bond_sale")
            self.gov_bonds -= sell
            borrow = -surplus - sell
            ledger.transfer(outside["central_bank"], self.account, borrow, "interbank_borrow")
            self.interbank += borrow
        floor = self.world.regime.liquidity_ratio_min + LIQUIDITY_BUFFER
        shortfall = floor * self.short_term_liabilities - self.liquid_assets
        if shortfall > 0 and floor < 1.0:
            term = shortfall / (1.0 - floor)
            ledger.transfer(outside["central_bank"], self.account, term, "interbank_borrow")
            self.interbank += term
            ledger.transfer(self.account, outside["government"], term, "bond_purchase")
            self.gov_bonds += term

    def cover_overdraft(self) -> None:
        """Borrow any end-of-quarter cash shortfall from the central bank's standing facility.

        Payments after the books close (deal costs, transfer frictions) can exceed the reserves a
        bank keeps; like any bank with a reserve account it cannot end the day overdrawn, so the
        shortfall becomes interbank (central-bank) funding, repaid when cash returns.
        """
        shortfall = -self.cash
        if shortfall > 0:
            ledger = self.world.ledger
            ledger.transfer(
                ledger.outside["central_bank"], self.account, shortfall, "overdraft_cover"
            )
            self.interbank += shortfall

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

    def record(self) -> dict[str, float | str | int]:
        """One row of ``banks.parquet``: balance sheet, ratios and the quarter's flows."""
        return {
            "quarter": self.world.quarter,
            "bank": self.name,
            "cash": self.cash,
            "gov_bonds": self.gov_bonds,
            "amc_bonds": self.amc_bonds,
            "retained_abs": self.retained_abs,
            "pending_securitisation": self.pending_securitisation,
            "sec_price_belief": self.sec_price_belief,
            "performing_loans": self.performing_loans,
            "gross_npl": self.gross_npl,
            "npl_on_books": self.npl_on_books,
            "provisions": self.provisions,
            "total_assets": self.total_assets,
            "deposits": self.deposits,
            "interbank": self.interbank,
            "equity": self.equity,
            "npl_ratio": self.npl_ratio,
            "provision_coverage": self.provision_coverage,
            "rwa": self.risk_weighted_assets,
            "car": self.car,
            "liquidity_ratio": self.liquidity_ratio,
            "lcr": self.lcr,
            "loan_to_deposit": self.loan_to_deposit,
            "liquidity_created_amc": self.flows["amc_sale_proceeds"],
            "liquidity_created_securitisation": self.flows["securitisation_proceeds"]
            + self.flows["abs_income"],
            "liquidity_created_workout": self.flows["recoveries"] - self.flows["workout_costs"],
            "shadow_price_capital": self.shadow.capital,
            "shadow_price_npl": self.shadow.npl,
            "amc_price_belief": self.amc_price_belief,
            **self.flows,
        }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")
