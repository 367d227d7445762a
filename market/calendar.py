"""Calendar quarters of a run: a scenario's ``start`` (``"2016Q1"``, the calendar quarter of the
model's quarter 1; quarter 0 is the one before, when the opening balance sheets are drawn up)."""

from __future__ import annotations

import re

START_PATTERN = r"^[12][0-9]{3}Q[1-4]$"  # a year 1000-2999 and a quarter 1-4, e.g. 2016Q1


def calendar_quarter(start: str | None, quarter: int) -> str:
    """The calendar quarter (``"2018Q3"``) of model ``quarter``; ``"q<N>"`` without a start."""
    if not start:
        return f"q{quarter}"
    match = re.fullmatch(START_PATTERN[1:-1], start)
    if match is None:
        raise ValueError(f"start {start!r} is not a calendar quarter like 2016Q1")
    index = int(start[:4]) * 4 + int(start[5]) - 1 + quarter - 1
    return f"{index // 4}Q{index % 4 + 1}"
