"""The deal desk (phase 6b): NPL securitisations from pooling to settlement.

The study's five parts of a securitisation, in order: (1) pooling — an originator's chosen NPLs,
oldest first; (2) true sale — the loans move to a new vehicle at the cut-off, with the regime's
transfer frictions (debtor notice, stamp duty, whether collateral follows the claim, approval of a
bulk transfer); (3) product design — after the closing lag the underwriter sizes the tranches and
a guarantor may enhance the senior; (4) underwriting and sale — bookbuilding with the investors the
law admits, the subordinated tranche sold at a price; (5) settlement — cash to the originator,
retained slices kept, the deal booked for servicing (``nplsim.economy.servicing``).
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
from nplsim.agents.underwriter import Underwriter
from nplsim.economy.world import EconomyWorld
from nplsim.market import pricing, waterfall
from nplsim.market.blotter import Blotter
from nplsim.market.loans import expected_workout_value, workout_value_table

# Share of a deal's legal tenor by which its pool is expected to have paid (assumption): paces the
# trigger's expected collection path and the time the subordinated residual is discounted over.
COLLECTION_HORIZON = 0.6
# Interest accrued before the cut-off counts in a pool's face for at most this many quarters
# (assumption: claims older than three years are carried at principal plus three years' interest).
MAX_ACCRUAL_Q = 12
# Guarantees are bought only where courts enforce them at least this well (assumption).
MIN_GUARANTEE_ENFORCEABILITY = 0.5
TRANCHES = waterfall.TRANCHES
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
        self.vehicles: list[SpecialPurposeVehicle] = []  # by deal id
        self.by_account: dict[int, SpecialPurposeVehicle] = {}
        self.book = waterfall.new_deal_book()
        self.deal_rows: list[dict[str, Any]] = []
        self.issued = 0.0  # this quarter's issuance, CNY bn
        self._views: dict[int, tuple[tuple, tuple[float, float]]] = {}

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
        """Pooling and true sale: each originator's chosen NPLs, oldest first, go to a new SPV."""
        spec, loans = self.world.scenario.securitisation, self.world.loans
        for originator, idx, _ in offers:
            if idx.size < spec.min_pool_loans:
                continue
            order = np.argsort(loans.default_q[idx], kind="stable")
            self.open_vehicle(originator, np.sort(idx[order][: spec.max_pool_loans]))

    def closing_lag(self, n_loans: int) -> int:
        """Quarters from cut-off to closing: debtor notice, and approval of a bulk transfer."""
        regime, spec = self.world.regime, self.world.scenario.securitisation
        lag = 1 + regime.notice_delay_q
        if regime.debtor_notice == "individual":
            lag = max(lag, 1 + spec.individual_notice_min_delay_q)
        if regime.bulk_transfer_to_amc_only and n_loans >= regime.bulk_threshold:
            lag += spec.bulk_approval_delay_q
        return lag

    def transfer_costs(self, n_loans: int, face: float) -> tuple[float, float]:
        """Debtor-notice cost and stamp duty of transferring a pool (CNY bn)."""
        regime, spec = self.world.regime, self.world.scenario.securitisation
        notice = 0.0
        if regime.debtor_notice != "none":
            notice = regime.notice_cost_per_loan_cny * spec.borrowers_per_loan * n_loans * 1e-9
        return notice, regime.stamp_duty_bp / 1e4 * face

    def open_vehicle(self, originator: Originator, slots: np.ndarray) -> SpecialPurposeVehicle:
        """Create the vehicle, move the loans into it and charge the transfer frictions."""
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
        reference = float(originator.market_view(slots).sum())
        notice, stamp = self.transfer_costs(slots.size, face)
        pool = PoolAtCutoff(
            n_loans=int(slots.size),
            face=face,
            face_with_interest=face + float(accrued.sum()),
            carrying=carrying,
            reference_value=reference,
            notice_cost=notice,
            stamp_duty=stamp,
        )
        spv = SpecialPurposeVehicle(
            self.model, world, deal_id, account, originator, servicer, slots,
            world.quarter + self.closing_lag(slots.size), pool,
        )  # fmt: skip
        if not regime.collateral_follows_claim:
            loans.collateral_share[slots] *= 1.0 - spec.collateral_loss_without_transfer
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
        """Investors' view of a pool: mean and log-s.d. of its discounted collections (CNY bn),
        from what the regime's disclosure reveals, under the servicer's workout skill (computed
        once per deal and quarter and phase: the pool and the SPV's cash do not change within)."""
        key = (spv.deal_id, self.world.quarter, spv.cash)
        cached = self._views.get(spv.deal_id)
        if cached is None or cached[0] != key:
            cached = (key, self._pool_view(spv))
            self._views[spv.deal_id] = cached
        return cached[1]

    def _pool_view(self, spv: SpecialPurposeVehicle) -> tuple[float, float]:
        world = self.world
        regime, config = world.regime, world.scenario
        spec = config.securitisation
        hazard = world.workout_hazard(spv.servicer.workout_skill)
        discount_q = (1.0 + config.macro.gov_bond_yield) ** -0.25
        table = workout_value_table(
            -np.expm1(-hazard), discount_q, config.write_off_age_q, spec.disposal_cost_cap
        )
        pool = expected_workout_value(
            world.loans, spv.live_slots, world.quarter, table, discount_q, regime.disclosure_level
        )
        sigma = pricing.collection_sigma(
            regime.disclosure_level, spec.sigma_floor, spec.sigma_opacity
        )
        return float(pool.sum()) + spv.cash, sigma

    # ------------------------------------------------------------------ (3)-(5) closing
    def close_due(self) -> None:
        """Deals whose closing lag has passed are structured, enhanced, sold and issued."""
        for spv in self.vehicles:
            if spv.state == PENDING and spv.closing_quarter <= self.world.quarter:
                self.close(spv)

    def choose_guarantor(self, senior: float) -> CreditEnhancer | None:
        """The state scheme where the regime has one; else the private guarantor with the most
        room, where guarantees are enforceable enough to be worth buying."""
        regime = self.world.regime
        if regime.state_guarantee_scheme:
            return self.state_guarantor
        if regime.guarantee_enforceability < MIN_GUARANTEE_ENFORCEABILITY:
            return None
        able = [e for e in self.enhancers if e.capacity >= senior]
        return max(able, key=lambda e: e.capacity) if able else None

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

    def close(self, spv: SpecialPurposeVehicle) -> None:
        """Product design, credit enhancement, underwriting and sale, and settlement."""
        world = self.world
        regime, spec = world.regime, world.scenario.securitisation
        rf = world.scenario.macro.gov_bond_yield
        originator = spv.originator
        mean, sigma = self.pool_view(spv)
        sizes = self.underwriter.structure(mean, sigma)
        guarantor = self.choose_guarantor(sizes.senior)
        cover = 0.0
        if guarantor is not None:
            trust = 1.0 if guarantor.state_backed else spec.private_guarantee_cover
            cover = regime.guarantee_enforceability * trust
        kept = self.retention(sizes)
        notional = {"senior": sizes.senior, "mezz": sizes.mezz, "sub": sizes.sub}
        coupon, components, bid_to_cover, cash_in = self._place_rated(
            spv, sizes, notional, kept, mean, sigma, cover
        )
        # The residual is what collections leave after the rated tranches' principal and their
        # interest over about half the collection horizon; sub buyers discount it at their
        # return plus the legal and information premia of the deal.
        years = COLLECTION_HORIZON * spec.tenor_q / 4
        rated_cost = sum(notional[t] * (1.0 + coupon[t] * years / 2) for t in ("senior", "mezz"))
        expected_residual = max(mean - rated_cost, 0.0)
        premia = components.get("senior")
        sub_return = spec.sub_required_return + (
            premia.legal + premia.information if premia is not None else 0.0
        )
        sub_value = pricing.sub_price(
            expected_residual, sub_return, round(COLLECTION_HORIZON * spec.tenor_q)
        )
        sub_ratio = sub_value / notional["sub"] if notional["sub"] > 0 else 0.0
        cash_in += self._sell_sub(spv, notional["sub"] - kept["sub"], sub_ratio)
        kept["sub"] = notional["sub"] - sum(
            v for a, v in spv.holders["sub"].items() if a != originator.account
        )
        if kept["sub"] > 0:
            spv.register("sub", originator.account, kept["sub"])
        for tranche in ("senior", "mezz"):
            if kept[tranche] > 0:
                spv.register(tranche, originator.account, kept[tranche])
        issued = sum(notional.values())
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
        ledger.transfer(spv.account, originator.account, to_originator, "securitisation_proceeds")
        price = {"senior": 1.0, "mezz": 1.0, "sub": sub_ratio}
        retained = {
            (spv.deal_id, t): [kept[t], kept[t] * price[t]] for t in notional if kept[t] > 1e-12
        }
        rules = world.prudential  # capital weights of retained tranches, by rating
        risk_weight = {
            "senior": rules.npl_senior_risk_weight,
            "mezz": rules.securitisation_weight(sizes.mezz_rating),
            "sub": rules.securitisation_weight("unrated"),
        }
        derecognised = regime.derecognition_allowed
        originator.settle_securitisation(
            spv.pool.carrying, to_originator, retained, spv.pool.reference_value,
            risk_weight if derecognised else None, spv, spv.deal_id,
        )  # fmt: skip
        book_index = self.book.append(
            senior=notional["senior"], mezz=notional["mezz"], sub=notional["sub"],
            senior_coupon=coupon["senior"], mezz_coupon=coupon["mezz"], reserve=reserve,
        )  # fmt: skip
        fee_rate = 0.0
        if guarantor is not None:
            expected_loss = pricing.tranche_expected_loss(0.0, notional["senior"], mean, sigma)
            fee_rate = guarantor.fee_rate(expected_loss / (spec.tenor_q / 4))
            guarantor.write(spv.deal_id, notional["senior"])
        self.issued += issued
        senior = components.get("senior")
        pool = spv.pool
        record = {
            "deal_id": spv.deal_id,
            "originator": originator.name,
            "quarter_cutoff": spv.cutoff_quarter,
            "quarter_issued": world.quarter,
            "closing_lag_q": world.quarter - spv.cutoff_quarter,
            "pool_loans": pool.n_loans,
            "pool_principal": pool.face,
            "pool_face": pool.face_with_interest,
            "pool_expected_recovery": mean,
            "collection_sigma": sigma,
            "issued_total": issued,
            "senior_size": notional["senior"],
            "mezz_size": notional["mezz"],
            "sub_size": notional["sub"],
            "senior_rating": sizes.senior_rating,
            "mezz_rating": sizes.mezz_rating,
            "senior_coupon": coupon["senior"],
            "mezz_coupon": coupon["mezz"],
            "senior_spread_bp": (coupon["senior"] - rf) * 1e4,
            "senior_legal_premium_bp": senior.legal * 1e4 if senior else float("nan"),
            "senior_information_premium_bp": senior.information * 1e4 if senior else float("nan"),
            "senior_bid_to_cover": bid_to_cover,
            "sub_price": sub_ratio,
            "fees_total": upfront + costs["trustee"],
            "transfer_costs": pool.notice_cost + pool.stamp_duty,
            "retained": sum(kept.values()),
            "retention_required": regime.risk_retention * issued,
            "reserve": reserve,
            "proceeds_to_originator": to_originator,
            "net_proceeds_per_face": (to_originator + sum(v for _, v in retained.values()))
            / pool.face,
            "guarantor": guarantor.name if guarantor else "",
            "servicer": spv.servicer.name,
        }
        spv.go_live(DealTerms(book_index, mean, guarantor, fee_rate, risk_weight, derecognised,
                              record))  # fmt: skip
        self.deal_rows.append(record)
        world.log_event("deal_issued", originator.name, spv.name, issued)

    def _place_rated(
        self,
        spv: SpecialPurposeVehicle,
        sizes: pricing.TrancheSizes,
        notional: dict[str, float],
        kept: dict[str, float],
        mean: float,
        sigma: float,
        cover: float,
    ) -> tuple[dict[str, float], dict[str, pricing.YieldComponents], float, float]:
        """Bookbuild the senior and mezzanine tranches with the investors the law and their
        mandates admit; a best-efforts deal downsizes ``notional`` to what was placed.

        Returns:
            the coupons, the senior's yield components, the senior bid-to-cover and the cash
            investors paid in.
        """
        spec = self.world.scenario.securitisation
        rf = self.world.scenario.macro.gov_bond_yield
        ledger = self.world.ledger
        attach = {"senior": 0.0, "mezz": sizes.senior}
        coupon = {"senior": 0.0, "mezz": 0.0}
        components: dict[str, pricing.YieldComponents] = {}
        bid_to_cover = float("nan")
        cash_in = 0.0
        for tranche in ("senior", "mezz"):
            for_sale = notional[tranche] - kept[tranche]
            rating = sizes.senior_rating if tranche == "senior" else sizes.mezz_rating
            investors = [i for i in self.investors if i.eligible(tranche, rating)]
            if notional[tranche] <= 0:
                continue
            detach = attach[tranche] + notional[tranche]
            yields, components[tranche] = self.underwriter.investor_yields(
                investors, tranche, attach[tranche], detach, mean, sigma,
                cover if tranche == "senior" else 0.0, self.liquidity_share(),
            )  # fmt: skip
            clearing = self.underwriter.bookbuild(
                spv.deal_id, tranche, for_sale, yields, investors, rf + spec.max_coupon_spread
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
            coupon[tranche] = clearing.coupon if placed > 0 else rf + spec.max_coupon_spread
            for account, amount in spv.holders[tranche].items():
                ledger.transfer(account, spv.account, amount, "abs_purchase")
                cash_in += amount
                self._record_primary(spv, tranche, account, amount, 1.0)
        return coupon, components, bid_to_cover, cash_in

    def _sell_sub(self, spv: SpecialPurposeVehicle, for_sale: float, price_ratio: float) -> float:
        """Sell the subordinated tranche to eligible investors at ``price_ratio`` of notional,
        pro rata to what each can pay; returns the cash raised."""
        buyers = [i for i in self.investors if i.eligible("sub") and i.cash > 0]
        if for_sale <= 0 or price_ratio <= 0 or not buyers:
            return 0.0
        capacity = np.array([b.cash / price_ratio for b in buyers])
        take = capacity * min(1.0, for_sale / capacity.sum())
        raised = 0.0
        for buyer, amount in zip(buyers, take, strict=True):
            if amount <= 0:
                continue
            spv.register("sub", buyer.account, amount)
            buyer.receive(spv.deal_id, "sub", amount)
            self.world.ledger.transfer(
                buyer.account, spv.account, amount * price_ratio, "abs_purchase"
            )
            raised += amount * price_ratio
            self._record_primary(spv, "sub", buyer.account, amount, price_ratio)
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

    def senior_spread_bp(self) -> float:
        """Balance-weighted senior coupon over the risk-free rate of live deals, bp."""
        live = [spv.terms.book_index for spv in self.live()]
        balance = self.book.balance["senior"][live]
        if balance.sum() <= 0:
            return float("nan")
        coupon = np.average(self.book.coupon["senior"][live], weights=balance)
        return float((coupon - self.world.scenario.macro.gov_bond_yield) * 1e4)
