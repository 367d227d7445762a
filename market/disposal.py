"""The bank's disposal choice: hold and work out, or dispose through one of several channels.

Each channel quotes, per loan, the cash the bank expects from it, the NPL face it removes from the
balance sheet and the capital it frees: a sale at price ``p`` of a loan carried at net book value
``n`` (face less its share of provisions) changes equity by ``p − n`` and frees the capital held
against its risk weight, ``car_min·w·n``. The bank disposes of a loan through the channel with the
largest gain over holding::

    gain = value − hold_value + λ_capital·capital_gain + λ_npl·face_removed

``λ_capital`` (per unit of capital) rises as the capital ratio falls through a buffer above its
minimum; where the scenario prices the banks' equity it adds what the capital a loan ties up costs
the bank: the cost of equity, net of the risk-free return, for the years the loan would otherwise
stay on the books (a loan about to be written off ties up capital for a quarter, a young one for
years); ``λ_npl`` (per
unit of face) rises with the NPL ratio's excess over the supervisory target.
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
        capital: value of one more unit of regulatory capital surplus (dimensionless; per loan
            once ``for_loans`` has added the carry).
        npl: value of removing one unit of NPL face from the balance sheet (per unit).
        carry: annual cost of a unit of capital tied up: the cost of equity less the risk-free
            return the capital would earn (0 where capital is not priced).
    """

    capital: float | np.ndarray
    npl: float
    carry: float = 0.0

    def for_loans(self, years_on_books: np.ndarray) -> ShadowPrices:
        """The prices for disposing of loans that would otherwise stay ``years_on_books``: the
        capital a disposal frees (or costs) is worth the carry over those years on top of the
        pressure on the capital ratio."""
        return ShadowPrices(self.capital + self.carry * years_on_books, self.npl, self.carry)


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

    def gain(self, hold_value: np.ndarray, prices: ShadowPrices) -> np.ndarray:
        """Gain over holding of each loan through this channel (``-inf`` where infeasible)."""
        gain = (
            self.value - hold_value + prices.capital * self.capital_gain
            + prices.npl * self.face_removed
        )  # fmt: skip
        return np.where(self.feasible, gain, -np.inf)


@dataclass(frozen=True)
class DealEconomics:
    """What a securitisation pays an originator for each candidate loan (CNY bn per loan).

    Investors pay the price ratio ``price_ratio`` (the originator's learned ratio of what a deal
    raises to investors' disclosed value of its pool) on the share the originator sells; on the
    ``retained_share`` it keeps, it earns the loans' real value; as servicer it earns the fees,
    ``servicing_share`` of the real value; it pays the transfer costs (debtor notice, stamp duty).

    Attributes:
        price_ratio: proceeds per unit of investors' disclosed value.
        retained_share: economic share of the pool's collections the originator keeps.
        servicing_share: servicing fees per unit of real value (0 when another services).
        public_value: investors' value of each loan from the disclosed data.
        informed_value: the same value at the loan's real quality.
        variable_cost: transfer costs of each loan.
    """

    price_ratio: float
    retained_share: float
    servicing_share: float
    public_value: np.ndarray
    informed_value: np.ndarray
    variable_cost: np.ndarray

    @property
    def cash(self) -> np.ndarray:
        """Cash the originator receives for each loan, after its transfer costs."""
        return self.price_ratio * (1.0 - self.retained_share) * self.public_value - (
            self.variable_cost
        )

    @property
    def value(self) -> np.ndarray:
        """Everything the deal is worth to the originator for each loan: cash, the retained
        share at real value and the servicing fees."""
        retained = self.price_ratio * self.retained_share * self.informed_value
        return self.cash + retained + self.servicing_share * self.informed_value


def shadow_prices(
    car: float,
    car_min: float,
    npl_ratio: float,
    npl_target: float,
    car_weight: float,
    npl_weight: float,
    car_buffer: float,
    carry: float = 0.0,
) -> ShadowPrices:
    """Shadow prices of capital and of NPL stock from the bank's ratios and the regime's rules;
    ``carry`` is the annual cost of capital tied up (see ``ShadowPrices``)."""
    car_gap = float(np.clip((car_min + car_buffer - car) / max(car_buffer, 1e-9), 0.0, 2.0))
    if np.isnan(car):
        car_gap = 0.0
    npl_excess = max(0.0, (npl_ratio - npl_target) / max(npl_target, 1e-9))
    return ShadowPrices(
        capital=car_weight * car_gap, npl=npl_weight * min(npl_excess, 3.0), carry=carry
    )


def years_on_books(age_q: np.ndarray, p_resolve: float, write_off_age_q: int) -> np.ndarray:
    """Expected years NPLs of age ``age_q`` stay on the books if held: each quarter until the
    write-off age a loan is still there with probability ``(1 − p)^k``, so the expected number
    of quarters is ``(1 − (1 − p)^n) / p`` with ``n`` the quarters left before write-off."""
    left = np.maximum(write_off_age_q - np.asarray(age_q), 0)
    if p_resolve <= 0.0:
        return left / 4.0
    return -np.expm1(left * np.log1p(-min(p_resolve, 1.0 - 1e-12))) / p_resolve / 4.0


def funding_premium(
    liquidity_ratio: float,
    liquidity_min: float,
    lcr: float,
    lcr_min: float,
    buffer: float,
    stress_spread: float,
) -> float:
    """Premium of the bank's marginal funding over its normal cost (annual): zero while its
    liquidity ratio and LCR sit more than ``buffer`` above their minima, rising linearly to
    ``stress_spread`` at the tighter minimum and to twice that ``buffer`` below it (an LCR
    minimum of 0 is not in force). A bank that must fund itself at the margin values cash now
    over collections later by that much more."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # clipped below
        gaps = [(liquidity_min + buffer - liquidity_ratio) / buffer]
        if lcr_min > 0.0:
            gaps.append((lcr_min + buffer - lcr) / buffer)
    gaps = [g for g in gaps if not np.isnan(g)]
    gap = float(np.clip(max(gaps), 0.0, 2.0)) if gaps else 0.0
    return stress_spread * gap


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
    gains = np.stack([q.gain(hold_value, prices) for q in quotes])
    best = np.argmax(gains, axis=0)
    best_gain = np.take_along_axis(gains, best[None, :], axis=0)[0]
    return np.where(best_gain > 0.0, best, HOLD)
