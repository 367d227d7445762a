"""The loan book: every loan of every holder in one struct-of-arrays, advanced a quarter at a time.

Performing loans pay interest and amortise; defaults follow a one-factor Vasicek model driven by the
systematic factor ``Z_t``; non-performing loans are worked out with a recovery hazard set by the
holder's workout skill and the regime's enforcement efficiency, recover less the longer they take
(facts: recovery-timing), and are written off at a maximum age. Freed slots are re-lent by the
originating bank. Everything is whole-array numpy; aggregates per holder use ``np.bincount``.
Money is in CNY bn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy.special import ndtr, ndtri

from nplsim.market import kernels
from nplsim.market.slotdraws import slot_uniforms

SEGMENTS: tuple[str, ...] = (
    "gov_directed_soe",
    "commercial_soe",
    "private",
    "retail_card",
    "mortgage",
    "power_plant",
)
SEGMENT_CODE = {name: code for code, name in enumerate(SEGMENTS)}

# facts: recovery-timing: undiscounted recovery by years to resolution, relative to <= 1 year
# (84.2%, 72.7%, 62.8%, 59.8%, 59.1%, 43.7% for <=1, 1-2, 2-3, 3-4, 4-5, >5 years).
_RECOVERY_BY_YEAR = np.array([84.2, 72.7, 62.8, 59.8, 59.1, 43.7]) / 84.2
DEFAULT_BORROWER_BALANCE_CNY = 1e6  # a segment table without borrower balances (tests)
# Disclosure noise is addressed by slot and default quarter: quarters from -SIGNAL_LANE_OFFSET (the
# oldest opening NPL) to SIGNAL_LANES - SIGNAL_LANE_OFFSET - 1 (beyond the longest horizon).
SIGNAL_LANES = 512
SIGNAL_LANE_OFFSET = 64


def collateral_realisation(enforcement_efficiency: float) -> float:
    """Share of post-haircut collateral value realised under the regime's enforcement: weak
    enforcement (below the reference of 1) realises less, ``√e``; better enforcement cannot
    realise more than the collateral is worth (assumption; debt-enforcement studies find recovery
    rates rise with the efficiency of enforcement)."""
    return float(np.sqrt(min(enforcement_efficiency, 1.0)))


def resolution_probability(hazard: np.ndarray | float) -> np.ndarray | float:
    """Chance that an NPL is resolved within a quarter at quarterly resolution ``hazard``."""
    return -np.expm1(-np.asarray(hazard)) if np.ndim(hazard) else float(-np.expm1(-hazard))


def recovery_timing_factor(age_q: np.ndarray) -> np.ndarray:
    """Recovery relative to a resolution within a year, for NPLs aged ``age_q`` quarters."""
    years = np.minimum(np.asarray(age_q) // 4, len(_RECOVERY_BY_YEAR) - 1)
    return _RECOVERY_BY_YEAR[years]


class Status(IntEnum):
    """Life-cycle state of a loan slot."""

    PERFORMING = 0
    NPL = 1
    RESOLVED = 2  # repaid at maturity or worked out: the slot is free for new lending
    WRITTEN_OFF = 3  # charged off at the maximum workout age: the slot is free too


@dataclass(frozen=True)
class SegmentTable:
    """Calibration of each borrower segment, as arrays indexed by segment code.

    Attributes:
        pd_annual: through-the-cycle annual probability of default of a newly originated loan.
        spread: lending rate over the benchmark rate (annual, decimal).
        maturity_q: contractual maturity in quarters.
        secured_share: probability that a new loan is collateralised.
        collateral_cover: collateral value / principal at origination for secured loans.
        haircut: share of collateral value lost in enforcement.
        unsecured_recovery: share of the uncollateralised claim recovered in a workout.
        correlation: Vasicek asset correlation at the one-year horizon (NaN = IRB corporate
            formula; facts: irb-correlation).
        factor_sd: s.d. of this economy's one-year systematic factor relative to the
            through-the-cycle factor the IRB correlations are calibrated to (1 = Basel's).
        borrower_balance: average balance of one borrower's loans, CNY (None: one borrower per
            CNY 1 m), to count the real borrowers behind a slot.
    """

    pd_annual: np.ndarray
    spread: np.ndarray
    maturity_q: np.ndarray
    secured_share: np.ndarray
    collateral_cover: np.ndarray
    haircut: np.ndarray
    unsecured_recovery: np.ndarray
    correlation: np.ndarray
    factor_sd: float = 1.0
    borrower_balance: np.ndarray | None = None


def asset_correlation(pd_annual: np.ndarray, segment_correlation: np.ndarray) -> np.ndarray:
    """Basel IRB asset correlation: the corporate formula where the segment gives none.

    facts: irb-correlation: R = 0.12 w + 0.24 (1 - w), w = (1 - e^(-50 PD)) / (1 - e^(-50)).
    """
    w = (1.0 - np.exp(-50.0 * pd_annual)) / (1.0 - np.exp(-50.0))
    corporate = 0.12 * w + 0.24 * (1.0 - w)
    return np.where(np.isnan(segment_correlation), corporate, segment_correlation)


def effective_correlation(rho: np.ndarray, factor_sd: float) -> np.ndarray:
    """Correlation with a unit-variance factor that gives the same conditional PDs, at the same
    unconditional PD, as correlation ``rho`` with a factor of s.d. ``factor_sd``:
    ``ρσ² / (1 − ρ + ρσ²)`` (Vasicek: the asset value ``√ρ·σX + √(1−ρ)·ε`` standardised)."""
    scaled = rho * factor_sd**2
    return scaled / (1.0 - rho + scaled)


@dataclass(frozen=True)
class Servicing:
    """A quarter of performing-loan service, summed by holder account (CNY bn)."""

    interest: np.ndarray  # interest paid, per account
    principal_paid: np.ndarray  # amortisation plus repayment at maturity, per account
    matured: np.ndarray  # slots repaid at maturity this quarter


@dataclass(frozen=True)
class Workout:
    """The non-performing loans closed this quarter, one entry per closed slot."""

    slots: np.ndarray  # closed slots (resolved or written off), and slots charged off but pursued
    written_off: np.ndarray  # bool: written off at the maximum age (else resolved)
    recovery: np.ndarray  # gross cash recovered (0 for a write-off)
    cost: np.ndarray  # workout cost paid to service providers
    face: np.ndarray  # principal closed
    carrying: np.ndarray  # holder's carrying value closed

    @property
    def resolved_slots(self) -> np.ndarray:
        return self.slots[~self.written_off]

    @property
    def written_off_slots(self) -> np.ndarray:
        return self.slots[self.written_off]


class LoanBook:
    """All loans in the economy, one slot per loan, held in parallel numpy arrays.

    Attributes (arrays of length ``n``):
        holder: ledger account of the current holder (bank, AMC, SPV).
        originator: ledger account of the bank that originated the loan (re-lends the slot).
        segment: borrower segment code (see ``SEGMENTS``).
        principal: outstanding principal, CNY bn.
        carrying: holder's book value (gross principal for the originator, price paid for a buyer).
        rate: annual contractual interest rate.
        remaining_q: quarters to maturity.
        collateral: collateral value at origination, CNY bn (0 = unsecured).
        collateral_share: share of the collateral the holder can enforce (1 for the lender; less
            after a transfer where the law does not let the collateral follow the claim).
        threshold, sqrt_rho: one-year Vasicek default threshold ``Φ⁻¹(PD)`` and ``√ρ`` (the
            effective correlation for this economy's factor) of each loan.
        status: ``Status`` code.
        default_q: quarter the loan became non-performing (-1 if never).
        recovered: cumulative gross cash recovered on the loan since it went bad.
        written_off_claim: the principal of an NPL its holder has charged off (principal and
            carrying value 0) but still pursues; the claim recoveries are computed on.
        quality: the borrower's workout quality (multiplies recoveries, mean 1), drawn at
            default; the originating bank knows it, outsiders see only what disclosure reveals.

    ``collateral_realisation`` (scalar, ≤ 1) is the share of post-haircut collateral value that
    enforcement actually realises; weak courts realise less (set by the model from the regime).
    """

    def __init__(self, n: int, segments: SegmentTable, compiled: bool | None = None):
        """``compiled``: use the compiled loops of ``nplsim.market.kernels`` (None: for books of
        ``kernels.COMPILE_FROM_LOANS`` slots or more, where they pay). Results are the same."""
        self.n = n
        use = n >= kernels.COMPILE_FROM_LOANS if compiled is None else compiled
        self._kernels = kernels.load() if use else None
        self.segments = segments
        self.holder = np.zeros(n, dtype=np.intp)  # intp: np.bincount needs no cast
        self.originator = np.zeros(n, dtype=np.intp)
        self.segment = np.zeros(n, dtype=np.int8)
        self.principal = np.zeros(n)
        self.carrying = np.zeros(n)
        self.rate = np.zeros(n)
        self.remaining_q = np.zeros(n, dtype=np.int16)
        self.collateral = np.zeros(n)
        self.collateral_share = np.ones(n)
        self.threshold = np.zeros(n)
        self.sqrt_rho = np.zeros(n)
        self.sqrt_one_minus_rho = np.ones(n)
        self.status = np.full(n, Status.RESOLVED, dtype=np.int8)
        self.default_q = np.full(n, -1, dtype=np.int16)
        self.recovered = np.zeros(n)
        self.quality = np.ones(n)
        # principal a holder has charged off its books but still pursues (0 for every other slot)
        self.written_off_claim = np.zeros(n)
        self.collateral_realisation = 1.0
        # What outsiders learn about a borrower's quality (``public_quality``): the log-s.d. of
        # quality and the key of the stream of disclosure noise (set by the model).
        self.quality_dispersion = 0.0
        self.signal_key = np.uint64(0)
        self._signal = np.zeros(n)  # each slot's disclosure noise, for the NPL of _signal_q
        self._signal_q = np.full(n, np.iinfo(np.int16).min, dtype=np.int16)
        # Slots of all NPLs, kept up to date by the operations that change the set (None =
        # recompute), and the same slots grouped by holder (None after any status or holder
        # change).
        self._npl_index: np.ndarray | None = None
        self._npl_by_holder: dict[int, np.ndarray] | None = None
        self._free_index: np.ndarray | None = None  # free slots, in slot order (None = recompute)
        self._annual_interest: np.ndarray | None = None  # servicing buffers (compiled path)
        self._paid: np.ndarray | None = None
        # Performing loans stay with their originator (loans change hands only once
        # non-performing), so sums over performing loans run over each originator's contiguous
        # slots; ``_runs`` caches those runs (start, account), ``_performing_sold`` records a
        # transfer of a performing loan, after which sums fall back to the holder array.
        self._runs: tuple[np.ndarray, np.ndarray] | None = None
        self._performing_sold = False
        # Upper bounds of Φ⁻¹(PD_q)/√(1−ρ) and of √ρ/√(1−ρ) over every loan ever written: they
        # bound each loan's default barrier for a given Z_t (see ``default``).
        self._barrier_level_max = -np.inf
        self._barrier_slope_min = np.inf
        self._barrier_slope_max = -np.inf

    # ------------------------------------------------------------------ origination
    def originate(
        self,
        slots: np.ndarray | slice,
        originator: np.ndarray | None,
        segment: np.ndarray,
        principal: np.ndarray,
        pd_multiplier_by_account: np.ndarray,
        benchmark_rate: float,
        secured_draw: np.ndarray,
        remaining_share: np.ndarray,
    ) -> None:
        """Write new performing loans into ``slots``.

        Args:
            slots: indices of free slots to fill (a slice to write the whole book at once).
            originator: lending bank's account for each slot; None when each slot's own
                originator re-lends it (the slot's originator and its runs stay as they are).
            segment: segment code for each new loan.
            principal: principal for each new loan, CNY bn.
            pd_multiplier_by_account: each account's internal-control multiplier on segment PDs.
            benchmark_rate: annual benchmark lending rate.
            secured_draw: uniform draws deciding collateralisation.
            remaining_share: share of the contract term still to run (1 for a new loan; below 1
                only when seeding a seasoned book).
        """
        seg = self.segments
        # Default parameters depend only on (originator, segment): compute them once per pair.
        n_seg = seg.pd_annual.size
        multiplier = np.asarray(pd_multiplier_by_account, dtype=float)
        pd = np.clip(np.outer(multiplier, seg.pd_annual).ravel(), 1e-5, 0.999)
        rho = effective_correlation(
            asset_correlation(pd, np.tile(seg.correlation, multiplier.size)), seg.factor_sd
        )
        if originator is None:
            originator = self.originator[slots]
        else:
            if self._runs is not None and not np.array_equal(self.originator[slots], originator):
                self._runs = None
            self.originator[slots] = originator
        pair = np.asarray(originator) * n_seg + segment
        threshold, sqrt_rho, sqrt_one_minus_rho = ndtri(pd), np.sqrt(rho), np.sqrt(1.0 - rho)
        used = np.zeros(pd.size, dtype=bool)
        used[pair] = True
        if used.any():
            level = (threshold / sqrt_one_minus_rho)[used]
            slope = (sqrt_rho / sqrt_one_minus_rho)[used]
            self._barrier_level_max = max(self._barrier_level_max, float(level.max()))
            self._barrier_slope_min = min(self._barrier_slope_min, float(slope.min()))
            self._barrier_slope_max = max(self._barrier_slope_max, float(slope.max()))
        if self._npl_index is not None and (self.status[slots] == Status.NPL).any():
            self._npl_index = None
        if self._kernels is not None and not isinstance(slots, slice):
            slots = np.asarray(slots, dtype=np.intp)

            def each(values, dtype=None):  # one value per slot, as the numpy branch broadcasts
                return np.ascontiguousarray(np.broadcast_to(np.asarray(values, dtype), slots.shape))

            self._kernels.write_loans(
                slots, each(originator), each(segment), each(principal, float),
                each(secured_draw, float), each(remaining_share, float),
                float(benchmark_rate), seg.spread, seg.maturity_q, seg.secured_share,
                seg.collateral_cover, threshold, sqrt_rho, sqrt_one_minus_rho, n_seg,
                self.holder, self.segment, self.principal, self.carrying, self.rate,
                self.remaining_q, self.collateral, self.collateral_share, self.threshold,
                self.sqrt_rho, self.sqrt_one_minus_rho, self.status, self.default_q,
                self.recovered,
            )  # fmt: skip
        else:
            secured = secured_draw < seg.secured_share[segment]
            maturity = seg.maturity_q[segment]
            self.holder[slots] = originator
            self.segment[slots] = segment
            self.principal[slots] = principal
            self.carrying[slots] = principal
            self.rate[slots] = benchmark_rate + seg.spread[segment]
            remaining = np.maximum(1, np.ceil(remaining_share * maturity - 1e-9))
            self.remaining_q[slots] = remaining.astype(np.int16)
            cover = principal * seg.collateral_cover[segment]
            self.collateral[slots] = np.where(secured, cover, 0.0)
            self.collateral_share[slots] = 1.0
            self.threshold[slots] = threshold[pair]
            self.sqrt_rho[slots] = sqrt_rho[pair]
            self.sqrt_one_minus_rho[slots] = sqrt_one_minus_rho[pair]
            self.status[slots] = Status.PERFORMING
            self.default_q[slots] = -1
            self.recovered[slots] = 0.0
        self._npl_by_holder = None
        whole_book = isinstance(slots, slice) and slots == slice(None)
        filled_all = whole_book or slots is self._free_index
        self._free_index = np.empty(0, dtype=np.intp) if filled_all else None

    def mark_npl(self, idx: np.ndarray, default_q: np.ndarray | int) -> None:
        """Turn loans ``idx`` non-performing as of ``default_q`` (seeding a book, cross-default)."""
        self.status[idx] = Status.NPL
        self.default_q[idx] = default_q
        self._npl_index = self._npl_by_holder = self._free_index = None

    def npl_index(self) -> np.ndarray:
        """Slots of all non-performing loans, in slot order."""
        if self._npl_index is None:
            self._npl_index = np.flatnonzero(self.status == Status.NPL)
        return self._npl_index

    def npls_of(self, account: int) -> np.ndarray:
        """Slots of the non-performing loans one account holds, in slot order."""
        if self._npl_by_holder is None:
            idx = self.npl_index()
            holder = self.holder[idx]
            order = np.argsort(holder, kind="stable")
            accounts, starts = np.unique(holder[order], return_index=True)
            groups = np.split(idx[order], starts[1:]) if idx.size else []
            self._npl_by_holder = dict(zip(accounts.tolist(), groups, strict=True))
        return self._npl_by_holder.get(account, np.empty(0, dtype=np.intp))

    def free_slots(self) -> np.ndarray:
        """Indices of slots free for new lending (repaid, worked out or written off)."""
        if self._free_index is None:
            self._free_index = np.flatnonzero(self.status >= Status.RESOLVED)
        return self._free_index

    def _freed(self, slots: np.ndarray) -> None:
        """Add newly freed ``slots`` (sorted, not free before) to the index of free slots."""
        if self._free_index is not None:
            self._free_index = _merge_sorted(self._free_index, slots)

    # ------------------------------------------------------------------ valuation
    def base_recovery(
        self, idx: np.ndarray | slice = slice(None), disclosure: float = 1.0
    ) -> np.ndarray:
        """Gross recovery if a loan were resolved within a year: collateral after haircut plus the
        unsecured recovery on the rest, capped at principal, times the borrower's quality (CNY bn).

        ``disclosure`` is the share of the loan-level quality an observer sees: 1 for the holder
        that knows the borrower, the regime's disclosure level for an outside buyer.
        """
        seg = self.segments
        s = self.segment[idx]
        principal = self.principal[idx] + self.written_off_claim[idx]
        enforceable = self.collateral_share[idx] * self.collateral[idx]
        realised = (1.0 - seg.haircut[s]) * self.collateral_realisation
        secured_part = np.minimum(principal, enforceable * realised)
        seen_quality = self.public_quality(idx, disclosure)
        recovery = secured_part + seg.unsecured_recovery[s] * (principal - secured_part)
        return np.minimum(recovery * seen_quality, principal)

    def public_quality(
        self, idx: np.ndarray | slice = slice(None), disclosure: float = 1.0
    ) -> np.ndarray:
        """A borrower's workout quality as an observer with disclosure ``d`` expects it.

        Quality is ``q = exp(σξ − σ²/2)`` (σ = ``quality_dispersion``). Disclosure reveals the
        signal ``s = √d·ξ + √(1−d)·ζ``, where ``ζ`` is standard normal noise of the loan (a draw
        addressed by slot and default quarter, ``signal_noise``); the observer's expectation is
        ``E[q | s] = exp(σ√d·s − dσ²/2)``: the quality itself at ``d = 1``, 1 at ``d = 0``, an
        unbiased estimate in between whose private residual ``q / E[q | s]`` is independent of
        it (``nplsim.market.learning``). Without dispersion there is nothing private to learn.
        """
        quality = self.quality[idx]
        sigma = self.quality_dispersion
        if disclosure >= 1.0 or sigma <= 0.0:
            return quality
        if disclosure <= 0.0:
            return np.ones_like(quality)
        xi = (np.log(quality) + 0.5 * sigma**2) / sigma
        root = np.sqrt(disclosure)
        signal = root * xi + np.sqrt(1.0 - disclosure) * self.signal_noise(idx)
        return np.exp(sigma * root * signal - 0.5 * disclosure * sigma**2)

    def signal_noise(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The standard normal disclosure noise ``ζ`` of each loan: a function of the stream key,
        the slot and the quarter it defaulted, so it stays fixed for the life of the NPL and is
        the same in every run that shares the seed."""
        slots = np.arange(self.n)[idx] if isinstance(idx, slice) else np.asarray(idx)
        stale = slots[self._signal_q[slots] != self.default_q[slots]]
        if stale.size:  # computed once per NPL, kept while the slot holds it
            lane = self.default_q[stale].astype(np.int64) + SIGNAL_LANE_OFFSET
            position = stale.astype(np.uint64) * np.uint64(SIGNAL_LANES) + lane.astype(np.uint64)
            uniform = slot_uniforms(self.signal_key, position)
            self._signal[stale] = ndtri(np.clip(uniform, 1e-16, 1.0 - 1e-16))
            self._signal_q[stale] = self.default_q[stale]
        return self._signal[slots]

    def borrowers(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Real borrowers behind each slot: its principal over its segment's borrower balance
        (so counts of borrowers do not depend on how finely the book is divided into slots)."""
        balance = self.segments.borrower_balance
        per = DEFAULT_BORROWER_BALANCE_CNY if balance is None else balance[self.segment[idx]]
        return self.principal[idx] * 1e9 / per

    def age_q(self, quarter: int, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Quarters since default (0 in the quarter of default)."""
        return np.maximum(quarter - self.default_q[idx], 0)

    # ------------------------------------------------------------------ the quarter
    def service_performing(self, n_accounts: int) -> Servicing:
        """Interest and equal-principal amortisation of performing loans; maturing loans repay.

        One compiled pass over the book (``kernels.service``) or its numpy twin (same bytes).
        Interest is summed at the annual rate and scaled to the quarter per account (exact:
        ×0.25).
        """
        if self._kernels is not None:
            if self._annual_interest is None:  # reused every quarter: no fresh pages to fault in
                self._annual_interest, self._paid = np.empty(self.n), np.empty(self.n)
            annual_interest, paid = self._annual_interest, self._paid
            matured = np.empty(self.n, dtype=np.intp)
            count = self._kernels.service(self.status, self.principal, self.carrying, self.rate,
                                    self.remaining_q, annual_interest, paid, matured)  # fmt: skip
            matured = matured[:count].copy()
        else:
            annual_interest, paid, matured = self._service_numpy()
        self._freed(matured)  # matured loans were performing: the NPL set is unchanged
        return Servicing(
            interest=0.25 * self.sum_performing_by_holder(annual_interest, n_accounts),
            principal_paid=self.sum_performing_by_holder(paid, n_accounts),
            matured=matured,
        )

    def _service_numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``kernels.service`` in numpy: the same operations in the same order, pass by pass.

        The few slots that are not performing (NPLs and free slots) are zeroed by index rather
        than masked in every pass.
        """
        performing = self.status == Status.PERFORMING
        idle = np.flatnonzero(~performing)
        annual_interest = self.principal * self.rate
        annual_interest[idle] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):  # idle slots may have no term left
            paid = self.principal / self.remaining_q
        paid[idle] = 0.0
        self.principal -= paid
        self.carrying -= paid
        self.remaining_q -= 1
        self.remaining_q[idle] += 1
        due = np.flatnonzero(self.remaining_q <= 0)
        matured = due[performing[due]]
        self.principal[matured] = 0.0
        self.carrying[matured] = 0.0
        self.status[matured] = Status.RESOLVED
        return annual_interest, paid, matured

    def default(
        self, quarter: int, z: float, uniform: np.ndarray, quality: np.ndarray | None = None
    ) -> np.ndarray:
        """One-factor Vasicek defaults at the one-year horizon of the IRB correlations, spread
        evenly over the year's quarters.

        Given this year's systematic factor ``Z_t``, a borrower's one-year default probability
        is ``PD(Z) = Φ((Φ⁻¹(PD) − √ρ·Z)/√(1−ρ))``; it defaults this quarter with the quarterly
        hazard ``1 − (1 − PD(Z))^(1/4)``, i.e. when its uniform draw ``u`` (one per slot) is
        below it — the structural test ``ε < Φ⁻¹(hazard)`` with ``ε = Φ⁻¹(u)``. Only the slots
        whose ``u`` is below the hazard at the largest barrier in the book can default, so the
        hazard is evaluated for them alone. A new NPL gets its workout quality from ``quality``
        (one value per slot) unless the caller sets it afterwards. Returns the slots of the new
        NPLs."""
        cutoff = _quarterly_hazard(ndtr(self.barrier_bound(z)))
        candidates = np.flatnonzero(uniform < cutoff)
        candidates = candidates[self.status[candidates] == Status.PERFORMING]
        barrier = (
            self.threshold[candidates] - self.sqrt_rho[candidates] * z
        ) / self.sqrt_one_minus_rho[candidates]
        defaulted = candidates[uniform[candidates] < _quarterly_hazard(ndtr(barrier))]
        self.status[defaulted] = Status.NPL
        self.default_q[defaulted] = quarter
        if self._npl_index is not None:
            self._npl_index = _merge_sorted(self._npl_index, defaulted)
        self._npl_by_holder = None
        if quality is not None:
            self.quality[defaulted] = quality[defaulted]
        return defaulted

    def barrier_bound(self, z: float) -> float:
        """An upper bound on every loan's default barrier at systematic factor ``z``, with a
        margin far above rounding (the barrier is ``level − z·slope`` per loan)."""
        slope = self._barrier_slope_max if z < 0 else self._barrier_slope_min
        return self._barrier_level_max - z * slope + 1e-6

    def work_out(
        self,
        quarter: int,
        hazard_by_holder: np.ndarray,
        cost_by_holder: np.ndarray,
        uniform: np.ndarray | Callable[[np.ndarray], np.ndarray],
        end_age_by_holder: np.ndarray | int,
        charge_off_age_by_holder: np.ndarray | None = None,
    ) -> Workout:
        """Resolve non-performing loans with a holder-specific hazard and write off old ones.

        Args:
            quarter: the current quarter.
            hazard_by_holder: quarterly resolution intensity per ledger account (skill ×
                enforcement efficiency already applied).
            cost_by_holder: workout cost per unit of cash recovered, per account.
            uniform: one uniform draw per slot from the recoveries stream, or a function that
                returns the draws of the slots it is given (only the NPLs need one).
            end_age_by_holder: age at which an unresolved NPL is closed unrecovered, per account
                (a bank's write-off age; the claim life of a holder that bought the claim) or
                one age for every holder. It can no longer be resolved at that age.
            charge_off_age_by_holder: age at which a holder charges an NPL off its books but
                keeps pursuing it until its end age, per account (None: no such holder). The
                charge-off is reported like a write-off (face and carrying value leave the books)
                and the slot stays an NPL with its claim in ``written_off_claim``.

        Returns:
            the closed slots with their recoveries, costs, face and carrying value. Only the
            NPLs (a few percent of the book) are touched.
        """
        idx = self.npl_index()
        age = self.age_q(quarter, idx)
        holder = self.holder[idx]
        p_resolve = resolution_probability(hazard_by_holder[holder])
        draws = uniform(idx) if callable(uniform) else uniform[idx]
        end_age = np.asarray(end_age_by_holder)
        off_here = age >= (end_age[holder] if end_age.ndim else end_age)
        resolved_here = ~off_here & (draws < p_resolve)
        closed_here = resolved_here | off_here
        reported = closed_here
        charged = idx[:0]
        if charge_off_age_by_holder is not None:
            charged_here = ~closed_here & (age >= charge_off_age_by_holder[holder])
            charged_here &= self.written_off_claim[idx] == 0.0  # not yet charged off
            reported = closed_here | charged_here
            charged = idx[charged_here]
        slots = idx[reported]
        won = resolved_here[reported]
        won_slots = slots[won]
        recovery = np.zeros(slots.size)
        recovery[won] = self.base_recovery(won_slots) * recovery_timing_factor(age[resolved_here])
        cost = recovery * cost_by_holder[holder[reported]]
        face, carrying = self.principal[slots], self.carrying[slots]
        self.recovered[won_slots] += recovery[won]
        self.written_off_claim[charged] = self.principal[charged]
        self.principal[slots] = 0.0
        self.carrying[slots] = 0.0
        closed = idx[closed_here]
        self.written_off_claim[closed] = 0.0
        self.status[won_slots] = Status.RESOLVED
        self.status[idx[off_here]] = Status.WRITTEN_OFF
        self._npl_index = idx[~closed_here]
        self._npl_by_holder = None
        self._freed(closed)
        return Workout(slots, ~won, recovery, cost, face, carrying)

    # ------------------------------------------------------------------ ownership
    def transfer(self, idx: np.ndarray, new_holder: np.ndarray | int, price: np.ndarray) -> None:
        """A true sale: loans ``idx`` change holder and are carried at the price paid."""
        if not self._performing_sold and (self.status[idx] == Status.PERFORMING).any():
            self._performing_sold = True
        self.holder[idx] = new_holder
        self._npl_by_holder = None
        self.carrying[idx] = price

    def write_off(self, idx: np.ndarray) -> None:
        """Charge off loans ``idx`` (e.g. a pool left at a deal's legal final maturity)."""
        self.principal[idx] = 0.0
        self.carrying[idx] = 0.0
        self.written_off_claim[idx] = 0.0
        self.status[idx] = Status.WRITTEN_OFF
        self._npl_index = self._npl_by_holder = self._free_index = None

    # ------------------------------------------------------------------ aggregates
    def sum_by_holder(self, values: np.ndarray, n_accounts: int) -> np.ndarray:
        """Sum a per-slot array by holder account."""
        return np.bincount(self.holder, weights=values, minlength=n_accounts)

    @property
    def performing_sold(self) -> bool:
        """Whether a performing loan has ever changed hands (sums then scatter by holder)."""
        return self._performing_sold

    def sum_performing_by_holder(self, values: np.ndarray, n_accounts: int) -> np.ndarray:
        """Sum by holder a per-slot array that is zero outside performing loans.

        Performing loans are held by their originator, whose slots are few contiguous runs, so
        this is one contiguous (pairwise) reduction per run instead of a scatter over the book.
        """
        if self._performing_sold:
            return self.sum_by_holder(values, n_accounts)
        if self._runs is None:
            self._runs = _runs(self.originator)
        starts, accounts = self._runs
        if starts.size > self.n // 64:  # fragmented: a scatter is as fast
            return np.bincount(self.originator, weights=values, minlength=n_accounts)
        return np.bincount(accounts, weights=np.add.reduceat(values, starts), minlength=n_accounts)

    def holder_totals(self, n_accounts: int) -> dict[str, np.ndarray]:
        """Per-account performing principal, NPL principal, NPL carrying value and NPL count."""
        performing = self.status == Status.PERFORMING
        npl = self.status == Status.NPL
        return {
            "performing": self.sum_by_holder(np.where(performing, self.principal, 0.0), n_accounts),
            "npl": self.sum_by_holder(np.where(npl, self.principal, 0.0), n_accounts),
            "npl_carrying": self.sum_by_holder(np.where(npl, self.carrying, 0.0), n_accounts),
            "npl_count": np.bincount(self.holder[npl], minlength=n_accounts),
        }


def _quarterly_hazard(pd_annual: np.ndarray | float) -> np.ndarray:
    """The quarterly default hazard that compounds to a one-year PD: ``1 − (1 − PD)^(1/4)``."""
    return -np.expm1(0.25 * np.log1p(-np.minimum(pd_annual, 1.0 - 1e-16)))


def _merge_sorted(index: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The sorted slots ``index`` with the sorted slots ``new`` (none of them in it) merged in."""
    return np.insert(index, np.searchsorted(index, new), new) if new.size else index


def _runs(account: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start of each run of equal values in ``account`` and the value of the run."""
    starts = np.concatenate(([0], np.flatnonzero(account[1:] != account[:-1]) + 1))
    return starts, account[starts]
