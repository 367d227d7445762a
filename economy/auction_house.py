"""The AMC auction house (phase 6): banks' offered NPLs, packaged by segment, sold to the AMCs in
sealed-bid first-price auctions.

Each AMC values every package from what disclosure reveals and bids with noise that falls with
disclosure, shaded for the winner's curse; a package goes to the highest eligible bid above the
bank's reserve that the bidder can pay for. The bulk-transfer rule decides who may bid on a
package of many loans.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.economy.world import EconomyWorld
from nplsim.market import auction
from nplsim.market.blotter import Blotter
from nplsim.market.loans import SEGMENTS

Offer = tuple[StateBank, np.ndarray, np.ndarray]  # seller, slots offered, reserve per slot


class AuctionHouse:
    """Packages offers and clears them against the AMCs' bids."""

    def __init__(
        self,
        world: EconomyWorld,
        rng: np.random.Generator,
        amcs: list[AssetManagementCompany],
        blotter: Blotter,
    ):
        self.world = world
        self.rng = rng
        self.amcs = amcs
        self.blotter = blotter
        self.bids: list[np.ndarray] = []  # every quarter's bid matrix (packages x AMCs)

    def clear(self, offers: list[Offer]) -> dict[str, float]:
        """Sell this quarter's offered packages; return the auction statistics of the quarter."""
        world = self.world
        config, loans, regime = world.scenario, world.loans, world.regime
        stats = {"amc_bid_dispersion": float("nan"), "amc_price_to_face": float("nan")}
        if not offers:
            return stats
        packages = [
            (bank, chunk, reserve[pos])
            for bank, idx, reserve in offers
            for pos, chunk in packages_of(idx, loans.segment[idx], config.package_loans)
        ]
        offered = np.concatenate([chunk for _, chunk, _ in packages])
        package_of = np.repeat(np.arange(len(packages)), [chunk.size for _, chunk, _ in packages])
        values = np.stack(
            [np.bincount(package_of, weights=amc.valuation(offered)) for amc in self.amcs], axis=1
        )
        sigma = auction.valuation_noise(
            regime.disclosure_level, config.bid_noise_at_zero_disclosure, config.bid_noise_floor
        )
        draws = self.rng.standard_normal(values.shape)
        bids = auction.sealed_bids(values, sigma, config.bid_shading, draws)
        reserve = np.array([r.sum() for _, _, r in packages])
        eligible = auction.bulk_rule_eligibility(
            np.array([chunk.size for _, chunk, _ in packages]),
            bidder_is_amc=np.ones(len(self.amcs), dtype=bool),
            amc_only=regime.bulk_transfer_to_amc_only,
            threshold=regime.bulk_threshold,
        )
        capacity = np.array([amc.purchase_capacity for amc in self.amcs])
        winner, price = auction.clear_first_price(bids, reserve, eligible, capacity)
        self.bids.append(bids)
        sold_face = 0.0
        for k, (bank, chunk, _) in enumerate(packages):
            if winner[k] < 0:
                bank.learn_unsold()
                continue
            amc = self.amcs[winner[k]]
            face = float(loans.principal[chunk].sum())
            carrying = float(loans.carrying[chunk].sum())
            hold = float(bank.market_view(chunk).sum())
            share = (
                loans.principal[chunk] / face if face > 0 else np.full(chunk.size, 1 / chunk.size)
            )
            loans.transfer(chunk, amc.account, price[k] * share)
            world.holdings.move_npls(bank.account, amc.account, face, carrying, price[k])
            amc.pay_for_portfolio(bank.account, float(price[k]), face)
            bank.settle_sale(carrying, float(price[k]), hold)
            sold_face += face
            self.blotter.record(
                "amc_auction", bank.name, amc.name, SEGMENTS[int(loans.segment[chunk[0]])],
                face, float(price[k]), n_loans=int(chunk.size), reserve=float(reserve[k]),
                n_bids=int(eligible[k].sum()),
                bid_cv=float(auction.bid_dispersion(bids[k : k + 1])[0]),
            )  # fmt: skip
        stats["amc_bid_dispersion"] = float(np.mean(auction.bid_dispersion(bids)))
        if sold_face > 0:
            stats["amc_price_to_face"] = float(price[winner >= 0].sum()) / sold_face
        return stats


def packages_of(
    idx: np.ndarray, segment: np.ndarray, size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Split a bank's offered loans into packages of at most ``size`` loans of one segment.

    Yields (positions into ``idx``, slots) per package.
    """
    for code in np.unique(segment):
        positions = np.flatnonzero(segment == code)
        for start in range(0, positions.size, size):
            pos = positions[start : start + size]
            yield pos, idx[pos]
