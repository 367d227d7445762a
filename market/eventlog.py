"""The log of legal and economic events of a run (``events.parquet``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

COLUMNS = ["quarter", "kind", "agent", "detail", "amount"]


class EventLog:
    """Reforms, shocks, carve-outs, deals, recharacterisations, defaults: one row each."""

    def __init__(self, clock: Callable[[], int]):
        self._clock = clock
        self.rows: list[dict[str, Any]] = []

    def __call__(self, kind: str, agent: str, detail: str, amount: float) -> None:
        """Record an event of this quarter."""
        self.rows.append(
            {"quarter": self._clock(), "kind": kind, "agent": agent, "detail": detail,
             "amount": float(amount)}
        )  # fmt: skip

    def frame(self) -> pd.DataFrame:
        """``events.parquet``: one row per event."""
        return pd.DataFrame(self.rows, columns=COLUMNS)
