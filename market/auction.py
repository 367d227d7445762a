"""Sealed-bid portfolio auctions of NPL packages (the AMC channel).

Bidders value each package from a noisy estimate of its workout value; the noise falls with the
regime's disclosure level, so worse disclosure spreads the bids. Each bidder shades its bid for the
winner's curse in proportion to that noise. The highest eligible bid at or above the seller's
reserve wins and pays its bid (first price), as in the 2004–05 tenders to the four AMCs (facts:
commercial-sales-2004). Plain numpy; nothing here knows about Mesa.
"""

from __future__ import annotations

import numpy as np

from nplsim.market.disclosure import opacity_scaled


def valuation_noise(disclosure_level: float, noise_at_zero: float, noise_floor: float) -> float:
    """Log-standard deviation of bidders' value estimates: falls linearly with disclosure."""
    return opacity_scaled(noise_floor, noise_at_zero, disclosure_level)


def sealed_bids(
    value: np.ndarray,
    sigma: float,
    shading: float,
    normal_draws: np.ndarray,
) -> np.ndarray:
    """Bids of every bidder on every package.

    Args:
        value: each bidder's true workout value of each package (CNY bn, its own skill and
            funding cost), shape ``(n_packages, n_bidders)``.
        sigma: log-standard deviation of the estimation noise.
        shading: bid reduction per unit of ``sigma`` (winner's-curse correction).
        normal_draws: standard normal draws, shape ``(n_packages, n_bidders)``.

    Returns:
        Bids, shape ``(n_packages, n_bidders)``; an unbiased estimate shaded by ``shading·sigma``.
    """
    estimate = value * np.exp(sigma * normal_draws - 0.5 * sigma**2)
    return estimate * max(0.0, 1.0 - shading * sigma)


def clear_first_price(
    bids: np.ndarray, reserve: np.ndarray, eligible: np.ndarray, capacity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Award each package to its highest eligible bid at or above reserve, within bidders' funds.

    Packages clear in order; a bidder whose remaining capacity is below its bid cannot win.

    Args:
        bids: shape ``(n_packages, n_bidders)``.
        reserve: seller's reserve price per package.
        eligible: whether each bidder may buy each package (e.g. the bulk-transfer rule).
        capacity: cash each bidder can spend in this round.

    Returns:
        winner index per package (-1 if unsold) and price paid (0 if unsold).
    """
    n_packages = bids.shape[0]
    winner = np.full(n_packages, -1, dtype=np.int64)
    price = np.zeros(n_packages)
    remaining = capacity.astype(float)
    for k in range(n_packages):  # a handful of packages a quarter, each cleared against budgets
        valid = eligible[k] & (bids[k] >= reserve[k]) & (bids[k] <= remaining)
        if not valid.any():
            continue
        j = int(np.argmax(np.where(valid, bids[k], -np.inf)))
        winner[k] = j
        price[k] = bids[k, j]
        remaining[j] -= price[k]
    return winner, price


def bulk_rule_eligibility(
    package_borrowers: np.ndarray, bidder_is_amc: np.ndarray, amc_only: bool, threshold: int
) -> np.ndarray:
    """Who may buy each package under the bulk-transfer rule (facts: bulk-transfer).

    Where the regime reserves bulk transfers to AMCs, a package of ``threshold`` borrowers or more
    may go only to an AMC; smaller packages, or any package without the rule, are open to every
    bidder.

    Returns:
        Boolean matrix ``(n_packages, n_bidders)``.
    """
    bulk = np.asarray(package_borrowers) >= threshold
    restricted = amc_only & bulk[:, None] & ~np.asarray(bidder_is_amc)[None, :]
    return ~restricted


def package_ids(segment: np.ndarray, face: np.ndarray, package_face: float) -> np.ndarray:
    """Split offered loans into packages of one segment and about ``package_face`` of face: the
    loans of a segment, in the order given, are laid end to end and a package holds those whose
    face starts within the same multiple of ``package_face`` (so package sizes do not depend on
    how finely the loan book is divided). Returns the package number of each loan, numbered
    segment by segment."""
    segment = np.asarray(segment)
    face = np.asarray(face, dtype=float)
    ids = np.empty(face.size, dtype=np.int64)
    next_id = 0
    for code in np.unique(segment):  # a loop over the six segments, not over loans
        positions = np.flatnonzero(segment == code)
        before = np.cumsum(face[positions]) - face[positions]
        # numbered in floats: a package far smaller than a loan puts each loan in its own
        # package without overflowing an integer
        _, local = np.unique(np.floor(before / package_face + 1e-12), return_inverse=True)
        ids[positions] = next_id + local
        next_id += int(local.max()) + 1 if local.size else 0
    return ids


def bid_dispersion(bids: np.ndarray) -> np.ndarray:
    """Coefficient of variation of the bids on each package (spread of valuations)."""
    mean = bids.mean(axis=1)
    return np.divide(bids.std(axis=1), mean, out=np.zeros_like(mean), where=mean > 0)
