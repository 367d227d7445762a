"""Recharacterisation risk from the economy's own state: how likely an originator is to fall into
distress, how likely a court then is to reach a securitised pool, and what investors lose if it
does.

Distress: an originator is distressed when its capital cushion (capital ratio less the ratio at
which the law treats it as distressed) falls below zero. Investors treat the cushion as a driftless
random walk with the quarterly volatility they have observed across originators, so the chance it
hits zero within ``h`` quarters is the first-passage probability ``2 Φ(−c / (s √h))``; they then
scale that structural hazard by how often distress actually happened in the run compared with how
often the structural model expected it (a pseudo-count prior keeps the ratio near 1 until
episodes are observed). Court: the vehicle's bankruptcy remoteness, lower for a company that can be
consolidated with its originator. Loss: the share of the pool's remaining collections that falls
in the freeze, times the share of frozen collections the estate keeps (the haircut, softened by
investor protection). Plain numpy/scipy.
"""

from __future__ import annotations

import math

from scipy.special import ndtr

# Assumption (not in docs/facts.md): a company SPV's legal personality takes away the trust-law
# route to the pool (revocation of a trust that harms the settlor's creditors, facts: trust-law,
# Art. 12) but leaves substantive consolidation with an originator that controls it; of the
# routes by which a court reaches a trust's pool, this share remains for a company.
COMPANY_COURT_REACH_SHARE = 0.5


def first_passage_prob(cushion: float, vol_q: float, horizon_q: float) -> float:
    """Probability that a driftless random walk starting ``cushion`` above zero, with quarterly
    s.d. ``vol_q``, touches zero within ``horizon_q`` quarters (1 if it starts at or below)."""
    if cushion <= 0.0:
        return 1.0
    if vol_q <= 0.0 or horizon_q <= 0.0:
        return 0.0
    return min(1.0, 2.0 * float(ndtr(-cushion / (vol_q * math.sqrt(horizon_q)))))


def quarterly_hazard(prob: float, horizon_q: float) -> float:
    """Constant quarterly hazard that gives probability ``prob`` over ``horizon_q`` quarters."""
    if prob >= 1.0:
        return 1.0
    if horizon_q <= 0.0:
        return 0.0
    return 1.0 - (1.0 - prob) ** (1.0 / horizon_q)


def distress_probability(
    cushion: float,
    vol_q: float,
    horizon_q: float,
    episodes: float,
    expected_episodes: float,
    prior_episodes: float,
) -> float:
    """Investors' probability that an originator is distressed within ``horizon_q`` quarters.

    The structural first-passage hazard is scaled by ``(prior + episodes) / (prior +
    expected_episodes)``: the run's distress history against what the structural model predicted
    for it.
    """
    if min(episodes, expected_episodes, prior_episodes) < 0.0:
        raise ValueError("episode counts must be >= 0")
    structural = quarterly_hazard(first_passage_prob(cushion, vol_q, horizon_q), horizon_q)
    if prior_episodes + expected_episodes <= 0.0:
        scale = 1.0
    else:
        scale = (prior_episodes + episodes) / (prior_episodes + expected_episodes)
    hazard = min(structural * scale, 1.0)
    return 1.0 - (1.0 - hazard) ** horizon_q


def court_reach(bankruptcy_remoteness: float, spv_form: str) -> float:
    """Probability that a court reaches the pool once the originator is distressed."""
    if not 0.0 <= bankruptcy_remoteness <= 1.0:
        raise ValueError(f"bankruptcy_remoteness must be in [0, 1], got {bankruptcy_remoteness}")
    reach = 1.0 - bankruptcy_remoteness
    return reach * COMPANY_COURT_REACH_SHARE if spv_form == "company" else reach


def pool_loss_given_recharacterisation(
    freeze_q: int, resolve_prob_q: float, haircut: float, protection: float
) -> float:
    """Share of a pool's remaining collections investors lose when it is recharacterised: the
    collections that arrive during the ``freeze_q`` frozen quarters (each remaining loan resolves
    with ``resolve_prob_q`` a quarter) times the share the originator's estate keeps."""
    for name, value in (("resolve_prob_q", resolve_prob_q), ("haircut", haircut),
                        ("protection", protection)):  # fmt: skip
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    frozen = 1.0 - (1.0 - resolve_prob_q) ** max(freeze_q, 0)
    return frozen * haircut * (1.0 - protection)
