"""The compiled loan-book loops give the same bytes as their numpy twins.

``nplsim.market.kernels`` compiles (with numba) the two whole-book updates that numpy can only do
pass by pass: servicing every performing loan and writing re-lent slots. Books of
``COMPILE_FROM_LOANS`` slots or more use them; smaller books use the numpy code. Here the same
book is advanced both ways, quarter after quarter, and every array must agree exactly, as must a
whole model run.
"""

from __future__ import annotations

import numpy as np
import pytest

from nplsim import NPLMarketModel
from nplsim.market import kernels
from nplsim.market.loans import SEGMENTS, LoanBook, Status

pytestmark = pytest.mark.skipif(kernels.load() is None, reason="numba not installed")

ARRAYS = ("holder", "originator", "segment", "principal", "carrying", "rate", "remaining_q",
          "collateral", "collateral_share", "threshold", "sqrt_rho", "sqrt_one_minus_rho",
          "status", "default_q", "recovered", "quality")  # fmt: skip


def _book(compiled: bool, n: int, seed: int) -> LoanBook:
    from tests.test_loans import _segments

    rng = np.random.default_rng(seed)
    book = LoanBook(n, _segments(), compiled=compiled)
    book.originate(
        slice(None), np.repeat([1, 3, 2], [n // 3, n // 3, n - 2 * (n // 3)]),
        rng.integers(0, len(SEGMENTS), n), rng.lognormal(0, 1, n), np.array([1, 0.7, 1.4, 2.0]),
        0.0435, rng.random(n), np.ceil(rng.random(n) * 12) / 12,
    )  # fmt: skip
    book.mark_npl(np.flatnonzero(rng.random(n) < 0.05), 0)
    return book


def _advance(book: LoanBook, rng: np.random.Generator, quarter: int) -> dict[str, np.ndarray]:
    served = book.service_performing(5)
    went_bad = book.default(quarter, rng.normal(), rng.random(book.n))
    out = book.work_out(quarter, np.full(5, 0.2), np.full(5, 0.05), rng.random(book.n), 12)
    free = book.free_slots()
    book.originate(free, None, rng.integers(0, len(SEGMENTS), free.size),
                   rng.lognormal(0, 1, free.size), np.array([1, 0.7, 1.4, 2.0]), 0.04,
                   rng.random(free.size), np.ones(free.size))  # fmt: skip
    return {"interest": served.interest, "paid": served.principal_paid,
            "matured": served.matured, "defaulted": went_bad, "closed": out.slots,
            "recovery": out.recovery}  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_loops_and_numpy_twins_write_identical_books(seed):
    books = [_book(compiled, 30_000, seed) for compiled in (True, False)]
    rngs = [np.random.default_rng(seed + 100) for _ in books]
    for quarter in range(1, 16):
        flows = [_advance(book, rng, quarter) for book, rng in zip(books, rngs, strict=True)]
        for key in flows[0]:
            assert flows[0][key].tobytes() == flows[1][key].tobytes(), (quarter, key)
        for name in ARRAYS:
            a, b = (getattr(book, name) for book in books)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (quarter, name)
    assert (books[0].status == Status.RESOLVED).sum() == 0  # every freed slot was re-lent


def test_a_model_run_is_byte_identical_with_and_without_the_compiled_loops(monkeypatch):
    frames = []
    for compile_from in (1_000, 10**9):  # 5,000 loans: compiled, then numpy
        monkeypatch.setattr(kernels, "COMPILE_FROM_LOANS", compile_from)
        model = NPLMarketModel(scenario="restart_2016", rng=4, n_loans=5_000, quarters=12)
        assert (model.loans._kernels is not None) == (compile_from == 1_000)
        while model.running:
            model.step()
        frames.append((model.model_frame(), model.deal_frame(), model.loans.principal.copy()))
    (model_a, deals_a, book_a), (model_b, deals_b, book_b) = frames
    assert model_a.equals(model_b) and deals_a.equals(deals_b)
    assert book_a.tobytes() == book_b.tobytes()


def test_compiled_originate_takes_single_values_like_the_numpy_branch():
    from tests.test_loans import _segments

    books = [LoanBook(10, _segments(), compiled=c) for c in (True, False)]
    for book in books:
        book.originate(np.arange(10), 0, 2, 1.0, np.ones(1), 0.04, np.full(10, 0.5), 1.0)
    for name in ARRAYS:
        assert getattr(books[0], name).tobytes() == getattr(books[1], name).tobytes(), name
