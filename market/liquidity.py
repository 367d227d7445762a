"""Liquidity regulation and the money market as plain arithmetic: the liquidity coverage ratio,
the liquidity ratio, and the interbank rate under stress.

The LCR is high-quality liquid assets over net cash outflows of a 30-day stress, outflows being
run-off rates times the liabilities and inflows capped at a share of outflows (Basel III, as
China adopted it: facts: liquidity-rules). The liquidity ratio of the Chinese regulator is
current assets over current liabilities, both due within a month (facts: liquidity-rules).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FundingConditions:
    """What the money market and the central bank offer banks this quarter (annual rates).

    Attributes:
        interbank_rate: rate on interbank borrowing and placements.
        rollover: share of maturing interbank funding lenders roll over (1 outside a freeze).
        fire_sale_discount: share of book value lost on bonds sold (0 outside a fire sale).
        stressed: a liquidity shock is under way, so securities that are not high-quality liquid
            assets find no buyers.
        slf_rate: the central bank's standing lending facility (overnight to 7 days).
        mlf_rate: the central bank's medium-term lending facility (one year).
    """

    interbank_rate: float
    slf_rate: float
    mlf_rate: float
    rollover: float = 1.0
    fire_sale_discount: float = 0.0
    stressed: bool = False


def net_cash_outflows(outflows: float, inflows: float, inflow_cap: float) -> float:
    """30-day outflows less inflows, inflows counting up to ``inflow_cap`` of outflows."""
    return outflows - min(inflows, inflow_cap * outflows)


def coverage(assets: float, needs: float) -> float:
    """``assets / needs`` (NaN when nothing is needed): the form of the LCR and the liquidity
    ratio."""
    return assets / needs if needs > 0 else float("nan")


def stressed_interbank_rate(
    base: float, spike: float, slope: float, central_bank_borrowing: float, hqla: float
) -> float:
    """The interbank rate: its base, any scheduled spike, and a premium that rises with the
    banks' reliance on the central bank (``slope`` × their borrowing there / their HQLA)."""
    reliance = central_bank_borrowing / hqla if hqla > 0 else 0.0
    return base + spike + slope * reliance
