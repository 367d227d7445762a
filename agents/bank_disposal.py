"""How a state bank disposes of its NPLs: each quarter, loan by loan, hold and work it out, sell it
to an AMC, or put it into a securitisation, under the regulatory pressure of its capital and NPL
ratios (shadow prices); and what it learns from the prices it gets.
"""

from __future__ import annotations

import numpy as np

from nplsim.market.disposal import (
    ChannelQuote,
    ShadowPrices,
    choose_channels,
    reserve_price,
    sale_capital_gain,
    shadow_prices,
)
from nplsim.market.loans import expected_workout_value, workout_value_table
from nplsim.market.pricing import RISK_WEIGHTS

# Capital risk weight the bank expects on the slice of a deal it must retain, per retention form:
# a first-loss slice is the unrated bottom (1250%, deducted); a vertical slice shares the pool's
# risk, weighted as a sub-investment-grade exposure (300%, assumption between BB 350% and the
# senior 100% of BCBS d511; see market/pricing.py RISK_WEIGHTS).
RETAINED_WEIGHT = {"first_loss": RISK_WEIGHTS["unrated"], "vertical": 3.0}
# A package that finds no buyer at the reserve lowers the bank's belief about AMC prices by half a
# learning step (assumption: no price is observed, only that it was too low).
UNSOLD_BELIEF_CUT = 0.5


class DisposalPolicy:
    """Mixin of ``StateBank``: the disposal decision and the price beliefs behind it.

    Expects the bank's ``world``, balance sheet and ratios (``car``, ``npl_ratio``, ``provisions``,
    ``npl_on_books``, ``npl_risk_weight``), what it is held to (``car_requirement``,
    ``npl_ratio_target``, ``npl_pressure_weight``), its ``flows`` and ``provide()``.
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
        )
        return self.shadow

    def own_npls(self) -> np.ndarray:
        """Slots of the non-performing loans this bank holds."""
        return self.world.loans.npls_of(self.account)

    def hold_value(self, idx: np.ndarray, disclosure: float = 1.0) -> np.ndarray:
        """Expected present value of working the loans out in-house (CNY bn per loan).

        With ``disclosure`` below 1 it is the value an outsider would put on the bank's workout,
        seeing only the disclosed share of what the bank knows about each borrower.
        """
        world, config = self.world, self.world.scenario
        discount_q = (1.0 + config.bank_discount_rate) ** -0.25
        table = workout_value_table(
            p_resolve=-np.expm1(-world.workout_hazard(self.workout_skill)),
            discount_q=discount_q,
            write_off_age_q=config.write_off_age_q,
            cost_rate=config.bank_workout_cost,
        )
        return expected_workout_value(
            world.loans, idx, world.quarter, table, discount_q, disclosure
        )

    def market_view(self, idx: np.ndarray) -> np.ndarray:
        """The bank's workout value as an outside buyer would see it: the anchor for what AMCs
        pay, scaled by the bank's learned price belief."""
        return self.hold_value(idx, self.world.regime.disclosure_level)

    def net_book(self, idx: np.ndarray) -> np.ndarray:
        """Face of each loan less its pro-rata share of loan-loss provisions (CNY bn)."""
        face = self.world.loans.principal[idx]
        npl = self.npl_on_books
        share = self.provisions / npl if npl > 0 else 0.0
        return face * (1.0 - share)

    def disposal_quotes(
        self, idx: np.ndarray, hold: np.ndarray, securitisation_open: bool, amc_open: bool = True
    ) -> list[ChannelQuote]:
        """What each disposal channel open to the bank is expected to pay for the loans."""
        face = self.world.loans.principal[idx]
        expected_price = self.amc_price_belief * self.market_view(idx)
        amc = ChannelQuote(
            name="amc",
            value=expected_price,
            face_removed=face,
            capital_gain=sale_capital_gain(
                expected_price, self.net_book(idx), self.npl_risk_weight, self.car_requirement
            ),
            feasible=np.ones(idx.shape, dtype=bool),
        )
        quotes = [amc] if amc_open else []
        if securitisation_open:
            quotes.append(self.securitisation_quote(idx, face))
        return quotes

    def securitisation_quote(self, idx: np.ndarray, face: np.ndarray) -> ChannelQuote:
        """Expected value of putting loans into a deal: sale proceeds plus the retained slice, at
        the bank's learned ratio to their market view. Capital relief (risk-weighted assets freed,
        net of the capital held on the retained slice) only where the pool is derecognised."""
        regime = self.world.regime
        value = self.sec_price_belief * self.market_view(idx)
        if regime.derecognition_allowed:
            retained_weight = RETAINED_WEIGHT[regime.retention_form]
            car_min = self.car_requirement
            retained_charge = car_min * retained_weight * regime.risk_retention * value
            capital_gain = (
                sale_capital_gain(value, self.net_book(idx), self.npl_risk_weight, car_min)
                - retained_charge
            )
            face_removed = face
        else:
            # Not derecognised: the pool stays on the books with its provisions and risk weight,
            # so the deal is funding, not relief.
            capital_gain = np.zeros_like(value)
            face_removed = np.zeros_like(face)
        return ChannelQuote(
            name="securitisation",
            value=value,
            face_removed=face_removed,
            capital_gain=capital_gain,
            feasible=np.ones(idx.shape, dtype=bool),
        )

    def decide_disposals(
        self, securitisation_open: bool, amc_open: bool = True
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Choose, loan by loan, between holding and each channel open to the bank (AMC sale
        where ``amc_open``, and securitisation where ``securitisation_open``).

        Returns:
            per channel name, the slots offered and the bank's reserve price for each (CNY bn):
            the lowest price at which selling still beats holding under regulatory pressure.
        """
        prices = self.update_shadow_prices()
        idx = self.own_npls()
        world = self.world
        idx = idx[world.loans.age_q(world.quarter, idx) >= world.scenario.disposal_lag_q]
        if idx.size == 0:
            return {}
        hold = self.hold_value(idx)
        quotes = self.disposal_quotes(idx, hold, securitisation_open, amc_open)
        choice = choose_channels(hold, quotes, prices)
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
