"""How a state bank disposes of its NPLs: each quarter, loan by loan, hold and work it out, sell it
in the NPL auctions, or put it into a securitisation — weighing what a treasurer would: the price
against the bank's own informed value of the loan, capital relief where the pool is derecognised
(net of the capital on the retained slice), funding (collections later are worth less when the
bank's marginal funding is dear), the cost of the capital each loan ties up for as long as it
would stay on the books, the supervisory pressure of the NPL ratio, the servicing fees it
keeps as servicer of its deals, the transfer costs of each loan and the fixed costs of a deal; and
what it learns from the prices it gets.
"""

from __future__ import annotations

import numpy as np

from nplsim.agents.originator import SelectionIncentives
from nplsim.market.disposal import (
    HOLD,
    ChannelQuote,
    DealEconomics,
    ShadowPrices,
    choose_channels,
    funding_premium,
    reserve_price,
    sale_capital_gain,
    shadow_prices,
    years_on_books,
)
from nplsim.market.loans import SEGMENT_CODE
from nplsim.market.workout_value import expected_workout_value, workout_value_table

# A package that finds no buyer at the reserve lowers the bank's belief about AMC prices by half a
# learning step (assumption: no price is observed, only that it was too low).
UNSOLD_BELIEF_CUT = 0.5
# Loans to individuals (facts: personal-npl-transfer: their bulk sale needs the law's leave).
RETAIL_SEGMENTS = np.array([SEGMENT_CODE["retail_card"], SEGMENT_CODE["mortgage"]])
AMC, SECURITISATION = "amc", "securitisation"


class DisposalPolicy:
    """Mixin of ``StateBank``: the disposal decision and the price beliefs behind it.

    Expects the bank's ``world``, balance sheet and ratios (``car``, ``npl_ratio``, ``provisions``,
    ``npl_on_books``, ``npl_risk_weight``, ``liquidity_ratio``, ``lcr``), what it is held to
    (``car_requirement``, ``npl_ratio_target``, ``npl_pressure_weight``), its ``flows``,
    ``provide()`` and the ``Originator`` mixin.
    """

    def update_shadow_prices(self) -> ShadowPrices:
        """Regulatory pressure from the bank's capital and NPL ratios under the current regime."""
        config = self.world.scenario
        self.shadow = shadow_prices(
            car=self.car,
            car_min=self.car_requirement,
            npl_ratio=self.npl_ratio,
            npl_target=self.npl_ratio_target,
            car_weight=config.capital_pressure_weight,
            npl_weight=self.npl_pressure_weight,
            car_buffer=config.car_buffer,
            carry=self.capital_carry,
        )
        return self.shadow

    @property
    def capital_carry(self) -> float:
        """Annual cost of a unit of capital tied up: the bank's cost of equity less the risk-free
        return (0 where the scenario does not price the banks' equity)."""
        config = self.world.scenario
        if config.bank_cost_of_equity <= 0.0:
            return 0.0
        return max(config.bank_cost_of_equity - config.macro.gov_bond_yield, 0.0)

    def loan_prices(self, idx: np.ndarray) -> ShadowPrices:
        """The bank's shadow prices for disposing of loans ``idx`` now, with the carry of the
        capital each would tie up for the years it would otherwise stay on the books."""
        years = years_on_books(
            self.world.loans.age_q(self.world.quarter, idx),
            self.resolve_probability(),
            self.world.scenario.write_off_age_q,
        )
        return self.shadow.for_loans(years)

    def resolve_probability(self) -> float:
        """The bank's quarterly chance of resolving an NPL it works out itself."""
        return self.world.resolve_probability(self.workout_skill)

    @property
    def capital_cushion(self) -> float:
        """Capital ratio above the ratio at which the bank counts as distressed (may be < 0)."""
        gap = self.world.scenario.securitisation.distress_car_gap
        car = self.car
        return car - (self.car_requirement - gap) if np.isfinite(car) else 0.0

    def marginal_funding_premium(self) -> float:
        """How much dearer than normal the bank's marginal funding is, from its liquidity ratio and
        LCR against the prudential minima (annual)."""
        config, rules = self.world.scenario, self.world.prudential
        return funding_premium(
            self.liquidity_ratio, rules.liquidity_ratio_min, self.lcr, rules.lcr_min,
            config.liquidity_buffer, config.funding_stress_spread,
        )  # fmt: skip

    def own_npls(self) -> np.ndarray:
        """Slots of the non-performing loans on this bank's books (not those it has written off
        and still pursues)."""
        loans = self.world.loans
        idx = loans.npls_of(self.account)
        return idx[loans.written_off_claim[idx] == 0.0]

    def hold_value(self, idx: np.ndarray, disclosure: float = 1.0) -> np.ndarray:
        """Expected present value of working the loans out in-house (CNY bn per loan), discounted
        at the bank's required return plus the premium of its marginal funding.

        With ``disclosure`` below 1 it is the value an outsider would put on the bank's workout,
        seeing only the disclosed share of what the bank knows about each borrower.
        """
        world, config = self.world, self.world.scenario
        rate = config.bank_discount_rate + self.marginal_funding_premium()
        discount_q = (1.0 + rate) ** -0.25
        table = workout_value_table(
            p_resolve=self.resolve_probability(),
            discount_q=discount_q,
            write_off_age_q=config.bank_pursuit_age_q,
            cost_rate=config.bank_workout_cost,
        )
        return expected_workout_value(
            world.loans, idx, world.quarter, table, discount_q, disclosure
        )

    def market_view(self, idx: np.ndarray) -> np.ndarray:
        """The bank's workout value as an outside buyer would see it: the anchor for what AMCs
        pay, scaled by the bank's learned price belief."""
        return self.hold_value(idx, self.world.regime.disclosure_level)

    def informed_value(self, idx: np.ndarray) -> np.ndarray:
        """What keeping the loans is worth to the bank, which knows its borrowers."""
        return self.hold_value(idx)

    def net_book(self, idx: np.ndarray) -> np.ndarray:
        """Face of each loan less its pro-rata share of loan-loss provisions (CNY bn)."""
        face = self.world.loans.principal[idx]
        npl = self.npl_on_books
        share = self.provisions / npl if npl > 0 else 0.0
        return face * (1.0 - share)

    # ------------------------------------------------------------------ the channels
    def amc_quote(self, idx: np.ndarray) -> ChannelQuote:
        """What the NPL auctions are expected to pay: the learned price belief on the market view
        (none for loans to individuals where the law forbids selling them in bulk)."""
        loans, regime = self.world.loans, self.world.regime
        face = loans.principal[idx]
        expected_price = self.amc_price_belief * self.market_view(idx)
        feasible = np.ones(idx.shape, dtype=bool)
        if not regime.retail_bulk_sale_allowed:
            feasible = ~np.isin(loans.segment[idx], RETAIL_SEGMENTS)
        return ChannelQuote(
            name=AMC,
            value=expected_price,
            face_removed=face,
            capital_gain=sale_capital_gain(
                expected_price, self.net_book(idx), self.npl_risk_weight, self.car_requirement
            ),
            feasible=feasible,
        )

    def securitisation_quote(self, idx: np.ndarray, deal: DealEconomics) -> ChannelQuote:
        """What a deal is expected to pay (``DealEconomics``), the face it removes and the capital
        it frees. Capital relief (risk-weighted assets freed, net of the capital held on the
        retained slice) and the fall in the NPL ratio only where the pool is derecognised;
        otherwise the deal is funding, not relief."""
        regime = self.world.regime
        face = self.world.loans.principal[idx]
        if regime.derecognition_allowed:
            retained = deal.price_ratio * deal.retained_share * deal.informed_value
            retained_charge = self.car_requirement * self.retention_risk_weight() * retained
            capital_gain = (
                sale_capital_gain(deal.value, self.net_book(idx), self.npl_risk_weight,
                                  self.car_requirement)
                - retained_charge
            )  # fmt: skip
            face_removed = face
        else:
            capital_gain = np.zeros(idx.shape)
            face_removed = np.zeros(idx.shape)
        return ChannelQuote(
            name=SECURITISATION,
            value=deal.value,
            face_removed=face_removed,
            capital_gain=capital_gain,
            feasible=np.ones(idx.shape, dtype=bool),
        )

    def selection_incentives(self, idx: np.ndarray) -> SelectionIncentives:
        """The terms of the bank's choice of loans for a deal, per unit of disclosed value."""
        deal = self.deal_economics(idx)
        quote = self.securitisation_quote(idx, deal)
        prices = self.loan_prices(idx)
        public = np.maximum(deal.public_value, 1e-300)
        other = (
            prices.capital * quote.capital_gain
            + prices.npl * quote.face_removed
            - deal.variable_cost
        ) / public
        informed = np.maximum(deal.informed_value, 1e-300)
        sale = self.amc_quote(idx)
        alternative = np.where(
            sale.feasible,
            (sale.value + prices.capital * sale.capital_gain + prices.npl * sale.face_removed)
            / public,
            -np.inf,
        )
        return SelectionIncentives(
            price_ratio=deal.price_ratio,
            retained_share=deal.retained_share,
            servicing_share=deal.servicing_share,
            hold_ratio=self.informed_value(idx) / informed,
            other_gain=other,
            alternative=alternative,
            public_value=deal.public_value,
        )

    def decide_disposals(
        self, securitisation_open: bool, amc_open: bool = True
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Choose, loan by loan, between holding and each channel open to the bank (NPL auctions
        where ``amc_open``, and securitisation where ``securitisation_open``); a deal is offered
        only if, after its fixed costs, it still beats the loans' next-best use.

        Returns:
            per channel name, the slots offered and the bank's reserve price for each (CNY bn):
            the lowest price at which selling still beats holding under regulatory pressure.
        """
        self.update_shadow_prices()
        idx = self.own_npls()
        world = self.world
        idx = idx[world.loans.age_q(world.quarter, idx) >= world.scenario.disposal_lag_q]
        if idx.size == 0:
            return {}
        prices = self.loan_prices(idx)
        hold = self.hold_value(idx)
        quotes = [self.amc_quote(idx)] if amc_open else []
        if securitisation_open:
            quotes.append(self.securitisation_quote(idx, self.deal_economics(idx)))
        choice = choose_channels(hold, quotes, prices)
        if securitisation_open:
            choice = self.fit_deal(idx, hold, quotes, prices, choice)
        reserve = reserve_price(
            hold,
            self.net_book(idx),
            world.loans.principal[idx],
            self.npl_risk_weight,
            self.car_requirement,
            prices,
        )
        return {
            quote.name: (idx[choice == k], reserve[choice == k])
            for k, quote in enumerate(quotes)
            if (choice == k).any()
        }

    def fit_deal(
        self,
        idx: np.ndarray,
        hold: np.ndarray,
        quotes: list[ChannelQuote],
        prices: ShadowPrices,
        choice: np.ndarray,
    ) -> np.ndarray:
        """Keep the deal to one pool — the loans it gains most on per unit of face, over their
        next-best use, up to the largest pool — and drop it altogether unless that gain covers a
        deal's fixed costs (rating, legal, audit); loans left out go to their next-best channel."""
        world = self.world
        k_sec = len(quotes) - 1
        chosen = np.flatnonzero(choice == k_sec)
        if chosen.size == 0:
            return choice
        gains = np.stack([q.gain(hold, prices) for q in quotes])
        if k_sec == 0:  # no other channel open (the auctions closed): the fallback is holding
            fallback_gain = np.zeros(idx.shape)
            fallback = np.full(idx.shape, HOLD)
        else:
            fallback_gain = np.max(gains[:k_sec], axis=0)
            fallback = np.where(fallback_gain > 0.0, np.argmax(gains[:k_sec], axis=0), HOLD)
        surplus = gains[k_sec] - np.maximum(fallback_gain, 0.0)
        face = world.loans.principal[idx]
        order = chosen[np.argsort(-surplus[chosen] / np.maximum(face[chosen], 1e-300),
                                  kind="stable")]  # fmt: skip
        # a loan goes in while the pool is under the cap at its midpoint, so that pools fill to
        # the cap on average whatever the size of the loan slots
        midpoint = np.cumsum(face[order]) - face[order] / 2
        left_out = order[midpoint > world.scenario.securitisation.max_pool_cny_bn]
        choice = choice.copy()
        choice[left_out] = fallback[left_out]
        pool = np.flatnonzero(choice == k_sec)
        fixed = world.scenario.securitisation.fixed_cost_cny_bn
        if float(surplus[pool].sum()) <= fixed * (1.0 + self.shadow.capital):
            choice[pool] = fallback[pool]
        return choice

    def settle_sale(self, face: float, price: float, reference_value: float) -> None:
        """Book a sale of NPLs carried at ``face``: the loss against face is charged to provisions.

        ``reference_value`` is the market view of the loans sold (see ``market_view``); the ratio
        of price to it updates the bank's belief about what AMCs pay.
        """
        self.provisions -= face - price
        self.provide()
        self.flows["npl_sold_amc"] += face
        self.flows["amc_sale_proceeds"] += price
        if reference_value > 0:
            rate = self.world.scenario.price_learning_rate
            observed = price / reference_value
            self.amc_price_belief += rate * (observed - self.amc_price_belief)

    def learn_unsold(self) -> None:
        """When offered loans find no buyer at the reserve, expect lower AMC prices next time."""
        rate = self.world.scenario.price_learning_rate
        self.amc_price_belief *= 1.0 - UNSOLD_BELIEF_CUT * rate
