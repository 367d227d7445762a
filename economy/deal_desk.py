"""The deal desk (phase 6b): NPL securitisations from pooling to settlement.

The study's five parts of a securitisation, in order: (1) pooling — an originator's chosen NPLs,
oldest first; (2) true sale — the loans move to a new vehicle at the cut-off, with the regime's
transfer frictions (debtor notice per borrower, stamp duty, whether collateral follows the claim,
approval of a bulk transfer), and investors form their rational expectation of the pool the
originator chose; (3) product design — after the closing lag the underwriter sizes the tranches
by the rating agencies' stress method on investors' view of the pool (its disclosed value, the
selection discount, the originator's track record, the recharacterisation risk its capital
implies) and buys a guarantee where it pays; (4) underwriting and sale — bookbuilding with the
investors the law admits, the subordinated tranche sold at par; (5) settlement — cash to the
originator, retained slices kept, the deal booked for servicing (``nplsim.economy.servicing``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mesa
import numpy as np

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.agents.enhancer import CreditEnhancer
from nplsim.agents.investor import Investor
from nplsim.agents.spv import LIVE, PENDING, DealTerms, PoolAtCutoff, SpecialPurposeVehicle
from nplsim.agents.underwriter import Design, Underwriter
from nplsim.economy.investor_view import InvestorView, PoolView
from nplsim.economy.world import EconomyWorld
from nplsim.market import deal_timing, pricing, waterfall
from nplsim.market.blotter import Blotter

# Interest accrued before the cut-off counts in a pool's face for at most this many quarters
# (assumption: claims older than three years are carried at principal plus three years' interest).
MAX_ACCRUAL_Q = 12
TRANCHES = waterfall.TRANCHES
RATED = ("senior", "mezz")
Originator = StateBank | AssetManagementCompany


class DealDesk:
    """Runs every NPL deal from cut-off to issue and keeps the register of vehicles."""

    def __init__(
        self,
        model: mesa.Model,
        world: EconomyWorld,
        banks: list[StateBank],
        amcs: list[AssetManagementCompany],
        investors: list[Investor],
        enhancers: list[CreditEnhancer],
        state_guarantor: CreditEnhancer,
        underwriter: Underwriter,
        blotter: Blotter,
        liquidity_share: Callable[[], float],
    ):
        self.model = model  # where new vehicles register as agents
        self.world = world
        self.banks = banks
        self.amcs = amcs
        self.investors = investors
        self.enhancers = enhancers
        self.state_guarantor = state_guarantor
        self.underwriter = underwriter
        self.blotter = blotter
        self.liquidity_share = liquidity_share
        self.investor_view = InvestorView(world, [*banks, *amcs])
        self.vehicles: list[SpecialPurposeVehicle] = []  # by deal id
        self.by_account: dict[int, SpecialPurposeVehicle] = {}
        self.book = waterfall.new_deal_book()
        self.deal_rows: list[dict[str, Any]] = []
        self.issued = 0.0  # this quarter's issuance, CNY bn
        self._views: dict[int, tuple[tuple, PoolView]] = {}
        self._values: dict[int, tuple[tuple, float]] = {}

    # ------------------------------------------------------------------ the gate
    def open_to(self, originator: Originator) -> bool:
        """Whether the law lets this originator securitise now, with no deal of its own still in
        the pipeline."""
        return not self.world.regime.securitisation_barrier(originator.originator_kind) and not any(
            s.state == PENDING and s.originator is originator for s in self.vehicles
        )

    # ------------------------------------------------------------------ (1)-(2) pool, true sale
    def amc_pools(self) -> list[tuple[AssetManagementCompany, np.ndarray, np.ndarray]]:
        """AMCs that may originate deals offer the NPLs they would rather securitise."""
        pools = []
        for amc in self.amcs:
            if not self.open_to(amc):
                continue
            idx = amc.securitisation_candidates()
            if idx.size:
                pools.append((amc, idx, np.zeros(idx.size)))
        return pools

    def start(self, offers: list[tuple[Originator, np.ndarray, np.ndarray]]) -> None:
        """Pooling and true sale: each originator's chosen NPLs (already no more than a pool)
        go to a new SPV."""
        for originator, idx, _ in offers:
            if idx.size:
                self.open_vehicle(originator, np.sort(idx))

    def notice_quarters(self) -> int:
        """Quarters until the debtors are bound by notice of a transfer."""
        return deal_timing.notice_quarters(self.world.regime, self.world.scenario.securitisation)

    def closing_lag(self, borrowers: float) -> int:
        """Quarters from cut-off to closing: debtor notice, and approval of a bulk transfer."""
        regime, spec = self.world.regime, self.world.scenario.securitisation
        return deal_timing.closing_lag_q(regime, spec, borrowers)

    def open_vehicle(self, originator: Originator, slots: np.ndarray) -> SpecialPurposeVehicle:
        """Create the vehicle, move the loans into it and charge the transfer frictions; investors
        form their view of how the originator chose the pool."""
        world = self.world
        loans, regime, spec = world.loans, world.regime, world.scenario.securitisation
        ledger = world.ledger
        deal_id = len(self.vehicles)
        account = ledger.open_account(f"SPV {deal_id}", "spv")
        servicer = originator
        if spec.servicer == "amc" and originator in self.banks:
            servicer = self.amcs[self.banks.index(originator) % len(self.amcs)]
        face = float(loans.principal[slots].sum())
        carrying = float(loans.carrying[slots].sum())
        age = loans.age_q(world.quarter, slots)
        accrued = loans.principal[slots] * loans.rate[slots] * np.minimum(age, MAX_ACCRUAL_Q) / 4
        borrowers = float(loans.borrowers(slots).sum())
        stamp = regime.stamp_duty_bp / 1e4 * face
        notice = float(originator.transfer_costs(slots).sum()) - stamp
        pool = PoolAtCutoff(
            n_loans=int(slots.size),
            face=face,
            face_with_interest=face + float(accrued.sum()),
            carrying=carrying,
            reference_value=float(originator.investor_value(slots, regime.disclosure_level).sum()),
            notice_cost=notice,
            stamp_duty=stamp,
            borrowers=borrowers,
            lemons_factor=self.investor_view.lemons_factor(originator, slots),
        )
        spv = SpecialPurposeVehicle(
            self.model, world, deal_id, account, originator, servicer, slots,
            world.quarter + self.closing_lag(borrowers), world.quarter + self.notice_quarters(),
            pool,
        )  # fmt: skip
        if not regime.collateral_follows_claim:
            loans.collateral_share[slots] *= 1.0 - spec.collateral_loss_without_transfer
        world.npl_exits.record(slots)
        loans.transfer(slots, account, loans.carrying[slots])
        self.vehicles.append(spv)
        self.by_account[account] = spv
        world.holdings.add_account()
        world.holdings.move_npls(originator.account, account, face, carrying, carrying)
        originator.prepare_payment(notice + stamp)
        outside = ledger.outside
        ledger.transfer(originator.account, outside["service_providers"], notice, "debtor_notice")
        ledger.transfer(originator.account, outside["government"], stamp, "stamp_duty")
        originator.transfer_to_spv(carrying, face, notice + stamp)
        world.log_event(
            "true_sale", originator.name, f"{spv.name}: {slots.size} loans, closing in "
            f"{spv.closing_quarter - world.quarter} q", face,
        )  # fmt: skip
        return spv

    # ------------------------------------------------------------------ what investors see
    def pool_view(self, spv: SpecialPurposeVehicle) -> tuple[float, float]:
        """Investors' expected PV of a deal's collections (the pool's and its cash now) and their
        log-s.d.: for a live deal, its pool's disclosed value now at the terms it was priced on
        (computed once a quarter)."""
        if spv.terms is None:
            view = self.view(spv)
            return view.pool_mean + spv.cash, view.sigma_seen
        key = (spv.deal_id, self.world.quarter)
        cached = self._values.get(spv.deal_id)
        if cached is None or cached[0] != key:
            cached = (key, self.investor_view.public_value(spv))
            self._values[spv.deal_id] = cached
        terms = spv.terms
        return terms.collection_factor * cached[1] + spv.cash, terms.collection_sigma

    def view(self, spv: SpecialPurposeVehicle) -> PoolView:
        """Investors' full view of a pool now (``InvestorView.pool_view``), computed once per deal
        and quarter: the pool does not change within a quarter's later phases."""
        key = (spv.deal_id, self.world.quarter)
        cached = self._views.get(spv.deal_id)
        if cached is None or cached[0] != key:
            cached = (key, self.investor_view.pool_view(spv))
            self._views[spv.deal_id] = cached
        return cached[1]

    # ------------------------------------------------------------------ (3)-(5) closing
    def close_due(self) -> None:
        """Deals whose closing lag has passed are structured, enhanced, sold and issued."""
        for spv in self.vehicles:
            if spv.state == PENDING and spv.closing_quarter <= self.world.quarter:
                self.close(spv)

    def guarantees_on_offer(self, senior_estimate: float) -> list[tuple[CreditEnhancer, float]]:
        """Each guarantor that could take the senior, with the cover investors credit it: the
        state scheme where the regime has one, else the private guarantors with room."""
        regime, spec = self.world.regime, self.world.scenario.securitisation
        if regime.state_guarantee_scheme:
            return [(self.state_guarantor, regime.guarantee_enforceability)]
        cover = regime.guarantee_enforceability * spec.private_guarantee_cover
        return [(e, cover) for e in self.enhancers if e.capacity >= senior_estimate]

    def retention(self, sizes: pricing.TrancheSizes) -> dict[str, float]:
        """Notional the originator must keep, per tranche (risk retention: a vertical slice of
        every tranche, or the lowest tranches first)."""
        regime = self.world.regime
        notional = {"senior": sizes.senior, "mezz": sizes.mezz, "sub": sizes.sub}
        if regime.retention_form == "vertical":
            return {t: regime.risk_retention * v for t, v in notional.items()}
        keep = regime.risk_retention * sum(notional.values())
        kept = {}
        for tranche in ("sub", "mezz", "senior"):
            kept[tranche] = min(keep, notional[tranche])
            keep -= kept[tranche]
        return kept

    def reference_liquidity(self) -> float:
        """The liquidity premium of a reference investor the law admits, in today's market."""
        share = self.liquidity_share()
        admitted = [i for i in self.investors if i.eligible("senior", "AAA")]
        return float(np.mean([i.liquidity_premium(share) for i in admitted])) if admitted else 0.0

    def close(self, spv: SpecialPurposeVehicle) -> None:
        """Product design, credit enhancement, underwriting and sale, and settlement."""
        world = self.world
        regime = world.regime
        originator = spv.originator
        view = self.view(spv)
        legal = self.investor_view.legal_exposure(originator, view.resolve_prob)
        estimate = pricing.size_rated_tranches(
            view.pool_mean, view.sigma_seen, legal, self.underwriter.carry_rate, view.life_q,
            certain=view.cash,
        )[0]  # fmt: skip
        design = self.underwriter.design(
            view, legal, self.guarantees_on_offer(estimate), self.reference_liquidity()
        )
        sizes = design.sizes
        kept = self.retention(sizes)
        notional = {"senior": sizes.senior, "mezz": sizes.mezz, "sub": sizes.sub}
        coupon, components, bid_to_cover, cash_in = self._place_rated(
            spv, sizes, notional, kept, view, legal, design.cover
        )
        cash_in += self._sell_sub(spv, notional["sub"] - kept["sub"])
        kept["sub"] = notional["sub"] - sum(
            v for a, v in spv.holders["sub"].items() if a != originator.account
        )
        for tranche in TRANCHES:
            if kept[tranche] > 0:
                spv.register(tranche, originator.account, kept[tranche])
        issued = sum(notional.values())
        to_originator, upfront, reserve, costs = self._settle(spv, issued, notional, cash_in)
        discount = 1.0 - issued / spv.pool.face if spv.pool.face > 0 else 1.0
        rules = world.prudential  # capital weights of retained tranches, by rating
        risk_weight = {
            "senior": pricing.senior_risk_weight(
                sizes.senior_rating, discount, rules.securitisation_weight,
                rules.npl_senior_risk_weight,
            ),
            "mezz": rules.securitisation_weight(sizes.mezz_rating),
            "sub": rules.securitisation_weight("unrated"),
        }  # fmt: skip
        retained = {(spv.deal_id, t): [kept[t], kept[t]] for t in notional if kept[t] > 1e-12}
        derecognised = regime.derecognition_allowed
        originator.settle_securitisation(
            spv.pool.carrying, to_originator, retained, spv.pool.reference_value,
            risk_weight if derecognised else None, spv, spv.deal_id,
        )  # fmt: skip
        book_index = self.book.append(
            senior=notional["senior"], mezz=notional["mezz"], sub=notional["sub"],
            senior_coupon=coupon["senior"], mezz_coupon=coupon["mezz"], reserve=reserve,
        )  # fmt: skip
        guarantor = design.guarantor if notional["senior"] > 0 else None
        if guarantor is not None:
            guarantor.write(spv.deal_id, notional["senior"])
        self.issued += issued
        record = self._record(
            spv, view, legal, design, notional, coupon, components, bid_to_cover, kept, issued,
            upfront + costs["trustee"], reserve, to_originator,
        )  # fmt: skip
        spv.go_live(DealTerms(
            book_index, view.mean, guarantor, design.fee_rate, risk_weight, derecognised,
            regime.spv_form, view.factor, view.sigma_seen, record,
        ))  # fmt: skip
        spv.cash_reported = spv.cash
        self.investor_view.open_record(spv, view)
        self.deal_rows.append(record)
        world.log_event("deal_issued", originator.name, spv.name, issued)

    def _settle(
        self, spv: SpecialPurposeVehicle, issued: float, notional: dict[str, float], cash_in: float
    ) -> tuple[float, float, float, dict[str, float]]:
        """Pay the underwriting and fixed costs, fund the reserve and pay the originator; returns
        (to the originator, upfront costs, reserve, the deal's cost schedule)."""
        world = self.world
        spec = world.scenario.securitisation
        costs = pricing.issuance_costs(
            issued, spec.underwriting_bp, spec.fixed_cost_cny_bn, spec.trustee_bp_per_year,
            spec.tenor_q,
        )  # fmt: skip
        ledger, outside = world.ledger, world.ledger.outside
        upfront = min(costs["underwriting"] + costs["fixed"], cash_in)
        underwriting = min(costs["underwriting"], upfront)
        ledger.transfer(spv.account, self.underwriter.account, underwriting, "underwriting_fee")
        ledger.transfer(
            spv.account, outside["service_providers"], upfront - underwriting, "deal_costs"
        )
        reserve = min(spec.reserve_share * notional["senior"], cash_in - upfront)
        to_originator = cash_in - upfront - reserve
        ledger.transfer(
            spv.account, spv.originator.account, to_originator, "securitisation_proceeds"
        )
        return to_originator, upfront, reserve, costs

    def _record(
        self, spv, view: PoolView, legal: pricing.LegalExposure, design: Design, notional,
        coupon, components, bid_to_cover, kept, issued, fees, reserve, to_originator,
    ) -> dict[str, Any]:  # fmt: skip
        """The deal's row of ``deals.parquet`` (realised collections are filled at maturity)."""
        world = self.world
        rf = world.scenario.macro.gov_bond_yield
        sizes, pool = design.sizes, spv.pool
        senior = components.get("senior")

        def bp(name: str) -> float:
            return getattr(senior, name) * 1e4 if senior is not None else float("nan")

        return {
            "deal_id": spv.deal_id,
            "originator": spv.originator.name,
            "quarter_cutoff": spv.cutoff_quarter,
            "quarter_issued": world.quarter,
            "closing_lag_q": world.quarter - spv.cutoff_quarter,
            "pool_loans": pool.n_loans,
            "pool_borrowers": pool.borrowers,
            "pool_principal": pool.face,
            "pool_face": pool.face_with_interest,
            "pool_expected_recovery": view.mean,
            "pool_public_value": view.public_mean,
            "lemons_factor": view.lemons,
            "originator_bias": view.belief.factor,
            "collection_sigma": view.sigma_seen,
            "distress_prob": legal.distress_prob,
            "court_reach": legal.court_reach,
            "recharacterisation_loss": legal.pool_loss,
            "issued_total": issued,
            "senior_size": notional["senior"],
            "mezz_size": notional["mezz"],
            "sub_size": notional["sub"],
            "senior_rating": sizes.senior_rating,
            "mezz_rating": sizes.mezz_rating,
            "senior_coupon": coupon["senior"],
            "mezz_coupon": coupon["mezz"],
            "senior_spread_bp": (coupon["senior"] - rf) * 1e4 if senior else float("nan"),
            "senior_expected_loss_bp": bp("expected_loss"),
            "senior_unexpected_loss_bp": bp("unexpected_loss"),
            "senior_legal_premium_bp": bp("legal"),
            "senior_information_premium_bp": bp("information"),
            "senior_liquidity_premium_bp": bp("liquidity"),
            "senior_bid_to_cover": bid_to_cover,
            "sub_price": 1.0 if notional["sub"] > 0 else float("nan"),
            "sub_required_return": design.sub_return,
            "fees_total": fees,
            "transfer_costs": pool.notice_cost + pool.stamp_duty,
            "notice_cost": pool.notice_cost,
            "retained": sum(kept.values()),
            "retention_required": world.regime.risk_retention * issued,
            "reserve": reserve,
            "proceeds_to_originator": to_originator,
            "net_proceeds_per_face": (to_originator + sum(kept.values())) / pool.face,
            "guarantor": design.guarantor.name if design.guarantor is not None else "",
            "guarantee_fee_bp": design.fee_rate * 1e4,
            "servicer": spv.servicer.name,
            "expected_collections": float(view.schedule.sum()) * view.belief.factor,
            "realised_collections": float("nan"),
            "realised_to_expected": float("nan"),
        }

    def _place_rated(
        self,
        spv: SpecialPurposeVehicle,
        sizes: pricing.TrancheSizes,
        notional: dict[str, float],
        kept: dict[str, float],
        view: PoolView,
        legal: pricing.LegalExposure,
        cover: float,
    ) -> tuple[dict[str, float], dict[str, pricing.YieldComponents], float, float]:
        """Bookbuild the senior and mezzanine tranches with the investors the law and their
        mandates admit; a best-efforts deal downsizes ``notional`` to what was placed.

        Returns:
            the coupons, the senior's yield components (a reference investor's), the senior
            bid-to-cover and the cash investors paid in.
        """
        ledger = self.world.ledger
        attach = {"senior": 0.0, "mezz": sizes.senior}
        coupon = {"senior": 0.0, "mezz": 0.0}
        components: dict[str, pricing.YieldComponents] = {}
        bid_to_cover = float("nan")
        cash_in = 0.0
        share = self.liquidity_share()
        liquidity = self.reference_liquidity()
        for tranche in RATED:
            for_sale = notional[tranche] - kept[tranche]
            rating = sizes.senior_rating if tranche == "senior" else sizes.mezz_rating
            investors = [i for i in self.investors if i.eligible(tranche, rating)]
            if notional[tranche] <= 0:
                continue
            detach = attach[tranche] + notional[tranche]
            tranche_cover = cover if tranche == "senior" else 0.0
            components[tranche] = self.underwriter.components(
                attach[tranche], detach, view, legal, tranche_cover, 1.0, liquidity
            )
            yields = self.underwriter.investor_yields(
                investors, attach[tranche], detach, view, legal, tranche_cover, share
            )
            top = self.range_top(components[tranche])
            clearing = self.underwriter.bookbuild(
                spv.deal_id, tranche, for_sale, yields, investors, top
            )
            for investor, amount in zip(investors, clearing.filled, strict=True):
                if amount > 0:
                    spv.register(tranche, investor.account, amount)
                    investor.receive(spv.deal_id, tranche, amount)
            if clearing.underwriter_takes > 0:
                spv.register(tranche, self.underwriter.account, clearing.underwriter_takes)
            if tranche == "senior":
                bid_to_cover = clearing.bid_to_cover
            placed = clearing.sold + clearing.underwriter_takes
            notional[tranche] = placed + kept[tranche]  # best efforts downsizes
            coupon[tranche] = clearing.coupon if placed > 0 else top
            for account, amount in spv.holders[tranche].items():
                ledger.transfer(account, spv.account, amount, "abs_purchase")
                cash_in += amount
                self._record_primary(spv, tranche, account, amount, 1.0)
        return coupon, components, bid_to_cover, cash_in

    def range_top(self, reference: pricing.YieldComponents) -> float:
        """The top of a tranche's bookbuilding range: the underwriter's estimate of its required
        yield (a reference investor's ``reference``) plus the range's width, within the issuer's
        coupon cap."""
        config = self.world.scenario
        spec = config.securitisation
        cap = config.macro.gov_bond_yield + spec.max_coupon_spread
        if spec.price_range_width is None:
            return cap
        return min(cap, reference.total + spec.price_range_width)

    def _sell_sub(self, spv: SpecialPurposeVehicle, for_sale: float) -> float:
        """Sell the subordinated tranche at par to eligible investors, pro rata to what each
        can pay; returns the cash raised."""
        buyers = [i for i in self.investors if i.eligible("sub") and i.cash > 0]
        if for_sale <= 0 or not buyers:
            return 0.0
        capacity = np.array([b.cash for b in buyers])
        take = capacity * min(1.0, for_sale / capacity.sum())
        raised = 0.0
        for buyer, amount in zip(buyers, take, strict=True):
            if amount <= 0:
                continue
            spv.register("sub", buyer.account, amount)
            buyer.receive(spv.deal_id, "sub", amount)
            self.world.ledger.transfer(buyer.account, spv.account, amount, "abs_purchase")
            raised += amount
            self._record_primary(spv, "sub", buyer.account, amount, 1.0)
        return raised

    def _record_primary(
        self, spv: SpecialPurposeVehicle, tranche: str, account: int, notional: float, price: float
    ) -> None:
        self.blotter.record(
            "primary", spv.name, self.world.ledger.names[account], tranche, notional,
            notional * price, price_to_face=price,
        )  # fmt: skip

    # ------------------------------------------------------------------ the register
    def live(self) -> list[SpecialPurposeVehicle]:
        """Vehicles whose tranches are outstanding."""
        return [spv for spv in self.vehicles if spv.state == LIVE]

    def abs_outstanding(self) -> float:
        """Outstanding principal (notional for the sub) of every live deal's tranches."""
        live = [spv.terms.book_index for spv in self.live()]
        return float(sum(self.book.balance[t][live].sum() for t in TRANCHES))
