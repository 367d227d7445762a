"""The blotter of a run: every AMC portfolio sale, primary ABS allotment and secondary trade
(``trades.parquet``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

COLUMNS = [
    "quarter", "market", "seller", "buyer", "segment", "n_loans", "face", "price",
    "price_to_face", "reserve", "n_bids", "bid_cv",
]  # fmt: skip


class Blotter:
    """One row per trade, in the order trades happen."""

    def __init__(self, clock: Callable[[], int]):
        self._clock = clock
        self.rows: list[dict[str, Any]] = []

    def record(
        self,
        market: str,
        seller: str,
        buyer: str,
        segment: str,
        face: float,
        price: float,
        *,
        n_loans: int = 0,
        price_to_face: float | None = None,
        reserve: float = float("nan"),
        n_bids: int = 0,
        bid_cv: float = float("nan"),
    ) -> None:
        """A trade of ``face`` for ``price`` (CNY bn) in ``market`` (amc_auction, primary,
        secondary); ``price_to_face`` defaults to their ratio."""
        if price_to_face is None:
            price_to_face = price / face if face > 0 else float("nan")
        self.rows.append({
            "quarter": self._clock(), "market": market, "seller": seller, "buyer": buyer,
            "segment": segment, "n_loans": n_loans, "face": face, "price": price,
            "price_to_face": price_to_face, "reserve": reserve, "n_bids": n_bids,
            "bid_cv": bid_cv,
        })  # fmt: skip

    def frame(self) -> pd.DataFrame:
        """``trades.parquet``: one row per trade."""
        return pd.DataFrame(self.rows, columns=COLUMNS)
