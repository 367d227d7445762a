"""NPLMarketModel: the composition root — one quarter of the NPL economy, phase by phase.

State banks lend, their loans go bad under government direction and weak internal control, and
the banks dispose of non-performing loans by working them out or selling them to AMCs, all under a
configurable legal regime. This is the only module in ``market`` that knows the agents.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd

from agents.amc import AssetManagementCompany
from agents.bank import StateBank
from market import auction
from market.errors import ConfigError
from market.ledger import Ledger
from market.loans import SEGMENTS, LoanBook, SegmentTable, Status
from market.regime import load_regime
from market.scenario import DEFAULT_SCENARIO, ScenarioConfig, load_scenario

STREAMS = ("init", "macro", "defaults", "recoveries", "lending", "behaviour")

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
    "bank_recovery_rate",
    "amc_recovery_to_date",
    "amc_price_to_face",
    "amc_bid_dispersion",
    "investor_losses",
    "enhancer_payouts",
    "recharacterisations",
    "systematic_factor",
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
        self.bank_by_account = {bank.account: bank for bank in self.banks}
        self.amc_by_account = {amc.account: amc for amc in self.amcs}
        self.loans = LoanBook(self.config.n_loans, _segment_table(self.config))
        self._open_balance_sheets()
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
        auction_stats = self.clear_amc_auctions(offers.get("amc", []))  # 6. AMC auctions clear
        self.amcs_fund()  # 9. AMCs repay funding from recoveries
        self._measure({**flows, **auction_stats})  # 10. metrics and data collection
        self.datacollector.collect(self)
        self._record_agents()
        self.running = self.quarter < self.config.quarters

    # ------------------------------------------------------------------ 1. events
    def apply_scheduled_events(self) -> None:
        """Regime reforms and macro shocks scheduled for this quarter."""
        for event in self.config.events:
            if event.quarter != self.quarter:
                continue
            name = event.regime or self.regime_name
            self.regime = load_regime(name, event.overrides or None)
            self.regime_name = name
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
        interest, principal_paid, _ = loans.service_performing()
        defaulted = loans.default(
            self.quarter, self.z, self.streams["defaults"].random(loans.n), self.draw_quality()
        )
        new_npl = np.where(defaulted, loans.principal, 0.0)
        resolved, written_off, recovery, cost, face_closed, carrying_closed = loans.work_out(
            self.quarter,
            self.hazard_by_account(),
            self.workout_cost_by_account(),
            self.streams["recoveries"].random(loans.n),
            self.config.write_off_age_q,
        )
        by = {
            "interest": loans.sum_by_holder(interest, n),
            "principal": loans.sum_by_holder(principal_paid, n),
            "recovery": loans.sum_by_holder(recovery, n),
            "cost": loans.sum_by_holder(cost, n),
            "carrying_closed": loans.sum_by_holder(carrying_closed, n),
            "written_off": loans.sum_by_holder(np.where(written_off, face_closed, 0.0), n),
            "new_npl": loans.sum_by_holder(new_npl, n),
        }
        self.carveout_recovered += float(recovery[self.carved_out].sum())
        ledger, outside = self.ledger, self.ledger.outside
        ledger.pay_each(outside["borrowers"], by["interest"], "loan_interest")
        ledger.pay_each(outside["borrowers"], by["principal"], "loan_principal")
        ledger.pay_each(outside["borrowers"], by["recovery"], "npl_recovery")
        ledger.collect_each(outside["service_providers"], by["cost"], "workout_cost")
        self.refresh_totals()
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
            "resolved_count": int(resolved.sum()),
        }

    def draw_quality(self) -> np.ndarray:
        """Workout quality of each slot should it default now: lognormal with mean 1."""
        sigma = self.config.borrower_quality_dispersion
        return np.exp(sigma * self.streams["defaults"].standard_normal(self.loans.n) - sigma**2 / 2)

    # ------------------------------------------------------------------ 4. lending
    def lend(self) -> None:
        """Banks re-lend every freed slot; a government-directed share goes to directed SOEs."""
        loans, config = self.loans, self.config
        draws = self.streams["lending"].random((2, loans.n))  # full length: common random numbers
        free = loans.free_slots()
        if free.size == 0:
            return
        growth_index = (1.0 + config.loan_growth_annual) ** (self.quarter / 4)
        originator = loans.originator[free]
        segment = self._draw_segments(draws[0, free])
        principal = self.slot_size[free] * growth_index
        loans.originate(
            free,
            originator,
            segment,
            principal,
            self.pd_multiplier_by_account[originator],
            config.macro.benchmark_rate,
            draws[1, free],
            np.ones(free.size),
        )
        lent = np.bincount(originator, weights=principal, minlength=self.ledger.n_accounts)
        self.ledger.collect_each(self.ledger.outside["borrowers"], lent, "new_lending")
        self.carved_out[free] = False
        self.refresh_totals()
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

    # ------------------------------------------------------------------ 9. AMCs
    def amcs_fund(self) -> None:
        """AMCs use surplus cash from recoveries to repay their funding."""
        for amc in self.amcs:
            amc.repay_funding()

    # ================================================================== helpers
    def do_banks(self, method: str) -> None:
        """Call a method on every bank (banks act in a fixed order: results are reproducible)."""
        for bank in self.banks:
            getattr(bank, method)()

    def bank_hazard(self, skill: float) -> float:
        """Quarterly NPL resolution intensity of a bank with workout ``skill``."""
        return self.config.bank_base_hazard * skill * self.regime.enforcement_efficiency

    def amc_hazard(self, skill: float) -> float:
        """Quarterly NPL resolution intensity of an AMC (same courts, better workout teams)."""
        return self.config.bank_base_hazard * skill * self.regime.enforcement_efficiency

    def hazard_by_account(self) -> np.ndarray:
        """Resolution intensity for loans held by each ledger account."""
        hazard = np.zeros(self.ledger.n_accounts)
        for bank in self.banks:
            hazard[bank.account] = self.bank_hazard(bank.workout_skill)
        for amc in self.amcs:
            hazard[amc.account] = self.amc_hazard(amc.workout_skill)
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
        """Recompute per-account loan aggregates from the loan book."""
        self.totals = self.loans.holder_totals(self.ledger.n_accounts)

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
            np.arange(loans.n),
            accounts,
            segment,
            principal,
            self.pd_multiplier_by_account[accounts],
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
        loans.status[bad] = Status.NPL
        loans.default_q[bad] = -rng.integers(0, config.initial_npl_max_age_q + 1, bad.sum())
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

    # ================================================================== measurement
    def _measure(self, flows: dict[str, float]) -> None:
        """System-wide metrics of the quarter (the columns of ``model.parquet``)."""
        banks = self.banks
        gross_loans = sum(b.gross_loans for b in banks)
        npl = sum(b.gross_npl for b in banks)
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
            # The securitisation channel, the ABS markets and enhancers are not in this model yet:
            # no deal can happen, so issuance and losses are zero and market prices undefined.
            "npl_securitised": 0.0,
            "abs_issued": 0.0,
            "abs_outstanding": 0.0,
            "senior_spread_bp": float("nan"),
            "bid_ask_bp": float("nan"),
            "turnover": float("nan"),
            "bank_recovery_rate": _div(recovered, disposed_face),
            "amc_recovery_to_date": _div(self.carveout_recovered, self.carveout_face),
            "amc_price_to_face": flows.get("amc_price_to_face", float("nan")),
            "amc_bid_dispersion": flows.get("amc_bid_dispersion", float("nan")),
            "investor_losses": 0.0,
            "enhancer_payouts": 0.0,
            "recharacterisations": 0.0,
            "systematic_factor": self.z,
        }

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

    def event_frame(self) -> pd.DataFrame:
        """``events.parquet``: reforms, shocks, carve-outs and other legal events."""
        return pd.DataFrame(self.events, columns=["quarter", "kind", "agent", "detail", "amount"])

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
        holders = set(self.bank_by_account) | set(self.amc_by_account)
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
        return problems


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
