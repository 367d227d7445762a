"""Structuring and pricing of asset-backed securities: the stress method, ratings, required
yields, bookbuilding, the subordinated tranche and issuance costs.

A pool's total discounted collections ``C`` are lognormal with a given mean and a log-s.d. that
grows as disclosure falls (and as investors' doubt about the originator grows). The structurer
sizes tranches as a rating agency would: at each rating level the pool's collections are cut to
the quantile whose probability is that level's default budget (the recovery haircut) and delayed
by the level's timing stress, and a tranche is rated at the best level whose stressed collections
repay its principal and interest; the chance that a court freezes the pool (recharacterisation)
uses up part of every level's budget, because a frozen pool misses timely payment. Investors
require risk-free + expected loss + unexpected-loss, legal, information and liquidity premia; the
API describes a claim by its expected loss and default probability (``ClaimRisk``) and its legal
exposure, so that any asset-backed claim (NPL tranches, power receivables) is priced the same
way. Plain numpy/scipy; nothing here knows about Mesa. Money is in CNY bn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtr, ndtri

from nplsim.market.disclosure import opacity_scaled

if TYPE_CHECKING:  # annotations only: the regime and the scenario import nothing from here
    from nplsim.market.regime import LegalRegime
    from nplsim.market.scenario import SecuritisationSpec

# facts: securitisation-risk-weights: Basel II standardised securitisation risk weights — AAA to
# AA- 20%, A 50%, BBB 100%, BB 350%, below BB or unrated 1250% (deduction).
RISK_WEIGHTS: dict[str, float] = {
    "AAA": 0.2,
    "AA": 0.2,
    "A": 0.5,
    "BBB": 1.0,
    "BB": 3.5,
    "unrated": 12.5,
}
# facts: securitisation-risk-weights: BCBS d511 (2020) — the senior tranche of an NPL
# securitisation weighs at most 100% if the non-refundable purchase discount is at least 50%.
NPL_SENIOR_WEIGHT_CAP = 1.0
NPL_SENIOR_CAP_DISCOUNT = 0.5
# Amounts below a thousandth of a yuan (CNY bn) are rounding residue, not allotments.
DUST_CNY_BN = 1e-12

# Assumption (not in docs/facts.md): a stylised rating scale on the probability that a tranche is
# not repaid in full and on time over the deal's life, read top to bottom.
RATING_SCALE: tuple[tuple[float, str], ...] = (
    (0.001, "AAA"),
    (0.005, "AA"),
    (0.02, "A"),
    (0.10, "BBB"),
    (0.25, "BB"),
)
RATED_LEVELS: tuple[str, ...] = tuple(rating for _, rating in RATING_SCALE)
# A senior tranche is sold to the investors of the rated market only at investment grade: where
# legal risk leaves no such level, the whole issue is subordinated (assumption).
INVESTMENT_GRADE: tuple[str, ...] = ("AAA", "AA", "A", "BBB")
# Assumption (not in docs/facts.md), after the recovery-delay stresses of NPL rating criteria:
# quarters by which collections are assumed to arrive late at each rating level; the tranche
# must carry its coupon over the delay.
TIMING_STRESS_Q: dict[str, int] = {"AAA": 4, "AA": 3, "A": 2, "BBB": 1, "BB": 0}
# A default budget is spent on credit only up to this probability: beyond it a "stress" is no
# longer a stress (assumption).
MAX_CREDIT_BUDGET = 0.5


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def collection_sigma(
    disclosure: float, sigma_floor: float = 0.15, sigma_opacity: float = 0.45
) -> float:
    """Log-s.d. of a pool's total collections as outsiders see them: falls linearly as disclosure
    rises.

    Assumption (not in docs/facts.md): with full loan-level disclosure the residual uncertainty of
    a pool's collections is ``sigma_floor``; every step of opacity adds ``sigma_opacity`` per unit.
    """
    _check_unit("disclosure", disclosure)
    return opacity_scaled(sigma_floor, sigma_opacity, disclosure)


def pool_sigma(
    systematic: float, idiosyncratic: float, borrowers: float, belief_var: float
) -> float:
    """Log-s.d. of a pool's collections: the systematic part, the borrower-level part diversified
    over ``borrowers`` equal borrowers, and investors' remaining doubt about the originator's
    selection (the posterior variance of its bias, see ``nplsim.market.learning``)."""
    if min(systematic, idiosyncratic, belief_var) < 0.0:
        raise ValueError("sigmas and variances must be >= 0")
    spread = idiosyncratic**2 / max(borrowers, 1.0)
    return math.sqrt(systematic**2 + spread + belief_var)


def lognormal_quantile(mean: float, sigma: float, p: float) -> float:
    """The ``p``-quantile of a lognormal with the given mean and log-s.d.

    Args:
        mean: expected value (CNY bn), >= 0.
        sigma: log-standard deviation, >= 0.
        p: probability in (0, 1).
    """
    if mean < 0.0 or sigma < 0.0:
        raise ValueError(f"mean and sigma must be >= 0, got {mean}, {sigma}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if mean == 0.0:
        return 0.0
    return mean * math.exp(sigma * float(ndtri(p)) - 0.5 * sigma**2)


def rating_from_default_prob(default_prob: float) -> str:
    """Rating of a tranche whose probability of not being repaid in full is ``default_prob``."""
    for max_prob, rating in RATING_SCALE:
        if default_prob <= max_prob:
            return rating
    return "unrated"


def rating_default_budget(rating: str) -> float:
    """The highest default probability a rating allows (1 for unrated)."""
    return dict((r, p) for p, r in RATING_SCALE).get(rating, 1.0)


def senior_risk_weight(
    rating: str,
    purchase_discount: float,
    weight_of: Callable[[str], float] | None = None,
    cap: float = NPL_SENIOR_WEIGHT_CAP,
) -> float:
    """Capital risk weight of an NPL deal's senior tranche: the weight of its rating (from
    ``weight_of``, the prudential rules in force; the Basel II table by default), capped at
    ``cap`` where the non-refundable purchase discount is at least 50% (BCBS d511)."""
    weight = (
        weight_of(rating)
        if weight_of is not None
        else RISK_WEIGHTS.get(rating, RISK_WEIGHTS["unrated"])
    )
    if purchase_discount >= NPL_SENIOR_CAP_DISCOUNT:
        weight = min(weight, cap)
    return weight


# ============================================================================= legal exposure
@dataclass(frozen=True)
class LegalExposure:
    """A deal's exposure to recharacterisation of its true sale.

    Attributes:
        distress_prob: investors' probability that the originator falls into distress while the
            deal lives.
        court_reach: probability that a court then reaches the pool (1 − bankruptcy remoteness
            of the vehicle form).
        pool_loss: share of the pool's remaining collections lost when it does (the originator's
            estate keeps part of the frozen collections, softened by investor protection).
        freeze_q: quarters the pool's payments stop meanwhile.
    """

    distress_prob: float
    court_reach: float
    pool_loss: float
    freeze_q: int

    @property
    def probability(self) -> float:
        """Probability that the pool is recharacterised during the deal's life."""
        return self.distress_prob * self.court_reach


NO_LEGAL_RISK = LegalExposure(0.0, 0.0, 0.0, 0)


# ============================================================================= stress and sizing
@dataclass(frozen=True)
class TrancheSizes:
    """Notional of each tranche (CNY bn) and the ratings the stress supports."""

    senior: float
    mezz: float
    sub: float
    senior_rating: str
    mezz_rating: str

    @property
    def total(self) -> float:
        """Total notional issued."""
        return self.senior + self.mezz + self.sub


def stressed_capacity(
    mean: float,
    sigma: float,
    credit_budget: float,
    carry_rate: float,
    life_q: float,
    rating: str,
    certain: float = 0.0,
) -> float:
    """Notional that collections stressed to a rating level repay with its coupon.

    The uncertain collections (lognormal, ``mean`` and ``sigma``) are cut to their
    ``credit_budget`` quantile (the recovery haircut) and arrive ``TIMING_STRESS_Q[rating]``
    quarters later than expected, so the claim carries its coupon ``carry_rate`` for ``life_q``
    plus that delay; ``certain`` is cash already in hand:
    ``N·(1 + carry·(life + delay)/4) = certain + Q(budget)``.
    """
    if credit_budget <= 0.0:
        return 0.0
    budget = min(credit_budget, MAX_CREDIT_BUDGET)
    carry = 1.0 + carry_rate * (life_q + TIMING_STRESS_Q.get(rating, 0)) / 4.0
    stressed = lognormal_quantile(mean, sigma, budget) if mean > 0.0 else 0.0
    return (certain + stressed) / carry


def size_rated_tranches(
    mean: float,
    sigma: float,
    legal: LegalExposure,
    carry_rate: float,
    life_q: float,
    guarantee_cover: float = 0.0,
    with_mezz: bool = False,
    certain: float = 0.0,
) -> tuple[float, str, float, str]:
    """Size the senior (and optional mezzanine) tranche by the stress method.

    The senior is rated at the best investment-grade level whose default budget is not used up
    by the recharacterisation probability (a frozen pool misses timely payment, which no
    guarantee in the model covers), and sized to the stressed capacity of the rest of that budget
    (none is issued where no such level is left); a guarantee
    that absorbs ``guarantee_cover`` of credit losses stretches the credit budget by
    ``1 / (1 − cover)``. The mezzanine, where the deal has one, runs from the senior up to the
    capacity at the lowest rated level (BB). ``certain`` is cash the deal already holds (its
    collections ``C = certain + X``, ``X`` lognormal).

    Returns:
        (senior notional, senior rating, mezzanine notional, mezzanine rating); a senior of 0 and
        rating "unrated" when legal risk leaves no investment-grade level attainable.
    """
    _check_unit("guarantee_cover", guarantee_cover)
    legal_prob = legal.probability
    senior, senior_rating = 0.0, "unrated"
    for rating in INVESTMENT_GRADE:
        budget = rating_default_budget(rating) - legal_prob
        if budget <= 0.0:
            continue
        credit_budget = budget / max(1.0 - guarantee_cover, 1e-9)
        senior = stressed_capacity(mean, sigma, credit_budget, carry_rate, life_q, rating, certain)
        senior_rating = rating
        break
    mezz, mezz_rating = 0.0, "unrated"
    if with_mezz and senior_rating != "unrated":
        bottom = RATED_LEVELS[-1]
        budget = rating_default_budget(bottom) - legal_prob
        capacity = stressed_capacity(mean, sigma, budget, carry_rate, life_q, bottom, certain)
        if capacity > senior:
            mezz = capacity - senior
            detach_pd = tranche_default_prob(senior - certain, capacity - certain, mean, sigma)
            mezz_rating = rating_from_default_prob(detach_pd + legal_prob)
    return senior, senior_rating, mezz, mezz_rating


def _expected_excess(mean: float, sigma: float, strike: float) -> float:
    """``E[max(C - strike, 0)]`` for lognormal ``C`` (the Black call formula, undiscounted)."""
    if mean <= 0.0:
        return max(-strike, 0.0)
    if strike <= 0.0:
        return mean - strike
    if sigma == 0.0:
        return max(mean - strike, 0.0)
    d1 = (math.log(mean / strike) + 0.5 * sigma**2) / sigma
    return mean * float(ndtr(d1)) - strike * float(ndtr(d1 - sigma))


def expected_residual(mean: float, sigma: float, senior_claims: float) -> float:
    """Expected collections left after ``senior_claims`` (principal and interest of the rated
    tranches): what the subordinated tranche receives, ``E[max(C − claims, 0)]``."""
    return _expected_excess(mean, sigma, senior_claims)


def tranche_expected_loss(attach: float, detach: float, mean: float, sigma: float) -> float:
    """Expected loss share of the tranche between ``attach`` and ``detach`` over the deal's life.

    The tranche has notional ``detach - attach`` and is paid ``min(max(C - attach, 0), detach -
    attach)`` from collections ``C`` once the tranches senior to it are repaid; its expected
    payment is a call spread on ``C``. Interest is left out: this is the loss of principal.

    Returns:
        ``1 - E[payment] / notional`` in [0, 1]; 0 for an empty tranche.
    """
    if sigma < 0.0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    notional = detach - attach
    if notional <= 0.0:
        return 0.0
    paid = _expected_excess(mean, sigma, attach) - _expected_excess(mean, sigma, detach)
    return min(max(1.0 - paid / notional, 0.0), 1.0)


def tranche_default_prob(attach: float, detach: float, mean: float, sigma: float) -> float:
    """Probability that collections fall short of ``detach``, so the tranche is not repaid in full.

    ``attach`` only identifies the tranche: an empty tranche (``detach <= attach``) cannot default.
    """
    if sigma < 0.0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if detach <= attach or detach <= 0.0:
        return 0.0
    if mean <= 0.0:
        return 1.0
    if sigma == 0.0:
        return float(mean < detach)
    return float(ndtr((math.log(detach / mean) + 0.5 * sigma**2) / sigma))


# ============================================================================= required yields
@dataclass(frozen=True)
class ClaimRisk:
    """The credit risk of a claim over its life.

    Attributes:
        loss_share: expected share of the claim lost, in [0, 1].
        default_prob: probability that it is not repaid in full and on time, in [0, 1].
    """

    loss_share: float
    default_prob: float

    def __post_init__(self) -> None:
        _check_unit("loss_share", self.loss_share)
        _check_unit("default_prob", self.default_prob)


NO_RISK = ClaimRisk(0.0, 0.0)


def tranche_risk(attach: float, detach: float, mean: float, sigma: float) -> ClaimRisk:
    """Credit risk of a tranche of lognormal collections (see ``tranche_expected_loss``)."""
    return ClaimRisk(
        tranche_expected_loss(attach, detach, mean, sigma),
        tranche_default_prob(attach, detach, mean, sigma),
    )


def tranche_legal_risk(
    attach: float,
    detach: float,
    mean: float,
    sigma: float,
    legal: LegalExposure,
    carry_rate: float,
    life_q: float,
) -> ClaimRisk:
    """A tranche's recharacterisation risk as a claim: it happens with ``legal.probability``,
    and then costs the tranche the extra loss of principal from the pool's loss plus the time
    value of the payments the freeze holds back (their coupon keeps accruing, but is not
    compounded)."""
    probability = legal.probability
    if probability <= 0.0 or detach <= attach:
        return NO_RISK
    base = tranche_expected_loss(attach, detach, mean, sigma)
    hit = tranche_expected_loss(attach, detach, mean * (1.0 - legal.pool_loss), sigma)
    frozen_share = min(legal.freeze_q / max(life_q, 1.0), 1.0)
    delay = (1.0 - (1.0 + carry_rate) ** (-legal.freeze_q / 4.0)) * frozen_share
    severity = min(max(hit - base, 0.0) + delay, 1.0)
    return ClaimRisk(probability * severity, probability)


@dataclass(frozen=True)
class YieldComponents:
    """An investor's required yield on a claim, by component (annual rates).

    ``expected_loss`` and ``unexpected_loss`` price the claim's credit risk as it would be seen
    with full disclosure of a known originator; ``information`` is what investors' wider view
    (opacity, doubt about the originator) adds to them; ``legal`` prices recharacterisation.
    """

    risk_free: float
    expected_loss: float
    unexpected_loss: float
    legal: float
    information: float
    liquidity: float

    @property
    def total(self) -> float:
        """The required yield."""
        return (
            self.risk_free
            + self.expected_loss
            + self.unexpected_loss
            + self.legal
            + self.information
            + self.liquidity
        )


def risk_premium(
    risk: ClaimRisk, tenor_years: float, risk_aversion: float = 1.0, ul_scale: float = 0.5
) -> tuple[float, float]:
    """Annual expected-loss and unexpected-loss premia of a claim.

    Losses are Bernoulli in default with severity ``loss_share / default_prob`` (capped at 1),
    so the life loss s.d. is ``severity · sqrt(pd (1 − pd))``; the unexpected-loss premium is
    ``risk_aversion · ul_scale`` per unit of it. Both are spread over ``tenor_years``.
    """
    if tenor_years <= 0.0 or risk_aversion < 0.0:
        raise ValueError("tenor_years must be > 0 and risk_aversion >= 0")
    pd = risk.default_prob
    severity = min(risk.loss_share / pd, 1.0) if pd > 0.0 else 0.0
    loss_sd = severity * math.sqrt(pd * (1.0 - pd))
    return risk.loss_share / tenor_years, risk_aversion * ul_scale * loss_sd / tenor_years


def required_yield(
    risk_free: float,
    tenor_years: float,
    credit: ClaimRisk,
    liquidity_premium: float,
    risk_aversion: float = 1.0,
    legal: ClaimRisk = NO_RISK,
    seen: ClaimRisk | None = None,
    ul_scale: float = 0.5,
) -> YieldComponents:
    """Yield an investor requires on a claim, built up component by component.

    Args:
        risk_free: risk-free rate for the claim's tenor (annual).
        tenor_years: life over which losses are spread.
        credit: the claim's credit risk under full disclosure of a known originator.
        liquidity_premium: annual premium for illiquidity, >= 0.
        risk_aversion: the investor's price of risk, >= 0.
        legal: the claim's recharacterisation risk (see ``tranche_legal_risk``).
        seen: the credit risk as investors actually see it (wider under opacity or doubt about
            the originator); None = as ``credit``. Its excess premium is the information
            component, which can be negative for a junior claim that gains from dispersion.
        ul_scale: premium per unit of loss s.d. at unit risk aversion.
    """
    if liquidity_premium < 0.0:
        raise ValueError("liquidity_premium must be >= 0")
    el, ul = risk_premium(credit, tenor_years, risk_aversion, ul_scale)
    el_seen, ul_seen = risk_premium(seen or credit, tenor_years, risk_aversion, ul_scale)
    legal_el, legal_ul = risk_premium(legal, tenor_years, risk_aversion, ul_scale)
    return YieldComponents(
        risk_free=risk_free,
        expected_loss=el,
        unexpected_loss=ul,
        legal=legal_el + legal_ul,
        information=(el_seen + ul_seen) - (el + ul),
        liquidity=liquidity_premium,
    )


def expected_loss_rate(default_prob: float, severity: float, life_years: float) -> float:
    """Annual expected loss of a claim that defaults with ``default_prob`` over ``life_years`` and
    then loses ``severity`` of its face: ``default_prob · severity / life_years`` (the input
    ``expected_loss`` of :func:`required_yield`)."""
    if life_years <= 0.0:
        raise ValueError(f"life_years must be > 0, got {life_years}")
    return default_prob * severity / life_years


# ============================================================================= bookbuilding
@dataclass(frozen=True)
class Clearing:
    """Outcome of bookbuilding one tranche (amounts in CNY bn)."""

    coupon: float
    sold: float
    underwriter_takes: float
    bid_to_cover: float
    filled: np.ndarray


def clear_uniform(
    size: float,
    bid_quantity: np.ndarray,
    bid_yield: np.ndarray,
    max_coupon: float,
    firm_commitment: bool,
) -> Clearing:
    """Clear a book of (quantity, yield) bids at one uniform coupon.

    Bids above ``max_coupon`` are rejected. The rest are accepted from the lowest yield up until
    ``size`` is covered; every buyer gets the marginal accepted yield, and bids at that yield are
    filled pro rata. If accepted demand falls short, a firm-commitment underwriter takes the rest
    and the coupon is ``max_coupon``; a best-efforts deal is downsized to the demand at the
    highest accepted yield (coupon 0 if nothing is sold, i.e. the tranche is not issued).

    Args:
        size: tranche notional offered.
        bid_quantity: notional each bidder asks for.
        bid_yield: the lowest yield at which each bidder buys.
        max_coupon: the highest coupon the issuer will pay.
        firm_commitment: whether the underwriter buys what investors do not.

    Returns:
        Coupon, amount sold to investors, the underwriter's take, bid-to-cover (quantity bid at or
        below ``max_coupon`` over ``size``) and each bid's allotment in bid order.
    """
    quantity = np.asarray(bid_quantity, dtype=float)
    yields = np.asarray(bid_yield, dtype=float)
    filled = np.zeros_like(quantity)
    if size <= 0.0:
        return Clearing(0.0, 0.0, 0.0, 0.0, filled)
    valid = (yields <= max_coupon) & (quantity > 0.0)
    demand = float(quantity[valid].sum())
    bid_to_cover = demand / size
    if demand < size:
        filled[valid] = quantity[valid]
        if firm_commitment:
            return Clearing(max_coupon, demand, size - demand, bid_to_cover, filled)
        coupon = float(yields[valid].max()) if valid.any() else 0.0
        return Clearing(coupon, demand, 0.0, bid_to_cover, filled)
    order = np.argsort(np.where(valid, yields, np.inf), kind="stable")[: int(valid.sum())]
    # a bid that would be allotted less than dust is not marginal: the bids before it cover the
    # tranche up to rounding
    covered = np.cumsum(quantity[order])
    marginal = min(int(np.searchsorted(covered, size - DUST_CNY_BN)), order.size - 1)
    coupon = float(yields[order[marginal]])
    below = valid & (yields < coupon)
    filled[below] = quantity[below]
    at_margin = valid & (yields == coupon)
    share = min((size - filled.sum()) / quantity[at_margin].sum(), 1.0)
    filled[at_margin] = quantity[at_margin] * share
    return Clearing(coupon, float(filled.sum()), 0.0, bid_to_cover, filled)


# ============================================================================= sub and costs
def sub_price(expected_residual: float, required_return: float, tenor_q: int) -> float:
    """Price of the whole subordinated tranche: the PV of its expected residual cash flow,
    discounted as one payment ``tenor_q`` quarters away (under the sequential waterfall the
    residual comes after every other tranche).

    Args:
        expected_residual: expected total payment to the subordinated tranche (CNY bn).
        required_return: the buyer's required annual return (> -1).
        tenor_q: quarters until the residual is expected.
    """
    if required_return <= -1.0 or tenor_q < 0:
        raise ValueError(
            f"need required_return > -1 and tenor_q >= 0, got {required_return}, {tenor_q}"
        )
    return max(expected_residual, 0.0) * (1.0 + required_return) ** (-tenor_q / 4.0)


def issuance_costs(
    issued: float,
    underwriting_bp: float = 30.0,
    fixed_cny_bn: float = 0.001,
    trustee_bp_per_year: float = 3.0,
    tenor_q: int = 12,
) -> dict[str, float]:
    """Costs of issuing a deal (CNY bn), facts: issuance-costs (unverified).

    Defaults (facts: issuance-costs): underwriting 30 bp of issuance (range 10–50 bp); rating,
    legal and audit CNY 1 m per deal (0.5–1.5 m); trustee and custody 3 bp a year (1–5 bp), charged
    on the initial issuance over the whole tenor — an upper bound, since tranches amortise.

    Returns:
        ``underwriting``, ``fixed``, ``trustee`` (life total), ``upfront`` (underwriting + fixed)
        and ``total``; all zero if nothing is issued.
    """
    if issued <= 0.0:
        return dict.fromkeys(("underwriting", "fixed", "trustee", "upfront", "total"), 0.0)
    underwriting = issued * underwriting_bp / 1e4
    trustee = issued * trustee_bp_per_year / 1e4 * tenor_q / 4.0
    upfront = underwriting + fixed_cny_bn
    return {
        "underwriting": underwriting,
        "fixed": fixed_cny_bn,
        "trustee": trustee,
        "upfront": upfront,
        "total": upfront + trustee,
    }


def spv_tax_rate(regime: LegalRegime, spv_form: str) -> float:
    """Tax on a vehicle's taxable income under ``regime``: VAT, plus the entity tax where the
    vehicle is a company (a trust is tax-transparent, facts: tax-2006)."""
    return regime.vat_rate + (regime.spv_entity_tax if spv_form == "company" else 0.0)


def collection_leakage(regime: LegalRegime, spec: SecuritisationSpec, spv_form: str) -> float:
    """Share of a pool's collections that never reaches the tranches: the capped disposal costs
    and the vehicle's taxes on the taxable share of collections, both paid first in the
    waterfall. Investors value a pool net of it."""
    return spec.disposal_cost_cap + spv_tax_rate(regime, spv_form) * spec.taxable_income_share
