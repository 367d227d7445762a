"""Seeds: what counts as one, and where a run without one gets its own."""

from __future__ import annotations

import numpy as np

from nplsim.market.errors import ConfigError

MAX_SEED = 2**63  # seeds are non-negative 64-bit integers (exclusive bound)


def checked_seed(rng: object) -> int:
    """``rng`` as a seed: an integer in [0, 2**63), or a fresh one drawn from the operating
    system's entropy when ``rng`` is None (the run records it, so it can be repeated).

    Raises:
        TypeError: ``rng`` is not an integer (booleans are not seeds).
        ConfigError: the integer is out of range.
    """
    if rng is None:
        return int(np.random.SeedSequence().entropy % MAX_SEED)
    if not isinstance(rng, int | np.integer) or isinstance(rng, bool):
        raise TypeError(f"rng must be an integer seed or None, got {type(rng).__name__}")
    if not 0 <= rng < MAX_SEED:
        raise ConfigError("seed", "rng", f"{rng} is out of range", "0 <= seed < 2**63")
    return int(rng)
