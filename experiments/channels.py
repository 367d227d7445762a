"""The channels by which NPLs leave a bank, with one label and one colour each: the figures of a
run (:mod:`nplsim.experiments.figures`) and the policy lab's charts (``nplsim.viz``) both draw
them from here, so a channel looks the same everywhere.

Keys are columns of ``banks.parquet`` (face value leaving the bank's NPL book in the quarter).
"""

from __future__ import annotations

from typing import NamedTuple


class Channel(NamedTuple):
    """A disposal channel: its ``banks.parquet`` column, label and colour (hex, colour-blind-safe
    Okabe–Ito palette)."""

    column: str
    label: str
    colour: str


DISPOSAL_CHANNELS: tuple[Channel, ...] = (
    Channel("npl_resolved", "worked out in-house", "#0072B2"),
    Channel("npl_sold_amc", "sold to AMCs", "#E69F00"),
    Channel("npl_securitised", "securitised", "#009E73"),
    Channel("npl_carved_out", "policy carve-out", "#CC79A7"),
    Channel("written_off", "written off", "#7F7F7F"),
)
CHANNEL_LABELS: dict[str, str] = {c.column: c.label for c in DISPOSAL_CHANNELS}
CHANNEL_COLOURS: dict[str, str] = {c.label: c.colour for c in DISPOSAL_CHANNELS}  # by label
