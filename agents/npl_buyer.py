"""NPLBuyer: a buyer of NPL packages other than the four national AMCs — a local (provincial) AMC
or a private or foreign distressed-debt fund.

China licensed provincial AMCs from 2012 and let private and foreign distressed-debt funds into the
market later (facts: npl-buyers). A local AMC is an AMC in law, so it may take bulk transfers; a
fund may not where the law reserves bulk transfers to AMCs (facts: bulk-transfer), which is how
that rule binds. A buyer values packages with its own workout skill, cost and required return,
bids in the same sealed-bid auctions as the national AMCs, works out what it wins, and pays
interest on the funding it draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from nplsim.agents.amc import AssetManagementCompany
from nplsim.market.remainder_sale import buyer_may_bid

if TYPE_CHECKING:
    from nplsim.agents.world import World
    from nplsim.market.regime import LegalRegime
    from nplsim.market.scenario import BuyerSpec


class NPLBuyer(AssetManagementCompany):
    """A local AMC or distressed-debt fund: cash + NPLs at cost = funding debt + equity (CNY bn)."""

    def __init__(self, model: mesa.Model, world: World, spec: BuyerSpec, account: int):
        super().__init__(model, world, spec, account)
        self.kind = spec.kind
        self.discount_rate = spec.discount_rate

    @property
    def is_amc(self) -> bool:
        """Whether the law counts it as an asset management company (bulk-transfer rule)."""
        return self.spec.is_amc

    def may_bid(self, regime: LegalRegime) -> bool:
        """Whether the law lets it buy NPLs from banks at all."""
        return buyer_may_bid(regime, self.kind, self.spec.foreign)

    def repay_funding(self) -> None:
        """Pay the quarter's interest on its funding, then repay what surplus cash allows."""
        interest = self.funding_debt * self.world.scenario.amc_funding_rate / 4
        self._ensure_cash(interest)
        ledger = self.world.ledger
        ledger.transfer(self.account, ledger.outside["capital_market"], interest, "buyer_interest")
        self.equity -= interest
        super().repay_funding()
