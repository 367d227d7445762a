"""What working non-performing loans out is worth: the present value a holder expects
(``workout_value_table``, ``expected_workout_value``) and the collections an outside buyer expects
quarter by quarter with their dispersion (``collections_outlook``).

One law throughout, the one ``LoanBook.work_out`` runs: a loan resolves in a quarter with the
holder's probability while younger than the write-off age and then recovers its base recovery at
the timing factor of its age.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from nplsim.market.loans import LoanBook, recovery_timing_factor


def end_ages_by_account(
    config: Any, n_accounts: int, bank_accounts: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Age at which loans held by each ledger account are closed unrecovered, and the age at which
    a holder charges them off its books while it keeps pursuing them (None: none does).

    A holder that bought the claim pursues it to the claim's end (``config.claim_end_age_q``); a
    bank writes it off at ``config.write_off_age_q`` and, where banks pursue written-off loans,
    pursues it to the claim's end off its balance sheet."""
    end = np.full(n_accounts, config.claim_end_age_q)
    end[bank_accounts] = config.bank_pursuit_age_q
    if not config.banks_pursue_written_off:
        return end, None
    charge_off = end.copy()
    charge_off[bank_accounts] = config.write_off_age_q
    return end, charge_off


def workout_value_table(
    p_resolve: float, discount_q: float, write_off_age_q: int, cost_rate: float
) -> np.ndarray:
    """Expected present value, per unit of base recovery, of working out an NPL of each age
    (a read-only array, computed once per set of arguments; see ``_workout_value_table``)."""
    return _workout_value_table(
        float(p_resolve), float(discount_q), int(write_off_age_q), float(cost_rate)
    )


@functools.lru_cache(maxsize=4096)
def _workout_value_table(
    p_resolve: float, discount_q: float, write_off_age_q: int, cost_rate: float
) -> np.ndarray:
    """Expected present value, per unit of base recovery, of working out an NPL of each age.

    ``G[a] = (1 − c)·[p·timing(a) + (1 − p)·δ·G[a + 1]]`` with ``G[write_off_age] = 0``: the
    loan is resolved this quarter with probability ``p`` and recovers less the older it is.

    Args:
        p_resolve: quarterly probability of resolution of this holder.
        discount_q: quarterly discount factor δ.
        write_off_age_q: age at which unresolved loans are charged off.
        cost_rate: workout cost per unit recovered.
    """
    ages = np.arange(write_off_age_q + 1)
    timing = recovery_timing_factor(ages)
    table = np.zeros(write_off_age_q + 1)
    for a in range(write_off_age_q - 1, -1, -1):  # a backward recursion over ages, not loans
        table[a] = p_resolve * timing[a] + (1.0 - p_resolve) * discount_q * table[a + 1]
    table *= 1.0 - cost_rate
    table.flags.writeable = False
    return table


def expected_workout_value(
    book: LoanBook,
    idx: np.ndarray,
    quarter: int,
    table: np.ndarray,
    discount_q: float,
    disclosure: float = 1.0,
) -> np.ndarray:
    """Present value of working out NPLs ``idx`` from next quarter on (CNY bn per loan).

    Valuation happens after this quarter's workout, so the next chance to resolve is at age + 1,
    one quarter away: ``base_recovery · δ · G[age + 1]`` with ``G`` from ``workout_value_table``.
    """
    age_next = np.minimum(book.age_q(quarter, idx) + 1, len(table) - 1)
    return book.base_recovery(idx, disclosure) * discount_q * table[age_next]


class BidderTerms(NamedTuple):
    """What decides a buyer's value of an NPL: its chance to resolve one in a quarter, its
    quarterly discount factor and its workout cost per unit recovered."""

    p_resolve: float
    discount_q: float
    cost_rate: float

    @classmethod
    def of(cls, world: Any, workout_skill: float, discount_rate: float,
           cost_per_recovered: float) -> BidderTerms:  # fmt: skip
        """A buyer's terms from its workout skill, its annual required return and its cost."""
        return cls(
            world.resolve_probability(workout_skill),
            (1.0 + discount_rate) ** -0.25,
            cost_per_recovered,
        )

    def table(self, end_age_q: int) -> np.ndarray:
        """``workout_value_table`` of these terms, to ``end_age_q``."""
        return workout_value_table(self.p_resolve, self.discount_q, end_age_q, self.cost_rate)


def expected_workout_value_within(
    book: LoanBook,
    idx: np.ndarray,
    quarter: int,
    p_resolve: float,
    discount_q: float,
    end_age_q: int,
    cost_rate: float,
    horizon_q: int,
    disclosure: float = 1.0,
    terminal: np.ndarray | None = None,
) -> np.ndarray:
    """``expected_workout_value`` of NPLs ``idx`` for a holder that collects for at most
    ``horizon_q`` more quarters (a trust until its deal's legal final maturity), CNY bn per loan:
    ``(1 − c)·base·Σ_{k=1..H} δ^k·p(1 − p)^(k−1)·timing(age + k)·[age + k < end]``, which is
    ``base·δ·G[age + 1]`` where the horizon reaches the end age. Where the holder sells what is
    left at the horizon, ``terminal[a]`` is the price per unit of base recovery it expects for a
    loan then aged ``a`` (``remainder_sale.expected_price_per_base``; 0 past its end), and
    ``(1 − c)·base·δ^H·(1 − p)^H·terminal[age + H]`` is added."""
    horizon = max(int(horizon_q), 0)
    age = book.age_q(quarter, idx)
    timing, chance = _resolution_law(age, p_resolve, horizon, end_age_q, discount_q)
    per_base = timing @ chance
    if terminal is not None:
        survive = (discount_q * (1.0 - p_resolve)) ** horizon
        per_base = per_base + survive * terminal_price(terminal, age + horizon)
    return (1.0 - cost_rate) * book.base_recovery(idx, disclosure) * per_base


def _resolution_law(
    age: np.ndarray, p_resolve: float, horizon_q: int, end_age_q: int, discount_q: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The law a value and an outlook share, over the next ``horizon_q`` quarters ``k``: each
    loan's recovery timing factor at its age then, 0 from the end age on (loans × quarters), and
    the discounted chance that a loan is first resolved in quarter ``k``, ``δ^k·p(1 − p)^(k−1)``
    (undiscounted with ``discount_q = 1``)."""
    k = np.arange(1, horizon_q + 1)
    age_then = age[:, None] + k[None, :]
    timing = recovery_timing_factor(age_then) * (age_then < end_age_q)
    chance = discount_q**k * p_resolve * (1.0 - p_resolve) ** (k - 1)
    return timing, chance


def terminal_price(terminal: np.ndarray, age: np.ndarray) -> np.ndarray:
    """``terminal[age]`` per loan, 0 for ages past the table (claims that have ended)."""
    return np.where(age < terminal.size, terminal[np.minimum(age, terminal.size - 1)], 0.0)


class CollectionsOutlook(NamedTuple):
    """What a pool of NPLs is expected to collect, quarter by quarter, and how surely."""

    schedule: np.ndarray  # expected gross collections in each of the next quarters (CNY bn)
    cv2: np.ndarray  # squared coefficient of variation of collections cumulated to each quarter


def collections_outlook(
    book: LoanBook,
    idx: np.ndarray,
    quarter: int,
    p_resolve: float,
    write_off_age_q: int,
    horizon_q: int,
    disclosure: float = 1.0,
    terminal: np.ndarray | None = None,
) -> CollectionsOutlook:
    """Expected gross collections of NPLs ``idx`` in each of the next ``horizon_q`` quarters
    (CNY bn, undiscounted, summed over the loans), and their dispersion.

    A loan resolves in quarter ``k`` with probability ``p (1 − p)^(k−1)`` while younger than the
    write-off age, and recovers its base recovery (quality as ``disclosure`` reveals it) at the
    timing factor of its age then — the law of ``workout_value_table``, spread over time instead
    of discounted. A loan pays all at once, so a pool of few loans can collect nothing for years
    while a pool of many collects close to its schedule: ``cv2[n]`` is
    ``Σ_k Var X_k(n) / (Σ_k E X_k(n))²`` with ``X_k(n)`` what loan ``k`` has paid by quarter
    ``n + 1`` (``inf`` where nothing is expected yet). With ``terminal`` (see
    ``expected_workout_value_within``) a loan unresolved after the last quarter is sold then at
    ``base·terminal[age + horizon]``, gross.
    """
    base = book.base_recovery(idx, disclosure)
    age = book.age_q(quarter, idx)
    timing, chance = _resolution_law(age, p_resolve, horizon_q, write_off_age_q)
    value = base[:, None] * timing
    per_loan = value * chance[None, :]  # loans × quarters
    squared = per_loan * value  # a loan pays its value once
    if terminal is not None and horizon_q > 0:  # or, unresolved, its price at the end
        sold = (1.0 - p_resolve) ** horizon_q
        price = base * terminal_price(terminal, age + horizon_q)
        per_loan[:, -1] += sold * price
        squared[:, -1] += sold * price**2
    mean = np.cumsum(per_loan, axis=1)  # E X_k(n)
    second = np.cumsum(squared, axis=1)  # E X_k(n)²
    expected = mean.sum(axis=0)
    variance = (second - mean**2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv2 = np.where(expected > 0.0, variance / np.maximum(expected, 1e-300) ** 2, np.inf)
    return CollectionsOutlook(per_loan.sum(axis=0), cv2)
