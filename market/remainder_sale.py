"""The sale of what a trust has not collected by its deal's legal final maturity.

At the legal final maturity the trust offers the loans still in its pool, as one package, in the
same sealed-bid auction as the banks' NPL packages (``AuctionHouse.sell_remainder``); the proceeds
enter the final waterfall as collections. Trust companies sell non-performing assets to AMCs by
public auction (facts: trust-asset-sale); that a deal's documents provide for such a sale of the
remainder is an assumption.

Investors and the originator price the sale in when they value a pool. A loan still unresolved at
maturity is expected to fetch what the best bidder the law admits would pay for it: its own value
of working the loan out to the claim's end (``workout_value_table`` with that bidder's skill,
cost and required return), shaded for the winner's curse as bids are (``auction.sealed_bids``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nplsim.market import auction
from nplsim.market.workout_value import BidderTerms


def buyer_may_bid(regime: Any, kind: str, foreign: bool) -> bool:
    """Whether the law lets a buyer other than the national AMCs buy NPLs at all (a local AMC or
    a distressed-debt fund; a foreign one only where foreign investors are allowed)."""
    if kind not in regime.npl_buyers_allowed:
        return False
    return not foreign or regime.foreign_investors_allowed


def admitted_bidders(world: Any, borrowers: float = np.inf) -> list[BidderTerms]:
    """The terms of every bidder the law lets buy a package of ``borrowers`` (the bulk-transfer
    rule may reserve a large one to AMCs; ``inf``: as large as any)."""
    config, regime = world.scenario, world.regime
    candidates = [(spec, True, config.amc_discount_rate) for spec in config.amcs] + [
        (spec, spec.is_amc, spec.discount_rate)
        for spec in config.npl_buyers
        if buyer_may_bid(regime, spec.kind, spec.foreign)
    ]
    eligible = auction.bulk_rule_eligibility(
        np.array([borrowers]),
        bidder_is_amc=np.array([is_amc for _, is_amc, _ in candidates]),
        amc_only=regime.bulk_transfer_to_amc_only,
        threshold=regime.bulk_threshold,
    )[0]
    return [
        BidderTerms.of(world, spec.workout_skill, rate, spec.cost_per_recovered)
        for (spec, _, rate), ok in zip(candidates, eligible, strict=True)
        if ok
    ]


def expected_price_per_base(world: Any, borrowers: float = np.inf) -> np.ndarray:
    """Price investors expect for an unresolved NPL of each age, per unit of its base recovery,
    in a sale after the quarter's workout: ``max_b (1 − shading·σ)·δ_b·G_b[a + 1]`` over the
    bidders the law admits to a package of ``borrowers``, with ``G_b`` the bidder's workout value
    table to the claim's end (0 from the end age on) and σ the bidders' valuation noise at the
    regime's disclosure level. It is the best mean bid: the expected highest of the noisy bids
    lies above it, and a package no bidder can pay for goes unsold, so it is an estimate,
    checked by the investors' realised against expected collections."""
    config = world.scenario
    end = config.claim_end_age_q
    sigma = auction.valuation_noise(
        world.regime.disclosure_level, config.bid_noise_at_zero_disclosure, config.bid_noise_floor
    )
    shade = max(0.0, 1.0 - config.bid_shading * sigma)
    best = np.zeros(end + 1)
    for terms in admitted_bidders(world, borrowers):
        value = np.append(terms.discount_q * terms.table(end)[1:], 0.0)  # age a: next at a + 1
        best = np.maximum(best, shade * value)
    return best


def terminal_prices(world: Any, borrowers: float = np.inf) -> np.ndarray | None:
    """``expected_price_per_base`` where deals sell what is left at maturity, else None (the
    remainder is written off and fetches nothing)."""
    if not world.scenario.securitisation.remainder_sale:
        return None
    return expected_price_per_base(world, borrowers)
