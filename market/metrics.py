"""Liquidity metrics of the ABS market, per tranche and market-wide (plain numpy/pandas).

Quoted spread (ask − bid over mid), effective spread (twice the distance of the trade price from
the quote midpoint), turnover (volume over outstanding), Amihud illiquidity (absolute return per
unit of volume), the fill rate of forced sales, the price discount to fundamental value, and the
quarters it would take to sell a position at the market's observed volume.
"""

from __future__ import annotations

import numpy as np


def effective_spread(price: float, bid: float, ask: float) -> float:
    """Twice the distance of the trade price from the quote midpoint, relative to the midpoint."""
    mid = 0.5 * (bid + ask)
    if not np.isfinite(price) or mid <= 0:
        return float("nan")
    return 2.0 * abs(price - mid) / mid


def turnover(volume: float, outstanding: float) -> float:
    """Notional traded over notional outstanding in the period."""
    return volume / outstanding if outstanding > 0 else float("nan")


def amihud(price: float, previous_price: float, volume: float) -> float:
    """Amihud illiquidity: |return| per CNY bn traded (NaN without a trade or a prior price)."""
    if volume <= 0 or not (np.isfinite(price) and np.isfinite(previous_price)):
        return float("nan")
    return abs(price / previous_price - 1.0) / volume


def fill_rate(filled: float, requested: float) -> float:
    """Share of forced-sale orders that found a buyer."""
    return filled / requested if requested > 0 else float("nan")


def discount_to_fundamental(price: float, fundamental: float) -> float:
    """How far below fundamental value the security traded (negative = premium)."""
    if not np.isfinite(price) or fundamental <= 0:
        return float("nan")
    return 1.0 - price / fundamental


def quarters_to_sell(position: float, volume_per_quarter: float) -> float:
    """Quarters needed to sell a position at the observed volume (inf without trading)."""
    if position <= 0:
        return 0.0
    return position / volume_per_quarter if volume_per_quarter > 0 else float("inf")


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean over the finite values (NaN when none is finite or weights vanish)."""
    values, weights = np.asarray(values, float), np.asarray(weights, float)
    keep = np.isfinite(values) & (weights > 0)
    if not keep.any():
        return float("nan")
    return float(np.average(values[keep], weights=weights[keep]))
