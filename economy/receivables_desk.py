"""The deal desk's second product line: ABS backed by power plants' tariff receivables.

A plant (stand-alone) or a pool the Securitization Center puts together sells the receivables of
the capacity a project builds to a vehicle; the desk prices the deal (coverage of the scheduled
service, the chance the receivables fall short, a rating where the law requires or it pays, the
investors' book) and issues it. The law that gates NPL deals gates these too
(``LegalRegime.securitisation_barrier``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mesa
import numpy as np

from nplsim.agents.investor import Investor
from nplsim.agents.power_plant import PowerPlant
from nplsim.agents.securitization_center import (
    AbsQuote,
    ReceivablesVehicle,
    SecuritizationCenter,
)
from nplsim.agents.underwriter import Underwriter
from nplsim.economy.investor_view import DISTRESS_EPISODE_PRIOR, KindHistory
from nplsim.economy.world import EconomyWorld
from nplsim.market import legal_risk, power, pricing, route_costs
from nplsim.market.information_costs import information_cost, similarity

# Coupon investors are expected to ask over the risk-free rate when the underwriter sizes the
# receivables a deal needs, before the book is run (assumption).
COUPON_GUESS_SPREAD = 0.015
CASH_DUST = 1e-9  # investors with less cash than this do not bid
FULLY_PLACED = 1 - 1e-9  # a book that sells this share of the issue placed all of it


class ReceivablesDesk:
    """Quotes and issues receivables ABS; keeps the register of their vehicles."""

    def __init__(
        self,
        model: mesa.Model,
        world: EconomyWorld,
        investors: list[Investor],
        underwriter: Underwriter,
        centre: SecuritizationCenter | None,
        liquidity_share: Callable[[], float],
    ):
        self.model = model  # where new vehicles register as agents
        self.world = world
        self.investors = investors
        self.underwriter = underwriter
        self.centre = centre
        self.liquidity_share = liquidity_share
        self.vehicles: list[ReceivablesVehicle] = []
        self.distress = KindHistory()  # plant defaults seen and predicted (observe_plants)
        self.last_cushion: dict[int, float] = {}
        self.was_in_default: dict[int, bool] = {}

    def route_closed(self, pooled: bool) -> str:
        """Why the law or the institutions close a receivables ABS route ('' if open): it needs
        an SPV law, enterprises allowed as originators, and, for a pool, a centre."""
        world = self.world
        route = "pooled" if pooled else "standalone"
        if route not in world.scenario.power.routes:
            return "route not considered"
        barrier = world.regime.securitisation_barrier("enterprise")
        if barrier:
            return barrier
        if pooled and self.centre is None:
            return "no centre"
        return ""

    def investor_book(
        self, size: float, risk: tuple[float, float], rating: str, legal: pricing.ClaimRisk
    ) -> tuple[list[Investor], pricing.Clearing]:
        """Bookbuild a receivables ABS with the investors the regime and their mandates admit:
        each asks risk-free + expected loss + unexpected-loss, legal and liquidity premia, as for
        an NPL tranche (what it costs to know the plants is the cost technology's, paid by the
        deal, so the book charges no opacity premium on top); the book clears at one coupon.
        ``risk`` is the receivables' default probability over the deal's life and annual expected
        loss; ``legal`` the members' recharacterisation risk (``legal_risk``)."""
        world = self.world
        sec = world.scenario.securitisation
        default_prob, expected_loss = risk
        rf = world.scenario.macro.gov_bond_yield
        years = world.scenario.power.abs_tenor_q / 4
        investors = [
            i for i in self.investors if i.eligible("senior", rating) and i.cash > CASH_DUST
        ]
        credit = pricing.ClaimRisk(min(expected_loss * years, 1.0), default_prob)
        yields = np.array([
            pricing.required_yield(
                risk_free=rf, tenor_years=years, credit=credit, legal=legal,
                liquidity_premium=investor.liquidity_premium(self.liquidity_share()),
                risk_aversion=investor.risk_aversion,
            ).total
            for investor in investors
        ])  # fmt: skip
        quantity = np.array([investor.receivables_bid_quantity(size) for investor in investors])
        return investors, pricing.clear_uniform(
            size, quantity, yields, rf + sec.max_coupon_spread, firm_commitment=False
        )

    def quote(
        self, plants: list[PowerPlant], amounts: np.ndarray, pooled: bool, dispatch: float
    ) -> AbsQuote:
        """Price a deal on the receivables of the plants' projects at this quarter's
        ``dispatch``: the underwriter checks that the receivables cover the scheduled service,
        investors judge the chance they fall short (lower in a diversified pool), a rating where
        the law requires one (or where it pays), the book, and what appraising and monitoring the
        plants costs (the centre's trustee reports on a pool's members in a standard form)."""
        world = self.world
        spec, sec, regime = world.scenario.power, world.scenario.securitisation, world.regime
        pledged = np.array([plant.project_mw for plant in plants])
        quote = AbsQuote(pooled, list(plants), np.asarray(amounts, dtype=float), pledged)
        quote.reason = self.route_closed(pooled)
        if not quote.reason and pooled and len(plants) < spec.centre_min_plants:
            quote.reason = "too few plants for a pool"
        if quote.reason:
            return quote
        tenor, size = spec.abs_tenor_q, float(quote.amounts.sum())
        hours = np.array([p.hours_per_year / 4 * dispatch for p in plants])
        tariff = np.array([p.tariff for p in plants])
        receivable = power.receivables(pledged, hours, tariff).sum()
        coupon_guess = world.scenario.macro.gov_bond_yield + COUPON_GUESS_SPREAD
        coverage = receivable / (size * (1 / tenor + coupon_guess / 4))
        if coverage < spec.min_coverage:
            quote.reason = "receivables do not cover the service"
            return quote
        concentration = route_costs.herfindahl(quote.amounts)
        sigma = route_costs.pool_sigma(
            spec.revenue_sigma_q, spec.revenue_correlation, concentration
        )
        quote.default_prob = route_costs.abs_default_prob(coverage, sigma, tenor)
        expected_loss = self.expected_loss(quote.default_prob)
        quote.legal = self.legal_risk(plants, quote.amounts)
        alike = similarity(
            np.array([p.characteristics for p in plants]), spec.information.similarity_bandwidth
        )
        knowing = information_cost(
            quote.amounts, alike, regime.disclosure_level, pooled, spec.information
        )
        centre_per_year = spec.centre_operating_cny_m_per_year / 1e3 if pooled else 0.0
        best = None
        for rated in (True,) if regime.rating_required else (True, False):
            rating = pricing.rating_from_default_prob(quote.default_prob) if rated else "unrated"
            _, book = self.investor_book(
                size, (quote.default_prob, expected_loss), rating, quote.legal
            )
            if book.sold < size * FULLY_PLACED:
                quote.rating = quote.rating if best else rating
                continue
            fees = route_costs.deal_fees(
                size, knowing, rated, spec.rating_cost_share, centre_per_year, sec.underwriting_bp,
                sec.fixed_cost_cny_bn, sec.trustee_bp_per_year, regime.stamp_duty_bp,
                self.tax_rate(),
            )  # fmt: skip
            cost = route_costs.abs_cost(size, book.coupon, fees, tenor)
            if best is None or cost.total < best[0].total:
                best = (cost, rated, rating, book.coupon, fees)
        if best is None:
            quote.reason = f"investors the law admits cannot absorb a {quote.rating} issue"
            return quote
        quote.cost, quote.rated, quote.rating, quote.coupon, quote.fees = best
        return quote

    def liquidity_cover(
        self, plants: list[PowerPlant], amounts: np.ndarray, bank_service: np.ndarray
    ) -> np.ndarray:
        """Each plant's liquidity cover after selling ``amounts`` of receivables, as a rating
        agency measures a corporate's liquidity (sources over uses for the next twelve months;
        facts: liquidity-cover): its cash and a year of the cash flow its capacity, the
        project's included, earns at this quarter's coal price and dispatch, over a year of the
        debt service it must pay from them — its bank loans' (``bank_service``, a quarter's, what
        its house bank refinances left out), the ABS it has already sold and the new deal's (its
        instalment at the deal's tenor, and interest with its tax at the coupon the underwriter
        sizes with). Infinite for a plant that owes nothing."""
        world = self.world
        spec = world.scenario.power
        cash = np.array([plant.cash for plant in plants])
        ebitda = np.array([float(plant.quarter_ops.ebitda[0]) for plant in plants])
        capacity = np.array([plant.capacity_mw for plant in plants])
        added = np.array([plant.project_mw for plant in plants])
        held: dict[int, float] = {}  # each plant's share of its live deals' next service
        for vehicle in self.vehicles:
            if vehicle.live:
                for plant, due in zip(vehicle.plants, vehicle.scheduled_service(), strict=True):
                    held[plant.index] = held.get(plant.index, 0.0) + float(due)
        held_by = np.array([held.get(plant.index, 0.0) for plant in plants])
        coupon = world.scenario.macro.gov_bond_yield + COUPON_GUESS_SPREAD
        tax = self.tax_rate()
        new = np.asarray(amounts, dtype=float) * (1 / spec.abs_tenor_q + coupon / 4 * (1 + tax))
        sources = cash + 4 * ebitda * (capacity + added) / capacity
        uses = 4 * (np.asarray(bank_service, dtype=float) + held_by + new)
        return np.divide(sources, uses, out=np.full(len(plants), np.inf), where=uses > 0)

    def legal_risk(self, plants: list[PowerPlant], amounts: np.ndarray) -> pricing.ClaimRisk:
        """The deal's recharacterisation risk from its members' own state, priced as for an NPL
        deal's originator (``legal_risk.distress_probability``): each member plant is the
        originator whose distress can bring a court to its receivables. Its cushion is its log
        distance to default, ``−ln`` of its adjusted leverage once the project is built and
        funded, a driftless walk with the lenders' asset volatility; investors scale that
        structural hazard by how often plants actually defaulted in the run against how often
        it predicted. Then the regime's court reach, and what a member's recharacterisation
        costs them (``abs_loss_severity`` of its share)."""
        world = self.world
        spec, regime = world.scenario.power, world.regime
        distress = np.array([
            legal_risk.distress_probability(
                plant_cushion(plant.leverage_after(float(amount), plant.capex_need)),
                spec.asset_volatility_q, spec.abs_tenor_q, self.distress.episodes,
                self.distress.expected_episodes, DISTRESS_EPISODE_PRIOR,
            )
            for plant, amount in zip(plants, amounts, strict=True)
        ])  # fmt: skip
        return route_costs.pool_legal_risk(
            distress, amounts,
            legal_risk.court_reach(regime.bankruptcy_remoteness, regime.spv_form),
            spec.abs_loss_severity,
        )  # fmt: skip

    def observe_plants(self, plants: list[PowerPlant]) -> None:
        """Investors' record of plant distress, once a quarter after the defaults: each plant
        that was performing adds the structural chance that it would default this quarter, and
        each that did adds an episode."""
        vol_q = self.world.scenario.power.asset_volatility_q
        for plant in plants:
            last = self.last_cushion.get(plant.index)
            if last is not None and not self.was_in_default.get(plant.index, False):
                self.distress.observe_quarter(last, vol_q, plant.in_default)
            self.last_cushion[plant.index] = plant_cushion(plant.adjusted_leverage)
            self.was_in_default[plant.index] = plant.in_default

    def tax_rate(self) -> float:
        """Tax on a receivables vehicle's taxable income under the regime's SPV form."""
        regime = self.world.regime
        return pricing.spv_tax_rate(regime, regime.spv_form)

    def expected_loss(self, default_prob: float) -> float:
        """Investors' annual expected loss on a power ABS that defaults with ``default_prob`` over
        its life and then loses ``abs_loss_severity``."""
        spec = self.world.scenario.power
        return pricing.expected_loss_rate(
            default_prob, spec.abs_loss_severity, spec.abs_tenor_q / 4
        )

    def issue(self, quote: AbsQuote) -> ReceivablesVehicle | None:
        """Sell the deal to the investors the book finds now (None if it cannot be fully placed,
        or if its upfront costs would eat the whole issue): they pay the vehicle, the vehicle
        pays the upfront costs and passes the rest to the plants."""
        world = self.world
        size = float(quote.amounts.sum())
        if quote.fees.upfront >= size:  # an issue that cannot pay its own costs is not made
            return None
        expected_loss = self.expected_loss(quote.default_prob)
        investors, book = self.investor_book(
            size, (quote.default_prob, expected_loss), quote.rating, quote.legal
        )
        if book.sold < size * FULLY_PLACED:
            return None
        ledger, outside, fees = world.ledger, world.ledger.outside, quote.fees
        vehicle_id = len(self.vehicles)
        account = ledger.open_account(f"Power ABS {vehicle_id}", "power_abs")
        holders = {}
        for investor, amount in zip(investors, book.filled, strict=True):
            if amount > 0:
                ledger.transfer(investor.account, account, float(amount), "power_abs_purchase")
                holders[investor.account] = float(amount)
        vehicle = ReceivablesVehicle(
            self.model, world, vehicle_id, account, quote, holders, self.centre
        )
        ledger.transfer(account, self.underwriter.account, fees.underwriting, "underwriting_fee")
        ledger.transfer(account, outside["service_providers"], fees.fixed + fees.appraisal,
                        "power_abs_deal_costs")  # fmt: skip
        ledger.transfer(account, outside["government"], fees.stamp_duty, "stamp_duty")
        route = "pooled" if quote.pooled else "standalone"
        for plant, amount in zip(quote.plants, quote.amounts, strict=True):
            plant.receive_financing(account, float(amount), route, fees.upfront * amount / size)
        self.vehicles.append(vehicle)
        world.log_event("power_abs_issued", route, f"{vehicle.name}: {len(quote.plants)} plants, "
                        f"{quote.rating}, coupon {quote.coupon:.2%}", size)  # fmt: skip
        return vehicle


def plant_cushion(leverage: float) -> float:
    """A plant's log distance to default, ``−ln L`` of its adjusted leverage (−∞ without assets
    left, so that it counts as distressed)."""
    if not leverage < math.inf:
        return -math.inf
    return -math.log(leverage) if leverage > 0 else math.inf
