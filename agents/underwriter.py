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

from nplsim.agents.securities import SecuritiesAccount
from nplsim.market import pricing

if TYPE_CHECKING:
    from nplsim.agents.investor import Investor
    from nplsim.agents.world import World

# Dispersion of investors' required yields around their model value (assumption).
BID_NOISE_BP = 15.0


class Underwriter(SecuritiesAccount, mesa.Agent):
    """The lead underwriter: fee income, capital in the ledger, an inventory of unsold notional."""

    def __init__(self, model: mesa.Model, world: World, account: int, rng: np.random.Generator):
        super().__init__(model)
        self.world = world
        self.name = "Underwriter"
        self.account = account
        self.yield_noise = rng  # draws of the noise in investors' required yields
        self.init_securities()

    @property
    def cash(self) -> float:
        """Capital available to take unsold securities onto its books."""
        return self.world.ledger.balance(self.account)

    def structure(self, mean: float, sigma: float) -> pricing.TrancheSizes:
        """Tranche sizes for a pool whose discounted collections have ``mean`` and ``sigma``."""
        spec = self.world.scenario.securitisation
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
        liquidity_share: float,
    ) -> tuple[np.ndarray, pricing.YieldComponents]:
        """Each investor's minimum yield on a tranche, and the components for a reference investor.

        ``guarantee_cover`` (0–1) is the share of the tranche's losses a guarantee is expected to
        absorb: enforceability times the guarantor's ability to pay. ``liquidity_share`` is the
        share of their liquidity premium that the observed secondary market leaves investors.
        """
        config, regime = self.world.scenario, self.world.regime
        spec = config.securitisation
        tenor_years = spec.tenor_q / 4
        loss_share = pricing.tranche_expected_loss(attach, detach, mean, sigma)
        default_prob = pricing.tranche_default_prob(attach, detach, mean, sigma)
        expected_loss = (1.0 - guarantee_cover) * loss_share / tenor_years
        default_prob *= 1.0 - guarantee_cover
        draws = self.yield_noise.standard_normal(len(investors))
        yields = np.empty(len(investors))
        reference = None
        for k, investor in enumerate(investors):
            components = pricing.required_yield(
                risk_free=config.macro.gov_bond_yield,
                expected_loss=expected_loss,
                default_prob=default_prob,
                bankruptcy_remoteness=regime.bankruptcy_remoteness,
                investor_protection=regime.investor_protection,
                disclosure=regime.disclosure_level,
                liquidity_premium=investor.liquidity_premium(liquidity_share),
                risk_aversion=investor.risk_aversion,
                legal_scale=spec.legal_premium_scale,
                information_scale=spec.information_premium_scale,
            )
            reference = reference or components
            yields[k] = max(components.total + BID_NOISE_BP / 1e4 * draws[k], 0.0)
        return yields, reference

    def bookbuild(
        self, deal: int, tranche: str, size: float, yields: np.ndarray,
        investors: list[Investor], max_coupon: float,
    ) -> pricing.Clearing:  # fmt: skip
        """Run the book for one tranche; under a firm commitment, take what investors do not (up
        to its capital) into its inventory."""
        quantity = np.array([inv.bid_quantity(size) for inv in investors])
        clearing = pricing.clear_uniform(
            size, quantity, yields, max_coupon, self.world.scenario.securitisation.firm_commitment
        )
        if clearing.underwriter_takes > self.cash:  # a commitment cannot exceed its capital
            clearing = replace(clearing, underwriter_takes=max(self.cash, 0.0))
        if clearing.underwriter_takes > 0:
            self.receive(deal, tranche, clearing.underwriter_takes)
        return clearing
