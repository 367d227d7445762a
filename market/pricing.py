"""Structuring and pricing of an NPL securitisation: tranche sizes, required yields, bookbuilding.

A pool's total discounted collections ``C`` are lognormal with a given mean and a log-s.d. that
grows as the regime's disclosure falls. The underwriter sizes tranches with a rating-agency-style
stress (the senior tranche is repaid at a stressed quantile of ``C``, the mezzanine at a milder
one, the subordinated tranche takes the residual); each tranche's expected loss and default
probability follow in closed form from lognormal partial expectations. Investors require
risk-free + expected loss + unexpected-loss, legal, information and liquidity premia; bookbuilding
clears at a uniform coupon. Plain numpy/scipy; nothing here knows about Mesa. Money is in CNY bn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from nplsim.market.disclosure import opacity_scaled

# facts: capital-minima: Basel II standardised securitisation risk weights — AAA to AA- 20%,
# A 50%, BBB 100%, BB 350%, below BB or unrated 1250% (deduction).
RISK_WEIGHTS: dict[str, float] = {
    "AAA": 0.2,
    "AA": 0.2,
    "A": 0.5,
    "BBB": 1.0,
    "BB": 3.5,
    "unrated": 12.5,
}
# facts: capital-minima: BCBS d511 (2020) — the senior tranche of an NPL securitisation
# weighs 100% if the non-refundable purchase discount is at least 50%.
NPL_SENIOR_RISK_WEIGHT = 1.0
# Amounts below a thousandth of a yuan (CNY bn) are rounding residue, not allotments.
DUST_CNY_BN = 1e-12

# Assumption (not in docs/facts.md): a stylised rating scale on the probability that a tranche is
# not
# repaid in full over the deal's life, read top to bottom; looser than corporate default tables
# because the stress is applied once to the whole pool.
RATING_SCALE: tuple[tuple[float, str], ...] = (
    (0.001, "AAA"),
    (0.005, "AA"),
    (0.02, "A"),
    (0.10, "BBB"),
    (0.25, "BB"),
)

# Assumption (not in docs/facts.md): how the legal-risk premium splits. Most of it is the risk that
# the
# true sale is recharacterised (1 - remoteness); strong investor protection (trustee duties,
# enforceable disclosure, creditor voting) mitigates that loss by up to 60% and removes a residual
# 20% share of the premium that applies even to a perfectly remote SPV.
_RECHARACTERISATION_SHARE = 0.8
_PROTECTION_MITIGATION = 0.6


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def collection_sigma(
    disclosure: float, sigma_floor: float = 0.15, sigma_opacity: float = 0.45
) -> float:
    """Log-s.d. of a pool's total collections: falls linearly as disclosure rises.

    Assumption (not in docs/facts.md): with full loan-level disclosure the residual uncertainty of a
    pool's collections is ``sigma_floor``; every step of opacity adds ``sigma_opacity`` per unit.

    Args:
        disclosure: the regime's disclosure level in [0, 1].
        sigma_floor: log-s.d. at full disclosure.
        sigma_opacity: extra log-s.d. at zero disclosure.
    """
    _check_unit("disclosure", disclosure)
    return opacity_scaled(sigma_floor, sigma_opacity, disclosure)


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


def size_tranches(
    mean: float,
    sigma: float,
    senior_default_prob: float = 0.005,
    mezz_default_prob: float = 0.10,
    with_mezz: bool = True,
    min_sub_share: float = 0.05,
) -> TrancheSizes:
    """Size senior, mezzanine and subordinated tranches against a stress of pool collections.

    The senior tranche is what collections cover with probability ``1 - senior_default_prob``, the
    mezzanine adds what they cover with probability ``1 - mezz_default_prob``, and the
    subordinated tranche is the rest of expected collections, at least ``min_sub_share`` of them.
    Issuance therefore about equals expected collections, which matches issued/pool ≈ 34% of
    principal + interest when a pool is expected to recover about a third of face
    (facts: restart-2016).

    Args:
        mean: expected discounted collections of the pool (CNY bn).
        sigma: log-s.d. of collections (see :func:`collection_sigma`).
        senior_default_prob: probability that collections fall short of the senior notional.
        mezz_default_prob: probability that they fall short of senior + mezzanine.
        with_mezz: whether the deal has a mezzanine tranche.
        min_sub_share: floor on the subordinated notional as a share of ``mean``.

    Returns:
        The tranche sizes and the ratings of the senior and mezzanine tranches.
    """
    if not 0.0 < senior_default_prob <= mezz_default_prob < 1.0:
        raise ValueError(
            "need 0 < senior_default_prob <= mezz_default_prob < 1, got "
            f"{senior_default_prob}, {mezz_default_prob}"
        )
    _check_unit("min_sub_share", min_sub_share)
    senior = lognormal_quantile(mean, sigma, senior_default_prob)
    mezz = lognormal_quantile(mean, sigma, mezz_default_prob) - senior if with_mezz else 0.0
    sub = max(mean - senior - mezz, min_sub_share * mean)
    return TrancheSizes(
        senior=senior,
        mezz=mezz,
        sub=sub,
        senior_rating=rating_from_default_prob(senior_default_prob),
        mezz_rating=rating_from_default_prob(mezz_default_prob) if with_mezz else "unrated",
    )


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


def tranche_expected_loss(attach: float, detach: float, mean: float, sigma: float) -> float:
    """Expected loss share of the tranche between ``attach`` and ``detach`` over the deal's life.

    The tranche has notional ``detach - attach`` and is paid ``min(max(C - attach, 0), detach -
    attach)`` from collections ``C`` once the tranches senior to it are repaid; its expected
    payment is a call spread on ``C``. Interest is left out: this is the loss of principal.

    Args:
        attach: notional of all tranches senior to it (CNY bn).
        detach: ``attach`` plus its own notional (CNY bn).
        mean: expected collections (CNY bn).
        sigma: log-s.d. of collections.

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


@dataclass(frozen=True)
class YieldComponents:
    """An investor's required yield on a tranche, by component (annual rates)."""

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


def required_yield(
    risk_free: float,
    expected_loss: float,
    default_prob: float,
    bankruptcy_remoteness: float,
    investor_protection: float,
    disclosure: float,
    liquidity_premium: float,
    risk_aversion: float = 1.0,
    legal_scale: float = 0.02,
    information_scale: float = 0.015,
    ul_scale: float = 0.5,
) -> YieldComponents:
    """Yield an investor requires on a tranche, built up component by component.

    - unexpected loss: ``risk_aversion · ul_scale`` per unit of the loss rate's standard deviation.
      Losses are Bernoulli in default with severity ``expected_loss / default_prob`` (capped at 1),
      so the s.d. is ``severity · sqrt(default_prob · (1 - default_prob))``;
    - legal: ``legal_scale · [0.8 · (1 - remoteness) · (1 - 0.6 · protection) + 0.2 · (1 -
      protection)]`` (weights are assumptions, see ``_RECHARACTERISATION_SHARE``); falls with
      both bankruptcy remoteness and investor protection and is ``legal_scale`` at worst;
    - information: ``information_scale · (1 - disclosure)``;
    - liquidity: ``liquidity_premium`` as given (it falls as the secondary market deepens).

    Assumption (not in docs/facts.md): the default scales put at most 200 bp on legal risk and
    150 bp on opacity.

    Args:
        risk_free: risk-free rate for the tranche's tenor (annual).
        expected_loss: annual expected loss rate (life expected-loss share / tenor in years).
        default_prob: probability the tranche is not repaid in full over its life.
        bankruptcy_remoteness: the regime's remoteness of the SPV, in [0, 1].
        investor_protection: the regime's investor protection, in [0, 1].
        disclosure: the regime's disclosure level, in [0, 1].
        liquidity_premium: annual premium for illiquidity, >= 0.
        risk_aversion: the investor's price of risk, >= 0.
        legal_scale: legal premium with no remoteness and no protection.
        information_scale: information premium with no disclosure.
        ul_scale: premium per unit of loss s.d. at unit risk aversion.
    """
    for name, value in (
        ("default_prob", default_prob),
        ("bankruptcy_remoteness", bankruptcy_remoteness),
        ("investor_protection", investor_protection),
        ("disclosure", disclosure),
    ):
        _check_unit(name, value)
    if min(expected_loss, liquidity_premium, risk_aversion) < 0.0:
        raise ValueError("expected_loss, liquidity_premium and risk_aversion must be >= 0")
    severity = min(expected_loss / default_prob, 1.0) if default_prob > 0.0 else 0.0
    loss_sd = severity * math.sqrt(default_prob * (1.0 - default_prob))
    legal = legal_scale * (
        _RECHARACTERISATION_SHARE
        * (1.0 - bankruptcy_remoteness)
        * (1.0 - _PROTECTION_MITIGATION * investor_protection)
        + (1.0 - _RECHARACTERISATION_SHARE) * (1.0 - investor_protection)
    )
    return YieldComponents(
        risk_free=risk_free,
        expected_loss=expected_loss,
        unexpected_loss=risk_aversion * ul_scale * loss_sd,
        legal=legal,
        information=opacity_scaled(0.0, information_scale, disclosure),
        liquidity=liquidity_premium,
    )


def expected_loss_rate(default_prob: float, severity: float, life_years: float) -> float:
    """Annual expected loss of a claim that defaults with ``default_prob`` over ``life_years`` and
    then loses ``severity`` of its face: ``default_prob · severity / life_years`` (the input
    ``expected_loss`` of :func:`required_yield`)."""
    if life_years <= 0.0:
        raise ValueError(f"life_years must be > 0, got {life_years}")
    return default_prob * severity / life_years


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


def sub_price(expected_residual: float, required_return: float, tenor_q: int) -> float:
    """Price of the whole subordinated tranche: the PV of its expected residual cash flow.

    Assumption (not in docs/facts.md): under the sequential waterfall the residual comes after every
    other tranche, so it is discounted as one payment at the legal final maturity (a conservative
    PV).

    Args:
        expected_residual: expected total payment to the subordinated tranche (CNY bn).
        required_return: the buyer's required annual return (> -1).
        tenor_q: deal tenor in quarters.
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
