"""Compiled single-pass loops for the loan book's two whole-book updates.

Servicing every performing loan and writing re-lent slots each touch a dozen arrays. In numpy
every expression is its own pass over the book with its own temporary, so the quarter is bound by
memory traffic rather than arithmetic; a loop that reads each slot once and writes it once cannot
be written in numpy. The loops here are compiled with numba. Each has a numpy twin in
``nplsim.market.loans`` that performs the same floating-point operations in the same order, so
both give byte-identical books (``tests/test_kernels.py`` runs both on the same books).

Compiling pays only for big books: numba's import and first call cost about 0.4 s a process, and
the loops save about 7 ms a quarter at a million loans. ``load()`` therefore compiles (or loads
from numba's on-disk cache) only when a book of ``COMPILE_FROM_LOANS`` slots or more asks for it,
and returns None where numba is not installed or ``NPLSIM_PURE_NUMPY=1`` is set.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

COMPILE_FROM_LOANS = 250_000
PERFORMING, RESOLVED = 0, 2  # market.loans.Status codes (kept here to avoid an import cycle)
_compiled: SimpleNamespace | bool | None = None  # None = not tried yet; False = unavailable


def load() -> SimpleNamespace | None:
    """The compiled loops (``service``, ``write_loans``), or None if they are unavailable."""
    global _compiled
    if _compiled is None:
        try:
            if os.environ.get("NPLSIM_PURE_NUMPY") == "1":
                raise ImportError("pure numpy requested")
            from numba import njit
        except ImportError:
            _compiled = False
        else:
            compile_ = njit(cache=True, nogil=True)
            _compiled = SimpleNamespace(
                service=compile_(service), write_loans=compile_(write_loans)
            )
    return _compiled or None


def service(status, principal, carrying, rate, remaining_q, annual_interest, paid, matured):
    """One quarter of interest and equal-principal amortisation of every performing slot.

    Writes ``annual_interest`` (principal × annual rate) and ``paid`` (principal / quarters
    left) for every slot (0 outside performing loans), amortises ``principal`` and ``carrying``,
    counts down ``remaining_q`` and closes the loans that reach maturity (principal and carrying
    0, status resolved). Their slots go into ``matured``; returns how many.
    """
    n_matured = 0
    for i in range(status.size):
        if status[i] != PERFORMING:
            annual_interest[i] = 0.0
            paid[i] = 0.0
            continue
        p = principal[i]
        annual_interest[i] = p * rate[i]
        instalment = p / remaining_q[i]
        paid[i] = instalment
        left = remaining_q[i] - 1
        remaining_q[i] = left
        if left <= 0:
            principal[i] = 0.0
            carrying[i] = 0.0
            status[i] = RESOLVED
            matured[n_matured] = i
            n_matured += 1
        else:
            principal[i] = p - instalment
            carrying[i] = carrying[i] - instalment
    return n_matured


def write_loans(slots, originator, segment, principal, secured_draw, remaining_share,
                benchmark_rate, spread, maturity_q, secured_share, collateral_cover,
                threshold, sqrt_rho, sqrt_one_minus_rho, n_segments,
                book_holder, book_segment, book_principal, book_carrying, book_rate,
                book_remaining_q, book_collateral, book_collateral_share, book_threshold,
                book_sqrt_rho, book_sqrt_one_minus_rho, book_status, book_default_q,
                book_recovered):  # fmt: skip
    """Write new performing loans into ``slots`` of the book arrays (``book_*``).

    Per-segment terms come from the segment tables; default parameters from the tables indexed
    by ``originator × n_segments + segment``.
    """
    for k in range(slots.size):
        i = slots[k]
        s = segment[k]
        pair = originator[k] * n_segments + s
        book_holder[i] = originator[k]
        book_segment[i] = s
        book_principal[i] = principal[k]
        book_carrying[i] = principal[k]
        book_rate[i] = benchmark_rate + spread[s]
        book_remaining_q[i] = max(1.0, np.ceil(remaining_share[k] * maturity_q[s] - 1e-9))
        if secured_draw[k] < secured_share[s]:
            book_collateral[i] = principal[k] * collateral_cover[s]
        else:
            book_collateral[i] = 0.0
        book_collateral_share[i] = 1.0
        book_threshold[i] = threshold[pair]
        book_sqrt_rho[i] = sqrt_rho[pair]
        book_sqrt_one_minus_rho[i] = sqrt_one_minus_rho[pair]
        book_status[i] = PERFORMING
        book_default_q[i] = -1
        book_recovered[i] = 0.0
