"""NPLMarketModel: the composition root — it wires the economy together and runs its quarter.

State banks lend, their loans go bad under government direction and weak internal control, and
the banks dispose of non-performing loans by working them out, selling them to AMCs or securitising
them, all under a configurable legal regime. Agents (``nplsim.agents``) act through a narrow view
of the world; institutions (this package) bring them together; mechanisms (``nplsim.market``) are
plain numpy. This module is the only place that knows all of them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.agents.enhancer import CreditEnhancer
from nplsim.agents.investor import Investor
from nplsim.agents.npl_buyer import NPLBuyer
from nplsim.agents.spv import SpecialPurposeVehicle
from nplsim.agents.state import State
from nplsim.agents.supervisor import Supervisor
from nplsim.agents.underwriter import Underwriter
from nplsim.economy import invariants
from nplsim.economy.abs_market import AbsExchange
from nplsim.economy.auction_house import AuctionHouse
from nplsim.economy.authorities import Authorities
from nplsim.economy.carveout import CarveOut
from nplsim.economy.coal_market import CoalMarket
from nplsim.economy.deal_desk import DealDesk
from nplsim.economy.loan_cycle import LoanCycle
from nplsim.economy.macro import Macro
from nplsim.economy.measurement import MODEL_COLUMNS, measure
from nplsim.economy.money_market import MoneyMarket, base_conditions
from nplsim.economy.opening import open_balance_sheets, seed_loan_book
from nplsim.economy.outputs import AgentRecorder, deal_frame
from nplsim.economy.power_sector import PowerSector
from nplsim.economy.reforms import apply_scheduled_reforms
from nplsim.economy.servicing import Trustee
from nplsim.economy.world import EconomyWorld
from nplsim.market.blotter import Blotter
from nplsim.market.credit import segment_table
from nplsim.market.eventlog import EventLog
from nplsim.market.holdings import HolderTotals
from nplsim.market.ledger import Ledger
from nplsim.market.loans import LoanBook, collateral_realisation
from nplsim.market.npl_age import NplExits
from nplsim.market.prudential_rules import PrudentialRules, scenario_prudential
from nplsim.market.regime import LegalRegime
from nplsim.market.scenario import DEFAULT_SCENARIO, ScenarioConfig, load_scenario
from nplsim.market.seeds import checked_seed
from nplsim.market.slotdraws import new_key
from nplsim.market.streams import split_streams

__all__ = ["MODEL_COLUMNS", "NPLMarketModel"]

log = logging.getLogger(__name__)


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
        seed = checked_seed(rng)
        super().__init__(rng=seed)
        self.seed = seed
        config, regime = load_scenario(scenario, overrides)
        self.config = config
        streams = split_streams(seed)
        clock = self._quarter
        ledger = Ledger(clock)
        loans = LoanBook(config.n_loans, segment_table(config))
        loans.collateral_realisation = collateral_realisation(regime.enforcement_efficiency)
        loans.quality_dispersion = config.borrower_quality_dispersion
        loans.signal_key = new_key(streams["signals"])
        self.world = world = EconomyWorld(
            config, regime, config.regime, ledger, loans, HolderTotals(), EventLog(clock), clock,
            scenario_prudential(config), config.prudential, None,  # funding: set just below
        )  # fmt: skip
        world.funding = base_conditions(world)
        self.blotter = Blotter(clock)

        def account(name: str, kind: str) -> int:
            return ledger.open_account(name, kind)

        for spec in config.banks:
            StateBank(self, world, spec, account(spec.name, "bank"))
        for spec in config.amcs:
            AssetManagementCompany(self, world, spec, account(spec.name, "amc"))
        for spec in config.npl_buyers:
            NPLBuyer(self, world, spec, account(spec.name, "npl_buyer"))
        for spec in config.investors:
            for k in range(spec.count):
                Investor(
                    self, world, spec, k, account(f"{spec.investor_class} {k + 1}", "investor")
                )
        for spec in config.enhancers:
            CreditEnhancer(self, world, spec.name, account(spec.name, "enhancer"),
                           spec.max_leverage, spec.fee_markup)  # fmt: skip
        self.state_guarantor = CreditEnhancer(
            self, world, "State guarantee scheme", account("state scheme", "enhancer"),
            max_leverage=0.0, fee_markup=1.0, state_backed=True,
        )  # fmt: skip
        self.underwriter = Underwriter(
            self, world, account("Underwriter", "underwriter"), streams["behaviour"]
        )
        # populations fixed for the run, in scenario order
        self.banks: list[StateBank] = self.population(StateBank)
        self.amcs: list[AssetManagementCompany] = self.population(AssetManagementCompany)
        self.npl_buyers: list[NPLBuyer] = self.population(NPLBuyer)
        self.investors: list[Investor] = self.population(Investor)
        self.enhancers = [e for e in self.population(CreditEnhancer) if not e.state_backed]
        banks, amcs, investors, enhancers = self.banks, self.amcs, self.investors, self.enhancers

        opening = seed_loan_book(world, streams["init"], banks)
        world.npl_exits = NplExits(loans, clock, np.array([b.account for b in banks]))
        open_balance_sheets(
            world, banks, [*amcs, *self.npl_buyers], investors, enhancers, self.underwriter
        )
        self.macro = Macro(world, streams["macro"])
        self.money_market = MoneyMarket(world, banks)
        self.coal = CoalMarket(world, streams["power"])  # power scenarios' coal price
        self.carveout = CarveOut(world, streams["behaviour"], banks, amcs)
        self.supervisor, self.state = Supervisor(self, world), State(self, world)
        self.authorities = Authorities(self.supervisor, self.state, banks, self.carveout)
        self.desk = DealDesk(
            self, world, banks, amcs, investors, enhancers, self.state_guarantor,
            self.underwriter, self.blotter, lambda: self.exchange.liquidity_premium_share(),
        )  # fmt: skip
        self.exchange = AbsExchange(
            world, streams["behaviour"], self.desk, investors, self.underwriter, self.blotter
        )
        self.power = PowerSector(
            self, world, streams["power"], self.coal, opening, banks, investors, self.underwriter,
            self.exchange.liquidity_premium_share,
        )  # fmt: skip
        self.loan_cycle = LoanCycle(
            world, streams, opening, banks, [*amcs, *self.npl_buyers], self.desk.vehicles
        )
        self.auction_house = AuctionHouse(
            world, streams["behaviour"], amcs, self.npl_buyers, self.blotter
        )
        self.trustee = Trustee(
            world, streams["behaviour"], self.desk, banks, amcs, investors, self.underwriter,
            self.auction_house,
        )  # fmt: skip
        self.recorder = AgentRecorder(banks, amcs)
        self.datacollector = mesa.DataCollector(
            model_reporters={col: _reporter(col) for col in MODEL_COLUMNS}
        )
        self.running = True
        self.collect({})

    # ================================================================== the quarter
    def step(self) -> None:
        """One quarter of the economy, in the order its institutions act."""
        if self.past_horizon():  # nothing happens after the last quarter
            return
        banks = self.agents_by_type[StateBank]
        self.begin_quarter()  # flow accounts start at zero
        apply_scheduled_reforms(self.world, self.config)  # 1. scheduled reforms take effect
        self.macro.draw()  # 2. the systematic credit shock,
        self.money_market.open()  #   the money market's conditions and liquidity shocks
        self.coal.draw()  #   and the coal price where there are power plants
        loan_flows = self.loan_cycle.settle(self.macro.z)  # 3. interest, defaults, workouts
        self.loan_cycle.relend()  # 4. banks re-lend freed slots,
        self.carveout.pay_bond_coupons()  #   receive AMC bond coupons,
        banks.do(StateBank.close_books)  #   and close their books: provisions, capital, liquidity
        offers = self.disposal_offers()  # 5. each bank: hold, sell to AMCs or securitise
        auction_stats = self.auction_house.clear(offers.get("amc", []))  # 6. AMC auctions,
        self.desk.start(offers.get("securitisation", []) + self.desk.amc_pools())  # true sales,
        self.desk.close_due()  #   deals past their closing lag are structured and sold
        self.trustee.service()  # 7. courts, waterfalls, payments to holders
        market_stats = self.exchange.trade()  # 8. the ABS secondary market
        self.auction_house.repay_funding()  # 9. NPL buyers repay funding from recoveries;
        self.power.run()  #   power plants generate, pay their debt and finance capacity;
        self.authorities.review()  # 10. carve-outs, corrective action, recapitals, PBOC lending
        self.collect({**loan_flows, **auction_stats, **market_stats})  # 11. measurement
        self.running = self.quarter < self.config.quarters

    def past_horizon(self) -> bool:
        """Whether this step would run past the scenario's last quarter; if so, say so and take
        back the step Mesa has already counted (the quarter is Mesa's step count)."""
        if self.steps <= self.config.quarters:
            return False
        self.steps -= 1
        self.running = False
        log.warning(
            "%s: quarter %d is the last of the run; step() past it does nothing",
            self.config.name, self.config.quarters,
        )  # fmt: skip
        return True

    def begin_quarter(self) -> None:
        """Every institution's flow accounts of the quarter start at zero."""
        for agent in (*self.banks, *self.amcs, *self.npl_buyers):
            agent.reset_flows()
        self.world.npl_exits.reset()
        self.desk.issued = 0.0
        self.trustee.reset()

    def disposal_offers(self) -> dict[str, list[tuple[StateBank, np.ndarray, np.ndarray]]]:
        """Each bank's choice of loans to offer, by channel, with reserve values."""
        offers: dict[str, list[tuple[StateBank, np.ndarray, np.ndarray]]] = {}
        channels = self.config.disposal_channels
        for bank in self.banks:
            choice = bank.decide_disposals(
                securitisation_open="securitisation" in channels and self.desk.open_to(bank),
                amc_open="amc" in channels,
            )
            for channel, (idx, reserve) in choice.items():
                offers.setdefault(channel, []).append((bank, idx, reserve))
        return offers

    def collect(self, flows: dict[str, float]) -> None:
        """Measure the quarter and record it (``model.parquet``, banks and AMCs)."""
        self.metrics = measure(self, flows)
        self.datacollector.collect(self)
        self.recorder.record()

    # ================================================================== views
    def population(self, kind: type[mesa.Agent]) -> list:
        """The agents of one type, in the order they were created (none if there are none)."""
        return list(self.agents_by_type.get(kind, ()))

    def _quarter(self) -> int:
        return self.steps

    @property
    def quarter(self) -> int:
        """The current quarter: Mesa's step count (quarter 0 = the opening balance sheets)."""
        return self.steps

    @property
    def regime(self) -> LegalRegime:
        """The law in force."""
        return self.world.regime

    @property
    def regime_name(self) -> str:
        """The preset the law in force came from."""
        return self.world.regime_name

    @property
    def initial_regime(self) -> LegalRegime:
        """The law at quarter 0."""
        return self.world.initial_regime

    @property
    def prudential(self) -> PrudentialRules:
        """The prudential rules in force."""
        return self.world.prudential

    @property
    def ledger(self) -> Ledger:
        """The payment system."""
        return self.world.ledger

    @property
    def loans(self) -> LoanBook:
        """The loan book."""
        return self.world.loans

    @property
    def spvs(self) -> list[SpecialPurposeVehicle]:
        """Every NPL deal's vehicle, by deal id."""
        return self.desk.vehicles

    @property
    def plants(self) -> list:
        """The power plants (empty without a power block)."""
        return self.power.plants

    def log_event(self, kind: str, agent: str, detail: str, amount: float) -> None:
        """Record an event of this quarter (``events.parquet``)."""
        self.world.log_event(kind, agent, detail, amount)

    def invariant_violations(self, tolerance: float = 1e-7) -> list[str]:
        """Stock-flow and accounting checks; an empty list means all hold."""
        return invariants.violations(self, tolerance)

    # ================================================================== outputs
    def model_frame(self) -> pd.DataFrame:
        """``model.parquet``: one row per quarter."""
        frame = self.datacollector.get_model_vars_dataframe().reset_index(drop=True)
        return frame.astype({"quarter": "int64"})

    def bank_frame(self) -> pd.DataFrame:
        """``banks.parquet``: one row per bank and quarter."""
        return self.recorder.bank_frame()

    def amc_frame(self) -> pd.DataFrame:
        """``amcs.parquet``: one row per AMC and quarter."""
        return self.recorder.amc_frame()

    def trade_frame(self) -> pd.DataFrame:
        """``trades.parquet``: every AMC sale, primary allotment and secondary trade."""
        return self.blotter.frame()

    def deal_frame(self) -> pd.DataFrame:
        """``deals.parquet``: one row per issued deal."""
        return deal_frame(self.desk.deal_rows)

    def event_frame(self) -> pd.DataFrame:
        """``events.parquet``: reforms, shocks, carve-outs and other legal events."""
        return self.world.events.frame()

    def power_frame(self) -> pd.DataFrame:
        """``power.parquet``: one row per plant and year (empty without power plants)."""
        return self.power.frame()


def _reporter(column: str):
    def report(model: NPLMarketModel) -> float:
        return model.metrics[column]

    report.__name__ = column
    return report
