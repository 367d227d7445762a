"""Uniform draws addressed by loan slot, computed only for the slots that need one.

Common random numbers need every loan slot to get the same draw in two runs that share a seed,
whichever slots each run happens to use. Drawing a full-length array every quarter gives that,
but the lending and workout draws are used by a few percent of the slots (the freed slots, the
NPLs) while the full arrays cost a pass over the book each. Here a slot's draw is a function of
the quarter's key and the slot's index: the SplitMix64 generator (Steele, Lea and Flood 2014;
the seeding generator of Java's SplittableRandom and of xoshiro) evaluated at position
``slot × lanes + lane`` of the stream that starts at ``key``. SplitMix64 passes BigCrush; each
quarter takes a fresh 64-bit key from the purpose's numpy stream, so the streams stay split by
purpose and the same seed gives the same draws.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def new_key(stream: np.random.Generator) -> np.uint64:
    """A fresh 64-bit key from ``stream`` (one draw of it)."""
    return stream.integers(0, 2**64, dtype=np.uint64, endpoint=False)


def slot_uniforms(key: np.uint64, slots: np.ndarray, lane: int = 0, lanes: int = 1) -> np.ndarray:
    """Uniform draws on [0, 1) for ``slots``: lane ``lane`` of ``lanes`` draws per slot.

    The draw of a slot depends only on ``key``, the slot, and the lane, not on which other slots
    are asked for.
    """
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64, as it should
        position = np.asarray(slots, dtype=np.uint64) * np.uint64(lanes) + np.uint64(lane + 1)
        z = position * _GOLDEN + np.uint64(key)
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)) * (1.0 / 2**53)
