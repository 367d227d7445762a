"""Holdings of asset-backed securities, for every agent that buys them (investors, the
underwriter's inventory)."""

from __future__ import annotations


class SecuritiesAccount:
    """Mixin: notional held per (deal, tranche) in CNY bn, and losses written off on it.

    Call ``init_securities()`` from ``__init__``.
    """

    def init_securities(self) -> None:
        """Start with no holdings and no losses."""
        self.holdings: dict[tuple[int, str], float] = {}
        self.losses = 0.0

    def receive(self, deal: int, tranche: str, notional: float) -> None:
        """Record an allotment or purchase of ``notional`` of a tranche."""
        key = (deal, tranche)
        self.holdings[key] = self.holdings.get(key, 0.0) + notional

    def reduce(self, deal: int, tranche: str, notional: float, loss: bool) -> None:
        """A holding's notional fell: repaid, or written off (a loss) when ``loss``."""
        key = (deal, tranche)
        self.holdings[key] = max(self.holdings.get(key, 0.0) - notional, 0.0)
        if loss:
            self.losses += notional

    def change_holding(self, deal: int, tranche: str, change: float) -> None:
        """A secondary-market trade moved the holding by ``change`` (negative when sold)."""
        key = (deal, tranche)
        self.holdings[key] = max(self.holdings.get(key, 0.0) + change, 0.0)
