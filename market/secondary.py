"""The secondary market for asset-backed securities: a quarterly call auction with a dealer.

Each quarter, for each outstanding tranche, investors' limit orders meet in a call auction: buyers
bid their private valuation less a liquidity margin, holders that value the security below the
market offer part of their position at their valuation plus a margin, investors hit by liquidity
shocks must sell and accept any price above a floor, and the dealer (the underwriter) quotes a bid
and an ask around fundamental value whose width grows with information asymmetry (low disclosure)
and with its inventory. The auction clears at the single price that maximises volume; orders fill
by price priority, and the price level where volume runs out is filled pro rata. Plain numpy;
nothing here knows about Mesa.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nplsim.market.disclosure import opacity_scaled


@dataclass(frozen=True)
class AuctionResult:
    """Outcome of one call auction.

    Attributes:
        price: clearing price per unit notional (NaN when nothing trades).
        volume: notional traded.
        buy_fill: notional bought by each buy order.
        sell_fill: notional sold by each sell order.
    """

    price: float
    volume: float
    buy_fill: np.ndarray
    sell_fill: np.ndarray


def _allocate(quantity: np.ndarray, price: np.ndarray, volume: float, descending: bool):
    """Fill orders by price priority up to ``volume``; the level where it runs out is pro rata."""
    fill = np.zeros_like(quantity)
    left = volume
    levels = np.unique(price)
    for level in levels[::-1] if descending else levels:
        if left <= 0:
            break
        at = price == level
        total = quantity[at].sum()
        if total <= 0:
            continue
        share = 1.0 if total <= left else left / total
        fill[at] = quantity[at] * share
        left -= total * share
    return fill


def call_auction(
    buy_price: np.ndarray, buy_qty: np.ndarray, sell_price: np.ndarray, sell_qty: np.ndarray
) -> AuctionResult:
    """Clear limit orders at the price that maximises traded volume.

    Ties in volume are broken by the smallest order imbalance, then by the middle of the tied
    prices. Buy orders at or above the price and sell orders at or below it trade.
    """
    buy_price, buy_qty = np.asarray(buy_price, float), np.asarray(buy_qty, float)
    sell_price, sell_qty = np.asarray(sell_price, float), np.asarray(sell_qty, float)
    empty = AuctionResult(float("nan"), 0.0, np.zeros(buy_qty.size), np.zeros(sell_qty.size))
    if buy_qty.sum() <= 0 or sell_qty.sum() <= 0:
        return empty
    candidates = np.unique(np.concatenate([buy_price, sell_price]))
    demand = (buy_qty[None, :] * (buy_price[None, :] >= candidates[:, None])).sum(axis=1)
    supply = (sell_qty[None, :] * (sell_price[None, :] <= candidates[:, None])).sum(axis=1)
    volume = np.minimum(demand, supply)
    if volume.max() <= 0:
        return empty
    best = volume == volume.max()
    imbalance = np.abs(demand - supply)
    best &= imbalance == imbalance[best].min()
    price = float(np.median(candidates[best]))
    traded = float(min(
        buy_qty[buy_price >= price].sum(), sell_qty[sell_price <= price].sum()
    ))  # fmt: skip
    eligible_buys = np.where(buy_price >= price, buy_qty, 0.0)
    eligible_sells = np.where(sell_price <= price, sell_qty, 0.0)
    buy_fill = _allocate(eligible_buys, buy_price, traded, descending=True)
    sell_fill = _allocate(eligible_sells, sell_price, traded, descending=False)
    return AuctionResult(price, traded, buy_fill, sell_fill)


def dealer_quotes(
    fundamental: float,
    disclosure: float,
    inventory_share: float,
    base_half_spread: float,
    information_half_spread: float,
    inventory_half_spread: float,
) -> tuple[float, float]:
    """The dealer's bid and ask per unit notional around fundamental value.

    The half-spread is a base (order-processing cost) plus an adverse-selection part that falls
    with disclosure, plus an inventory part: a dealer long the security shades both quotes down.
    """
    half = opacity_scaled(base_half_spread, information_half_spread, disclosure)
    skew = inventory_half_spread * inventory_share
    return fundamental * (1.0 - half - skew), fundamental * (1.0 + half - skew)


def quoted_spread(best_bid: float, best_ask: float) -> float:
    """Relative quoted spread (ask − bid) / mid; 0 when the book is crossed."""
    if not (np.isfinite(best_bid) and np.isfinite(best_ask)) or best_bid <= 0:
        return float("nan")
    mid = 0.5 * (best_bid + best_ask)
    return max(best_ask - best_bid, 0.0) / mid
