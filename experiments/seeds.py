"""Seeds: the one check of a seed, a seed typed as text, and a list or range of seeds.

Every command (run, a manifest, compare, sweep, validate) and the app check seeds here, so that
the allowed values and the messages are the same everywhere; :data:`DEFAULT_SEED` is the one
default seed of them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral

from nplsim.market.errors import ConfigError

# Seeds feed numpy's SeedSequence and are stored in 64-bit integer Parquet columns.
MAX_SEED = 2**63 - 1
SEED_RANGE = f"integers from 0 to 2**63 - 1 ({MAX_SEED})"
MAX_SEEDS = 100_000  # seeds of one study: more than any needs, and than a machine could run
# The seed of a run, and the first seed of a batch (compare, levers, routes, stress, validate,
# sweeps and sensitivity specs), when none is given: one default everywhere.
DEFAULT_SEED = 42
SEED_START_HELP = f"first seed (default {DEFAULT_SEED})"


def check_seed(value: object, source: str, key: str) -> int:
    """``value`` as a seed: an integer (not a boolean) from 0 to :data:`MAX_SEED`.

    Raises:
        ConfigError: naming ``source`` and ``key``, with the allowed values.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(source, key, f"{value!r} is not an integer", SEED_RANGE)
    seed = int(value)
    if seed < 0:
        raise ConfigError(source, key, f"must not be negative, got {seed}", SEED_RANGE)
    if seed > MAX_SEED:
        raise ConfigError(source, key, f"{seed} is above 2**63 - 1", SEED_RANGE)
    return seed


def parse_seed(text: object, source: str, key: str) -> int:
    """A seed typed as text (``" 7 "``), checked by :func:`check_seed`."""
    if isinstance(text, bool):
        raise ConfigError(source, key, f"{text!r} is not an integer", SEED_RANGE)
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(source, key, f"{text!r} is not an integer", SEED_RANGE) from None
    return check_seed(value, source, key)


def check_seeds(values: Iterable[object], source: str, key: str) -> list[int]:
    """A list of distinct seeds, at least one and at most :data:`MAX_SEEDS`."""
    seeds = []
    for value in values:
        seeds.append(check_seed(value, source, key))
        if len(seeds) > MAX_SEEDS:
            raise ConfigError(source, key, f"more than {MAX_SEEDS} seeds", f"1 to {MAX_SEEDS}")
    if not seeds:
        raise ConfigError(source, key, "need at least 1 seed", f"1 to {MAX_SEEDS} seeds")
    if len(set(seeds)) < len(seeds):
        raise ConfigError(source, key, "seeds must be distinct")
    return seeds


def seed_range(
    start: object, count: object, source: str, start_key: str, count_key: str
) -> list[int]:
    """``count`` consecutive seeds from ``start``, every one of them a valid seed."""
    allowed = f"1 to {MAX_SEEDS}"
    if isinstance(count, bool) or not isinstance(count, Integral):
        raise ConfigError(source, count_key, f"{count!r} is not a whole number", allowed)
    if count < 1:
        raise ConfigError(source, count_key, f"must be at least 1, got {count}", allowed)
    if count > MAX_SEEDS:
        raise ConfigError(source, count_key, f"{count} seeds", allowed)
    first = check_seed(start, source, start_key)
    last = first + int(count) - 1
    if last > MAX_SEED:
        raise ConfigError(source, start_key, f"the last seed, {last}, is above 2**63 - 1",
                          SEED_RANGE)  # fmt: skip
    return list(range(first, last + 1))
