"""The bank's disposal choice: hold and work out, or dispose through one of several channels.

Each channel quotes, per loan, the cash the bank expects from it, the NPL face it removes from the
balance sheet and the capital it frees: a sale at price ``p`` of a loan carried at net book value
``n`` (face less its share of provisions) changes equity by ``p − n`` and frees the capital held
against its risk weight, ``car_min·w·n``. The bank disposes of a loan through the channel with the
largest gain over holding::

    gain = value − hold_value + λ_capital·capital_gain + λ_npl·face_removed

``λ_capital`` (per unit of capital) rises as the capital ratio falls through a buffer above its
minimum; ``λ_npl`` (per unit of face) rises with the NPL ratio's excess over the supervisory target.
A thinly provisioned bank under capital pressure therefore avoids selling at a loss, while a well
provisioned one sells more. Channels are rows of a matrix, so securitisation is one more row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOLD = -1


@dataclass(frozen=True)
class ShadowPrices:
    """Regulatory pressure on a bank.

    Attributes:
        capital: value of one more unit of regulatory capital surplus (dimensionless).
        npl: value of removing one unit of NPL face from the balance sheet (per unit).
    """

    capital: float
    npl: float


@dataclass(frozen=True)
class ChannelQuote:
    """What one disposal channel offers for each candidate loan.

    Attributes:
        name: channel name (e.g. "amc", "securitisation").
        value: expected net cash per loan, CNY bn.
        face_removed: NPL face leaving the balance sheet per loan, CNY bn.
        capital_gain: change in capital surplus per loan (equity change plus capital freed), CNY bn.
        feasible: whether the channel can take each loan.
    """

    name: str
    value: np.ndarray
    face_removed: np.ndarray
    capital_gain: np.ndarray
    feasible: np.ndarray


def shadow_prices(
    car: float,
    car_min: float,
    npl_ratio: float,
    npl_target: float,
    car_weight: float,
    npl_weight: float,
    car_buffer: float,
) -> ShadowPrices:
    """Shadow prices of capital and of NPL stock from the bank's ratios and the regime's rules."""
    car_gap = float(np.clip((car_min + car_buffer - car) / car_buffer, 0.0, 2.0))
    if np.isnan(car):
        car_gap = 0.0
    npl_excess = max(0.0, (npl_ratio - npl_target) / max(npl_target, 1e-9))
    return ShadowPrices(capital=car_weight * car_gap, npl=npl_weight * min(npl_excess, 3.0))


def sale_capital_gain(
    price: np.ndarray, net_book: np.ndarray, risk_weight: float, car_min: float
) -> np.ndarray:
    """Capital surplus gained by selling at ``price`` loans carried at ``net_book`` (CNY bn)."""
    return price - net_book + car_min * risk_weight * np.maximum(net_book, 0.0)


def reserve_price(
    hold_value: np.ndarray,
    net_book: np.ndarray,
    face: np.ndarray,
    risk_weight: float,
    car_min: float,
    prices: ShadowPrices,
) -> np.ndarray:
    """Lowest sale price at which selling beats holding: the root in ``p`` of the gain above."""
    freed = car_min * risk_weight * np.maximum(net_book, 0.0)
    reserve = (hold_value + prices.capital * (net_book - freed) - prices.npl * face) / (
        1.0 + prices.capital
    )
    return np.maximum(reserve, 0.0)


def choose_channels(
    hold_value: np.ndarray, quotes: list[ChannelQuote], prices: ShadowPrices
) -> np.ndarray:
    """Pick, per loan, the channel with the largest positive gain over holding.

    Returns:
        channel index per loan into ``quotes``, or ``HOLD`` to keep and work it out.
    """
    if not quotes:
        return np.full(hold_value.shape, HOLD)
    gains = np.stack(
        [
            np.where(
                q.feasible,
                q.value
                - hold_value
                + prices.capital * q.capital_gain
                + prices.npl * q.face_removed,
                -np.inf,
            )
            for q in quotes
        ]
    )
    best = np.argmax(gains, axis=0)
    best_gain = np.take_along_axis(gains, best[None, :], axis=0)[0]
    return np.where(best_gain > 0.0, best, HOLD)
