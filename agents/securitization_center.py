"""SecuritizationCenter and ReceivablesVehicle: power plants' tariff receivables turned into ABS.

A receivables vehicle is the trust that buys the tariff receivables of the capacity a project
builds, from one plant (a stand-alone deal) or from many (a pool the provincial Securitization
Center puts together), and pays its investors from what the grid pays for that power. The sale is
true: investors have no claim on the plant beyond the receivables, and bear the loss when they
fall short. In a pool, each plant's receivables may also cover the others' shortfalls up to an
overcollateralisation limit, and the pool shares one set of fixed costs and one trustee report.

The centre is the study's proposal, not a documented institution (FACTS "No public source
documents a Shanxi Securitization Center"): it is modelled as a design to test. It forms a pool from
the plants for which pooling is the cheapest route, and charges the pool its running costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mesa
import numpy as np
from nplsim.market import power, pricing

if TYPE_CHECKING:
    from nplsim.agents.investor import Investor
    from nplsim.agents.power_plant import PowerPlant
    from nplsim.market.model import NPLMarketModel

# Coupon investors are expected to ask over the risk-free rate when the underwriter sizes the
# receivables a deal needs, before the book is run (assumption).
COUPON_GUESS_SPREAD = 0.015


@dataclass
class AbsQuote:
    """A priced receivables deal for some plants: what it would cost each of them (bp)."""

    pooled: bool
    plants: list[PowerPlant]
    amounts: np.ndarray
    pledged_mw: np.ndarray
    cost: power.RouteCost = field(default_factory=power.RouteCost.unavailable)
    rated: bool = True
    rating: str = "unrated"
    default_prob: float = float("nan")
    coupon_ex_information: float = float("nan")
    information: float = 0.0
    fees: power.DealFees | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        """Whether the deal can be done at the quoted cost."""
        return bool(self.cost.available[0])

    @property
    def coupon(self) -> float:
        """What investors are paid: their coupon plus the information premium."""
        return self.coupon_ex_information + self.information


def abs_open(model: NPLMarketModel, pooled: bool) -> str:
    """Why the law or the institutions close a receivables ABS route ('' if open): it needs an SPV
    law, enterprises allowed as originators, and, for a pool, a centre."""
    regime, spec = model.regime, model.config.power
    route = "pooled" if pooled else "standalone"
    if route not in spec.routes:
        return "route not considered"
    if not regime.securitisation_allowed or regime.spv_form == "none":
        return "no SPV law"
    if "enterprise" not in regime.originators_allowed:
        return "enterprises may not originate"
    if pooled and model.centre is None:
        return "no centre"
    return ""


def investor_book(
    model: NPLMarketModel, size: float, default_prob: float, expected_loss: float, rating: str
) -> tuple[list[Investor], pricing.Clearing]:
    """Bookbuild a receivables ABS with the investors the regime and their mandates admit: each
    asks risk-free + expected loss + unexpected-loss, legal and liquidity premia (the information
    premium is the same for all and added on top); the book clears at one coupon."""
    regime, sec = model.regime, model.config.securitisation
    rf = model.config.macro.gov_bond_yield
    investors = [i for i in model.investors if i.eligible("senior", rating) and i.cash > 1e-9]
    yields = np.array([
        pricing.required_yield(
            risk_free=rf, expected_loss=expected_loss, default_prob=default_prob,
            bankruptcy_remoteness=regime.bankruptcy_remoteness,
            investor_protection=regime.investor_protection, disclosure=1.0,
            liquidity_premium=model.liquidity_premium(investor),
            risk_aversion=investor.risk_aversion, legal_scale=sec.legal_premium_scale,
            information_scale=0.0,
        ).total
        for investor in investors
    ])  # fmt: skip
    quantity = np.array([investor.bid_quantity(size) for investor in investors])
    return investors, pricing.clear_uniform(
        size, quantity, yields, rf + sec.max_coupon_spread, firm_commitment=False
    )


def quote_abs(model: NPLMarketModel, plants: list[PowerPlant], amounts: np.ndarray,
              pooled: bool) -> AbsQuote:  # fmt: skip
    """Price a deal on the receivables of the plants' projects: the underwriter checks that the
    receivables cover the scheduled service, investors judge the chance they fall short (lower in
    a diversified pool), a rating where the law requires one (or where it pays), and the book."""
    spec, sec, regime = model.config.power, model.config.securitisation, model.regime
    pledged = np.array([plant.project_mw for plant in plants])
    quote = AbsQuote(pooled, list(plants), np.asarray(amounts, dtype=float), pledged)
    quote.reason = abs_open(model, pooled)
    if not quote.reason and pooled and len(plants) < spec.centre_min_plants:
        quote.reason = "too few plants for a pool"
    if quote.reason:
        return quote
    tenor, size = spec.abs_tenor_q, float(quote.amounts.sum())
    hours = np.array([p.hours_per_year / 4 * model.power_dispatch for p in plants])
    tariff = np.array([p.tariff for p in plants])
    receivable = power.receivables(pledged, hours, tariff).sum()
    coupon_guess = model.config.macro.gov_bond_yield + COUPON_GUESS_SPREAD
    coverage = receivable / (size * (1 / tenor + coupon_guess / 4))
    if coverage < spec.min_coverage:
        quote.reason = "receivables do not cover the service"
        return quote
    concentration = power.herfindahl(quote.amounts)
    sigma = power.pool_sigma(spec.revenue_sigma_q, spec.revenue_correlation, concentration)
    quote.default_prob = power.abs_default_prob(coverage, sigma, tenor)
    expected_loss = quote.default_prob * spec.abs_loss_severity / (tenor / 4)
    best = None
    for rated in (True,) if regime.rating_required else (True, False):
        rating = pricing.rating_from_default_prob(quote.default_prob) if rated else "unrated"
        _, book = investor_book(model, size, quote.default_prob, expected_loss, rating)
        if book.sold < size * (1 - 1e-9):
            quote.rating = quote.rating if best else rating
            continue
        information = power.information_premium(regime.disclosure_level, rated, concentration, spec)
        fees = power.deal_fees(
            size, len(plants), pooled, rated, spec, sec.underwriting_bp, sec.fixed_cost_cny_bn,
            sec.trustee_bp_per_year, regime.stamp_duty_bp, regime.vat_rate + regime.spv_entity_tax,
        )  # fmt: skip
        cost = power.abs_cost(size, book.coupon, information, fees, tenor)
        if best is None or cost.total[0] < best[0].total[0]:
            best = (cost, rated, rating, book.coupon, information, fees)
    if best is None:
        quote.reason = f"investors the law admits cannot absorb a {quote.rating} issue"
        return quote
    (quote.cost, quote.rated, quote.rating, quote.coupon_ex_information, quote.information,
     quote.fees) = best  # fmt: skip
    return quote


class ReceivablesVehicle(mesa.Agent):
    """One power ABS: members' pledged capacity, their share of the balance, and the holders."""

    def __init__(self, model: NPLMarketModel, vehicle_id: int, account: int, quote: AbsQuote,
                 holders: dict[int, float]):  # fmt: skip
        super().__init__(model)
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
        self.tenor_q = model.config.power.abs_tenor_q
        self.issue_quarter = model.quarter
        self.final_quarter = model.quarter + self.tenor_q
        self.holders = holders
        self.arrears = 0.0
        self.live = True
        self.frozen_until = np.full(len(self.plants), -1)
        self.losses = 0.0

    @property
    def cash(self) -> float:
        """Collections not yet paid out (the ledger balance)."""
        return self.model.ledger.balance(self.account)

    @property
    def balance(self) -> float:
        """Principal still owed to investors."""
        return float(self.member_balance.sum())

    def recharacterise(self, plant: PowerPlant, draw: float) -> bool:
        """A member plant defaulted: with probability 1 − bankruptcy remoteness a court treats its
        receivables as the plant's estate, and the vehicle collects nothing from it for a while."""
        model = self.model
        if draw < model.regime.bankruptcy_remoteness or plant not in self.plants:
            return False
        self.frozen_until[self.plants.index(plant)] = (
            model.quarter + model.config.securitisation.freeze_q
        )
        model.log_event("power_recharacterisation", plant.name, self.name, self.balance)
        return True

    def service(self) -> float:
        """One quarter: collect what is due from the members' receivables (the grid pays the
        vehicle), pay fees, interest with its tax, and principal; at the legal final maturity,
        write off what is left. Returns the investors' loss of the quarter."""
        model, fees = self.model, self.fees
        if not self.live or model.quarter <= self.issue_quarter:
            return 0.0
        final = model.quarter >= self.final_quarter
        balance = self.balance
        interest_due = balance * self.coupon / 4
        principal_due = balance if final else min(self.original / self.tenor_q + self.arrears,
                                                  balance)  # fmt: skip
        running = fees.trustee_bp / 1e4 / 4 * balance + fees.monitoring_per_year / 4
        centre_fee = fees.centre_per_year / 4
        due = running + centre_fee + interest_due * (1 + fees.tax_rate) + principal_due
        share = due * self.member_balance / balance if balance > 0 else self.member_balance * 0
        frozen = self.frozen_until > model.quarter
        available = np.array([
            0.0 if frozen[k] else float(plant.receivables(self.pledged_mw[k : k + 1])[0])
            for k, plant in enumerate(self.plants)
        ])  # fmt: skip
        oc = model.config.power.overcollateralisation if self.kind == "pooled" else 0.0
        taken = power.collect(share, available, oc)
        ledger, outside = model.ledger, model.ledger.outside
        ledger.transfer(model.power_accounts["grid"], self.account, float(taken.sum()),
                        "receivables_collected")  # fmt: skip
        paid = power.pay_out(max(self.cash, 0.0), running + centre_fee, interest_due,
                             fees.tax_rate, principal_due)  # fmt: skip
        to_centre = paid.fees * centre_fee / (running + centre_fee) if paid.fees > 0 else 0.0
        ledger.transfer(self.account, outside["service_providers"],
                        max(paid.fees - to_centre, 0.0), "power_abs_fees")  # fmt: skip
        if to_centre > 0:
            model.centre.charge(self.account, to_centre)
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
            model.log_event("power_abs_matured", self.kind, self.name, float(written_off.sum()))
        self.losses += loss
        return loss

    def _pay_holders(self, amount: float, kind: str) -> None:
        total = sum(self.holders.values())
        if amount <= 0 or total <= 0:
            return
        for account, notional in self.holders.items():
            self.model.ledger.transfer(self.account, account, amount * notional / total, kind)

    def _reduce_holders(self, amount: float) -> None:
        total = sum(self.holders.values())
        if amount <= 0 or total <= 0:
            return
        cut = min(amount / total, 1.0)
        for account in self.holders:
            self.holders[account] *= 1.0 - cut


def issue_abs(model: NPLMarketModel, quote: AbsQuote) -> ReceivablesVehicle | None:
    """Sell the deal to the investors the book finds now (None if it cannot be fully placed, or
    if its upfront costs would eat the whole issue):
    they pay the vehicle, the vehicle pays the upfront costs and passes the rest to the plants."""
    spec = model.config.power
    size = float(quote.amounts.sum())
    if quote.fees.upfront >= size:  # an issue that cannot pay its own costs is not made
        return None
    expected_loss = quote.default_prob * spec.abs_loss_severity / (spec.abs_tenor_q / 4)
    investors, book = investor_book(model, size, quote.default_prob, expected_loss, quote.rating)
    if book.sold < size * (1 - 1e-9):
        return None
    ledger, outside, fees = model.ledger, model.ledger.outside, quote.fees
    vehicle_id = len(model.power_vehicles)
    account = ledger.open_account(f"Power ABS {vehicle_id}", "power_abs")
    holders = {}
    for investor, amount in zip(investors, book.filled, strict=True):
        if amount > 0:
            ledger.transfer(investor.account, account, float(amount), "power_abs_purchase")
            holders[investor.account] = float(amount)
    vehicle = ReceivablesVehicle(model, vehicle_id, account, quote, holders)
    ledger.transfer(account, model.underwriter.account, fees.underwriting, "underwriting_fee")
    ledger.transfer(account, outside["service_providers"], fees.fixed + fees.appraisal,
                    "power_abs_deal_costs")  # fmt: skip
    ledger.transfer(account, outside["government"], fees.stamp_duty, "stamp_duty")
    route = "pooled" if quote.pooled else "standalone"
    for plant, amount in zip(quote.plants, quote.amounts, strict=True):
        plant.receive_financing(account, float(amount), route, fees.upfront * amount / size)
    model.power_vehicles.append(vehicle)
    model.log_event("power_abs_issued", route, f"{vehicle.name}: {len(quote.plants)} plants, "
                    f"{quote.rating}, coupon {quote.coupon:.2%}", size)  # fmt: skip
    return vehicle


class SecuritizationCenter(mesa.Agent):
    """The provincial centre: pools plants' receivables into one vehicle a year and runs it."""

    def __init__(self, model: NPLMarketModel, account: int):
        super().__init__(model)
        self.name = "Securitization Center"
        self.account = account
        self.fees_earned = 0.0

    @property
    def cash(self) -> float:
        """The centre's cash: its fees, spent on its running costs the same quarter."""
        return self.model.ledger.balance(self.account)

    def form_pool(
        self, candidates: list[PowerPlant], alternative: dict[PowerPlant, float]
    ) -> tuple[AbsQuote | None, dict]:
        """Find the largest pool every member prefers to its other routes. Plants are invited in
        order of what their other routes would cost them (dearest first): a pool of the first k
        forms if its cost beats the k-th plant's alternative. Fixed costs make a larger pool
        cheaper, so the centre looks from all candidates downwards.

        Returns:
            The pool's quote (None if no pool forms) and, for each candidate, the pooled cost it
            was quoted and why the pool was closed to it ('' if open): the formed pool's for its
            members, the pool offered to every candidate for the others.
        """
        order = sorted(candidates, key=lambda p: -alternative[p])
        offered = quote_abs(self.model, order, self._amounts(order), pooled=True)
        seen = {plant: (offered.cost, offered.reason) for plant in candidates}
        for k in range(len(order), self.model.config.power.centre_min_plants - 1, -1):
            members = order[:k]
            quote = (
                offered
                if k == len(order)
                else quote_abs(self.model, members, self._amounts(members), pooled=True)
            )
            if quote.available and quote.cost.total[0] <= alternative[members[-1]]:
                seen.update({plant: (quote.cost, "") for plant in members})
                return quote, seen
        return None, seen

    @staticmethod
    def _amounts(plants: list[PowerPlant]) -> np.ndarray:
        return np.array([plant.financing_need for plant in plants])

    def charge(self, payer: int, amount: float) -> None:
        """A pool pays the centre's running cost; the centre spends it on its staff and systems."""
        ledger = self.model.ledger
        ledger.transfer(payer, self.account, amount, "centre_fee")
        ledger.transfer(self.account, ledger.outside["service_providers"], amount, "centre_costs")
        self.fees_earned += amount
