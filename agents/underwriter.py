"""Underwriter: structures a deal, runs the bookbuilding, and holds what it cannot place.

Product design: the underwriter sizes senior, optional mezzanine and subordinated tranches with a
rating-agency-style stress of pool collections whose severity grows as the regime's disclosure falls
(``nplsim.market.pricing``). Underwriting and sale: eligible investors bid quantities and minimum
yields; the tranche clears at a uniform coupon; under a firm commitment the underwriter buys what is
unsold, under best efforts the tranche is downsized. The subordinated tranche is sold at a price to
distressed-debt investors, or kept by the originator.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import mesa
import numpy as np
from nplsim.market import pricing

if TYPE_CHECKING:
    from nplsim.agents.investor import Investor
    from nplsim.agents.spv import SpecialPurposeVehicle
    from nplsim.market.model import NPLMarketModel

BID_NOISE_BP = (
    15.0  # dispersion of investors' required yields around their model value (assumption)
)


class Underwriter(mesa.Agent):
    """The lead underwriter: fee income, capital in the ledger, an inventory of unsold notional."""

    def __init__(self, model: NPLMarketModel, account: int):
        super().__init__(model)
        self.name = "Underwriter"
        self.account = account
        self.holdings: dict[tuple[int, str], float] = {}

    @property
    def cash(self) -> float:
        """Capital available to take unsold securities onto its books."""
        return self.model.ledger.balance(self.account)

    def structure(self, mean: float, sigma: float) -> pricing.TrancheSizes:
        """Tranche sizes for a pool whose discounted collections have ``mean`` and ``sigma``."""
        spec = self.model.config.securitisation
        return pricing.size_tranches(
            mean,
            sigma,
            senior_default_prob=spec.senior_default_prob,
            mezz_default_prob=spec.mezz_default_prob,
            with_mezz=spec.with_mezz,
        )

    def investor_yields(
        self,
        investors: list[Investor],
        tranche: str,
        attach: float,
        detach: float,
        mean: float,
        sigma: float,
        guarantee_cover: float,
    ) -> tuple[np.ndarray, pricing.YieldComponents]:
        """Each investor's minimum yield on a tranche, and the components for a reference investor.

        ``guarantee_cover`` (0–1) is the share of the tranche's losses a guarantee is expected to
        absorb: enforceability times the guarantor's ability to pay.
        """
        model, regime = self.model, self.model.regime
        tenor_years = model.config.securitisation.tenor_q / 4
        loss_share = pricing.tranche_expected_loss(attach, detach, mean, sigma)
        default_prob = pricing.tranche_default_prob(attach, detach, mean, sigma)
        expected_loss = (1.0 - guarantee_cover) * loss_share / tenor_years
        default_prob *= 1.0 - guarantee_cover
        draws = model.streams["behaviour"].standard_normal(len(investors))
        yields = np.empty(len(investors))
        reference = None
        for k, investor in enumerate(investors):
            components = pricing.required_yield(
                risk_free=model.config.macro.gov_bond_yield,
                expected_loss=expected_loss,
                default_prob=default_prob,
                bankruptcy_remoteness=regime.bankruptcy_remoteness,
                investor_protection=regime.investor_protection,
                disclosure=regime.disclosure_level,
                liquidity_premium=model.liquidity_premium(investor),
                risk_aversion=investor.risk_aversion,
                legal_scale=model.config.securitisation.legal_premium_scale,
                information_scale=model.config.securitisation.information_premium_scale,
            )
            reference = reference or components
            yields[k] = max(components.total + BID_NOISE_BP / 1e4 * draws[k], 0.0)
        return yields, reference

    def bookbuild(
        self, spv: SpecialPurposeVehicle, tranche: str, size: float, yields: np.ndarray,
        investors: list[Investor], max_coupon: float,
    ) -> pricing.Clearing:  # fmt: skip
        """Run the book for one tranche and record the allotments as the SPV's holders."""
        quantity = np.array([inv.bid_quantity(size) for inv in investors])
        clearing = pricing.clear_uniform(
            size, quantity, yields, max_coupon, self.model.config.securitisation.firm_commitment
        )
        if clearing.underwriter_takes > self.cash:  # a commitment cannot exceed its capital
            clearing = replace(clearing, underwriter_takes=max(self.cash, 0.0))
        for investor, amount in zip(investors, clearing.filled, strict=True):
            if amount > 0:
                spv.holders[tranche][investor.account] = amount
                investor.receive(spv.deal_id, tranche, amount)
        if clearing.underwriter_takes > 0:
            spv.holders[tranche][self.account] = clearing.underwriter_takes
            key = (spv.deal_id, tranche)
            self.holdings[key] = self.holdings.get(key, 0.0) + clearing.underwriter_takes
        return clearing
