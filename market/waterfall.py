"""The priority of payments of securitisation deals: a declarative list of steps run by one engine.

A deal's waterfall is *data* (after Hastructure/absbox): an ordered tuple of `Step`s
(pay tax, pay a fee, pay capped workout costs, pay a tranche's interest or principal, top up the
liquidity reserve, pay the residual). `run_waterfall` interprets such a list for ``n`` deals at
once: it loops over steps, never over deals. A scenario names its priority of payments
(``PRIORITIES``: sequential, interest first, pro rata until a trigger) or lists its own steps, and
the trustee routes each step's money to the role ``payee`` names. The engine knows nothing of Mesa
or agents. Money is in CNY bn, time in quarters, rates are annual decimals.

Semantics of one quarter, per deal:

- *Trigger.* Before any payment, ``accelerated |= cumulative + collections < trigger_ratio ·
  expected_cumulative``; a triggered deal stays triggered and is paid by the ``accelerated`` list,
  the others by the ``sequential`` list. ``cumulative_collections`` is then updated.
- *Available cash* is the quarter's collections; at legal final maturity (``final``) the whole
  reserve is released into it first (counted in ``reserve_drawn``), so a deal ends with no reserve.
- Each step pays ``min(due, available)`` from available cash, in list order, where due is:
  ``tax``: ``taxes_due``; ``fee X``: ``fees_due[X]`` (0 if absent); ``capped_cost``:
  ``min(disposal_costs, cost_cap)`` (costs above the cap are the servicer's, not the deal's);
  ``interest T``: ``balance[T]·coupon[T]/4 + interest_shortfall[T]``, the coupon accrued on the
  balance at the start of the quarter plus interest carried unpaid (carried, never compounded);
  ``principal T``: the whole balance (pass-through: NPL deals amortise from whatever is collected);
  ``reserve_topup``: ``reserve_target − reserve`` (0 at final); ``residual T``: all available cash,
  which reduces T's notional balance (floored at 0) but is not capped by it;
  ``pro_rata_principal T1+T2``: the tranches' balances together, what is paid shared in proportion
  to each balance and reported as each tranche's ``principal``.
- *Credit support, senior tranche only.* What available cash leaves unpaid of senior interest (and,
  at final, of senior principal, alone or in a pro-rata step) is drawn from the reserve, then from
  the guarantee, up to
  ``guarantee_available`` for the quarter. No other step draws on either.
- *Final maturity.* Balances still outstanding after the whole list are written off
  (``principal_written_off``, the investors' loss; for the residual tranche, its shortfall against
  notional) and set to 0; unpaid interest is reported in ``interest_unpaid`` and cleared.
- *Conservation.* For every deal, ``paid_out() + cash_left == collections + reserve_drawn +
  guarantee_drawn − reserve_added``; ``cash_left`` is zero when the list ends with a residual step.
  No payment, balance or reserve is ever negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TRANCHES: tuple[str, ...] = ("senior", "mezz", "sub")
SENIOR = TRANCHES[0]

StepKind = Literal[
    "tax",
    "fee",
    "capped_cost",
    "interest",
    "principal",
    "pro_rata_principal",
    "reserve_topup",
    "residual",
]
_TRANCHE_KINDS = ("interest", "principal", "residual")
_UNTARGETED_KINDS = ("tax", "capped_cost", "reserve_topup")
_PRO_RATA = "pro_rata_principal"


@dataclass(frozen=True)
class Step:
    """One action of a priority of payments.

    Attributes:
        kind: what the step pays.
        target: the tranche for ``interest``/``principal``/``residual``, the fee name for ``fee``,
            the tranches sharing principal for ``pro_rata_principal`` (``"senior+mezz"``: each is
            paid in proportion to its balance), empty otherwise.
    """

    kind: StepKind
    target: str = ""

    def __post_init__(self) -> None:
        if self.kind == _PRO_RATA:
            parts = self.target.split("+")
            if len(parts) < 2 or len(set(parts)) != len(parts) or not set(parts) <= set(TRANCHES):
                raise ValueError(
                    f"{_PRO_RATA} step: target must join two or more of {TRANCHES} with '+'"
                )
        elif self.kind in _TRANCHE_KINDS:
            if self.target not in TRANCHES:
                raise ValueError(f"{self.kind} step: target must be one of {TRANCHES}")
        elif self.kind == "fee":
            if not self.target:
                raise ValueError("fee step: target must name the fee, e.g. 'trustee'")
        elif self.kind in _UNTARGETED_KINDS:
            if self.target:
                raise ValueError(f"{self.kind} step takes no target, got {self.target!r}")
        else:
            allowed = (*_TRANCHE_KINDS, _PRO_RATA, "fee", *_UNTARGETED_KINDS)
            raise ValueError(f"unknown step kind {self.kind!r}; allowed: {allowed}")

    @property
    def key(self) -> tuple[str, str]:
        """The ``(kind, target)`` key of the step."""
        return (self.kind, self.target)

    @property
    def tranches(self) -> tuple[str, ...]:
        """The tranches a tranche step pays (several for a pro-rata step, none for the others)."""
        if self.kind == _PRO_RATA:
            return tuple(self.target.split("+"))
        return (self.target,) if self.kind in _TRANCHE_KINDS else ()

    @property
    def keys(self) -> tuple[tuple[str, str], ...]:
        """The ``(kind, target)`` keys under which the step's payments are reported: a pro-rata
        step reports each tranche's share as that tranche's ``principal``."""
        if self.kind == _PRO_RATA:
            return tuple(("principal", t) for t in self.tranches)
        return ((self.kind, self.target),)

    @classmethod
    def parse(cls, text: str) -> Step:
        """A step from its text form in a scenario file: ``"tax"``, ``"fee trustee"``,
        ``"interest senior"``, ``"pro_rata_principal senior+mezz"``."""
        kind, _, target = text.strip().partition(" ")
        return cls(kind, target.strip())  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.kind} {self.target}".strip()


# The normal priority of payments (docs/ODD.md): taxes, senior fees and capped workout costs, then
# the tranches by seniority, the reserve, the subordinated servicer incentive fee, the residual.
SEQUENTIAL: tuple[Step, ...] = (
    Step("tax"),
    Step("fee", "trustee"),
    Step("fee", "servicer_base"),
    Step("fee", "guarantee_fee"),
    Step("capped_cost"),
    Step("interest", "senior"),
    Step("principal", "senior"),
    Step("interest", "mezz"),
    Step("principal", "mezz"),
    Step("reserve_topup"),
    Step("fee", "servicer_incentive"),
    Step("residual", "sub"),
)

# After a trigger: every unit of cash after senior costs retires the senior tranche before the
# mezzanine sees interest, and the reserve is no longer replenished. (With pass-through principal,
# SEQUENTIAL already pays mezzanine interest only once the senior is repaid; the lists then differ
# in the reserve top-up, and in whatever a regime changes in either.)
ACCELERATED: tuple[Step, ...] = tuple(s for s in SEQUENTIAL if s.kind != "reserve_topup")

# Interest first: every rated tranche's interest before any principal (the mezzanine is paid its
# coupon while the senior amortises); after a trigger, ACCELERATED.
INTEREST_FIRST: tuple[Step, ...] = (
    *SEQUENTIAL[:5],
    Step("interest", "senior"),
    Step("interest", "mezz"),
    Step("principal", "senior"),
    Step("principal", "mezz"),
    *SEQUENTIAL[9:],
)

# Pro rata until a trigger: interest first, then principal shared by senior and mezzanine in
# proportion to their balances; after a trigger the deal turns sequential (ACCELERATED).
PRO_RATA: tuple[Step, ...] = (
    *INTEREST_FIRST[:7],
    Step(_PRO_RATA, "senior+mezz"),
    *INTEREST_FIRST[9:],
)

# The priorities of payments a scenario can name (``securitisation.waterfall``): the list before
# and the list after the performance trigger.
PRIORITIES: dict[str, tuple[tuple[Step, ...], tuple[Step, ...]]] = {
    "sequential": (SEQUENTIAL, ACCELERATED),
    "interest_first": (INTEREST_FIRST, ACCELERATED),
    "pro_rata": (PRO_RATA, ACCELERATED),
}

# Who is paid each step's money, by step kind (fees by fee name): the roles a deal's trustee routes
# payments to. "holders" are the holders of the step's tranche; "" stays in the deal (the reserve).
PAYEES: dict[str, str] = {
    "tax": "government",
    "capped_cost": "service_providers",
    "interest": "holders",
    "principal": "holders",
    "residual": "holders",
    "reserve_topup": "",
}
FEE_PAYEES: dict[str, str] = {
    "trustee": "service_providers",
    "servicer_base": "servicer",
    "servicer_incentive": "servicer",
    "guarantee_fee": "guarantor",
}


def payee(key: tuple[str, str]) -> str:
    """The role paid a step's money, for a ``(kind, target)`` payment key."""
    kind, target = key
    return FEE_PAYEES[target] if kind == "fee" else PAYEES[kind]


def parse_priority(steps: list[str], name: str) -> tuple[Step, ...]:
    """A priority of payments from its text form (``["tax", "fee trustee", ...]``): every step
    valid, every fee one the trustee knows how to pay, and one residual step, last (so no cash is
    left in the deal).

    Raises:
        ValueError: naming the list and what is wrong.
    """
    parsed = []
    for text in steps:
        try:
            step = Step.parse(text)
        except ValueError as exc:
            raise ValueError(f"{name}: {text!r}: {exc}") from None
        if step.kind == "fee" and step.target not in FEE_PAYEES:
            raise ValueError(f"{name}: unknown fee {step.target!r}; fees: {', '.join(FEE_PAYEES)}")
        parsed.append(step)
    if not parsed or parsed[-1].kind != "residual" or sum(s.kind == "residual" for s in parsed) > 1:
        raise ValueError(f"{name}: must end with one residual step, e.g. 'residual sub'")
    return tuple(parsed)


def priority(choice: str | tuple[list[str], list[str]]) -> tuple[tuple[Step, ...], ...]:
    """The (before-trigger, after-trigger) step lists of a named priority of payments
    (``PRIORITIES``) or of two lists in text form."""
    if isinstance(choice, str):
        return PRIORITIES[choice]
    normal, after_trigger = choice
    return parse_priority(normal, "normal"), parse_priority(after_trigger, "after_trigger")


def payment_keys(*lists: tuple[Step, ...]) -> list[tuple[str, str]]:
    """Every payment key of the lists, in the order of their steps (each once)."""
    return list(dict.fromkeys(key for steps in lists for step in steps for key in step.keys))


def _per_tranche(n: int) -> dict[str, np.ndarray]:
    return {t: np.zeros(n) for t in TRANCHES}


@dataclass
class DealBook:
    """State of ``n`` deals as arrays over deals; `run_waterfall` mutates it in place.

    Attributes:
        balance: outstanding principal per tranche (for ``sub``, a notional paid down by the
            residual).
        coupon: annual coupon per tranche (0 for ``sub``).
        interest_shortfall: unpaid interest carried to the next quarter, per tranche.
        reserve: cash in the liquidity reserve account.
        reserve_target: level the ``reserve_topup`` step refills the reserve to.
        accelerated: trigger state; once True it stays True.
        cumulative_collections: collections received to date.
        expected_cumulative: the deal's expected collections to date, kept current by the caller.
    """

    balance: dict[str, np.ndarray] = field(default_factory=lambda: _per_tranche(0))
    coupon: dict[str, np.ndarray] = field(default_factory=lambda: _per_tranche(0))
    interest_shortfall: dict[str, np.ndarray] = field(default_factory=lambda: _per_tranche(0))
    reserve: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reserve_target: np.ndarray = field(default_factory=lambda: np.zeros(0))
    accelerated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    cumulative_collections: np.ndarray = field(default_factory=lambda: np.zeros(0))
    expected_cumulative: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        """Number of deals in the book."""
        return len(self.reserve)

    def append(
        self,
        *,
        senior: float,
        mezz: float = 0.0,
        sub: float = 0.0,
        senior_coupon: float = 0.0,
        mezz_coupon: float = 0.0,
        sub_coupon: float = 0.0,
        reserve: float = 0.0,
        reserve_target: float | None = None,
        expected_cumulative: float = 0.0,
    ) -> int:
        """Add a newly issued deal and return its index.

        Args:
            senior: senior tranche principal at issue.
            mezz: mezzanine tranche principal at issue (0 when the deal has none).
            sub: subordinated tranche notional at issue.
            senior_coupon: senior annual coupon (decimal).
            mezz_coupon: mezzanine annual coupon (decimal).
            sub_coupon: subordinated annual coupon, normally 0 (it takes the residual).
            reserve: cash placed in the liquidity reserve at closing.
            reserve_target: reserve level to refill to; defaults to the initial reserve.
            expected_cumulative: expected collections to date (0 at issue).

        Returns:
            The index of the deal in every array of the book.
        """
        target = reserve if reserve_target is None else reserve_target
        values = {
            "senior": senior,
            "mezz": mezz,
            "sub": sub,
            "senior_coupon": senior_coupon,
            "mezz_coupon": mezz_coupon,
            "sub_coupon": sub_coupon,
            "reserve": reserve,
            "reserve_target": target,
            "expected_cumulative": expected_cumulative,
        }
        for name, value in values.items():
            if not (np.isfinite(value) and value >= 0.0):
                raise ValueError(f"DealBook.append: {name} must be finite and >= 0, got {value}")
        coupons = {"senior": senior_coupon, "mezz": mezz_coupon, "sub": sub_coupon}
        for t in TRANCHES:
            self.balance[t] = np.append(self.balance[t], float(values[t]))
            self.coupon[t] = np.append(self.coupon[t], float(coupons[t]))
            self.interest_shortfall[t] = np.append(self.interest_shortfall[t], 0.0)
        self.reserve = np.append(self.reserve, float(reserve))
        self.reserve_target = np.append(self.reserve_target, float(target))
        self.accelerated = np.append(self.accelerated, False)
        self.cumulative_collections = np.append(self.cumulative_collections, 0.0)
        self.expected_cumulative = np.append(self.expected_cumulative, float(expected_cumulative))
        return self.n - 1


def new_deal_book(n: int = 0) -> DealBook:
    """A book of ``n`` empty deals (zero balances, coupons and reserves); usually ``n = 0``."""
    return DealBook(
        balance=_per_tranche(n),
        coupon=_per_tranche(n),
        interest_shortfall=_per_tranche(n),
        reserve=np.zeros(n),
        reserve_target=np.zeros(n),
        accelerated=np.zeros(n, dtype=bool),
        cumulative_collections=np.zeros(n),
        expected_cumulative=np.zeros(n),
    )


@dataclass
class PeriodInputs:
    """What one quarter brings to every deal: arrays of shape ``(n,)`` (scalars broadcast).

    Attributes:
        collections: cash the servicer collected on the pool this quarter (>= 0).
        taxes_due: taxes owed by the SPV this quarter.
        fees_due: amount owed per fee name (``trustee``, ``servicer_base``, ...).
        disposal_costs: workout costs the servicer claims.
        cost_cap: cap on the disposal costs paid with priority this quarter.
        guarantee_available: the most the senior guarantee can pay this quarter (0 = none).
        final: legal final maturity this quarter: all principal is due.
        trigger_ratio: accelerate when cumulative collections fall below this share of the
            expected ones (0 = never).
    """

    collections: np.ndarray
    taxes_due: np.ndarray | float = 0.0
    fees_due: dict[str, np.ndarray] = field(default_factory=dict)
    disposal_costs: np.ndarray | float = 0.0
    cost_cap: np.ndarray | float = 0.0
    guarantee_available: np.ndarray | float = 0.0
    final: np.ndarray | bool = False
    trigger_ratio: float = 0.0


@dataclass
class PeriodPayments:
    """What `run_waterfall` paid in one quarter, arrays over deals.

    Attributes:
        paid: amount paid per step ``(kind, target)``, including reserve and guarantee draws; the
            ``("reserve_topup", "")`` entry stays inside the deal (it equals ``reserve_added``).
        due: amount due per step; ``paid < due`` means the step was short.
        reserve_drawn: cash taken from the reserve (senior shortfalls, and the release at final).
        reserve_added: cash put into the reserve by the top-up step.
        guarantee_drawn: cash paid by the senior guarantee.
        residual: cash paid by residual steps (also in ``paid``).
        cash_left: cash no step claimed (zero when the list ends with a residual step).
        principal_written_off: balances written off at final maturity, per tranche.
        interest_unpaid: interest still unpaid at final maturity, per tranche (cleared).
    """

    paid: dict[tuple[str, str], np.ndarray]
    due: dict[tuple[str, str], np.ndarray]
    reserve_drawn: np.ndarray
    reserve_added: np.ndarray
    guarantee_drawn: np.ndarray
    residual: np.ndarray
    cash_left: np.ndarray
    principal_written_off: dict[str, np.ndarray]
    interest_unpaid: dict[str, np.ndarray]

    def paid_out(self) -> np.ndarray:
        """Total paid to parties outside the deal (every step but the reserve top-up)."""
        total = np.zeros_like(self.cash_left)
        for key, amount in self.paid.items():
            if key[0] != "reserve_topup":
                total = total + amount
        return total

    def tranche_cash(self, tranche: str) -> np.ndarray:
        """Cash received by a tranche's holders: interest, principal and residual."""
        total = np.zeros_like(self.cash_left)
        for (kind, target), amount in self.paid.items():
            if target == tranche and kind in _TRANCHE_KINDS:
                total = total + amount
        return total


def _vector(name: str, value: np.ndarray | float, n: int) -> np.ndarray:
    """``value`` as a fresh float array of shape ``(n,)``, checked finite and non-negative."""
    array = np.asarray(value, dtype=float)
    if array.ndim > 1 or (array.ndim == 1 and array.shape != (n,)):
        raise ValueError(f"PeriodInputs.{name}: expected shape ({n},), got {array.shape}")
    array = np.array(np.broadcast_to(array, (n,)))
    if not (np.all(np.isfinite(array)) and np.all(array >= 0.0)):
        raise ValueError(f"PeriodInputs.{name}: every value must be finite and >= 0")
    return array


def _flags(name: str, value: np.ndarray | bool, n: int) -> np.ndarray:
    """``value`` as a fresh boolean array of shape ``(n,)``."""
    array = np.asarray(value)
    if array.dtype != bool or array.ndim > 1 or (array.ndim == 1 and array.shape != (n,)):
        raise ValueError(f"PeriodInputs.{name}: expected booleans of shape ({n},)")
    return np.array(np.broadcast_to(array, (n,)))


def _checked_list(steps: tuple[Step, ...], name: str) -> tuple[Step, ...]:
    if not all(isinstance(step, Step) for step in steps):
        raise TypeError(f"{name}: a priority of payments is a sequence of Step")
    return tuple(steps)


class _Engine:
    """One quarter of the waterfall for a book: the interpreter of step lists."""

    def __init__(self, book: DealBook, inputs: PeriodInputs, keys: list[tuple[str, str]]):
        n = book.n
        self.book = book
        self.final = _flags("final", inputs.final, n)
        self.taxes = _vector("taxes_due", inputs.taxes_due, n)
        self.fees = {k: _vector(f"fees_due[{k!r}]", v, n) for k, v in inputs.fees_due.items()}
        costs = _vector("disposal_costs", inputs.disposal_costs, n)
        self.capped_cost = np.minimum(costs, _vector("cost_cap", inputs.cost_cap, n))
        self.guarantee_left = _vector("guarantee_available", inputs.guarantee_available, n)
        self.available = np.zeros(n)
        self.out = PeriodPayments(
            paid={key: np.zeros(n) for key in keys},
            due={key: np.zeros(n) for key in keys},
            reserve_drawn=np.zeros(n),
            reserve_added=np.zeros(n),
            guarantee_drawn=np.zeros(n),
            residual=np.zeros(n),
            cash_left=np.zeros(n),
            principal_written_off=_per_tranche(n),
            interest_unpaid=_per_tranche(n),
        )

    def accrue(self) -> None:
        """Add the quarter's coupon, on the opening balance, to the interest owed."""
        book = self.book
        for t in TRANCHES:
            book.interest_shortfall[t] += book.balance[t] * book.coupon[t] / 4.0

    def due(self, step: Step, rows: np.ndarray) -> np.ndarray:
        """What ``step`` is owed by each deal in ``rows``."""
        book = self.book
        match step.kind:
            case "tax":
                return self.taxes[rows]
            case "fee":
                fee = self.fees.get(step.target)
                return np.zeros(len(rows)) if fee is None else fee[rows]
            case "capped_cost":
                return self.capped_cost[rows]
            case "interest":
                return book.interest_shortfall[step.target][rows]
            case "principal":
                return book.balance[step.target][rows]
            case "reserve_topup":
                gap = np.maximum(book.reserve_target[rows] - book.reserve[rows], 0.0)
                return np.where(self.final[rows], 0.0, gap)
            case "residual":
                return self.available[rows]
        raise AssertionError(step.kind)

    def support(self, step: Step, rows: np.ndarray, unpaid: np.ndarray) -> np.ndarray:
        """Cover a senior shortfall from the reserve, then the guarantee; return the cover."""
        if step.target != SENIOR or step.kind not in ("interest", "principal"):
            return np.zeros(len(rows))
        if step.kind == "principal":
            unpaid = np.where(self.final[rows], unpaid, 0.0)
        book, out = self.book, self.out
        from_reserve = np.minimum(unpaid, book.reserve[rows])
        book.reserve[rows] -= from_reserve
        out.reserve_drawn[rows] += from_reserve
        from_guarantee = np.minimum(unpaid - from_reserve, self.guarantee_left[rows])
        self.guarantee_left[rows] -= from_guarantee
        out.guarantee_drawn[rows] += from_guarantee
        return from_reserve + from_guarantee

    def settle(self, step: Step, rows: np.ndarray, due: np.ndarray, paid: np.ndarray) -> None:
        """Book the payment against the deal's state."""
        book, out = self.book, self.out
        match step.kind:
            case "interest":
                book.interest_shortfall[step.target][rows] = np.maximum(due - paid, 0.0)
            case "principal" | "residual":
                balance = book.balance[step.target]
                balance[rows] = np.maximum(balance[rows] - paid, 0.0)
                if step.kind == "residual":
                    out.residual[rows] += paid
            case "reserve_topup":
                book.reserve[rows] += paid
                out.reserve_added[rows] += paid

    def run(self, steps: tuple[Step, ...], rows: np.ndarray) -> None:
        """Apply ``steps`` in order to the deals in ``rows``."""
        for step in steps:
            if step.kind == _PRO_RATA:
                self.run_pro_rata(step, rows)
                continue
            due = self.due(step, rows)
            from_cash = np.minimum(due, self.available[rows])
            self.available[rows] -= from_cash
            paid = from_cash + self.support(step, rows, due - from_cash)
            self.settle(step, rows, due, paid)
            self.out.due[step.key][rows] += due
            self.out.paid[step.key][rows] += paid

    def run_pro_rata(self, step: Step, rows: np.ndarray) -> None:
        """Pay the step's tranches' principal from available cash in proportion to their balances
        (the senior's shortfall at final maturity drawing on the reserve and guarantee)."""
        book, out = self.book, self.out
        balances = np.stack([book.balance[t][rows] for t in step.tranches])
        due = balances.sum(axis=0)
        from_cash = np.minimum(due, self.available[rows])
        self.available[rows] -= from_cash
        share = np.divide(balances, due, out=np.zeros_like(balances), where=due > 0.0)
        for k, tranche in enumerate(step.tranches):
            paid = share[k] * from_cash
            if tranche == SENIOR:
                paid = paid + self.support(Step("principal", SENIOR), rows, balances[k] - paid)
            book.balance[tranche][rows] = np.maximum(balances[k] - paid, 0.0)
            out.due[("principal", tranche)][rows] += balances[k]
            out.paid[("principal", tranche)][rows] += paid


def run_waterfall(
    book: DealBook,
    inputs: PeriodInputs,
    sequential: tuple[Step, ...] = SEQUENTIAL,
    accelerated: tuple[Step, ...] = ACCELERATED,
) -> PeriodPayments:
    """Pay one quarter's collections of every deal in ``book`` by priority; mutate the book.

    Args:
        book: the deals' state, updated in place (balances, shortfalls, reserve, trigger,
            cumulative collections).
        inputs: the quarter's collections, amounts due and guarantee capacity per deal.
        sequential: priority of payments of deals whose trigger has not been hit.
        accelerated: priority of payments of triggered deals.

    Returns:
        The quarter's payments per step and the reserve, guarantee and write-off movements.
    """
    sequential = _checked_list(sequential, "sequential")
    accelerated = _checked_list(accelerated, "accelerated")
    keys = payment_keys(sequential, accelerated)
    engine = _Engine(book, inputs, keys)
    collections = _vector("collections", inputs.collections, book.n)
    unknown = set(engine.fees) - {s.target for s in sequential + accelerated if s.kind == "fee"}
    if unknown:
        raise ValueError(f"PeriodInputs.fees_due: no step pays {sorted(unknown)}")

    expected = np.asarray(inputs.trigger_ratio, dtype=float) * book.expected_cumulative
    book.accelerated |= book.cumulative_collections + collections < expected
    book.cumulative_collections += collections
    engine.accrue()

    out = engine.out
    released = np.where(engine.final, book.reserve, 0.0)
    book.reserve -= released
    out.reserve_drawn += released
    engine.available = collections + released

    engine.run(sequential, np.flatnonzero(~book.accelerated))
    engine.run(accelerated, np.flatnonzero(book.accelerated))
    out.cash_left = engine.available

    final = engine.final
    for t in TRANCHES:
        out.principal_written_off[t] = np.where(final, book.balance[t], 0.0)
        out.interest_unpaid[t] = np.where(final, book.interest_shortfall[t], 0.0)
        book.balance[t][final] = 0.0
        book.interest_shortfall[t][final] = 0.0
    return out


def realised_yield(cashflows: np.ndarray, price: float) -> float:
    """Annualised internal rate of return of a tranche bought at ``price`` at t = 0.

    ``cashflows[t]`` is received at the end of quarter ``t`` (``cashflows[0]``, usually 0, at
    purchase). The quarterly rate ``r`` solves ``−price + Σ cashflows[t] / (1 + r)^t = 0``; with
    non-negative cash flows the NPV is increasing in the discount factor ``x = 1 / (1 + r)``, so the
    root is unique and found by bisection on ``x`` to machine precision. Returns ``(1 + r)^4 − 1``:
    −1 for a total loss, ``inf`` when the purchase is repaid at once.

    Args:
        cashflows: quarterly cash flows to the holder, all >= 0.
        price: price paid at t = 0, > 0.

    Returns:
        The annual yield with quarterly compounding (decimal).
    """
    flows = np.asarray(cashflows, dtype=float)
    if flows.ndim != 1 or not np.all(np.isfinite(flows)) or np.any(flows < 0.0):
        raise ValueError("realised_yield: cashflows must be a 1-d array of finite values >= 0")
    if not (np.isfinite(price) and price > 0.0):
        raise ValueError(f"realised_yield: price must be finite and > 0, got {price}")
    net = flows.copy()
    net[0] -= price
    if net[0] >= 0.0:
        return float("inf")
    if not np.any(net[1:] > 0.0):
        return -1.0
    coefficients = net[::-1]  # np.polyval wants the highest power first

    def npv(x: float) -> float:
        return float(np.polyval(coefficients, x))

    low, high = 0.0, 1.0
    while npv(high) < 0.0:
        low, high = high, 2.0 * high
    for _ in range(2000):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if npv(middle) < 0.0:
            low = middle
        else:
            high = middle
    x = 0.5 * (low + high)
    return float(x**-4 - 1.0)
