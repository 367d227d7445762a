"""What investors can infer about a pool an originator chose: the rational lemons discount and the
originator's track record.

Information structure (``nplsim.market.loans.LoanBook.public_quality``): a borrower's workout
quality is ``q = q̂ · r``, where ``q̂ = E[q | disclosed data]`` is what the law's disclosure level
``d`` reveals and the private residual ``r`` (known to the originator) is lognormal with mean 1 and
log-variance ``v = (1 − d) σ_q²``, independent of ``q̂``. An originator puts a loan into a deal
when the deal pays more than keeping it — and keeping it is worth more the better the loan really
is — and more than selling it — and a deal, whose retained slice and servicing fees pay on the
loan's real value, pays more for better loans than a sale does. So it puts in loans whose residual
lies between a lower bound (set by the sale) and an upper bound (set by keeping). Investors who
know the rule expect ``E[r | lower < r < upper]`` of each loan's disclosed value (lognormal partial
expectations): the lemons discount, or premium. It vanishes with full disclosure (``v = 0``), and
shrinks as the bounds widen (strong pressure to dispose; a retained share that makes cherry-picking
pointless).

Track record: investors keep a normal belief about the log ratio of an originator's realised to
expected collections beyond what the rule predicts (its bias), starting at a multiplicative bias of
1 with the log-variance ``(ln λ)²`` of the selection discount ``λ`` itself (full disclosure leaves
nothing to doubt), and update it from each of its deals' collections to date, each weighted by how
precisely it measures the bias (more precisely the more of the deal's expected collections should
have arrived and the more loans they are spread over). Plain numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr


def private_variance(disclosure: float, quality_dispersion: float) -> float:
    """Log-variance of the private residual of a borrower's quality, ``(1 − d) σ_q²``."""
    if not 0.0 <= disclosure <= 1.0 or quality_dispersion < 0.0:
        raise ValueError("need 0 <= disclosure <= 1 and quality_dispersion >= 0")
    return (1.0 - disclosure) * quality_dispersion**2


def selection_bounds(
    price_ratio: float,
    retained_share: float,
    servicing_share: float,
    hold_ratio: np.ndarray,
    other_gain: np.ndarray,
    alternative: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The range of the private residual ``r`` in which an originator securitises a loan.

    Per unit of the loan's disclosed value ``V``, the deal pays ``π(1 − ρ) + g + (πρ + s)·r``
    (the sold part at the price ratio ``π``, other gains ``g`` such as capital relief, and the
    retained share ``ρ`` and the servicing fees ``s`` at the loan's real value); keeping it is
    worth ``κ·r`` (the hold ratio); the best other channel (a sale) pays ``a`` whatever ``r`` is,
    less the same ``κ·r`` of forgone holding (``-inf`` where there is none). The loan goes into
    the deal when the deal beats keeping it, ``r < upper``, and beats the sale,
    ``r > lower``: a deal draws the worse loans from those a bank would keep, and the better
    ones from those it would sell.
    """
    hold_ratio = np.asarray(hold_ratio, dtype=float)
    level = price_ratio * (1.0 - retained_share) + np.asarray(other_gain, dtype=float)
    own = price_ratio * retained_share + servicing_share
    slope = hold_ratio - own
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = np.where(slope > 0.0, np.maximum(level, 0.0) / slope, np.inf)
        edge = np.asarray(alternative, dtype=float) - level
        lower = np.where(own > 0.0, edge / own, np.where(edge < 0.0, 0.0, np.inf))
    return np.maximum(lower, 0.0), upper


def selection_factor(lower: np.ndarray, upper: np.ndarray, private_var: float) -> np.ndarray:
    """``E[r | lower < r < upper]`` for a mean-one lognormal ``r`` with log-variance
    ``private_var`` (1 with no private information; the nearer bound where the range holds next
    to no probability)."""
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    if private_var <= 0.0:
        return np.ones(np.broadcast(lower, upper).shape)
    sd = np.sqrt(private_var)

    def z(bound: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return (np.log(np.maximum(bound, 0.0)) + private_var / 2.0) / sd

    z_low, z_high = z(lower), z(upper)
    mass = ndtr(z_high) - ndtr(z_low)
    first = ndtr(z_high - sd) - ndtr(z_low - sd)
    factor = np.divide(first, mass, out=np.zeros(mass.shape), where=mass > 1e-300)
    fallback = np.where(np.isfinite(upper), np.minimum(upper, np.maximum(lower, 1e-300)), lower)
    return np.where(mass > 1e-300, factor, np.where(np.isfinite(fallback), fallback, 1.0))


def lemons_factor(
    public_value: np.ndarray, lower: np.ndarray, upper: np.ndarray, private_var: float
) -> float:
    """Investors' rational expectation of a pool's realised / disclosed value: the selection
    factor of each loan weighted by its disclosed value (1 for an empty pool)."""
    weights = np.asarray(public_value, dtype=float)
    if weights.sum() <= 0.0:
        return 1.0
    return float(np.average(selection_factor(lower, upper, private_var), weights=weights))


@dataclass(frozen=True)
class Belief:
    """A normal belief about an originator's log bias: mean and variance."""

    mean: float
    var: float

    @property
    def factor(self) -> float:
        """Expected multiplicative bias ``E[e^b]`` of its pools' collections."""
        return float(np.exp(self.mean + self.var / 2.0))


def update_bias(prior_var: float, log_ratios: np.ndarray, precisions: np.ndarray) -> Belief:
    """Posterior of an originator's log bias after its deals' records.

    Each deal reports ``x_k = ln(realised / expected)`` of its collections to date, a noisy
    measure of the bias with precision ``precisions[k]`` (1 / its noise variance: lower early in
    a deal's life and for pools of few loans). Prior ``N(0, prior_var)``; a prior variance of 0
    means investors are certain there is no bias. The prior mean ``−prior_var / 2`` makes the
    expected multiplicative bias 1 before any record.
    """
    if prior_var <= 0.0:
        return Belief(0.0, 0.0)
    x = np.asarray(log_ratios, dtype=float)
    w = np.asarray(precisions, dtype=float)
    keep = np.isfinite(x) & (w > 0.0) & np.isfinite(w)
    prior_mean = -prior_var / 2.0  # a multiplicative bias of 1 on average
    precision = 1.0 / prior_var + float(w[keep].sum())
    mean = (prior_mean / prior_var + float((w[keep] * x[keep]).sum())) / precision
    return Belief(mean, 1.0 / precision)
