"""Underwriter: structures a deal, runs the bookbuilding, and holds what it cannot place.

Product design: the underwriter sizes the senior (and, where deals have one, a mezzanine) tranche
by the rating agencies' stress method (``nplsim.market.pricing.size_rated_tranches``): recovery
haircuts and timing stresses by rating level on investors' view of the pool, with
recharacterisation risk eating into every level's default budget. It compares the structure with
and without each guarantee on offer and takes the one that raises the most for the originator net
of the fee (a guarantee stretches the senior's credit budget). The subordinated tranche is sized
to the present value of the residual it expects, so it sells at par. Underwriting and sale:
eligible investors bid the amounts their cash allows and their minimum yields; the tranche clears
at a uniform coupon; under a firm commitment the underwriter buys what is unsold, under best
efforts the tranche is downsized.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from nplsim.agents.securities import SecuritiesAccount
from nplsim.market import pricing

if TYPE_CHECKING:
    from nplsim.agents.investor import Investor
    from nplsim.agents.world import World

# Dispersion of investors' required yields around their model value (assumption).
BID_NOISE_BP = 15.0
# Coupon over the risk-free rate the structurer assumes when it sizes tranches, before the book is
# run (assumption: about the senior spreads of facts: npl-abs-2016-deals).
CARRY_SPREAD_GUESS = 0.01
# Losses are spread over at least a year when they are priced (assumption).
MIN_PRICING_YEARS = 1.0


@dataclass(frozen=True)
class Design:
    """A deal's structure and how the underwriter expects it to price.

    Attributes:
        sizes: tranche notionals (the sub at the PV of its expected residual) and ratings.
        guarantor: the senior's guarantor (None without one).
        cover: share of the senior's credit losses investors expect the guarantee to absorb.
        fee_rate: the guarantee's annual fee per unit of senior balance.
        sub_return: the subordinated buyers' required return, with its legal premium.
        value: expected proceeds to the originator net of the guarantee's fees (CNY bn).
    """

    sizes: pricing.TrancheSizes
    guarantor: Any
    cover: float
    fee_rate: float
    sub_return: float
    value: float


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

    @property
    def carry_rate(self) -> float:
        """Coupon assumed for the rated tranches when sizing them."""
        return self.world.scenario.macro.gov_bond_yield + CARRY_SPREAD_GUESS

    def pricing_years(self, view) -> float:
        """Years over which a deal's losses are spread: its collection-weighted life."""
        return max(view.life_q / 4.0, MIN_PRICING_YEARS)

    # ------------------------------------------------------------------ product design
    def design(
        self,
        view,
        legal: pricing.LegalExposure,
        guarantees: list[tuple[Any, float]],
        liquidity: float,
    ) -> Design:
        """The structure that raises the most for the originator, with each guarantee on offer
        (guarantor, cover) and without one; ``liquidity`` is the liquidity premium of a
        reference investor in today's market."""
        options = [self._design(view, legal, None, 0.0, liquidity)]
        options += [self._design(view, legal, g, cover, liquidity) for g, cover in guarantees]
        return max(options, key=lambda d: d.value)

    def _design(
        self, view, legal: pricing.LegalExposure, guarantor: Any, cover: float, liquidity: float
    ) -> Design:
        spec = self.world.scenario.securitisation
        sigma = view.sigma_seen
        senior, senior_rating, mezz, mezz_rating = pricing.size_rated_tranches(
            view.pool_mean, sigma, legal, self.carry_rate, view.life_q, cover, spec.with_mezz,
            view.cash,
        )  # fmt: skip
        years = self.pricing_years(view)
        coupons = {
            "senior": self.components(0.0, senior, view, legal, cover, 1.0, liquidity).total,
            "mezz": self.components(senior, senior + mezz, view, legal, 0.0, 1.0, liquidity).total,
        }
        claims = senior * (1 + coupons["senior"] * years) + mezz * (1 + coupons["mezz"] * years)
        residual = pricing.expected_residual(view.pool_mean, sigma, claims - view.cash)
        sub_return = (
            spec.sub_required_return
            + self.sub_legal_premium(residual, view, legal)
            + self.sub_information_premium(claims, view)
        )
        sub = pricing.sub_price(residual, sub_return, round(view.life_q * 2))
        fee_rate = 0.0
        if guarantor is not None:
            risk = self.credit_risk(0.0, senior, view, sigma)
            covered = pricing.ClaimRisk(risk.loss_share * cover, risk.default_prob)
            fee_rate = guarantor.fee_rate(covered, years)
        sizes = pricing.TrancheSizes(senior, mezz, sub, senior_rating, mezz_rating)
        value = senior + mezz + sub - fee_rate * senior * years
        return Design(sizes, guarantor, cover, fee_rate, sub_return, value)

    def sub_legal_premium(self, residual: float, view, legal: pricing.LegalExposure) -> float:
        """Annual premium subordinated buyers ask for recharacterisation: the pool's loss falls
        on the residual first."""
        if residual <= 0.0 or legal.probability <= 0.0:
            return 0.0
        severity = min(legal.pool_loss * view.pool_mean / residual, 1.0)
        risk = pricing.ClaimRisk(legal.probability * severity, legal.probability)
        return sum(pricing.risk_premium(risk, self.pricing_years(view)))

    def sub_information_premium(self, claims: float, view) -> float:
        """Annual premium subordinated buyers ask for opacity: the extra expected- and
        unexpected-loss premium of a claim on the collections beyond the rated tranches' claims,
        up to their expected level, as they see the pool rather than with full disclosure."""
        attach, detach = claims - view.cash, view.pool_mean
        if detach <= attach:
            return 0.0
        years = self.pricing_years(view)
        seen = pricing.tranche_risk(attach, detach, view.pool_mean, view.sigma_seen)
        full = pricing.tranche_risk(attach, detach, view.pool_mean, view.sigma_full)
        extra = sum(pricing.risk_premium(seen, years)) - sum(pricing.risk_premium(full, years))
        return max(extra, 0.0)

    # ------------------------------------------------------------------ pricing
    def claim_factor(self, view) -> float:
        """A rated tranche's claim per unit of notional: principal plus the coupon carried over
        the pool's collection life."""
        return 1.0 + self.carry_rate * view.life_q / 4.0

    def credit_risk(self, attach: float, detach: float, view, sigma: float) -> pricing.ClaimRisk:
        """Credit risk of the tranche ``[attach, detach]`` of notional: its claims (principal and
        carried coupon) on the deal's cash plus the pool's lognormal future collections."""
        k = self.claim_factor(view)
        return pricing.tranche_risk(
            attach * k - view.cash, detach * k - view.cash, view.pool_mean, sigma
        )

    def components(
        self,
        attach: float,
        detach: float,
        view,
        legal: pricing.LegalExposure,
        cover: float,
        risk_aversion: float,
        liquidity_premium: float,
    ) -> pricing.YieldComponents:
        """An investor's required yield on the tranche ``[attach, detach]`` by component: credit
        risk at full disclosure of a known originator, as investors see it, and legal risk; a
        guarantee absorbs ``cover`` of the credit losses."""
        years = self.pricing_years(view)
        keep = 1.0 - cover

        def credit(sigma: float) -> pricing.ClaimRisk:
            risk = self.credit_risk(attach, detach, view, sigma)
            return pricing.ClaimRisk(risk.loss_share * keep, risk.default_prob * keep)

        k = self.claim_factor(view)
        legal_risk = pricing.tranche_legal_risk(
            attach * k - view.cash, detach * k - view.cash, view.pool_mean, view.sigma_seen,
            legal, self.carry_rate, view.life_q,
        )  # fmt: skip
        return pricing.required_yield(
            risk_free=self.world.scenario.macro.gov_bond_yield,
            tenor_years=years,
            credit=credit(view.sigma_full),
            seen=credit(view.sigma_seen),
            legal=legal_risk,
            liquidity_premium=liquidity_premium,
            risk_aversion=risk_aversion,
        )

    def investor_yields(
        self,
        investors: list[Investor],
        attach: float,
        detach: float,
        view,
        legal: pricing.LegalExposure,
        cover: float,
        liquidity_share: float,
    ) -> np.ndarray:
        """Each investor's minimum yield on a tranche: its own risk aversion and liquidity
        premium (the ``liquidity_share`` of it today's market leaves), plus bid noise."""
        share = liquidity_share
        draws = self.yield_noise.standard_normal(len(investors))
        yields = np.empty(len(investors))
        for k, investor in enumerate(investors):
            components = self.components(
                attach, detach, view, legal, cover, investor.risk_aversion,
                investor.liquidity_premium(share),
            )  # fmt: skip
            yields[k] = max(components.total + BID_NOISE_BP / 1e4 * draws[k], 0.0)
        return yields

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
