"""Random streams split by purpose from one seed, so that counterfactuals share their shocks.

Two runs with the same seed and different laws see the same macro path, the same borrower defaults
and the same recoveries (common random numbers): each purpose draws from its own generator, and a
change in how often one purpose draws cannot shift another's numbers.
"""

from __future__ import annotations

import numpy as np

STREAMS = (
    "init", "macro", "defaults", "recoveries", "lending", "behaviour", "quality", "power",
    "signals",
)  # fmt: skip


def split_streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per purpose, all from one seed (common random numbers)."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }
