"""The NPL auction house (phase 6): banks' offered NPLs, packaged by segment, sold in sealed-bid
first-price auctions to the national AMCs and to the other buyers the law admits (local AMCs,
distressed-debt funds).

Each buyer values every package from what disclosure reveals, with its own skill, cost and required
return, and bids with noise that falls with disclosure, shaded for the winner's curse; a package
goes to the highest eligible bid above the bank's reserve that the bidder can pay for. Packages are
sized in yuan and counted in borrowers, so the bulk-transfer rule — a package of ``bulk_threshold``
borrowers or more may go only to an AMC where the law says so — decides whether the funds may bid.
Buyers repay their funding from recoveries at the end of the quarter. A trust sells what its
pool has not collected by its deal's legal final maturity in the same auction
(``sell_remainder``).
"""

from __future__ import annotations

import numpy as np

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.agents.npl_buyer import NPLBuyer
from nplsim.economy.world import EconomyWorld
from nplsim.market import auction
from nplsim.market.blotter import Blotter
from nplsim.market.loans import SEGMENTS

Offer = tuple[StateBank, np.ndarray, np.ndarray]  # seller, slots offered, reserve per slot
Bidder = AssetManagementCompany | NPLBuyer


class AuctionHouse:
    """Packages offers and clears them against the buyers' bids."""

    def __init__(
        self,
        world: EconomyWorld,
        rng: np.random.Generator,
        amcs: list[AssetManagementCompany],
        buyers: list[NPLBuyer],
        blotter: Blotter,
    ):
        self.world = world
        self.rng = rng
        self.bidders: list[Bidder] = [*amcs, *buyers]
        self.n_amcs = len(amcs)
        self.blotter = blotter
        self.bids: list[np.ndarray] = []  # every quarter's bid matrix (packages x bidders)

    def clear(self, offers: list[Offer]) -> dict[str, float]:
        """Sell this quarter's offered packages; return the auction statistics of the quarter."""
        world = self.world
        config, loans = world.scenario, world.loans
        stats = {"amc_bid_dispersion": float("nan"), "amc_price_to_face": float("nan")}
        if not offers:
            return stats
        packages = []
        for bank, idx, reserve in offers:
            ids = auction.package_ids(
                loans.segment[idx], loans.principal[idx], config.package_cny_bn
            )
            for k in range(int(ids.max()) + 1):
                pos = np.flatnonzero(ids == k)
                packages.append((bank, idx[pos], reserve[pos]))
        offered = np.concatenate([chunk for _, chunk, _ in packages])
        package_of = np.repeat(np.arange(len(packages)), [chunk.size for _, chunk, _ in packages])
        reserve = np.array([r.sum() for _, _, r in packages])
        bids, eligible, winner, price = self._auction(offered, package_of, reserve)
        sold = winner >= 0
        world.npl_exits.record(offered[sold[package_of]])
        view = np.zeros(offered.size)  # each seller's market view of its loans
        for bank, _, _ in offers:
            mine = loans.holder[offered] == bank.account
            view[mine] = bank.market_view(offered[mine])
        by_package = {
            "face": np.bincount(package_of, weights=loans.principal[offered]),
            "carrying": np.bincount(package_of, weights=loans.carrying[offered]),
            "view": np.bincount(package_of, weights=view),
        }
        dispersion = auction.bid_dispersion(bids)
        sold_face = 0.0
        for k, (bank, chunk, _) in enumerate(packages):
            if winner[k] < 0:
                bank.learn_unsold()
                continue
            buyer = self.bidders[winner[k]]
            face, carrying = float(by_package["face"][k]), float(by_package["carrying"][k])
            self._deliver(bank.account, chunk, buyer, float(price[k]), face, carrying)
            bank.settle_sale(carrying, float(price[k]), float(by_package["view"][k]))
            sold_face += face
            self.blotter.record(
                "amc_auction", bank.name, buyer.name, SEGMENTS[int(loans.segment[chunk[0]])],
                face, float(price[k]),
                n_loans=int(chunk.size), reserve=float(reserve[k]),
                n_bids=int(eligible[k].sum()), bid_cv=float(dispersion[k]),
            )  # fmt: skip
        # the national AMCs' bids, as the public record of the 2004-05 tenders describes them
        stats["amc_bid_dispersion"] = float(np.mean(auction.bid_dispersion(bids[:, : self.n_amcs])))
        if sold_face > 0:
            stats["amc_price_to_face"] = float(price[winner >= 0].sum()) / sold_face
        return stats

    def sell_remainder(self, seller: str, account: int, idx: np.ndarray) -> float:
        """A trust's sale, at its deal's legal final maturity, of the loans ``idx`` it has not
        collected: one package, no reserve (what is unsold is written off), to the highest bid
        the law admits. Returns the price (0 if no bidder wanted it)."""
        loans = self.world.loans
        bids, eligible, winner, price = self._auction(
            idx, np.zeros(idx.size, dtype=np.int64), np.zeros(1)
        )
        if winner[0] < 0 or price[0] <= 0.0:
            return 0.0
        buyer = self.bidders[winner[0]]
        face = float(loans.principal[idx].sum())
        self._deliver(account, idx, buyer, float(price[0]), face, float(loans.carrying[idx].sum()))
        segments = np.unique(loans.segment[idx])
        segment = SEGMENTS[int(segments[0])] if segments.size == 1 else "mixed"
        self.blotter.record(
            "remainder_sale", seller, buyer.name, segment, face,
            float(price[0]), n_loans=int(idx.size), reserve=0.0,
            n_bids=int(eligible[0].sum()), bid_cv=float(auction.bid_dispersion(bids)[0]),
        )  # fmt: skip
        return float(price[0])

    def _auction(
        self, offered: np.ndarray, package_of: np.ndarray, reserve: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every bidder's sealed bid on each package of the loans ``offered`` (package
        ``package_of``), who may buy which, and the first-price clearing against ``reserve``
        and the bidders' funds: (bids, eligible, winner, price)."""
        world = self.world
        config, loans, regime = world.scenario, world.loans, world.regime
        n_packages = reserve.size
        values = np.stack(
            [np.bincount(package_of, weights=b.valuation(offered), minlength=n_packages)
             for b in self.bidders], axis=1,
        )  # fmt: skip
        sigma = auction.valuation_noise(
            regime.disclosure_level, config.bid_noise_at_zero_disclosure, config.bid_noise_floor
        )
        draws = self.rng.standard_normal(values.shape)
        bids = auction.sealed_bids(values, sigma, config.bid_shading, draws)
        borrowers = np.bincount(package_of, weights=loans.borrowers(offered), minlength=n_packages)
        eligible = (
            auction.bulk_rule_eligibility(
                borrowers,
                bidder_is_amc=np.array([b.is_amc for b in self.bidders]),
                amc_only=regime.bulk_transfer_to_amc_only,
                threshold=regime.bulk_threshold,
            )
            & np.array([b.may_bid(regime) for b in self.bidders])[None, :]
        )
        capacity = np.array([b.purchase_capacity for b in self.bidders])
        winner, price = auction.clear_first_price(bids, reserve, eligible, capacity)
        self.bids.append(bids)
        return bids, eligible, winner, price

    def _deliver(
        self,
        seller: int,
        chunk: np.ndarray,
        buyer: Bidder,
        price: float,
        face: float,
        carrying: float,
    ) -> None:
        """Loans ``chunk`` (of ``face``, carried at ``carrying``) go from ``seller`` to ``buyer``
        for ``price``, shared by face; the buyer pays."""
        world, loans = self.world, self.world.loans
        share = loans.principal[chunk] / face if face > 0 else np.full(chunk.size, 1 / chunk.size)
        loans.transfer(chunk, buyer.account, price * share)
        world.holdings.move_npls(seller, buyer.account, face, carrying, price)
        buyer.pay_for_portfolio(seller, price, face)

    def repay_funding(self) -> None:
        """Every buyer repays funding from surplus cash (other buyers pay its interest first)."""
        for bidder in self.bidders:
            bidder.repay_funding()
