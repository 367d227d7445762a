"""What the law's disclosure level leaves unknown to outsiders.

Valuation noise in auctions, the uncertainty of a pool's collections, investors' information
premium, the dealer's information spread and the power pools' information premium all grow with
the opacity ``1 − disclosure``; this is the one rule they share.
"""

from __future__ import annotations


def opacity_scaled(floor: float, at_no_disclosure: float, disclosure: float) -> float:
    """``floor + at_no_disclosure · (1 − disclosure)``: a noise, spread or premium that full
    disclosure (1) brings down to ``floor`` and no disclosure (0) raises by ``at_no_disclosure``.
    """
    return floor + at_no_disclosure * (1.0 - disclosure)
