"""AssetManagementCompany: buys NPL portfolios from banks and works them out.

China's four AMCs (Huarong, Great Wall, Orient, Cinda) were funded by capital, bonds issued to the
banks and central-bank lending. An AMC bids in sealed-bid portfolio auctions on its own noisy
estimate of recoveries, works loans out faster than a bank (higher skill), pays its funding, and
takes the policy carve-out at book value against AMC bonds where the State orders one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from nplsim.agents.originator import Originator, SelectionIncentives
from nplsim.market.workout_value import BidderTerms, expected_workout_value

if TYPE_CHECKING:
    from nplsim.agents.world import World
    from nplsim.market.regime import LegalRegime
    from nplsim.market.scenario import AMCSpec

CASH_FLOOR = 0.0  # AMCs hold no idle cash beyond what they need: surplus repays funding


class AssetManagementCompany(Originator, mesa.Agent):
    """An AMC's balance sheet: cash + NPLs at cost = funding debt + AMC bonds + equity (CNY bn)."""

    originator_kind = "amc"  # as the law names originators (regime ``originators_allowed``)
    is_amc = True  # an asset management company in law (the bulk-transfer rule)

    def __init__(self, model: mesa.Model, world: World, spec: AMCSpec, account: int):
        super().__init__(model)
        self.world = world
        self.name = spec.name
        self.spec = spec
        self.account = account
        self.workout_skill = spec.workout_skill
        self.cost_per_recovered = spec.cost_per_recovered
        self.discount_rate = world.scenario.amc_discount_rate
        self.funding_debt = 0.0
        self.bonds_by_bank: dict[int, float] = {}
        self.equity = 0.0
        self.init_originator(world.scenario.securitisation.initial_price_belief)
        self.reset_flows()

    # ------------------------------------------------------------------ balance sheet
    @property
    def cash(self) -> float:
        """Cash (the ledger balance)."""
        return self.world.ledger.balance(self.account)

    @property
    def npl_book(self) -> float:
        """NPLs held, at the price paid (CNY bn)."""
        return float(self.world.holdings.npl_carrying[self.account])

    @property
    def npl_face(self) -> float:
        """NPLs held, at face (CNY bn)."""
        return float(self.world.holdings.npl[self.account])

    @property
    def amc_bonds(self) -> float:
        """AMC bonds outstanding to banks (CNY bn)."""
        return sum(self.bonds_by_bank.values())

    @property
    def balance_gap(self) -> float:
        """Assets − liabilities − equity: zero when the balance sheet balances."""
        assets = self.cash + self.npl_book + self.pending_securitisation + self.retained_abs
        return assets - self.funding_debt - self.amc_bonds - self.equity

    @property
    def distressed(self) -> bool:
        """In distress when its equity is gone (its pools may then be recharacterised)."""
        return self.equity < 0

    @property
    def purchase_capacity(self) -> float:
        """Cash it can spend on portfolios this quarter: cash plus undrawn funding."""
        return self.cash + max(self.spec.funding_capacity_cny_bn - self.funding_debt, 0.0)

    # ------------------------------------------------------------------ behaviour
    def may_bid(self, regime: LegalRegime) -> bool:
        """The national AMCs may always buy NPLs from banks."""
        return True

    def open_books(self) -> None:
        """The opening balance sheet: the state pays in the AMC's equity."""
        self.equity = self.spec.equity_cny_bn
        ledger = self.world.ledger
        ledger.transfer(ledger.outside["government"], self.account, self.equity, "opening_equity")

    def reset_flows(self) -> None:
        """Zero the quarter's flow accounts."""
        self.flows = dict.fromkeys(
            (
                "face_bought",
                "paid",
                "face_carved_out",
                "recoveries",
                "workout_costs",
                "npl_securitised",
                "securitisation_proceeds",
                "transfer_costs",
                "abs_income",
            ),
            0.0,
        )

    def valuation(self, idx: np.ndarray, disclosure: float | None = None) -> np.ndarray:
        """Expected PV of working out loans ``idx``, from what disclosure reveals (CNY bn)."""
        world = self.world
        terms = BidderTerms.of(world, self.workout_skill, self.discount_rate,
                               self.cost_per_recovered)  # fmt: skip
        table = terms.table(world.scenario.claim_end_age_q)
        seen = world.regime.disclosure_level if disclosure is None else disclosure
        return expected_workout_value(
            world.loans, idx, world.quarter, table, terms.discount_q, seen
        )

    def pay_for_portfolio(self, seller: int, price: float, face: float) -> None:
        """Pay the seller (a bank, or a trust selling what it has not collected at its deal's
        legal final maturity) for a portfolio, drawing funding first if cash is short."""
        self._ensure_cash(price)
        self.world.ledger.transfer(self.account, seller, price, "amc_purchase")
        self.flows["face_bought"] += face
        self.flows["paid"] += price

    def take_carveout(self, bank_account: int, face: float) -> None:
        """Policy carve-out: take NPLs at book value, paying with AMC bonds (no cash moves)."""
        self.bonds_by_bank[bank_account] = self.bonds_by_bank.get(bank_account, 0.0) + face
        self.flows["face_carved_out"] += face

    def book_loan_flows(
        self, recoveries: float, workout_costs: float, carrying_closed: float
    ) -> None:
        """Record workout results: gains or losses against the price paid go to equity."""
        self.equity += recoveries - workout_costs - carrying_closed
        self.flows["recoveries"] += recoveries
        self.flows["workout_costs"] += workout_costs

    def _book_pnl(self, amount: float) -> None:
        """Profit or loss goes straight to equity."""
        self.equity += amount

    def _book_closing(self, carrying: float, cash: float, retained_value: float) -> None:
        """A deal's closing gain or loss against what the AMC paid for the pool."""
        self._book_pnl(cash + retained_value - carrying)

    def market_view(self, idx: np.ndarray) -> np.ndarray:
        """Its workout value as investors would see it (the disclosed share of what it knows)."""
        return self.valuation(idx)

    @property
    def capital_cushion(self) -> float:
        """Equity over assets: the AMC is distressed when it falls below zero."""
        assets = self.cash + self.npl_book + self.pending_securitisation + self.retained_abs
        return self.equity / assets if assets > 0 else 0.0

    def informed_value(self, idx: np.ndarray) -> np.ndarray:
        """What keeping the loans is worth to the AMC, which knows its borrowers."""
        return self.valuation(idx, disclosure=1.0)

    def selection_incentives(self, idx: np.ndarray) -> SelectionIncentives:
        """The terms of the AMC's choice of loans for a deal, per unit of disclosed value (it is
        under no regulatory pressure: only the transfer costs add to the deal's terms)."""
        deal = self.deal_economics(idx)
        public = np.maximum(deal.public_value, 1e-300)
        informed = np.maximum(deal.informed_value, 1e-300)
        return SelectionIncentives(
            price_ratio=deal.price_ratio,
            retained_share=deal.retained_share,
            servicing_share=deal.servicing_share,
            hold_ratio=self.informed_value(idx) / informed,
            other_gain=-deal.variable_cost / public,
            alternative=np.full(idx.shape, -np.inf),
            public_value=deal.public_value,
        )

    def securitisation_candidates(self) -> np.ndarray:
        """NPLs it would rather securitise than work out, up to the largest pool (oldest first):
        those a deal pays more for (``deal_economics``) than its own informed workout value, and
        none unless their gain covers a deal's fixed costs."""
        world = self.world
        idx = world.loans.npls_of(self.account)
        if idx.size == 0:
            return idx
        gain = self.deal_economics(idx).value - self.informed_value(idx)
        chosen = idx[gain > 0.0]
        gain = gain[gain > 0.0]
        order = np.argsort(world.loans.default_q[chosen], kind="stable")
        chosen, gain = chosen[order], gain[order]
        face = world.loans.principal[chosen]  # filled to the cap at loans' midpoints
        keep = np.cumsum(face) - face / 2 <= world.scenario.securitisation.max_pool_cny_bn
        if gain[keep].sum() <= world.scenario.securitisation.fixed_cost_cny_bn:
            return chosen[:0]
        return np.sort(chosen[keep])

    def pay_coupons(self) -> dict[int, float]:
        """Interest on funding debt (to the capital market) and on AMC bonds (to the banks);
        returns the coupon paid to each bank's account."""
        world = self.world
        ledger = world.ledger
        debt_interest = self.funding_debt * world.scenario.amc_funding_rate / 4
        coupons = {
            bank: face * world.scenario.state.amc_bond_rate / 4
            for bank, face in self.bonds_by_bank.items()
        }
        self._ensure_cash(debt_interest + sum(coupons.values()))
        ledger.transfer(
            self.account, ledger.outside["capital_market"], debt_interest, "amc_debt_interest"
        )
        for bank, amount in coupons.items():
            ledger.transfer(self.account, bank, amount, "amc_bond_coupon")
        self.equity -= debt_interest + sum(coupons.values())
        return coupons

    def repay_funding(self) -> None:
        """Surplus cash from recoveries repays funding debt."""
        repay = min(max(self.cash - CASH_FLOOR, 0.0), self.funding_debt)
        self.world.ledger.transfer(
            self.account, self.world.ledger.outside["capital_market"], repay, "amc_debt_repay"
        )
        self.funding_debt -= repay

    def prepare_payment(self, amount: float) -> None:
        """Draw funding if its cash cannot cover a payment."""
        self._ensure_cash(amount)

    def _ensure_cash(self, amount: float) -> None:
        """Draw bond / central-bank funding to cover a payment the AMC's cash cannot."""
        shortfall = amount - self.cash
        if shortfall > 0:
            self.world.ledger.transfer(
                self.world.ledger.outside["capital_market"], self.account, shortfall, "amc_funding"
            )
            self.funding_debt += shortfall

    def record(self) -> dict[str, float | str | int]:
        """One row of the AMC table: balance sheet and the quarter's flows."""
        return {
            "quarter": self.world.quarter,
            "amc": self.name,
            "cash": self.cash,
            "npl_book": self.npl_book,
            "npl_face": self.npl_face,
            "funding_debt": self.funding_debt,
            "amc_bonds": self.amc_bonds,
            "equity": self.equity,
            "retained_abs": self.retained_abs,
            "pending_securitisation": self.pending_securitisation,
            **self.flows,
        }
