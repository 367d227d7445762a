"""NPLMarketModel: the composition root — one quarter of the NPL economy, phase by phase.

State banks lend, their loans go bad under government direction and weak internal control, and
the banks dispose of non-performing loans by working them out or selling them to AMCs, all under a
configurable legal regime. This is the only module in ``market`` that knows the agents.
"""

from __future__ import annotations

import math
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd
from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.agents.enhancer import CreditEnhancer
from nplsim.agents.investor import Investor
from nplsim.agents.power_plant import PowerPlant
from nplsim.agents.securitization_center import (
    ReceivablesVehicle,
    SecuritizationCenter,
    issue_abs,
    quote_abs,
)
from nplsim.agents.spv import CLOSED, LIVE, PENDING, SpecialPurposeVehicle
from nplsim.agents.underwriter import Underwriter
from nplsim.market import auction, metrics, power, pricing, secondary, waterfall
from nplsim.market.errors import ConfigError
from nplsim.market.ledger import Ledger
from nplsim.market.loans import (
    SEGMENTS,
    LoanBook,
    SegmentTable,
    Status,
    collateral_realisation,
    expected_workout_value,
    workout_value_table,
)
from nplsim.market.scenario import (
    DEFAULT_SCENARIO,
    ScenarioConfig,
    event_regime,
    load_scenario,
)
from nplsim.market.slotdraws import new_key, slot_uniforms

# Share of a deal's legal tenor by which its pool is expected to have paid (assumption): paces the
# trigger's expected collection path and the time the subordinated residual is discounted over.
COLLECTION_HORIZON = 0.6

STREAMS = ("init", "macro", "defaults", "recoveries", "lending", "behaviour", "quality", "power")

MODEL_COLUMNS = (
    "quarter",
    "npl_ratio",
    "car",
    "provision_coverage",
    "liquidity_ratio",
    "lcr",
    "loan_to_deposit",
    "npl_stock",
    "gross_loans",
    "new_npl",
    "npl_sold_amc",
    "npl_carved_out",
    "npl_securitised",
    "abs_issued",
    "abs_outstanding",
    "senior_spread_bp",
    "bid_ask_bp",
    "turnover",
    "effective_spread_bp",
    "secondary_volume",
    "amihud",
    "forced_sale_fill_rate",
    "discount_to_fundamental",
    "quarters_to_sell",
    "liquidity_premium_bp",
    "liquidity_created_amc",
    "liquidity_created_securitisation",
    "liquidity_created_workout",
    "bank_recovery_rate",
    "amc_recovery_to_date",
    "amc_price_to_face",
    "amc_bid_dispersion",
    "investor_losses",
    "enhancer_payouts",
    "recharacterisations",
    "systematic_factor",
    *power.MODEL_COLUMNS,  # NaN or 0 without power plants
)


def split_streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per purpose, all from one seed (common random numbers)."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }


class NPLMarketModel(mesa.Model):
    """An agent-based model of NPL disposal by state banks under a legal regime.

    Args:
        scenario: a built-in scenario name, a path to a scenario TOML file, or a ScenarioConfig.
        rng: seed (int) for every random stream; ``None`` draws one (recorded in ``self.seed``).
        **overrides: scenario fields (``n_loans=200_000``, ``macro__z_persistence=0.8``) or legal
            regime fields (``bankruptcy_remoteness=0.9``).
    """

    def __init__(
        self,
        *,
        scenario: str | Path | ScenarioConfig = DEFAULT_SCENARIO,
        rng: int | None = None,
        **overrides: Any,
    ):
        if rng is None:
            rng = int(np.random.SeedSequence().entropy % 2**63)
        elif not isinstance(rng, int | np.integer) or isinstance(rng, bool):
            raise TypeError(f"rng must be an integer seed or None, got {type(rng).__name__}")
        elif not 0 <= rng < 2**63:
            raise ConfigError("seed", "rng", f"{rng} is out of range", "0 <= seed < 2**63")
        super().__init__(rng=int(rng))
        self.seed = int(rng)
        self.config, self.regime = load_scenario(scenario, overrides)
        self.regime_name = self.config.regime
        self.initial_regime = self.regime
        self.streams = split_streams(self.seed)
        self.quarter = 0
        self.z = self.config.macro.z_initial
        self.ledger = Ledger()
        self.events: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.bank_rows: list[dict[str, Any]] = []
        self.amc_rows: list[dict[str, Any]] = []
        self.auction_bids: list[np.ndarray] = []

        self.banks = [
            StateBank(self, spec, self.ledger.open_account(spec.name, "bank"))
            for spec in self.config.banks
        ]
        self.amcs = [
            AssetManagementCompany(self, spec, self.ledger.open_account(spec.name, "amc"))
            for spec in self.config.amcs
        ]
        self.investors = [
            Investor(
                self,
                spec,
                k,
                self.ledger.open_account(f"{spec.investor_class} {k + 1}", "investor"),
            )
            for spec in self.config.investors
            for k in range(spec.count)
        ]
        self.enhancers = [
            CreditEnhancer(self, spec.name, self.ledger.open_account(spec.name, "enhancer"),
                           spec.max_leverage, spec.fee_markup)
            for spec in self.config.enhancers
        ]  # fmt: skip
        self.state_guarantor = CreditEnhancer(
            self, "State guarantee scheme", self.ledger.open_account("state scheme", "enhancer"),
            max_leverage=0.0, fee_markup=1.0, state_backed=True,
        )  # fmt: skip
        self.underwriter = Underwriter(self, self.ledger.open_account("Underwriter", "underwriter"))
        self.spvs: list[SpecialPurposeVehicle] = []
        self.spv_by_deal: dict[int, SpecialPurposeVehicle] = {}
        self.spv_by_account: dict[int, SpecialPurposeVehicle] = {}
        self.deal_book = waterfall.new_deal_book()
        self.observed_turnover = 0.0
        self.last_trade_price: dict[tuple[int, str], float] = {}
        self.deal_rows: list[dict[str, Any]] = []
        self.sec_flows = dict.fromkeys(
            ("abs_issued", "investor_losses", "enhancer_payouts", "recharacterisations"), 0.0
        )
        self.bank_by_account = {bank.account: bank for bank in self.banks}
        self.investor_by_account = {i.account: i for i in self.investors}
        self.amc_by_account = {amc.account: amc for amc in self.amcs}
        self.loans = LoanBook(self.config.n_loans, _segment_table(self.config))
        self.loans.collateral_realisation = collateral_realisation(
            self.regime.enforcement_efficiency
        )
        self._open_balance_sheets()
        self._open_power_sector()
        self.carveout_face = 0.0
        self.carveout_recovered = 0.0
        self.metrics: dict[str, float] = {}
        self.datacollector = mesa.DataCollector(
            model_reporters={col: _reporter(col) for col in MODEL_COLUMNS}
        )
        self.running = True
        self._measure({})
        self.datacollector.collect(self)
        self._record_agents()

    # ================================================================== the quarter
    def step(self) -> None:
        """One quarter, in the order of the design (DESIGN §2)."""
        self.quarter = self.steps
        self._reset_flows()
        self.apply_scheduled_events()  # 1. reforms and shocks take effect
        self.draw_macro()  # 2. the systematic factor
        flows = self.run_loan_book()  # 3. interest, amortisation, defaults, recoveries, write-offs
        self.lend()  # 4. banks re-lend freed slots,
        self.pay_amc_bond_coupons()  #   receive AMC coupons,
        self.do_banks("close_books")  #   book income, provisions, deposits and liquidity
        self.policy_carveout()  # 5. a one-off carve-out at book value where the regime orders it
        offers = self.collect_disposal_offers()  #   each bank chooses hold / sell per loan
        auction_stats = self.clear_amc_auctions(offers.get("amc", []))  # 6. AMC auctions clear,
        self.start_deals(offers.get("securitisation", []) + self.amc_pools())  #   true sales,
        self.close_deals()  #   deals past their closing lag are structured, enhanced and sold
        self.service_deals()  # 7. servicing, the waterfall, guarantees and legal events
        market_stats = self.trade_secondary()  # 8. investors trade outstanding tranches
        self.amcs_fund()  # 9. AMCs repay funding from recoveries;
        self.run_power_sector()  #   power plants generate, pay debt, finance new capex
        self.do_banks("cover_overdraft")  #   banks short of reserves borrow from the central bank
        self._measure({**flows, **auction_stats, **market_stats})  # 10. metrics, data collection
        self.datacollector.collect(self)
        self._record_agents()
        self.running = self.quarter < self.config.quarters

    # ------------------------------------------------------------------ 1. events
    def apply_scheduled_events(self) -> None:
        """Regime reforms and macro shocks scheduled for this quarter."""
        for event in self.config.events:
            if event.quarter != self.quarter:
                continue
            name, self.regime = event_regime(event, self.regime_name, self.regime)
            self.regime_name = name
            self.loans.collateral_realisation = collateral_realisation(
                self.regime.enforcement_efficiency
            )
            self.log_event("reform", "regime", f"{name} {event.overrides or ''}".strip(), 0.0)

    # ------------------------------------------------------------------ 2. macro
    def draw_macro(self) -> None:
        """AR(1) systematic factor plus scheduled shocks: ``Z_t = φZ_{t−1} + √(1−φ²)ε_t + s_t``."""
        phi = self.config.macro.z_persistence
        shock = sum(s.z for s in self.config.macro.shocks if s.quarter == self.quarter)
        epsilon = self.streams["macro"].standard_normal()
        self.z = phi * self.z + math.sqrt(1.0 - phi**2) * epsilon + shock
        if shock:
            self.log_event("macro_shock", "economy", f"z shock {shock:+.2f}", shock)

    # ------------------------------------------------------------------ 3. loan book
    def run_loan_book(self) -> dict[str, float]:
        """Advance every loan one quarter and settle the cash through the ledger."""
        loans, n = self.loans, self.ledger.n_accounts
        served = loans.service_performing(n)
        uniform = self.streams["defaults"].random(loans.n)  # the idiosyncratic shock of each slot
        went_bad = loans.default(self.quarter, self.z, uniform)
        loans.quality[went_bad] = self.draw_quality(went_bad.size)
        new_npl = np.bincount(
            loans.holder[went_bad], weights=loans.principal[went_bad], minlength=n
        )
        out = loans.work_out(
            self.quarter,
            self.hazard_by_account(),
            self.workout_cost_by_account(),
            partial(slot_uniforms, new_key(self.streams["recoveries"])),  # a draw per NPL slot
            self.config.write_off_age_q,
        )
        closed, off = out.slots, out.written_off_slots

        def by_holder(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
            return np.bincount(loans.holder[idx], weights=values, minlength=n)

        by = {  # sums per ledger account; NPL flows only over the few loans that moved
            "interest": served.interest,
            "principal": served.principal_paid,
            "recovery": by_holder(closed, out.recovery),
            "cost": by_holder(closed, out.cost),
            "face_closed": by_holder(closed, out.face),
            "carrying_closed": by_holder(closed, out.carrying),
            "written_off": by_holder(off, out.face[out.written_off]),
            "new_npl": new_npl,
        }
        self.carveout_recovered += float(out.recovery[self.carved_out[closed]].sum())
        ledger, outside = self.ledger, self.ledger.outside
        ledger.pay_each(outside["borrowers"], by["interest"], "loan_interest")
        ledger.pay_each(outside["borrowers"], by["principal"], "loan_principal")
        ledger.pay_each(outside["borrowers"], by["recovery"], "npl_recovery")
        ledger.collect_each(outside["service_providers"], by["cost"], "workout_cost")
        totals = self.totals
        totals["performing"] -= by["principal"] + by["new_npl"]
        totals["npl"] += by["new_npl"] - by["face_closed"]
        totals["npl_carrying"] += by["new_npl"] - by["carrying_closed"]
        for bank in self.banks:
            a = bank.account
            bank.book_loan_flows(
                interest=by["interest"][a],
                recoveries=by["recovery"][a],
                workout_costs=by["cost"][a],
                carrying_closed=by["carrying_closed"][a],
                written_off=by["written_off"][a],
                new_npl=by["new_npl"][a],
            )
        for amc in self.amcs:
            a = amc.account
            amc.book_loan_flows(by["recovery"][a], by["cost"][a], by["carrying_closed"][a])
        bank_accounts = self.bank_accounts
        return {
            "bank_recovered_cash": float(by["recovery"][bank_accounts].sum()),
            "bank_face_closed": float(by["carrying_closed"][bank_accounts].sum()),
            "new_npl": float(by["new_npl"][bank_accounts].sum()),
            "resolved_count": int(closed.size - off.size),
        }

    def draw_quality(self, count: int) -> np.ndarray:
        """Workout quality of ``count`` new NPLs: lognormal with mean 1, from its own stream."""
        sigma = self.config.borrower_quality_dispersion
        return np.exp(sigma * self.streams["quality"].standard_normal(count) - sigma**2 / 2)

    # ------------------------------------------------------------------ 4. lending
    def lend(self) -> None:
        """Banks re-lend every freed slot; a government-directed share goes to directed SOEs."""
        loans, config = self.loans, self.config
        key = new_key(self.streams["lending"])  # every quarter: common random numbers by slot
        free = loans.free_slots()
        if free.size == 0:
            return
        growth_index = (1.0 + config.loan_growth_annual) ** (self.quarter / 4)
        originator = loans.originator[free]
        segment = self._draw_segments(slot_uniforms(key, free, lane=0, lanes=2))
        principal = self.slot_size[free] * growth_index
        loans.originate(
            free,
            None,  # each slot's own originator re-lends it
            segment,
            principal,
            self.pd_multiplier_by_account,
            config.macro.benchmark_rate,
            slot_uniforms(key, free, lane=1, lanes=2),
            np.ones(free.size),
        )
        lent = np.bincount(originator, weights=principal, minlength=self.ledger.n_accounts)
        self.ledger.collect_each(self.ledger.outside["borrowers"], lent, "new_lending")
        self.carved_out[free] = False
        self.totals["performing"] += lent
        for bank in self.banks:
            bank.flows["new_lending"] += float(lent[bank.account])

    def pay_amc_bond_coupons(self) -> None:
        """AMCs pay interest on their funding and on the bonds they gave banks."""
        for amc in self.amcs:
            amc.pay_coupons()

    # ------------------------------------------------------------------ 5. disposal
    def policy_carveout(self) -> None:
        """The regime's one-off transfer of NPLs to AMCs at book value against AMC bonds."""
        regime = self.regime
        if not regime.policy_carveout or regime.carveout_quarter != self.quarter:
            return
        loans = self.loans
        rng = self.streams["behaviour"]
        for bank in self.banks:
            idx = bank.own_npls()
            take = idx[rng.random(idx.size) < regime.carveout_share]
            if take.size == 0:
                continue
            # Each AMC was paired with one bank in 1999 (Huarong-ICBC, Great Wall-ABC, Orient-BOC,
            # Cinda-CCB); banks are matched to AMCs in order.
            amc = self.amcs[self.banks.index(bank) % len(self.amcs)]
            face = float(loans.principal[take].sum())
            loans.transfer(take, amc.account, loans.principal[take])
            self.carved_out[take] = True
            self._move_npl_totals(bank.account, amc.account, face, face, face)
            amc.take_carveout(bank.account, face)
            bank.receive_amc_bonds(face)
            self.carveout_face += face
            self.log_event("policy_carveout", bank.name, f"to {amc.name} at book value", face)

    def collect_disposal_offers(self) -> dict[str, list[tuple[StateBank, np.ndarray, np.ndarray]]]:
        """Each bank's choice of loans to offer, by channel, with reserve values."""
        offers: dict[str, list[tuple[StateBank, np.ndarray, np.ndarray]]] = {}
        for bank in self.banks:
            for channel, (idx, reserve) in bank.decide_disposals().items():
                offers.setdefault(channel, []).append((bank, idx, reserve))
        return offers

    # ------------------------------------------------------------------ 6. AMC auctions
    def clear_amc_auctions(self, offers: list[tuple[StateBank, np.ndarray, np.ndarray]]) -> dict:
        """Package each bank's offered NPLs and sell them in sealed-bid auctions to the AMCs."""
        config, loans, regime = self.config, self.loans, self.regime
        stats = {"amc_bid_dispersion": float("nan"), "amc_price_to_face": float("nan")}
        if not offers:
            return stats
        packages = [
            (bank, chunk, reserve[pos])
            for bank, idx, reserve in offers
            for pos, chunk in _packages(idx, loans.segment[idx], config.package_loans)
        ]
        offered = np.concatenate([chunk for _, chunk, _ in packages])
        package_of = np.repeat(np.arange(len(packages)), [chunk.size for _, chunk, _ in packages])
        values = np.stack(
            [np.bincount(package_of, weights=amc.valuation(offered)) for amc in self.amcs], axis=1
        )
        sigma = auction.valuation_noise(
            regime.disclosure_level, config.bid_noise_at_zero_disclosure, config.bid_noise_floor
        )
        draws = self.streams["behaviour"].standard_normal(values.shape)
        bids = auction.sealed_bids(values, sigma, config.bid_shading, draws)
        reserve = np.array([r.sum() for _, _, r in packages])
        eligible = auction.bulk_rule_eligibility(
            np.array([chunk.size for _, chunk, _ in packages]),
            bidder_is_amc=np.ones(len(self.amcs), dtype=bool),
            amc_only=regime.bulk_transfer_to_amc_only,
            threshold=regime.bulk_threshold,
        )
        capacity = np.array([amc.purchase_capacity for amc in self.amcs])
        winner, price = auction.clear_first_price(bids, reserve, eligible, capacity)
        self.auction_bids.append(bids)
        sold_face = 0.0
        for k, (bank, chunk, _) in enumerate(packages):
            if winner[k] < 0:
                bank.learn_unsold()
                continue
            amc = self.amcs[winner[k]]
            face = float(loans.principal[chunk].sum())
            carrying = float(loans.carrying[chunk].sum())
            hold = float(bank.market_view(chunk).sum())
            share = (
                loans.principal[chunk] / face if face > 0 else np.full(chunk.size, 1 / chunk.size)
            )
            loans.transfer(chunk, amc.account, price[k] * share)
            self._move_npl_totals(bank.account, amc.account, face, carrying, price[k])
            amc.pay_for_portfolio(bank.account, float(price[k]), face)
            bank.settle_sale(carrying, float(price[k]), hold)
            sold_face += face
            self.trades.append(
                {
                    "quarter": self.quarter,
                    "market": "amc_auction",
                    "seller": bank.name,
                    "buyer": amc.name,
                    "segment": SEGMENTS[int(loans.segment[chunk[0]])],
                    "n_loans": int(chunk.size),
                    "face": face,
                    "price": float(price[k]),
                    "price_to_face": float(price[k]) / face if face > 0 else float("nan"),
                    "reserve": float(reserve[k]),
                    "n_bids": int(eligible[k].sum()),
                    "bid_cv": float(auction.bid_dispersion(bids[k : k + 1])[0]),
                }
            )
        stats["amc_bid_dispersion"] = float(np.mean(auction.bid_dispersion(bids)))
        if sold_face > 0:
            stats["amc_price_to_face"] = float(price[winner >= 0].sum()) / sold_face
        return stats

    # ------------------------------------------------------------------ 6b. securitisation
    def securitisation_open_to(self, originator: StateBank | AssetManagementCompany) -> bool:
        """Whether the regime lets this originator securitise now (one deal in the pipeline)."""
        regime = self.regime
        kind = "bank" if isinstance(originator, StateBank) else "amc"
        return (
            regime.securitisation_allowed
            and regime.spv_form != "none"
            and kind in regime.originators_allowed
            and not any(s.state == PENDING and s.originator is originator for s in self.spvs)
        )

    def start_deals(self, offers: list[tuple[StateBank, np.ndarray, np.ndarray]]) -> None:
        """Pooling and true sale: each bank's chosen NPLs, oldest first, go to a new SPV."""
        spec, loans = self.config.securitisation, self.loans
        for bank, idx, _ in offers:
            if idx.size < spec.min_pool_loans:
                continue
            order = np.argsort(loans.default_q[idx], kind="stable")
            self.open_spv(bank, np.sort(idx[order][: spec.max_pool_loans]))

    def amc_pools(self) -> list[tuple[AssetManagementCompany, np.ndarray, np.ndarray]]:
        """AMCs that may originate deals offer the NPLs they would rather securitise."""
        pools = []
        for amc in self.amcs:
            idx = amc.securitisation_candidates()
            if idx.size:
                pools.append((amc, idx, np.zeros(idx.size)))
        return pools

    def closing_lag(self, n_loans: int) -> int:
        """Quarters from cut-off to closing: debtor notice, and approval of a bulk transfer."""
        regime, spec = self.regime, self.config.securitisation
        lag = 1 + regime.notice_delay_q
        if regime.debtor_notice == "individual":
            lag = max(lag, 1 + spec.individual_notice_min_delay_q)
        if regime.bulk_transfer_to_amc_only and n_loans >= regime.bulk_threshold:
            lag += spec.bulk_approval_delay_q
        return lag

    def transfer_costs(self, n_loans: int, face: float) -> tuple[float, float]:
        """Debtor-notice cost and stamp duty of transferring a pool (CNY bn)."""
        regime, spec = self.regime, self.config.securitisation
        notice = 0.0
        if regime.debtor_notice != "none":
            notice = regime.notice_cost_per_loan_cny * spec.borrowers_per_loan * n_loans * 1e-9
        return notice, regime.stamp_duty_bp / 1e4 * face

    def open_spv(self, bank: StateBank, slots: np.ndarray) -> SpecialPurposeVehicle:
        """Create the vehicle, move the loans into it and charge the transfer frictions."""
        loans, regime, spec = self.loans, self.regime, self.config.securitisation
        deal_id = len(self.spvs)
        account = self.ledger.open_account(f"SPV {deal_id}", "spv")
        servicer = bank
        if spec.servicer == "amc" and bank in self.banks:
            servicer = self.amcs[self.banks.index(bank) % len(self.amcs)]
        spv = SpecialPurposeVehicle(
            self,
            deal_id,
            account,
            bank,
            servicer,
            slots,
            self.quarter + self.closing_lag(slots.size),
        )
        face = float(loans.principal[slots].sum())
        carrying = float(loans.carrying[slots].sum())
        age = loans.age_q(self.quarter, slots)
        accrued = loans.principal[slots] * loans.rate[slots] * np.minimum(age, 12) / 4
        spv.pool = {
            "n_loans": int(slots.size),
            "face": face,
            "face_with_interest": face + float(accrued.sum()),
            "carrying": carrying,
            "reference_value": float(bank.market_view(slots).sum()),
        }
        if not regime.collateral_follows_claim:
            loans.collateral_share[slots] *= 1.0 - spec.collateral_loss_without_transfer
        loans.transfer(slots, account, loans.carrying[slots])
        self.spvs.append(spv)
        self.spv_by_deal[deal_id] = spv
        self.spv_by_account[account] = spv
        for key in self.totals:  # the new account starts with nothing
            self.totals[key] = np.append(self.totals[key], 0)
        self._move_npl_totals(bank.account, account, face, carrying, carrying)
        notice, stamp = self.transfer_costs(slots.size, face)
        bank.prepare_payment(notice + stamp)
        outside = self.ledger.outside
        self.ledger.transfer(bank.account, outside["service_providers"], notice, "debtor_notice")
        self.ledger.transfer(bank.account, outside["government"], stamp, "stamp_duty")
        spv.pool.update(notice_cost=notice, stamp_duty=stamp)
        bank.transfer_to_spv(carrying, face, notice + stamp)
        self.log_event(
            "true_sale", bank.name, f"{spv.name}: {slots.size} loans, closing in "
            f"{spv.closing_quarter - self.quarter} q", face,
        )  # fmt: skip
        return spv

    def pool_view(self, spv: SpecialPurposeVehicle) -> tuple[float, float]:
        """Investors' view of a pool: mean and log-s.d. of its discounted collections (CNY bn),
        from what the regime's disclosure reveals, under the servicer's workout skill (computed
        once per deal and quarter and phase: the pool and the SPV's cash do not change within)."""
        key = (spv.deal_id, self.quarter, spv.cash)
        if spv.view_cache[0] != key:
            spv.view_cache = (key, self._pool_view(spv))
        return spv.view_cache[1]

    def _pool_view(self, spv: SpecialPurposeVehicle) -> tuple[float, float]:
        regime, config = self.regime, self.config
        spec = config.securitisation
        hazard = self.workout_hazard(spv.servicer.workout_skill)
        discount_q = (1.0 + config.macro.gov_bond_yield) ** -0.25
        table = workout_value_table(
            -np.expm1(-hazard), discount_q, config.write_off_age_q, spec.disposal_cost_cap
        )
        live = spv.live_slots
        pool = expected_workout_value(
            self.loans, live, self.quarter, table, discount_q, regime.disclosure_level
        )
        sigma = pricing.collection_sigma(
            regime.disclosure_level, spec.sigma_floor, spec.sigma_opacity
        )
        return float(pool.sum()) + spv.cash, sigma

    def close_deals(self) -> None:
        """Deals whose closing lag has passed are structured, enhanced, sold and issued."""
        for spv in self.spvs:
            if spv.state == PENDING and spv.closing_quarter <= self.quarter:
                self.close_deal(spv)

    def choose_guarantor(self, senior: float) -> CreditEnhancer | None:
        """The state scheme where the regime has one; else the private guarantor with the most
        room, where guarantees are enforceable enough to be worth buying (>= 0.5)."""
        regime = self.regime
        if regime.state_guarantee_scheme:
            return self.state_guarantor
        if regime.guarantee_enforceability < 0.5:
            return None
        able = [e for e in self.enhancers if e.capacity >= senior]
        return max(able, key=lambda e: e.capacity) if able else None

    def retention(self, sizes: pricing.TrancheSizes) -> dict[str, float]:
        """Notional the originator must keep, per tranche (PBOC/CBRC 2013 No. 21, FACTS)."""
        regime = self.regime
        notional = {"senior": sizes.senior, "mezz": sizes.mezz, "sub": sizes.sub}
        if regime.retention_form == "vertical":
            return {t: regime.risk_retention * v for t, v in notional.items()}
        keep = regime.risk_retention * sum(notional.values())
        kept = {}
        for tranche in ("sub", "mezz", "senior"):
            kept[tranche] = min(keep, notional[tranche])
            keep -= kept[tranche]
        return kept

    def close_deal(self, spv: SpecialPurposeVehicle) -> None:
        """Product design, credit enhancement, underwriting and sale, and settlement."""
        regime, spec = self.regime, self.config.securitisation
        ledger, outside = self.ledger, self.ledger.outside
        rf = self.config.macro.gov_bond_yield
        bank = spv.originator
        mean, sigma = self.pool_view(spv)
        sizes = self.underwriter.structure(mean, sigma)
        guarantor = self.choose_guarantor(sizes.senior)
        cover = 0.0
        if guarantor is not None:
            trust = 1.0 if guarantor.state_backed else spec.private_guarantee_cover
            cover = regime.guarantee_enforceability * trust
        kept = self.retention(sizes)
        notional = {"senior": sizes.senior, "mezz": sizes.mezz, "sub": sizes.sub}
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
                cover if tranche == "senior" else 0.0,
            )  # fmt: skip
            clearing = self.underwriter.bookbuild(
                spv, tranche, for_sale, yields, investors, rf + spec.max_coupon_spread
            )
            if tranche == "senior":
                bid_to_cover = clearing.bid_to_cover
            placed = clearing.sold + clearing.underwriter_takes
            notional[tranche] = placed + kept[tranche]  # best efforts downsizes
            coupon[tranche] = clearing.coupon if placed > 0 else rf + spec.max_coupon_spread
            for account, amount in spv.holders[tranche].items():
                ledger.transfer(account, spv.account, amount, "abs_purchase")
                cash_in += amount
                self.trades.append(self._primary_trade(spv, tranche, account, amount, 1.0))
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
            v for a, v in spv.holders["sub"].items() if a != bank.account
        )
        if kept["sub"] > 0:
            spv.holders["sub"][bank.account] = kept["sub"]
        for tranche in ("senior", "mezz"):
            if kept[tranche] > 0:
                spv.holders[tranche][bank.account] = kept[tranche]
        issued = sum(notional.values())
        costs = pricing.issuance_costs(
            issued, spec.underwriting_bp, spec.fixed_cost_cny_bn, spec.trustee_bp_per_year,
            spec.tenor_q,
        )  # fmt: skip
        upfront = min(costs["underwriting"] + costs["fixed"], cash_in)
        underwriting = min(costs["underwriting"], upfront)
        ledger.transfer(spv.account, self.underwriter.account, underwriting, "underwriting_fee")
        ledger.transfer(
            spv.account, outside["service_providers"], upfront - underwriting, "deal_costs"
        )
        reserve = min(spec.reserve_share * notional["senior"], cash_in - upfront)
        to_bank = cash_in - upfront - reserve
        ledger.transfer(spv.account, bank.account, to_bank, "securitisation_proceeds")
        price = {"senior": 1.0, "mezz": 1.0, "sub": sub_ratio}
        retained = {
            (spv.deal_id, t): [kept[t], kept[t] * price[t]] for t in notional if kept[t] > 1e-12
        }
        spv.risk_weight = {
            "senior": pricing.NPL_SENIOR_RISK_WEIGHT,
            "mezz": pricing.RISK_WEIGHTS[sizes.mezz_rating],
            "sub": pricing.RISK_WEIGHTS["unrated"],
        }
        spv.derecognised = regime.derecognition_allowed
        bank.settle_securitisation(
            spv.pool["carrying"], to_bank, retained, spv.pool["reference_value"]
        )
        spv.book_index = self.deal_book.append(
            senior=notional["senior"], mezz=notional["mezz"], sub=notional["sub"],
            senior_coupon=coupon["senior"], mezz_coupon=coupon["mezz"], reserve=reserve,
        )  # fmt: skip
        spv.expected_mean = mean
        spv.guarantor = guarantor
        if guarantor is not None:
            expected_loss = pricing.tranche_expected_loss(0.0, notional["senior"], mean, sigma)
            spv.guarantee_fee_rate = guarantor.fee_rate(expected_loss / (spec.tenor_q / 4))
            guarantor.write(spv.deal_id, notional["senior"])
        spv.state = LIVE
        self.sec_flows["abs_issued"] += issued
        senior = components.get("senior")
        spv.record = {
            "deal_id": spv.deal_id,
            "originator": bank.name,
            "quarter_cutoff": spv.cutoff_quarter,
            "quarter_issued": self.quarter,
            "closing_lag_q": self.quarter - spv.cutoff_quarter,
            "pool_loans": spv.pool["n_loans"],
            "pool_principal": spv.pool["face"],
            "pool_face": spv.pool["face_with_interest"],
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
            "transfer_costs": spv.pool["notice_cost"] + spv.pool["stamp_duty"],
            "retained": sum(kept.values()),
            "retention_required": self.regime.risk_retention * issued,
            "reserve": reserve,
            "proceeds_to_originator": to_bank,
            "net_proceeds_per_face": (to_bank + sum(v for _, v in retained.values()))
            / spv.pool["face"],
            "guarantor": guarantor.name if guarantor else "",
            "servicer": spv.servicer.name,
        }
        self.deal_rows.append(spv.record)
        self.log_event("deal_issued", bank.name, spv.name, issued)

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
            spv.holders["sub"][buyer.account] = amount
            buyer.receive(spv.deal_id, "sub", amount)
            self.ledger.transfer(buyer.account, spv.account, amount * price_ratio, "abs_purchase")
            raised += amount * price_ratio
            self.trades.append(self._primary_trade(spv, "sub", buyer.account, amount, price_ratio))
        return raised

    def _primary_trade(self, spv, tranche: str, account: int, notional: float, price: float):
        return {
            "quarter": self.quarter, "market": "primary", "seller": spv.name,
            "buyer": self.ledger.names[account], "segment": tranche, "n_loans": 0,
            "face": notional, "price": notional * price, "price_to_face": price,
            "reserve": float("nan"), "n_bids": 0, "bid_cv": float("nan"),
        }  # fmt: skip

    # ------------------------------------------------------------------ 7. servicing
    def service_deals(self) -> None:
        """Legal risk, then the waterfall of every live deal that is not frozen."""
        live = [spv for spv in self.spvs if spv.state == LIVE]
        self.apply_legal_risk(live)
        active = [spv for spv in live if not spv.frozen]
        if not active:
            return
        regime, spec = self.regime, self.config.securitisation
        rows = np.array([spv.book_index for spv in active])
        book = _take(self.deal_book, rows)
        collections = np.array(
            [max(spv.cash - book.reserve[k], 0.0) for k, spv in enumerate(active)]
        )
        balance_total = sum(book.balance[t] for t in waterfall.TRANCHES)
        scheduled = np.array([spv.expected_mean / spec.tenor_q for spv in active])
        guarantee_fee = (
            np.array(
                [
                    getattr(spv, "guarantee_fee_rate", 0.0) if spv.guarantor else 0.0
                    for spv in active
                ]
            )
            * book.balance["senior"]
            / 4
        )
        final = np.array(
            [self.quarter >= spv.final_quarter or spv.live_slots.size == 0 for spv in active]
        )
        since = np.array([self.quarter - spv.closing_quarter + 1 for spv in active])
        book.expected_cumulative = np.array([spv.expected_mean for spv in active]) * np.minimum(
            since / (COLLECTION_HORIZON * spec.tenor_q), 1.0
        )
        inputs = waterfall.PeriodInputs(
            collections=collections,
            taxes_due=(regime.vat_rate + regime.spv_entity_tax)
            * spec.taxable_income_share
            * collections,
            fees_due={
                "trustee": spec.trustee_bp_per_year / 1e4 / 4 * balance_total,
                "servicer_base": spec.servicer_base_fee * collections,
                "servicer_incentive": spec.servicer_incentive_share
                * np.maximum(collections - scheduled, 0.0),
                "guarantee_fee": guarantee_fee,
            },
            disposal_costs=self.config.bank_workout_cost * collections,
            cost_cap=spec.disposal_cost_cap * collections,
            guarantee_available=np.array(
                [
                    spv.guarantor.available_for(spv.deal_id, regime.guarantee_enforceability)
                    if spv.guarantor
                    else 0.0
                    for spv in active
                ]
            ),  # fmt: skip
            final=final,
            trigger_ratio=spec.trigger_ratio,
        )
        before = {t: book.balance[t].copy() for t in waterfall.TRANCHES}
        payments = waterfall.run_waterfall(book, inputs)
        _put(self.deal_book, rows, book)
        for k, spv in enumerate(active):
            self.distribute(spv, k, payments, before, final[k])

    def distribute(self, spv, k: int, payments, before: dict, final: bool) -> None:
        """Move one deal's waterfall payments through the ledger to whoever is owed them."""
        ledger, outside = self.ledger, self.ledger.outside
        paid = payments.paid
        claim = float(payments.guarantee_drawn[k])
        if claim > 0:
            spv.guarantor.pay_claim(spv.deal_id, spv.account, claim)
            self.sec_flows["enhancer_payouts"] += claim
        servicer = spv.servicer
        recipients = {
            ("tax", ""): outside["government"],
            ("fee", "trustee"): outside["service_providers"],
            ("fee", "servicer_base"): servicer.account,
            ("fee", "servicer_incentive"): servicer.account,
            ("capped_cost", ""): outside["service_providers"],
        }
        for key, account in recipients.items():
            amount = float(paid.get(key, np.zeros(k + 1))[k])
            ledger.transfer(spv.account, account, amount, f"spv_{key[0]}_{key[1]}".rstrip("_"))
            if account == servicer.account:
                servicer.earn_servicing_fee(amount)
        fee = float(paid.get(("fee", "guarantee_fee"), np.zeros(k + 1))[k])
        if fee > 0:
            payee = outside["government"] if spv.guarantor.state_backed else spv.guarantor.account
            ledger.transfer(spv.account, payee, fee, "guarantee_fee")
            spv.guarantor.fees_earned += fee
        book, row = self.deal_book, spv.book_index
        for tranche in waterfall.TRANCHES:
            spv.tranche_cashflows[tranche].append(float(payments.tranche_cash(tranche)[k]))
            interest = float(paid.get(("interest", tranche), np.zeros(k + 1))[k])
            spv.pay_holders(tranche, interest, principal=False)
            principal = float(paid.get(("principal", tranche), np.zeros(k + 1))[k])
            residual = float(paid.get(("residual", tranche), np.zeros(k + 1))[k])
            spv.pay_holders(tranche, principal + residual, principal=True)
            written_off = float(payments.principal_written_off[tranche][k])
            repaid = before[tranche][k] - book.balance[tranche][row] - written_off
            spv.reduce_holdings(tranche, repaid, loss=False)
            spv.reduce_holdings(tranche, written_off, loss=True)
            self.sec_flows["investor_losses"] += written_off
        if spv.guarantor is not None:
            spv.guarantor.update_exposure(spv.deal_id, book.balance["senior"][row])
        if final:
            left = spv.live_slots
            face = float(self.loans.principal[left].sum())
            carrying = float(self.loans.carrying[left].sum())
            self.loans.write_off(left)
            self.totals["npl"][spv.account] -= face
            self.totals["npl_carrying"][spv.account] -= carrying
            spv.state = CLOSED
            if spv.guarantor is not None:
                spv.guarantor.update_exposure(spv.deal_id, 0.0)
            self.log_event("deal_matured", spv.originator.name, spv.name, spv.cash)

    def apply_legal_risk(self, live: list[SpecialPurposeVehicle]) -> None:
        """Recharacterisation: a distressed originator's pool is pulled back into its estate with
        probability 1 − bankruptcy remoteness; collections freeze, and when the freeze ends the
        originator's creditors take a share of them that investor protection softens."""
        regime, spec = self.regime, self.config.securitisation
        draws = self.streams["behaviour"].random(len(live))
        for spv, draw in zip(live, draws, strict=True):
            if spv.frozen_until == self.quarter:
                self.release_freeze(spv)
            bank = spv.originator
            if not bank.distressed:
                spv.distress_tested = False
                continue
            if spv.distress_tested or spv.frozen:
                continue
            spv.distress_tested = True
            if draw >= regime.bankruptcy_remoteness:
                spv.frozen_until = self.quarter + spec.freeze_q
                self.sec_flows["recharacterisations"] += 1
                self.log_event("recharacterisation", bank.name, f"{spv.name} frozen", spv.cash)

    def release_freeze(self, spv: SpecialPurposeVehicle) -> None:
        """End of a freeze: the originator's estate keeps a share of the frozen collections."""
        regime, spec = self.regime, self.config.securitisation
        frozen = max(spv.cash - self.deal_book.reserve[spv.book_index], 0.0)
        haircut = frozen * spec.recharacterisation_haircut * (1.0 - regime.investor_protection)
        self.ledger.transfer(spv.account, spv.originator.account, haircut, "recharacterisation")
        spv.originator.recover_from_recharacterisation(haircut)
        self.sec_flows["investor_losses"] += haircut
        self.log_event("freeze_released", spv.originator.name, spv.name, haircut)

    # ------------------------------------------------------------------ holders
    def holder_received(
        self, account: int, deal: int, tranche: str, amount: float, principal: bool
    ) -> None:
        """A tranche payment reached ``account``; the originator books its retained slice."""
        originator = self.bank_by_account.get(account) or self.amc_by_account.get(account)
        if originator is not None:
            originator.receive_tranche_payment(deal, tranche, amount, principal)

    def holder_reduced(
        self, account: int, deal: int, tranche: str, notional: float, loss: bool
    ) -> None:
        """A holder's notional fell (repaid, or written off when ``loss``)."""
        originator = self.bank_by_account.get(account) or self.amc_by_account.get(account)
        if originator is not None:
            originator.reduce_retained(deal, tranche, notional, loss)
            return
        investor = self.investor_by_account.get(account)
        if investor is not None:
            investor.reduce(deal, tranche, notional, loss)
            return
        key = (deal, tranche)
        holdings = self.underwriter.holdings
        holdings[key] = max(holdings.get(key, 0.0) - notional, 0.0)

    def pool_face_not_derecognised(self, bank: StateBank) -> float:
        """Outstanding pool principal of the bank's live deals that were not derecognised."""
        total = 0.0
        for spv in self.spvs:
            if spv.originator is bank and spv.state == LIVE and not spv.derecognised:
                total += float(self.loans.principal[spv.live_slots].sum())
        return total

    def liquidity_premium(self, investor: Investor) -> float:
        """Premium an investor asks for holding an illiquid security (annual, decimal): it falls
        as the observed secondary market deepens, so liquidity and issuance reinforce each other."""
        return investor.spec.liquidity_premium_bp / 1e4 * self.liquidity_premium_share()

    # ------------------------------------------------------------------ 8. secondary market
    def tranche_fundamental(self, spv: SpecialPurposeVehicle, tranche: str) -> float:
        """Fundamental value per unit notional of a tranche from the pool's current outlook."""
        book, row = self.deal_book, spv.book_index
        balance = {t: float(book.balance[t][row]) for t in waterfall.TRANCHES}
        if balance[tranche] <= 0:
            return float("nan")
        mean, sigma = self.pool_view(spv)
        if tranche == "sub":
            spec = self.config.securitisation
            residual = max(mean - balance["senior"] - balance["mezz"], 0.0)
            quarters = max(spv.final_quarter - self.quarter, 1)
            value = pricing.sub_price(residual, spec.sub_required_return, quarters)
            return value / balance["sub"]
        attach = 0.0 if tranche == "senior" else balance["senior"]
        loss = pricing.tranche_expected_loss(attach, attach + balance[tranche], mean, sigma)
        return 1.0 - loss

    def trade_secondary(self) -> dict[str, float]:
        """Each outstanding tranche's quarterly call auction: liquidity-shocked holders must sell,
        others rebalance, eligible investors bid, the dealer quotes; trades settle in the ledger."""
        spec, regime = self.config.secondary, self.regime
        rng = self.streams["behaviour"]
        sigma = spec.valuation_sigma_floor + spec.valuation_sigma_opacity * (
            1.0 - regime.disclosure_level
        )
        rows = []
        traders = {**self.investor_by_account, self.underwriter.account: self.underwriter}
        eligible: dict[tuple[str, str], list[Investor]] = {}  # the law and mandates, per quarter
        for spv in self.spvs:
            if spv.state != LIVE or spv.frozen:
                continue
            for tranche in waterfall.TRANCHES:
                outstanding = float(self.deal_book.balance[tranche][spv.book_index])
                if outstanding <= 1e-9:
                    continue
                fundamental = self.tranche_fundamental(spv, tranche)
                if not np.isfinite(fundamental) or fundamental <= 0:
                    continue
                rating = spv.record.get(f"{tranche}_rating", "unrated")
                if (tranche, rating) not in eligible:
                    eligible[tranche, rating] = [
                        i for i in self.investors if i.eligible(tranche, rating)
                    ]
                rows.append(self._auction_tranche(
                    spv, tranche, outstanding, fundamental, sigma, rng, traders,
                    [i for i in eligible[tranche, rating] if i.cash > 1e-9],
                ))  # fmt: skip
        volume = sum(r["volume"] for r in rows)
        outstanding = sum(r["outstanding"] for r in rows)
        market_turnover = metrics.turnover(volume, outstanding)
        if np.isfinite(market_turnover):
            memory = spec.feedback_memory
            self.observed_turnover = (
                1 - memory
            ) * self.observed_turnover + memory * market_turnover
        weights = np.array([r["outstanding"] for r in rows])
        forced = sum(r["forced_requested"] for r in rows)
        per_tranche_volume = volume / len(rows) if rows else 0.0
        return {
            "bid_ask_bp": 1e4
            * metrics.weighted_mean(np.array([r["quoted"] for r in rows]), weights),
            "effective_spread_bp": 1e4
            * metrics.weighted_mean(np.array([r["effective"] for r in rows]), weights),
            "turnover": market_turnover,
            "secondary_volume": volume,
            "amihud": metrics.weighted_mean(np.array([r["amihud"] for r in rows]), weights),
            "forced_sale_fill_rate": metrics.fill_rate(
                sum(r["forced_filled"] for r in rows), forced
            ),
            "discount_to_fundamental": metrics.weighted_mean(
                np.array([r["discount"] for r in rows]), weights
            ),
            "quarters_to_sell": metrics.quarters_to_sell(
                0.1 * outstanding / len(rows) if rows else 0.0, per_tranche_volume
            ),
        }

    def _auction_tranche(self, spv, tranche, outstanding, fundamental, sigma, rng, traders,
                         buyers) -> dict:  # fmt: skip
        spec = self.config.secondary
        key = (spv.deal_id, tranche)
        holders = [(a, q) for a, q in spv.holders[tranche].items() if a in traders and q > 1e-12]
        shocks = rng.random(len(holders))
        noise = rng.standard_normal(len(holders) + len(buyers))
        value = fundamental * np.exp(sigma * noise - 0.5 * sigma**2)
        sellers, sell_price, sell_qty, forced = [], [], [], []
        for k, (account, quantity) in enumerate(holders):
            if account == self.underwriter.account:
                continue
            investor = traders[account]
            if shocks[k] < investor.spec.liquidity_shock_prob:
                price, share, is_forced = (
                    spec.forced_sale_floor * fundamental,
                    spec.forced_sale_share,
                    True,
                )
            else:
                price, share, is_forced = (
                    value[k] * (1 + spec.trading_margin),
                    spec.rebalance_share,
                    False,
                )
            sellers.append(account)
            sell_price.append(price)
            sell_qty.append(share * quantity)
            forced.append(is_forced)
        inventory = self.underwriter.holdings.get(key, 0.0)
        dealer_bid, dealer_ask = secondary.dealer_quotes(
            fundamental, self.regime.disclosure_level,
            inventory / outstanding, spec.dealer_base_half_spread,
            spec.dealer_information_half_spread, spec.dealer_inventory_half_spread,
        )  # fmt: skip
        if inventory > 0:
            sellers.append(self.underwriter.account)
            sell_price.append(dealer_ask)
            sell_qty.append(inventory)
            forced.append(False)
        bidders, buy_price, buy_qty = [], [], []
        for k, investor in enumerate(buyers):
            price = value[len(holders) + k] * (1 - spec.trading_margin)
            bidders.append(investor.account)
            buy_price.append(price)
            buy_qty.append(min(spec.buy_appetite * outstanding, investor.cash / price))
        dealer_room = spec.dealer_capital_share * max(self.underwriter.cash, 0.0) / dealer_bid
        if dealer_room > 0:
            bidders.append(self.underwriter.account)
            buy_price.append(dealer_bid)
            buy_qty.append(dealer_room)
        result = secondary.call_auction(
            np.array(buy_price), np.array(buy_qty), np.array(sell_price), np.array(sell_qty)
        )
        # The quote after the auction: the best bid and ask left unfilled, and the dealer's.
        bids_left = np.array(buy_qty) - result.buy_fill > 1e-12
        asks_left = (np.array(sell_qty) - result.sell_fill > 1e-12) & ~np.array(forced, dtype=bool)
        best_bid = max([dealer_bid, *np.array(buy_price)[bids_left]]) if buy_price else dealer_bid
        best_ask = min([dealer_ask, *np.array(sell_price)[asks_left]]) if sell_price else dealer_ask
        if result.volume > 0:
            self._settle_trades(spv, tranche, bidders, result.buy_fill, sellers, result.sell_fill,
                                result.price)  # fmt: skip
        forced_mask = np.array(forced, dtype=bool)
        previous = self.last_trade_price.get(key, float("nan"))
        if result.volume > 0:
            self.last_trade_price[key] = result.price
        return {
            "outstanding": outstanding,
            "volume": result.volume,
            "quoted": secondary.quoted_spread(best_bid, best_ask),
            "effective": metrics.effective_spread(result.price, fundamental, fundamental),
            "amihud": metrics.amihud(result.price, previous, result.volume),
            "discount": metrics.discount_to_fundamental(result.price, fundamental),
            "forced_requested": float(np.array(sell_qty)[forced_mask].sum()) if sell_qty else 0.0,
            "forced_filled": float(result.sell_fill[forced_mask].sum()) if sell_qty else 0.0,
        }

    def _settle_trades(self, spv, tranche, bidders, buy_fill, sellers, sell_fill, price) -> None:
        """Match fills buyer by seller (a two-pointer merge) and settle each pair at ``price``."""
        holders = spv.holders[tranche]
        b, s = 0, 0
        buy_left, sell_left = list(buy_fill), list(sell_fill)
        while b < len(bidders) and s < len(sellers):
            quantity = min(buy_left[b], sell_left[s])
            if quantity > 1e-12 and bidders[b] != sellers[s]:
                buyer, seller = bidders[b], sellers[s]
                self.ledger.transfer(buyer, seller, quantity * price, "abs_secondary")
                holders[seller] -= quantity
                holders[buyer] = holders.get(buyer, 0.0) + quantity
                self._move_position(seller, spv.deal_id, tranche, -quantity)
                self._move_position(buyer, spv.deal_id, tranche, quantity)
                self.trades.append({
                    "quarter": self.quarter, "market": "secondary",
                    "seller": self.ledger.names[seller],
                    "buyer": self.ledger.names[buyer], "segment": f"{spv.name} {tranche}",
                    "n_loans": 0, "face": quantity, "price": quantity * price,
                    "price_to_face": price, "reserve": float("nan"), "n_bids": len(bidders),
                    "bid_cv": float("nan"),
                })  # fmt: skip
            buy_left[b] -= quantity
            sell_left[s] -= quantity
            if buy_left[b] <= 1e-12:
                b += 1
            if sell_left[s] <= 1e-12:
                s += 1

    def _move_position(self, account: int, deal: int, tranche: str, change: float) -> None:
        key = (deal, tranche)
        owner = self.investor_by_account.get(account, self.underwriter)
        owner.holdings[key] = max(owner.holdings.get(key, 0.0) + change, 0.0)

    # ------------------------------------------------------------------ 9. AMCs
    def amcs_fund(self) -> None:
        """AMCs use surplus cash from recoveries to repay their funding."""
        for amc in self.amcs:
            amc.repay_funding()

    # ------------------------------------------------------------------ 9b. power plants
    def run_power_sector(self) -> None:
        """Power plants pay what their bank loans were charged, generate at the dispatch the coal
        price allows, sell power (receivables they sold go to their ABS vehicles), finance new
        capacity once a year by the cheapest route open to them, and default on their bank loans
        when cash cannot meet the next quarter's debt service (DESIGN §6). No-op without plants."""
        if not self.plants:
            return
        plants, loans = self.plants, self.loans
        self.power_flows = dict.fromkeys(self.power_flows, 0.0)
        self.power_round_cost = dict.fromkeys(power.ROUTES, float("nan"))
        draws = power.QuarterDraws.draw(self.streams["power"], len(plants))
        self.draw_coal_price(draws.coal)
        due = self.plant_loans.settle(loans, self.quarter, self.config.write_off_age_q, len(plants))
        self.refresh_power_loans()
        for k, plant in enumerate(plants):
            plant.settle_loans(due.interest[k], due.principal[k], due.closed_principal[k],
                               due.recovery[k])  # fmt: skip
            plant.generate(self.power_dispatch, draws.hours[k])
        for vehicle in self.power_vehicles:
            self.power_flows["abs_investor_losses"] += vehicle.service()
        for plant in plants:
            plant.sell_power()
        if self.quarter % 4 == 1:  # the first quarter of each year
            self.finance_power_capex(draws)
            self.refresh_power_loans()
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
        self.refresh_power_loans()
        self.refresh_totals()
        if self.quarter % 4 == 0 or self.quarter == self.config.quarters:
            self._record_plants()

    def draw_coal_price(self, epsilon: float) -> None:
        """The coal price's log gap to its reference mean-reverts, takes an innovation and any
        scheduled jump; dear coal cuts dispatch. This is the power scenario's macro draw, made at
        the start of the plants' phase from the power stream so no other phase's draws change."""
        spec = self.config.power
        coal = spec.coal
        jump = sum(s.log_jump for s in coal.shocks if s.quarter == self.quarter)
        self.coal_gap = power.coal_log_gap_step(
            self.coal_gap, coal.persistence_q, coal.volatility_q, epsilon, jump
        )
        self.coal_price = coal.reference_cny_per_t * math.exp(self.coal_gap)
        self.power_dispatch = power.dispatch_factor(
            self.coal_price, coal.reference_cny_per_t, spec.dispatch_coal_elasticity,
            spec.min_dispatch,
        )  # fmt: skip
        if jump:
            self.log_event("coal_shock", "coal market", f"log price jump {jump:+.2f}", jump)

    def refresh_power_loans(self) -> None:
        """Each plant's bank debt and defaulted debt, from its loans in the loan book."""
        n = len(self.plants)
        self.power_debt = self.plant_loans.debt_by_plant(self.loans, n)
        self.power_npl = self.plant_loans.npl_by_plant(self.loans, n)

    def finance_power_capex(self, draws: power.QuarterDraws) -> None:
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
            standalone[plant] = quote_abs(self, [plant], np.array([need]), pooled=False)
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
            pool, seen = self.centre.form_pool(projects, cheapest)
            for plant, (cost, reason) in seen.items():
                costs[plant]["pooled"], closed_by[plant]["pooled"] = cost, reason
        for route in power.ROUTES:
            quoted = [c[route].total[0] for c in costs.values() if c[route].available[0]]
            self.power_round_cost[route] = float(np.mean(quoted)) if quoted else float("nan")
        members = pool.plants if pool is not None and issue_abs(self, pool) is not None else []
        for k, plant in enumerate(plants):
            if plant not in costs:
                continue
            plant.quotes = {}
            for route in power.ROUTES:
                plant.quotes.update(costs[plant][route].columns(route, closed_by[plant][route]))
            ranked = sorted(
                (r for r in ("loan", "standalone") if costs[plant][r].available[0]),
                key=lambda r, c=costs[plant]: c[r].total[0],
            )
            for route in [] if plant in members else ranked:
                if route == "standalone" and issue_abs(self, standalone[plant]) is not None:
                    break
                if route == "loan" and self.lend_to_plant(
                    plant, plant.financing_need, costs[plant]["loan"], draws.secured[k], "loan"
                ):
                    break
            if plant.route:
                plant.invest()
                self.power_funded[plant.route] += plant.capex_need
                self.power_flows["capex_funded"] += plant.capex_need
            else:
                self.power_flows["capex_unfunded"] += plant.capex_need

    def lend_to_plant(self, plant: PowerPlant, amount: float, cost: power.RouteCost,
                      secured_draw: float, purpose: str) -> bool:  # fmt: skip
        """The house bank lends at the quoted all-in rate, for a project (``purpose`` "loan") or to
        roll over debt the plant cannot repay from cash ("rollover"): one of the ordinary loans
        it made this quarter is prepaid, and its slot in the loan book becomes the plant's loan."""
        bank, loans = plant.house_bank, self.loans
        if not cost.available[0] or bank is None:
            return False
        slot = self.plant_loans.fresh_slot(loans, bank.account)
        if slot < 0 or bank.cash < amount:
            return False
        replaced = float(loans.principal[slot])
        self.ledger.transfer(self.ledger.outside["borrowers"], bank.account, replaced,
                             "loan_prepaid")  # fmt: skip
        loans.originate(
            np.array([slot]), np.array([bank.account]), np.array([SEGMENTS.index("power_plant")]),
            np.array([amount]), self.pd_multiplier_by_account,
            self.config.macro.benchmark_rate, np.array([secured_draw]), np.ones(1),
        )  # fmt: skip
        loans.rate[slot] = cost.total[0] / 1e4
        loans.remaining_q[slot] = self.config.power.loan_maturity_q
        self.plant_loans.assign(np.array([slot]), np.array([plant.index]), loans)
        bank.flows["new_lending"] += amount - replaced
        plant.receive_financing(bank.account, amount, purpose, 0.0)
        if purpose == "rollover":
            self.power_flows["rolled_over"] += amount
        return True

    def default_plant(self, plant: PowerPlant, quality_draw: float, legal_draw: float) -> None:
        """Cross-default: all the plant's bank loans become NPLs of whoever holds them and enter
        the ordinary workout and disposal; where bankruptcy remoteness fails, a court may also
        pull the receivables it sold back into its estate for a while."""
        loans, sigma = self.loans, self.config.borrower_quality_dispersion
        quality = math.exp(sigma * quality_draw - sigma**2 / 2)
        slots = self.plant_loans.default_plant(loans, plant.index, self.quarter, quality)
        face = float(loans.principal[slots].sum())
        by_holder = np.bincount(
            loans.holder[slots], weights=loans.principal[slots], minlength=self.ledger.n_accounts
        )
        for bank in self.banks:
            if by_holder[bank.account] > 0:
                bank.book_loan_flows(0.0, 0.0, 0.0, 0.0, 0.0, new_npl=by_holder[bank.account])
        plant.in_default = True
        plant.npl_created += face
        self.power_flows["npl_new"] += face
        for vehicle in self.power_vehicles:
            if vehicle.live and plant in vehicle.plants:
                vehicle.recharacterise(plant, legal_draw)
        self.log_event("plant_default", plant.name, f"{slots.size} bank loans non-performing", face)

    def power_metrics(self) -> dict[str, float]:
        """The power sector's columns of ``model.parquet`` (NaN or 0 without plants)."""
        if not self.plants:
            return power.empty_metrics()
        loans, plants, flows = self.loans, self.plants, self.power_flows
        idx = self.plant_loans.mapped
        bad = idx[
            (loans.status[idx] == Status.NPL) & np.isin(loans.holder[idx], self.bank_accounts)
        ]
        funded = sum(self.power_funded.values())
        debt = float(self.power_debt.sum())
        return {
            "coal_price": self.coal_price,
            "power_debt_ratio": _div(debt, sum(p.total_assets for p in plants)),
            "power_bank_debt": debt,
            "power_abs_outstanding": sum(v.balance for v in self.power_vehicles if v.live),
            "power_npl_new": flows["npl_new"],
            "power_npl_created": sum(p.npl_created for p in plants),
            "power_bank_npl": float(loans.principal[bad].sum()),
            "power_abs_investor_losses": flows["abs_investor_losses"],
            "power_capex_funded": flows["capex_funded"],
            "power_capex_unfunded": flows["capex_unfunded"],
            "power_rolled_over": flows["rolled_over"],
            **{f"power_share_{r}": _div(self.power_funded[r], funded) for r in power.ROUTES},
            **{f"power_cost_{r}_bp": self.power_round_cost[r] for r in power.ROUTES},
            "power_plants_in_default": float(sum(p.in_default for p in plants)),
        }

    def power_violations(self) -> list[str]:
        """Plants' balance sheets balance, vehicles hold no negative cash and their holders own
        exactly the balance, the centre keeps nothing, and plant loans are live power loans."""
        if not self.plants:
            return []
        problems, loans = [], self.loans
        if not np.allclose(self.plant_loans.debt_by_plant(loans, len(self.plants)),
                           self.power_debt, rtol=1e-9, atol=1e-9):  # fmt: skip
            problems.append("stale plant debt")
        owed = np.zeros(len(self.plants))
        for vehicle in self.power_vehicles:
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

    def _open_power_sector(self) -> None:
        """Plants with their opening balance sheets, and the centre (DESIGN §6). A plant's bank
        debt is a set of the banks' opening power-plant loans, handed out until it reaches the
        scenario's debt ratio; its book value follows from its capacity."""
        self.plants: list[PowerPlant] = []
        self.power_vehicles: list[ReceivablesVehicle] = []
        self.centre: SecuritizationCenter | None = None
        self.power_rows: list[dict[str, Any]] = []
        spec = self.config.power
        if spec is None:
            return
        ledger, loans, rng = self.ledger, self.loans, self.streams["power"]
        self.power_accounts = {
            key: ledger.open_account(name, "outside")
            for key, name in (("grid", "power grid"), ("coal", "coal suppliers"),
                              ("contractors", "power contractors"))
        }  # fmt: skip
        fleet = power.draw_fleet(spec, rng)
        for k in range(spec.n_plants):
            account = ledger.open_account(f"Plant {k + 1:02d}", "power_plant")
            self.plants.append(PowerPlant(
                self, k, account, fleet.capacity_mw[k], fleet.hours_per_year[k], fleet.tariff[k],
                fleet.coal_kg_per_kwh[k],
            ))  # fmt: skip
        self.coal_gap = spec.coal.initial_log_gap
        self.coal_price = spec.coal.reference_cny_per_t * math.exp(self.coal_gap)
        self.power_dispatch = power.dispatch_factor(
            self.coal_price, spec.coal.reference_cny_per_t, spec.dispatch_coal_elasticity,
            spec.min_dispatch,
        )  # fmt: skip
        for plant in self.plants:
            plant.generate(self.power_dispatch, 0.0)  # a normal quarter sizes its working cash
        book = np.array([p.capacity_mw * spec.build_cost_cny_per_kw / 1e6 for p in self.plants])
        book *= spec.book_value_share
        working = np.array([plant.buffer(0.0) for plant in self.plants])
        target = spec.initial_debt_ratio * (book + working)
        candidates = rng.permutation(np.flatnonzero(  # loans small enough to build a plant's debt
            (loans.segment == SEGMENTS.index("power_plant")) & (loans.status == Status.PERFORMING)
            & np.isin(loans.holder, self.bank_accounts)
            & (loans.principal <= power.LARGEST_OPENING_LOAN * np.median(target))
        ))  # fmt: skip
        owner = power.assign_by_target(loans.principal[candidates], target)
        self.plant_loans = power.PlantLoans(loans.n)
        self.plant_loans.assign(candidates[owner >= 0], owner[owner >= 0], loans)
        self.refresh_power_loans()
        service = self.plant_loans.scheduled_service(loans, len(self.plants))
        mapped = self.plant_loans.mapped
        for k, plant in enumerate(self.plants):
            mine = mapped[self.plant_loans.plant[mapped] == k]
            lent = [float(loans.principal[mine][loans.holder[mine] == b.account].sum())
                    for b in self.banks]  # fmt: skip
            plant.house_bank = self.banks[
                int(np.argmax(lent)) if max(lent) > 0 else k % len(self.banks)
            ]
            plant.open_books(book[k], plant.buffer(service[k]))
        self.plant_loans.snapshot(loans)
        if spec.centre:
            self.centre = SecuritizationCenter(
                self, ledger.open_account("Securitization Center", "centre")
            )
        self.power_flows = dict.fromkeys(
            ("npl_new", "abs_investor_losses", "capex_funded", "capex_unfunded", "rolled_over"),
            0.0,
        )
        self.power_round_cost = dict.fromkeys(power.ROUTES, float("nan"))
        self.power_funded = dict.fromkeys(power.ROUTES, 0.0)
        self.refresh_totals()
        self._record_plants()

    def _record_plants(self) -> None:
        """Rows of ``power.parquet`` for the year just ended (year 0 = the opening position)."""
        year = (self.quarter + 3) // 4
        self.power_rows.extend(plant.record(year) for plant in self.plants)
        for plant in self.plants:
            plant.reset_year()

    # ================================================================== helpers
    def do_banks(self, method: str) -> None:
        """Call a method on every bank (banks act in a fixed order: results are reproducible)."""
        for bank in self.banks:
            getattr(bank, method)()

    def workout_hazard(self, skill: float) -> float:
        """Quarterly NPL resolution intensity of a holder with workout ``skill`` (banks, AMCs and
        servicers face the same courts; they differ in their teams)."""
        return self.config.bank_base_hazard * skill * self.regime.enforcement_efficiency

    def hazard_by_account(self) -> np.ndarray:
        """Resolution intensity for loans held by each ledger account."""
        hazard = np.zeros(self.ledger.n_accounts)
        for bank in self.banks:
            hazard[bank.account] = self.workout_hazard(bank.workout_skill)
        for amc in self.amcs:
            hazard[amc.account] = self.workout_hazard(amc.workout_skill)
        for spv in self.spvs:
            hazard[spv.account] = hazard[spv.servicer.account]
        return hazard

    def workout_cost_by_account(self) -> np.ndarray:
        """Workout cost per unit recovered for loans held by each ledger account."""
        cost = np.zeros(self.ledger.n_accounts)
        cost[self.bank_accounts] = self.config.bank_workout_cost
        for amc in self.amcs:
            cost[amc.account] = amc.cost_per_recovered
        return cost

    @property
    def bank_accounts(self) -> np.ndarray:
        """Ledger accounts of the banks."""
        return np.array([bank.account for bank in self.banks])

    def refresh_totals(self) -> None:
        """Recompute the per-account loan aggregates the agents read (performing principal, NPL
        principal, NPL carrying value) from the loan book; afterwards they are kept current
        incrementally, which the invariant checks compare against a fresh recount."""
        fresh = self.loans.holder_totals(self.ledger.n_accounts)
        self.totals = {key: fresh[key] for key in ("performing", "npl", "npl_carrying")}

    def _move_npl_totals(
        self, seller: int, buyer: int, face: float, carrying: float, price: float
    ) -> None:
        """Keep the per-account aggregates current after a transfer, without a full recount."""
        self.totals["npl"][seller] -= face
        self.totals["npl"][buyer] += face
        self.totals["npl_carrying"][seller] -= carrying
        self.totals["npl_carrying"][buyer] += price

    def log_event(self, kind: str, agent: str, detail: str, amount: float) -> None:
        """Record a legal or economic event for ``events.parquet``."""
        self.events.append(
            {"quarter": self.quarter, "kind": kind, "agent": agent, "detail": detail,
             "amount": float(amount)}
        )  # fmt: skip

    def _draw_segments(self, uniform: np.ndarray) -> np.ndarray:
        """Segment of new loans: government-directed with its share, else the commercial mix."""
        config = self.config
        shares = np.array(
            [config.gov_directed_share]
            + [(1 - config.gov_directed_share) * config.commercial_mix.get(s, 0.0)
               for s in SEGMENTS[1:]]
        )  # fmt: skip
        cumulative = np.cumsum(shares / shares.sum())
        return np.minimum(np.searchsorted(cumulative, uniform, side="right"), len(SEGMENTS) - 1)

    def _reset_flows(self) -> None:
        for agent in (*self.banks, *self.amcs):
            agent.reset_flows()
        self.sec_flows = dict.fromkeys(self.sec_flows, 0.0)

    # ================================================================== set-up
    def _open_balance_sheets(self) -> None:
        """Seed the loan book and every balance sheet so that each balances from quarter 0."""
        config, loans = self.config, self.loans
        rng = self.streams["init"]
        ledger, outside = self.ledger, self.ledger.outside
        books = np.array([b.loans_cny_bn for b in config.banks])
        counts = np.floor(books / books.sum() * loans.n).astype(int)
        counts[-1] += loans.n - counts.sum()
        owner_index = np.repeat(np.arange(len(self.banks)), counts)
        accounts = self.bank_accounts[owner_index]
        self.pd_multiplier_by_account = np.ones(ledger.n_accounts)
        for bank in self.banks:
            self.pd_multiplier_by_account[bank.account] = bank.pd_multiplier

        # A seasoned book: each loan has amortised to the share of its term still to run, so the
        # slot's original size (re-lent when it frees up) is the outstanding over that share.
        segment = self._draw_segments(rng.random(loans.n))
        maturity = np.array([config.segments[s].maturity_q for s in SEGMENTS])[segment]
        remaining_share = np.ceil(rng.random(loans.n) * maturity) / maturity
        principal = rng.lognormal(0.0, 1.0, loans.n) * remaining_share
        principal *= books[owner_index] / np.bincount(owner_index, weights=principal)[owner_index]
        self.slot_size = principal / remaining_share
        loans.originate(
            slice(None),
            accounts,
            segment,
            principal,
            self.pd_multiplier_by_account,
            config.macro.benchmark_rate,
            rng.random(loans.n),
            remaining_share,
        )
        # Initial NPLs: the chance a loan is bad is proportional to its PD, scaled so that the
        # expected NPL share of the book equals the scenario's starting NPL ratio.
        segment_pd = np.array([config.segments[s].pd_annual for s in SEGMENTS])[segment]
        weight = segment_pd * self.pd_multiplier_by_account[accounts]
        p_bad = np.clip(
            config.initial_npl_ratio * weight / np.average(weight, weights=principal), 0, 1
        )
        bad = rng.random(loans.n) < p_bad
        sigma = config.borrower_quality_dispersion
        loans.quality[:] = np.exp(sigma * rng.standard_normal(loans.n) - sigma**2 / 2)
        loans.mark_npl(
            np.flatnonzero(bad), -rng.integers(0, config.initial_npl_max_age_q + 1, bad.sum())
        )
        self.carved_out = np.zeros(loans.n, dtype=bool)
        self.refresh_totals()

        for bank in self.banks:
            spec = bank.spec
            gross = bank.gross_loans
            bank.provisions = bank.provision_target()
            bank.gov_bonds = spec.bond_share * gross
            bank.equity = spec.equity_ratio * gross
            # deposits close the balance sheet, with required reserves held in cash; owners paid
            # in the book equity plus the loss allowance already charged against it
            reserve = config.reserve_ratio
            bank.deposits = (bank.gov_bonds + gross - bank.provisions - bank.equity) / (1 - reserve)
            if bank.deposits <= 0:
                raise ConfigError(
                    "scenario",
                    "initial_npl_ratio",
                    f"{bank.name}: the regime's provisions on this NPL stock exceed the bank's "
                    "funding (deposits would be negative)",
                    "a lower initial_npl_ratio or provision_coverage_min, or more bond_share",
                )
            cash = reserve * bank.deposits
            ledger.transfer(outside["depositors"], bank.account, bank.deposits, "opening_deposits")
            ledger.transfer(
                outside["owners"], bank.account, bank.equity + bank.provisions, "opening_capital"
            )
            ledger.transfer(bank.account, outside["borrowers"], gross, "opening_loans")
            ledger.transfer(bank.account, outside["government"], bank.gov_bonds, "opening_bonds")
            assert abs(bank.cash - cash) < 1e-6 * bank.deposits
        for amc in self.amcs:
            amc.equity = amc.spec.equity_cny_bn
            ledger.transfer(outside["government"], amc.account, amc.equity, "opening_equity")
        for investor in self.investors:
            ledger.transfer(
                outside["capital_market"], investor.account, investor.spec.capacity_cny_bn,
                "opening_investor_cash",
            )  # fmt: skip
        for enhancer, spec in zip(self.enhancers, config.enhancers, strict=True):
            ledger.transfer(
                outside["owners"], enhancer.account, spec.capital_cny_bn, "opening_equity"
            )
        ledger.transfer(
            outside["owners"], self.underwriter.account,
            config.securitisation.underwriter_capital_cny_bn, "opening_equity",
        )  # fmt: skip

    # ================================================================== measurement
    def _measure(self, flows: dict[str, float]) -> None:
        """System-wide metrics of the quarter (the columns of ``model.parquet``)."""
        banks = self.banks
        kept = sum(self.pool_face_not_derecognised(b) for b in banks)
        gross_loans = sum(b.gross_loans for b in banks) + kept
        npl = sum(b.npl_on_books for b in banks)
        provisions = sum(b.provisions for b in banks)
        rwa = sum(b.risk_weighted_assets for b in banks)
        equity = sum(b.equity for b in banks)
        liquid = sum(b.liquid_assets for b in banks)
        short_term = sum(b.short_term_liabilities for b in banks)
        outflows = sum(self.config.lcr_runoff * b.deposits + b.interbank for b in banks)
        deposits = sum(b.deposits for b in banks)
        sold = sum(b.flows["npl_sold_amc"] for b in banks)
        proceeds = sum(b.flows["amc_sale_proceeds"] for b in banks)
        disposed_face = flows.get("bank_face_closed", 0.0) + sold
        recovered = flows.get("bank_recovered_cash", 0.0) + proceeds
        self.metrics = {
            "quarter": self.quarter,
            "npl_ratio": _div(npl, gross_loans),
            "car": _div(equity, rwa),
            "provision_coverage": _div(provisions, npl),
            "liquidity_ratio": _div(liquid, short_term),
            "lcr": _div(liquid, outflows),
            "loan_to_deposit": _div(gross_loans, deposits),
            "npl_stock": npl,
            "gross_loans": gross_loans,
            "new_npl": flows.get("new_npl", 0.0),
            "npl_sold_amc": sold,
            "npl_carved_out": sum(b.flows["npl_carved_out"] for b in banks),
            "npl_securitised": sum(b.flows["npl_securitised"] for b in banks),
            "abs_issued": self.sec_flows["abs_issued"],
            "abs_outstanding": self.abs_outstanding(),
            "senior_spread_bp": self.senior_spread_bp(),
            "bid_ask_bp": flows.get("bid_ask_bp", float("nan")),
            "turnover": flows.get("turnover", float("nan")),
            "effective_spread_bp": flows.get("effective_spread_bp", float("nan")),
            "secondary_volume": flows.get("secondary_volume", 0.0),
            "amihud": flows.get("amihud", float("nan")),
            "forced_sale_fill_rate": flows.get("forced_sale_fill_rate", float("nan")),
            "discount_to_fundamental": flows.get("discount_to_fundamental", float("nan")),
            "quarters_to_sell": flows.get("quarters_to_sell", float("nan")),
            "liquidity_premium_bp": self.liquidity_premium_share()
            * float(np.mean([inv.spec.liquidity_premium_bp for inv in self.investors]))
            if self.investors
            else float("nan"),
            "liquidity_created_amc": proceeds,
            "liquidity_created_securitisation": sum(
                b.flows["securitisation_proceeds"] + b.flows["abs_income"] for b in banks
            ),
            "liquidity_created_workout": flows.get("bank_recovered_cash", 0.0)
            - sum(b.flows["workout_costs"] for b in banks),
            "bank_recovery_rate": _div(recovered, disposed_face),
            "amc_recovery_to_date": _div(self.carveout_recovered, self.carveout_face),
            "amc_price_to_face": flows.get("amc_price_to_face", float("nan")),
            "amc_bid_dispersion": flows.get("amc_bid_dispersion", float("nan")),
            "investor_losses": self.sec_flows["investor_losses"],
            "enhancer_payouts": self.sec_flows["enhancer_payouts"],
            "recharacterisations": self.sec_flows["recharacterisations"],
            "systematic_factor": self.z,
            **self.power_metrics(),
        }

    def liquidity_premium_share(self) -> float:
        """Share of investors' stated liquidity premium that the observed market leaves."""
        spec = self.config.secondary
        depth = np.exp(-self.observed_turnover / spec.feedback_turnover_scale)
        return spec.feedback_floor + (1.0 - spec.feedback_floor) * depth

    def abs_outstanding(self) -> float:
        """Outstanding principal (notional for the sub) of every live deal's tranches."""
        live = [spv.book_index for spv in self.spvs if spv.state == LIVE]
        return float(sum(self.deal_book.balance[t][live].sum() for t in waterfall.TRANCHES))

    def senior_spread_bp(self) -> float:
        """Balance-weighted senior coupon over the risk-free rate of live deals, bp."""
        live = [spv.book_index for spv in self.spvs if spv.state == LIVE]
        balance = self.deal_book.balance["senior"][live]
        if balance.sum() <= 0:
            return float("nan")
        coupon = np.average(self.deal_book.coupon["senior"][live], weights=balance)
        return float((coupon - self.config.macro.gov_bond_yield) * 1e4)

    def _record_agents(self) -> None:
        self.bank_rows.extend(bank.record() for bank in self.banks)
        self.amc_rows.extend(amc.record() for amc in self.amcs)

    # ================================================================== outputs
    def model_frame(self) -> pd.DataFrame:
        """``model.parquet``: one row per quarter."""
        frame = self.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        return frame.astype({"quarter": "int64"})

    def bank_frame(self) -> pd.DataFrame:
        """``banks.parquet``: one row per bank and quarter."""
        return pd.DataFrame(self.bank_rows)

    def amc_frame(self) -> pd.DataFrame:
        """``amcs.parquet``: one row per AMC and quarter."""
        return pd.DataFrame(self.amc_rows)

    def trade_frame(self) -> pd.DataFrame:
        """``trades.parquet``: every NPL portfolio sale."""
        return pd.DataFrame(self.trades, columns=TRADE_COLUMNS)

    def deal_frame(self) -> pd.DataFrame:
        """``deals.parquet``: one row per issued deal."""
        return pd.DataFrame(self.deal_rows, columns=DEAL_COLUMNS)

    def event_frame(self) -> pd.DataFrame:
        """``events.parquet``: reforms, shocks, carve-outs and other legal events."""
        return pd.DataFrame(self.events, columns=["quarter", "kind", "agent", "detail", "amount"])

    def power_frame(self) -> pd.DataFrame:
        """``power.parquet``: one row per plant and year (empty without power plants)."""
        return pd.DataFrame(self.power_rows)

    # ================================================================== invariants
    def invariant_violations(self, tolerance: float = 1e-7) -> list[str]:
        """Stock-flow and accounting checks (DESIGN §7); an empty list means all hold."""
        problems = []
        scale = max(self.ledger.gross(), 1.0)
        if abs(self.ledger.total()) > tolerance * scale:
            problems.append(f"ledger does not conserve money: sum {self.ledger.total():.6g}")
        for agent in (*self.banks, *self.amcs):
            size = max(abs(agent.equity), agent.cash, 1.0) + self.totals["npl"][agent.account]
            if abs(agent.balance_gap) > 1e-6 * max(size, getattr(agent, "total_assets", 0.0)):
                problems.append(f"{agent.name}: balance sheet gap {agent.balance_gap:.6g}")
            if agent.cash < -1e-9 * max(size, 1.0):
                problems.append(f"{agent.name}: negative cash {agent.cash:.6g}")
        for bank in self.banks:
            for name in ("gov_bonds", "amc_bonds", "provisions", "deposits", "interbank"):
                if getattr(bank, name) < -1e-9 * max(bank.total_assets, 1.0):
                    problems.append(f"{bank.name}: negative {name} {getattr(bank, name):.6g}")
        for amc in self.amcs:
            if amc.funding_debt < -1e-9:
                problems.append(f"{amc.name}: negative funding debt")
        others = (*self.investors, *self.enhancers, self.state_guarantor, self.underwriter)
        for agent in (*self.spvs, *others):
            if agent is not self.state_guarantor and agent.cash < -1e-9:
                problems.append(f"{agent.name}: negative cash {agent.cash:.6g}")
        for tranche, balance in self.deal_book.balance.items():
            if (balance < -1e-12).any():
                problems.append(f"negative {tranche} tranche balance")
        for spv in self.spvs:
            if spv.state == LIVE and not spv.frozen:
                gap = spv.cash - self.deal_book.reserve[spv.book_index]
                if abs(gap) > 1e-9 * max(spv.cash, 1.0):
                    problems.append(f"{spv.name}: cash {spv.cash:.6g} left beside its reserve")
            for tranche, owners in spv.holders.items():
                held = sum(owners.values())
                if spv.state == LIVE and abs(
                    held - self.deal_book.balance[tranche][spv.book_index]
                ) > 1e-7 * max(held, 1.0):
                    problems.append(f"{spv.name}: {tranche} holdings {held:.6g} != balance")
        problems.extend(self.power_violations())
        holders = set(self.bank_by_account) | set(self.amc_by_account) | set(self.spv_by_account)
        unknown = np.setdiff1d(np.unique(self.loans.holder), list(holders))
        if unknown.size:
            problems.append(f"loans held by unknown accounts {unknown.tolist()}")
        loans = self.loans
        if (loans.principal < 0).any() or (loans.carrying < -1e-12).any():
            problems.append("negative loan principal or carrying value")
        live = loans.status <= Status.NPL
        if (loans.principal[~live] != 0).any():
            problems.append("closed loan slots still carry principal")
        fresh = loans.holder_totals(self.ledger.n_accounts)
        for key in ("npl", "npl_carrying", "performing"):
            if not np.allclose(fresh[key], self.totals[key], rtol=1e-9, atol=1e-6):
                problems.append(f"stale per-holder totals: {key}")
        if not np.array_equal(loans.free_slots(), np.flatnonzero(loans.status >= Status.RESOLVED)):
            problems.append("stale index of free slots")
        npl = np.flatnonzero(loans.status == Status.NPL)
        if not np.array_equal(loans.npl_index(), npl):
            problems.append("stale index of non-performing loans")
        for account in np.unique(loans.holder[npl]).tolist():
            if not np.array_equal(loans.npls_of(account), npl[loans.holder[npl] == account]):
                problems.append(f"stale non-performing loans of account {account}")
        moved = (loans.status == Status.PERFORMING) & (loans.holder != loans.originator)
        if moved.any() and not loans.performing_sold:
            problems.append("performing loans left their originator unrecorded")
        return problems


DEAL_COLUMNS = [
    "deal_id", "originator", "quarter_cutoff", "quarter_issued", "closing_lag_q", "pool_loans",
    "pool_principal", "pool_face", "pool_expected_recovery", "collection_sigma", "issued_total",
    "senior_size", "mezz_size", "sub_size", "senior_rating", "mezz_rating", "senior_coupon",
    "mezz_coupon", "senior_spread_bp", "senior_legal_premium_bp", "senior_information_premium_bp",
    "senior_bid_to_cover", "sub_price", "fees_total", "transfer_costs", "retained",
    "retention_required", "reserve", "proceeds_to_originator", "net_proceeds_per_face",
    "guarantor", "servicer",
]  # fmt: skip

TRADE_COLUMNS = [
    "quarter", "market", "seller", "buyer", "segment", "n_loans", "face", "price",
    "price_to_face", "reserve", "n_bids", "bid_cv",
]  # fmt: skip


def _packages(idx: np.ndarray, segment: np.ndarray, size: int):
    """Split a bank's offered loans into packages of at most ``size`` loans of one segment.

    Yields (positions into ``idx``, slots) per package.
    """
    for code in np.unique(segment):
        positions = np.flatnonzero(segment == code)
        for start in range(0, positions.size, size):
            pos = positions[start : start + size]
            yield pos, idx[pos]


def _segment_table(config: ScenarioConfig) -> SegmentTable:
    specs = [config.segments[name] for name in SEGMENTS]

    def column(field: str) -> np.ndarray:
        return np.array(
            [np.nan if getattr(s, field) is None else getattr(s, field) for s in specs], dtype=float
        )

    return SegmentTable(
        pd_annual=column("pd_annual"),
        spread=column("spread"),
        maturity_q=column("maturity_q"),
        secured_share=column("secured_share"),
        collateral_cover=column("collateral_cover"),
        haircut=column("haircut"),
        unsecured_recovery=column("unsecured_recovery"),
        correlation=column("correlation"),
    )


def _reporter(column: str):
    def report(model: NPLMarketModel) -> float:
        return model.metrics[column]

    report.__name__ = column
    return report


def _div(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def _take(book: waterfall.DealBook, rows: np.ndarray) -> waterfall.DealBook:
    """The deals at ``rows`` as a book of their own (copies)."""
    return waterfall.DealBook(
        **{
            f.name: (
                {k: v[rows].copy() for k, v in getattr(book, f.name).items()}
                if isinstance(getattr(book, f.name), dict)
                else getattr(book, f.name)[rows].copy()
            )
            for f in fields(book)
        }
    )


def _put(book: waterfall.DealBook, rows: np.ndarray, part: waterfall.DealBook) -> None:
    """Write a sub-book taken with ``_take`` back into ``book``."""
    for f in fields(book):
        target, source = getattr(book, f.name), getattr(part, f.name)
        if isinstance(target, dict):
            for key in target:
                target[key][rows] = source[key]
        else:
            target[rows] = source
