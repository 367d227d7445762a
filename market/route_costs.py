"""What each route of financing a power plant costs, split into interest, information, supervision
and issuance, in bp a year of the amount raised (docs/ODD.md, power sector).

Every route is priced on one funding base: the risk-free rate plus the route's own credit,
liquidity and legal premia, each from the investor machinery the NPL ABS use
(``nplsim.market.pricing.required_yield``). A bank loan is a claim on the whole plant, whose
default risk grows with its leverage (``merton_default_prob``); a receivables ABS is a claim on a
slice of it, the tariff receivables, whose risk is the chance they fall short of the service
(``abs_default_prob``), lower in a diversified pool (``pool_sigma``). Information and supervision
come from the cost technology of ``nplsim.market.information_costs``; issuance is what a deal
pays its arrangers, the state and the centre. Plain numpy; money in CNY bn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from nplsim.market import pricing
from nplsim.market.information_costs import InformationCost
from nplsim.market.loans import asset_correlation

ROUTES: tuple[str, ...] = ("loan", "standalone", "pooled")
COMPONENTS: tuple[str, ...] = ("interest", "information", "supervision", "issuance")


# ---------------------------------------------------------------------------------- spreading
def average_life_years(tenor_q: int) -> float:
    """Average life of an amount amortised in equal quarterly instalments over ``tenor_q``."""
    return (tenor_q + 1) / 8.0


def upfront_bp(cost: float, amount: float, tenor_q: int) -> float:
    """An upfront cost spread over the CNY-years an amortising amount is outstanding, bp a year."""
    return 1e4 * cost / (amount * average_life_years(tenor_q))


def running_bp(cost_per_year: float, amount: float, tenor_q: int) -> float:
    """A fixed yearly cost over the average outstanding of an amortising amount, bp a year."""
    outstanding_share = (tenor_q + 1) / (2.0 * tenor_q)
    return 1e4 * cost_per_year / (amount * outstanding_share)


# ---------------------------------------------------------------------------------- the quote
@dataclass(frozen=True)
class RouteCost:
    """All-in cost of a financing route for one plant, bp a year of the amount, by component."""

    interest: float = math.nan
    information: float = math.nan
    supervision: float = math.nan
    issuance: float = math.nan
    available: bool = False

    @property
    def total(self) -> float:
        """Interest + information + supervision + issuance."""
        return self.interest + self.information + self.supervision + self.issuance

    def component(self, name: str) -> float:
        """One of ``COMPONENTS`` or ``"total"``."""
        return float(getattr(self, name))

    def closed(self) -> RouteCost:
        """The same quote, not open to the plant (a bank without cash, a book not placed)."""
        return RouteCost(self.interest, self.information, self.supervision, self.issuance, False)

    def columns(self, prefix: str, closed_by: str = "") -> dict[str, float | bool | str]:
        """The quote as ``{prefix}_{component}_bp`` columns (NaN where closed), and what closed
        the route."""
        out: dict[str, float | bool | str] = {
            f"{prefix}_available": self.available,
            f"{prefix}_closed_by": "" if self.available else (closed_by or "not offered"),
        }
        for name in (*COMPONENTS, "total"):
            out[f"{prefix}_{name}_bp"] = self.component(name) if self.available else math.nan
        return out


def choose_route(total: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Each plant's cheapest open route (column index into ``ROUTES``), −1 if none is open.

    Args:
        total: all-in cost, plants × routes (bp).
        available: whether each route is open to each plant.
    """
    cost = np.where(available, np.nan_to_num(total, nan=np.inf), np.inf)
    best = np.argmin(cost, axis=1)
    return np.where(np.isfinite(cost[np.arange(cost.shape[0]), best]), best, -1)


# ---------------------------------------------------------------------------------- (a) bank loan
def merton_default_prob(leverage: float, asset_volatility: float) -> float:
    """A plant's one-year default probability as its lender sees it: the chance that the value of
    its assets, lognormal with ``asset_volatility`` and no drift, falls below its debt-like
    liabilities within a year, ``Φ((ln L + σ²/2) / σ)`` with ``L`` the adjusted leverage."""
    if not leverage < math.inf:  # no assets left (NaN or infinite leverage)
        return 1.0
    if leverage <= 0:
        return 0.0
    if asset_volatility <= 0:
        return float(leverage >= 1.0)
    return float(ndtr((math.log(leverage) + 0.5 * asset_volatility**2) / asset_volatility))


def loss_given_default(secured_share: float, collateral_cover: float, haircut: float,
                       unsecured_recovery: float, realisation: float) -> float:  # fmt: skip
    """Share of a plant loan lost in default, from the power-plant segment's collateral terms and
    the regime's enforcement (``realisation``): the collateral after haircut covers part, the
    unsecured recovery the rest (as ``LoanBook.base_recovery`` for a resolution within a year)."""
    secured = min(1.0, collateral_cover * (1.0 - haircut) * realisation)
    recovery_secured = secured + unsecured_recovery * (1.0 - secured)
    recovery = secured_share * recovery_secured + (1.0 - secured_share) * unsecured_recovery
    return 1.0 - recovery


def loan_yield(
    risk_free: float,
    default_prob: float,
    lgd: float,
    risk_aversion: float,
    liquidity_premium: float,
) -> pricing.YieldComponents:
    """The yield a bank asks on a plant loan, built as an investor's required yield on a claim it
    cannot sell: risk-free + expected loss + unexpected loss + the full liquidity premium. The
    bank holds a large book, so only the systematic part of the loan's risk needs capital: its
    price of risk applies to a share ``√R`` of the loan's loss s.d., with ``R`` the Basel asset
    correlation at the loan's default probability (facts: irb-correlation). A direct claim on the
    plant has no true sale to recharacterise and its enforcement risk is in its loss given
    default, so it carries no legal premium."""
    rho = float(asset_correlation(np.array([default_prob]), np.array([np.nan]))[0])
    return pricing.required_yield(
        risk_free=risk_free,
        tenor_years=1.0,
        credit=pricing.ClaimRisk(default_prob * lgd, default_prob),
        liquidity_premium=liquidity_premium,
        risk_aversion=risk_aversion * math.sqrt(rho),
    )


def loan_cost(amount: float, rate: float, information: InformationCost, relationship: float,
              tenor_q: int, available: bool) -> RouteCost:  # fmt: skip
    """(a) A bank loan: interest at the bank's required yield; information = the bank's appraisal
    of the plant (none for a rollover: the bank knows its borrower); supervision = its monitoring
    of the plant, a cost per borrower that the bank spreads over all it lends to the plant
    (``relationship``, CNY bn, the new loan included); no issuance."""
    return RouteCost(
        interest=1e4 * rate,
        information=upfront_bp(information.appraisal, amount, tenor_q),
        supervision=running_bp(information.monitoring_per_year, relationship, tenor_q),
        issuance=0.0,
        available=available,
    )


# ---------------------------------------------------------------------------------- (b), (c) ABS
def herfindahl(amounts: np.ndarray) -> float:
    """Concentration of a pool: Σ share²; 1 for one plant, 1/n for n equal plants."""
    amounts = np.asarray(amounts, dtype=float)
    total = amounts.sum()
    return float(((amounts / total) ** 2).sum()) if total > 0 else 1.0


def pool_sigma(sigma_q: float, correlation: float, concentration: float) -> float:
    """Log-s.d. of a pool's receivables: only the common part of plant risk survives pooling,
    ``σ·√(ρ + (1 − ρ)·H)`` with ``H`` the pool's Herfindahl index."""
    return sigma_q * math.sqrt(correlation + (1.0 - correlation) * concentration)


def abs_default_prob(coverage: float, sigma: float, tenor_q: int) -> float:
    """Chance that receivables fall short of scheduled service in some quarter of the deal: each
    quarter lognormal receivables with mean ``coverage`` times the service, independent."""
    if coverage <= 0:
        return 1.0
    shortfall_q = float(ndtr((-math.log(coverage) + 0.5 * sigma**2) / sigma))
    return 1.0 - (1.0 - shortfall_q) ** tenor_q


def pool_legal_risk(member_distress: np.ndarray, amounts: np.ndarray, reach: float,
                    severity: float) -> pricing.ClaimRisk:  # fmt: skip
    """Recharacterisation risk of a receivables ABS as a claim. Each member plant is an
    originator: if it defaults while the deal lives (``member_distress``) a court reaches its
    receivables with probability ``reach`` and investors lose ``severity`` of that member's share
    of the deal. The expected loss is the amount-weighted mean of the members' risks, pooled or
    not; the chance that some member is reached rises with their number while what each takes
    falls with its share, so a pool diversifies legal risk as it diversifies receivables risk."""
    amounts = np.asarray(amounts, dtype=float)
    hit = np.clip(np.asarray(member_distress, dtype=float), 0.0, 1.0) * reach
    if amounts.sum() <= 0 or not hit.any():
        return pricing.NO_RISK
    share = amounts / amounts.sum()
    loss = float(min((share * hit).sum() * severity, 1.0))
    return pricing.ClaimRisk(loss, float(1.0 - np.prod(1.0 - hit)))


@dataclass(frozen=True)
class DealFees:
    """Cash costs of one ABS deal (CNY bn): paid at issue, and every year while it lives."""

    underwriting: float
    fixed: float  # rating, legal and audit
    appraisal: float  # the cost technology's appraisal of the members for investors
    stamp_duty: float
    monitoring_per_year: float  # investors' monitoring, or the trustee's standard reporting
    centre_per_year: float  # the centre's operating cost charged to a pool
    trustee_bp: float  # a year on the outstanding balance
    tax_rate: float  # VAT and SPV entity tax on the interest the vehicle pays

    @property
    def upfront(self) -> float:
        """Everything paid out of the proceeds at issue."""
        return self.underwriting + self.fixed + self.appraisal + self.stamp_duty


def deal_fees(amount: float, information: InformationCost, rated: bool, rating_cost_share: float,
              centre_per_year: float, underwriting_bp: float, fixed_cost_cny_bn: float,
              trustee_bp: float, stamp_duty_bp: float, tax_rate: float) -> DealFees:  # fmt: skip
    """Fees of a stand-alone or pooled receivables deal: the fixed ones (rating, legal, audit, the
    centre's running cost) are paid once however many plants share them; an unrated deal saves
    the rating's share of the fixed costs."""
    return DealFees(
        underwriting=amount * underwriting_bp / 1e4,
        fixed=fixed_cost_cny_bn * (1.0 if rated else 1.0 - rating_cost_share),
        appraisal=information.appraisal,
        stamp_duty=amount * stamp_duty_bp / 1e4,
        monitoring_per_year=information.monitoring_per_year,
        centre_per_year=centre_per_year,
        trustee_bp=trustee_bp,
        tax_rate=tax_rate,
    )


def abs_cost(amount: float, coupon: float, fees: DealFees, tenor_q: int) -> RouteCost:
    """(b)/(c) A receivables ABS, per plant (every member of a pool pays the same bp): interest is
    the investors' coupon; information = the appraisal of the members; supervision = the trustee
    and the monitoring (or the standard reporting that replaces it); issuance = underwriting,
    rating/legal/audit, stamp duty, the centre's running cost and the taxes on the interest."""
    return RouteCost(
        interest=1e4 * coupon,
        information=upfront_bp(fees.appraisal, amount, tenor_q),
        supervision=fees.trustee_bp + running_bp(fees.monitoring_per_year, amount, tenor_q),
        issuance=upfront_bp(fees.underwriting + fees.fixed + fees.stamp_duty, amount, tenor_q)
        + running_bp(fees.centre_per_year, amount, tenor_q)
        + 1e4 * fees.tax_rate * coupon,
        available=True,
    )
