"""The ABS secondary market (phase 8): a quarterly call auction per outstanding tranche, with the
underwriter as dealer.

Holders hit by a liquidity shock must sell part of their position at a distressed floor; others
rebalance at their own noisy valuation plus a margin; eligible investors with cash bid below
theirs; the dealer quotes a bid and an ask around fundamental value whose spread falls with
disclosure and whose level leans against its inventory. The market's observed turnover feeds back
into the liquidity premium investors ask in new issues, so liquidity and issuance reinforce each
other.
"""

from __future__ import annotations

import numpy as np

from nplsim.agents.investor import Investor
from nplsim.agents.spv import SpecialPurposeVehicle
from nplsim.agents.underwriter import Underwriter
from nplsim.economy.deal_desk import DealDesk
from nplsim.economy.world import EconomyWorld
from nplsim.market import metrics, pricing, secondary, waterfall
from nplsim.market.blotter import Blotter
from nplsim.market.disclosure import opacity_scaled

# A forced seller's "quarters to sell" is measured for a position of this share of a tranche
# (assumption: a typical large holding).
REFERENCE_POSITION_SHARE = 0.1
DUST = 1e-12  # notional below a thousandth of a yuan (CNY bn) is no position
CASH_DUST = 1e-9  # investors with less cash than this do not bid


class AbsExchange:
    """Clears every outstanding tranche each quarter and keeps the market's observed depth."""

    def __init__(
        self,
        world: EconomyWorld,
        rng: np.random.Generator,
        desk: DealDesk,
        investors: list[Investor],
        dealer: Underwriter,
        blotter: Blotter,
    ):
        self.world = world
        self.rng = rng
        self.desk = desk
        self.investors = investors
        self.dealer = dealer
        self.blotter = blotter
        self.traders = {**{i.account: i for i in investors}, dealer.account: dealer}
        self.observed_turnover = 0.0
        self.last_trade_price: dict[tuple[int, str], float] = {}

    def liquidity_premium_share(self) -> float:
        """Share of investors' stated liquidity premium that the observed market leaves."""
        spec = self.world.scenario.secondary
        depth = np.exp(-self.observed_turnover / spec.feedback_turnover_scale)
        return spec.feedback_floor + (1.0 - spec.feedback_floor) * depth

    def tranche_fundamental(self, spv: SpecialPurposeVehicle, tranche: str) -> float:
        """Fundamental value per unit notional of a tranche from the pool's current outlook."""
        book, row = self.desk.book, spv.terms.book_index
        balance = {t: float(book.balance[t][row]) for t in waterfall.TRANCHES}
        if balance[tranche] <= 0:
            return float("nan")
        mean, sigma = self.desk.pool_view(spv)
        if tranche == "sub":
            spec = self.world.scenario.securitisation
            residual = max(mean - balance["senior"] - balance["mezz"], 0.0)
            quarters = max(spv.final_quarter - self.world.quarter, 1)
            value = pricing.sub_price(residual, spec.sub_required_return, quarters)
            return value / balance["sub"]
        attach = 0.0 if tranche == "senior" else balance["senior"]
        loss = pricing.tranche_expected_loss(attach, attach + balance[tranche], mean, sigma)
        return 1.0 - loss

    def trade(self) -> dict[str, float]:
        """Each outstanding tranche's quarterly call auction: liquidity-shocked holders must sell,
        others rebalance, eligible investors bid, the dealer quotes; trades settle in the ledger."""
        spec, regime = self.world.scenario.secondary, self.world.regime
        sigma = opacity_scaled(
            spec.valuation_sigma_floor, spec.valuation_sigma_opacity, regime.disclosure_level
        )
        rows = []
        eligible: dict[tuple[str, str], list[Investor]] = {}  # the law and mandates, per quarter
        for spv in self.desk.vehicles:
            if spv.state != "live" or spv.frozen:
                continue
            for tranche in waterfall.TRANCHES:
                outstanding = float(self.desk.book.balance[tranche][spv.terms.book_index])
                if outstanding <= 1e-9:
                    continue
                fundamental = self.tranche_fundamental(spv, tranche)
                if not np.isfinite(fundamental) or fundamental <= 0:
                    continue
                rating = spv.rating(tranche)
                if (tranche, rating) not in eligible:
                    eligible[tranche, rating] = [
                        i for i in self.investors if i.eligible(tranche, rating)
                    ]
                rows.append(self._auction(
                    spv, tranche, outstanding, fundamental, sigma,
                    [i for i in eligible[tranche, rating] if i.cash > CASH_DUST],
                ))  # fmt: skip
        volume = sum(r["volume"] for r in rows)
        outstanding = sum(r["outstanding"] for r in rows)
        market_turnover = metrics.turnover(volume, outstanding)
        if np.isfinite(market_turnover):
            memory = spec.feedback_memory
            self.observed_turnover = (
                1 - memory
            ) * self.observed_turnover + memory * market_turnover
        weights = np.array([r["outstanding"] for r in rows])
        forced = sum(r["forced_requested"] for r in rows)
        per_tranche_volume = volume / len(rows) if rows else 0.0
        return {
            "bid_ask_bp": 1e4
            * metrics.weighted_mean(np.array([r["quoted"] for r in rows]), weights),
            "effective_spread_bp": 1e4
            * metrics.weighted_mean(np.array([r["effective"] for r in rows]), weights),
            "turnover": market_turnover,
            "secondary_volume": volume,
            "amihud": metrics.weighted_mean(np.array([r["amihud"] for r in rows]), weights),
            "forced_sale_fill_rate": metrics.fill_rate(
                sum(r["forced_filled"] for r in rows), forced
            ),
            "discount_to_fundamental": metrics.weighted_mean(
                np.array([r["discount"] for r in rows]), weights
            ),
            "quarters_to_sell": metrics.quarters_to_sell(
                REFERENCE_POSITION_SHARE * outstanding / len(rows) if rows else 0.0,
                per_tranche_volume,
            ),
        }

    def _auction(self, spv, tranche, outstanding, fundamental, sigma, buyers) -> dict:
        """One tranche's call auction: orders, dealer quotes, clearing, settlement, statistics."""
        spec = self.world.scenario.secondary
        dealer = self.dealer
        key = (spv.deal_id, tranche)
        holders = [
            (a, q) for a, q in spv.holders[tranche].items() if a in self.traders and q > DUST
        ]
        shocks = self.rng.random(len(holders))
        noise = self.rng.standard_normal(len(holders) + len(buyers))
        value = fundamental * np.exp(sigma * noise - 0.5 * sigma**2)
        sellers, sell_price, sell_qty, forced = [], [], [], []
        for k, (account, quantity) in enumerate(holders):
            if account == dealer.account:
                continue
            investor = self.traders[account]
            if shocks[k] < investor.spec.liquidity_shock_prob:
                price, share, is_forced = (
                    spec.forced_sale_floor * fundamental,
                    spec.forced_sale_share,
                    True,
                )
            else:
                price, share, is_forced = (
                    value[k] * (1 + spec.trading_margin),
                    spec.rebalance_share,
                    False,
                )
            sellers.append(account)
            sell_price.append(price)
            sell_qty.append(share * quantity)
            forced.append(is_forced)
        inventory = dealer.holdings.get(key, 0.0)
        dealer_bid, dealer_ask = secondary.dealer_quotes(
            fundamental, self.world.regime.disclosure_level,
            inventory / outstanding, spec.dealer_base_half_spread,
            spec.dealer_information_half_spread, spec.dealer_inventory_half_spread,
        )  # fmt: skip
        if inventory > 0:
            sellers.append(dealer.account)
            sell_price.append(dealer_ask)
            sell_qty.append(inventory)
            forced.append(False)
        bidders, buy_price, buy_qty = [], [], []
        for k, investor in enumerate(buyers):
            price = value[len(holders) + k] * (1 - spec.trading_margin)
            bidders.append(investor.account)
            buy_price.append(price)
            buy_qty.append(min(spec.buy_appetite * outstanding, investor.cash / price))
        dealer_room = spec.dealer_capital_share * max(dealer.cash, 0.0) / dealer_bid
        if dealer_room > 0:
            bidders.append(dealer.account)
            buy_price.append(dealer_bid)
            buy_qty.append(dealer_room)
        result = secondary.call_auction(
            np.array(buy_price), np.array(buy_qty), np.array(sell_price), np.array(sell_qty)
        )
        # The quote after the auction: the best bid and ask left unfilled, and the dealer's.
        bids_left = np.array(buy_qty) - result.buy_fill > DUST
        asks_left = (np.array(sell_qty) - result.sell_fill > DUST) & ~np.array(forced, dtype=bool)
        best_bid = max([dealer_bid, *np.array(buy_price)[bids_left]]) if buy_price else dealer_bid
        best_ask = min([dealer_ask, *np.array(sell_price)[asks_left]]) if sell_price else dealer_ask
        if result.volume > 0:
            self._settle(spv, tranche, bidders, result.buy_fill, sellers, result.sell_fill,
                         result.price)  # fmt: skip
        forced_mask = np.array(forced, dtype=bool)
        previous = self.last_trade_price.get(key, float("nan"))
        if result.volume > 0:
            self.last_trade_price[key] = result.price
        return {
            "outstanding": outstanding,
            "volume": result.volume,
            "quoted": secondary.quoted_spread(best_bid, best_ask),
            "effective": metrics.effective_spread(result.price, fundamental, fundamental),
            "amihud": metrics.amihud(result.price, previous, result.volume),
            "discount": metrics.discount_to_fundamental(result.price, fundamental),
            "forced_requested": float(np.array(sell_qty)[forced_mask].sum()) if sell_qty else 0.0,
            "forced_filled": float(result.sell_fill[forced_mask].sum()) if sell_qty else 0.0,
        }

    def _settle(self, spv, tranche, bidders, buy_fill, sellers, sell_fill, price) -> None:
        """Match fills buyer by seller (a two-pointer merge) and settle each pair at ``price``."""
        b, s = 0, 0
        buy_left, sell_left = list(buy_fill), list(sell_fill)
        ledger = self.world.ledger
        while b < len(bidders) and s < len(sellers):
            quantity = min(buy_left[b], sell_left[s])
            if quantity > DUST and bidders[b] != sellers[s]:
                buyer, seller = bidders[b], sellers[s]
                ledger.transfer(buyer, seller, quantity * price, "abs_secondary")
                spv.move_position(tranche, seller, buyer, quantity)
                self.traders[seller].change_holding(spv.deal_id, tranche, -quantity)
                self.traders[buyer].change_holding(spv.deal_id, tranche, quantity)
                self.blotter.record(
                    "secondary", ledger.names[seller], ledger.names[buyer],
                    f"{spv.name} {tranche}", quantity, quantity * price, price_to_face=price,
                    n_bids=len(bidders),
                )  # fmt: skip
            buy_left[b] -= quantity
            sell_left[s] -= quantity
            if buy_left[b] <= DUST:
                b += 1
            if sell_left[s] <= DUST:
                s += 1
