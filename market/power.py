"""Power-plant securitisation mechanisms: coal price, plant cash flows and financing cost by route.

A coal-heavy provincial fleet sells power at a regulated on-grid tariff and buys coal whose price
mean-reverts with shocks. Each year the plants finance new capacity by (a) a bank loan, (b) a
stand-alone ABS on the project's tariff receivables, or (c) a pooled issue through a provincial
Securitization Center (DESIGN §6); the cost of each route is split into interest, information,
supervision and issuance, in bp a year of the amount raised. Plant loans live in the common loan
book; ``PlantLoans`` remembers which slots they are and settles them for the plants.

Plain numpy plus the pydantic calibration of the scenario's ``[power]`` block; nothing here knows
about Mesa. Money is in CNY bn unless a name says otherwise. FACTS = shared/reference/FACTS.md;
every number not from FACTS is an assumption and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from nplsim.market.errors import StrictModel
from nplsim.market.loans import LoanBook, Status, recovery_timing_factor
from pydantic import ConfigDict, Field, model_validator
from scipy.special import ndtr

Route = Literal["loan", "standalone", "pooled"]
ROUTES: tuple[str, ...] = ("loan", "standalone", "pooled")
COMPONENTS: tuple[str, ...] = ("interest", "information", "supervision", "issuance")
# A Vasicek threshold no draw can fall below: plant loans default when their plant cannot pay,
# not by the loan book's one-factor draw.
NO_DEFAULT_THRESHOLD = -40.0
# Largest opening loan a plant takes over, as a share of the median plant's target debt: a plant's
# debt is many loans, so no single one carries it past its debt ratio (assumption).
LARGEST_OPENING_LOAN = 0.25


# Columns of ``model.parquet`` the power sector adds (see ``NPLMarketModel.power_metrics``).
MODEL_COLUMNS: tuple[str, ...] = (
    "coal_price",
    "power_debt_ratio",
    "power_bank_debt",
    "power_abs_outstanding",
    "power_npl_new",
    "power_npl_created",
    "power_bank_npl",
    "power_abs_investor_losses",
    "power_capex_funded",
    "power_capex_unfunded",
    "power_rolled_over",
    *(f"power_share_{route}" for route in ROUTES),
    *(f"power_cost_{route}_bp" for route in ROUTES),
    "power_plants_in_default",
)
_NAN_WITHOUT_PLANTS = {"coal_price", "power_debt_ratio"} | {
    c for c in MODEL_COLUMNS if c.startswith(("power_share_", "power_cost_"))
}


def empty_metrics() -> dict[str, float]:
    """The power columns of a world without power plants: NaN for prices, ratios and shares."""
    return {c: float("nan") if c in _NAN_WITHOUT_PLANTS else 0.0 for c in MODEL_COLUMNS}


class _Strict(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CoalShockSpec(_Strict):
    """A jump in the log coal price at a quarter (0.69 doubles the price)."""

    quarter: int = Field(ge=0, le=400)
    log_jump: float = Field(ge=-3, le=3, description="Jump in the log coal price.")
    label: str = ""


def _default_coal_shocks() -> list[CoalShockSpec]:
    # Assumption (not in FACTS): a 2021-style coal squeeze in the sixth year, thermal coal up by
    # about 80% before it mean-reverts.
    return [CoalShockSpec(quarter=21, log_jump=0.6, label="2021-style coal squeeze")]


class CoalSpec(_Strict):
    """Thermal-coal price: a mean-reverting log gap to a reference price, plus scheduled jumps."""

    reference_cny_per_t: float = Field(
        default=500.0,
        gt=0,
        le=10_000,
        description="5,500-kcal coal at Shanxi mine-mouth plants, CNY/t (assumption).",
    )
    initial_log_gap: float = Field(default=0.0, ge=-3, le=3, description="log(price/reference).")
    persistence_q: float = Field(
        default=0.85, ge=0, lt=1, description="Quarterly AR(1) coefficient of the log gap."
    )
    volatility_q: float = Field(
        default=0.06, ge=0, le=1, description="Quarterly s.d. of log-price innovations."
    )
    shocks: list[CoalShockSpec] = Field(default_factory=_default_coal_shocks)


class PowerSpec(_Strict):
    """The ``[power]`` block: a coal-fired fleet, its financing routes and their costs.

    Defaults are the Shanxi calibration of ``shanxi_power``. FACTS anchors: benchmark loan rate
    4.90% above five years; underwriting 10-50 bp, rating + legal + audit CNY 0.5-1.5 m a deal,
    trustee 1-5 bp a year (taken from the scenario's ``[securitisation]`` block); tariff-ABS
    tenors of 3-5 years (all [U] or [V] as marked in FACTS "Power-plant and future-flow ABS").
    Everything else is an assumption.
    """

    n_plants: int = Field(default=30, ge=1, le=400, description="Plants in the fleet.")
    centre: bool = Field(default=True, description="Whether a Securitization Center exists.")
    routes: tuple[Route, ...] = Field(
        default=ROUTES, min_length=1, description="Financing routes plants may consider."
    )
    # --- plants (assumptions: a 2010s Chinese coal fleet) ---
    capacity_mw: float = Field(default=1000.0, gt=0, le=20_000, description="Mean capacity, MW.")
    capacity_dispersion: float = Field(default=0.4, ge=0, le=2, description="Log-s.d.")
    hours_per_year: float = Field(
        default=4500.0, gt=0, le=8760, description="Utilisation hours a year at full dispatch."
    )
    hours_dispersion: float = Field(default=0.1, ge=0, le=1, description="Log-s.d. across plants.")
    hours_noise_q: float = Field(default=0.05, ge=0, le=1, description="Quarterly log-s.d.")
    tariff_cny_per_kwh: float = Field(default=0.332, gt=0, le=5, description="On-grid tariff.")
    tariff_dispersion: float = Field(default=0.03, ge=0, le=1, description="Log-s.d.")
    coal_kg_per_kwh: float = Field(
        default=0.38, gt=0, le=2, description="Thermal coal burnt per kWh (~300 gce/kWh)."
    )
    heat_rate_dispersion: float = Field(default=0.08, ge=0, le=1, description="Log-s.d.")
    opex_cny_per_kw_year: float = Field(default=120.0, ge=0, le=5000)
    build_cost_cny_per_kw: float = Field(default=3500.0, gt=0, le=50_000)
    book_value_share: float = Field(
        default=0.6, gt=0, le=1, description="Book value of plant / cost of building it new."
    )
    depreciation_years: float = Field(default=20.0, gt=0, le=100)
    initial_debt_ratio: float = Field(
        default=0.75, ge=0, lt=1, description="Target bank debt / assets at the start."
    )
    cash_buffer_q: float = Field(
        default=2.0, ge=0, le=20, description="Quarters of debt service and costs kept in cash."
    )
    payout_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of cash above the buffer paid to owners."
    )
    # --- capex pipeline (assumptions) ---
    capex_prob_annual: float = Field(default=0.4, ge=0, le=1, description="Chance of a project.")
    capex_share: float = Field(
        default=0.15, gt=0, le=2, description="Project cost / the plant's cost new (mean)."
    )
    capex_dispersion: float = Field(default=0.3, ge=0, le=2, description="Log-s.d. of size.")
    equity_share: float = Field(
        default=0.2, ge=0, lt=1, description="Project capital the plant's owners put in."
    )
    # --- dispatch (assumptions) ---
    dispatch_coal_elasticity: float = Field(
        default=0.5, ge=0, le=5, description="Dispatch cut per unit of coal price above reference."
    )
    min_dispatch: float = Field(default=0.3, ge=0, le=1)
    distress_dispatch: float = Field(
        default=0.5, ge=0, le=1, description="Dispatch of a plant in default (no coal on credit)."
    )
    # --- (a) bank loan ---
    loan_benchmark_rate: float = Field(
        default=0.049, ge=0, le=0.3, description="FACTS: benchmark > 5 yr 4.90% [U]."
    )
    loan_leverage_spread: float = Field(
        default=0.02, ge=0, le=1, description="Spread per unit of debt ratio above the threshold."
    )
    leverage_threshold: float = Field(default=0.65, ge=0, le=1)
    loan_maturity_q: int = Field(
        default=60, ge=4, le=120, description="Tenor of new plant loans (project loans), quarters."
    )
    max_loan_debt_ratio: float = Field(
        default=0.85, gt=0, le=1, description="Banks lend no further above this debt ratio."
    )
    bank_information_bp: float = Field(
        default=25.0, ge=0, le=1000, description="Opacity premium of appraising a whole firm."
    )
    bank_appraisal_cny_m: float = Field(default=1.0, ge=0, le=1000, description="Per loan.")
    bank_monitoring_bp: float = Field(default=15.0, ge=0, le=1000, description="A year.")
    bank_monitoring_cny_m_per_year: float = Field(default=0.3, ge=0, le=1000, description="Loan.")
    # --- (b) and (c) ABS on tariff receivables ---
    abs_tenor_q: int = Field(
        default=20, ge=2, le=80, description="FACTS: tariff ABS of 3-5 years [V]."
    )
    information_premium_bp: float = Field(
        default=120.0, ge=0, le=2000, description="Investors' premium at zero disclosure, unrated."
    )
    rating_information_relief: float = Field(
        default=0.5, ge=0, le=1, description="Share of the information premium a rating removes."
    )
    information_correlation: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Share of opacity common to all plants (undiversified).",
    )
    rating_cost_share: float = Field(
        default=0.4, ge=0, le=1, description="Rating fee / fixed deal costs."
    )
    investor_appraisal_cny_m_per_deal: float = Field(default=0.5, ge=0, le=1000)
    investor_appraisal_cny_m_per_plant: float = Field(default=0.1, ge=0, le=1000)
    deal_monitoring_cny_m_per_year: float = Field(
        default=0.5, ge=0, le=1000, description="Reporting and monitoring of one issuer's deal."
    )
    centre_monitoring_cny_m_per_year: float = Field(
        default=1.5, ge=0, le=1000, description="The centre's trustee reporting on one pool."
    )
    centre_operating_cny_m_per_year: float = Field(
        default=2.0, ge=0, le=1000, description="The centre's running cost charged to a pool."
    )
    centre_min_plants: int = Field(default=3, ge=2, le=400)
    revenue_sigma_q: float = Field(
        default=0.2, gt=0, le=3, description="Investors' log-s.d. of quarterly receivables."
    )
    revenue_correlation: float = Field(
        default=0.5, ge=0, le=1, description="Share of receivables risk common to all plants."
    )
    abs_loss_severity: float = Field(default=0.3, ge=0, le=1)
    min_coverage: float = Field(
        default=1.5, ge=1, le=20, description="Receivables / scheduled ABS service needed to issue."
    )
    overcollateralisation: float = Field(
        default=0.25, ge=0, le=5, description="Extra receivables a pool may draw to cover others."
    )
    coal: CoalSpec = Field(default_factory=CoalSpec)

    @model_validator(mode="after")
    def _check(self) -> PowerSpec:
        if len(set(self.routes)) != len(self.routes):
            raise ValueError(f"routes: each of {list(ROUTES)} at most once")
        if self.max_loan_debt_ratio <= self.leverage_threshold:
            raise ValueError("max_loan_debt_ratio must exceed leverage_threshold")
        return self


# ---------------------------------------------------------------------------------- coal, plants
def coal_log_gap_step(gap: float, persistence: float, volatility: float, epsilon: float,
                      jump: float) -> float:  # fmt: skip
    """Coal mean-reverts: the log gap to the reference decays by ``persistence`` a quarter and
    takes a random innovation plus any scheduled jump, ``g' = φ·g + σ·ε + jump``."""
    return persistence * gap + volatility * epsilon + jump


def dispatch_factor(coal_price: float, reference: float, elasticity: float, floor: float) -> float:
    """Share of normal utilisation hours: dear coal cuts output (plants cannot buy it, the grid
    dispatches less coal power), ``clip(1 − e·max(p/p̄ − 1, 0), floor, 1)``."""
    return float(np.clip(1.0 - elasticity * max(coal_price / reference - 1.0, 0.0), floor, 1.0))


@dataclass(frozen=True)
class Generation:
    """One quarter of each plant's operations (CNY bn; hours in the quarter)."""

    hours_q: np.ndarray
    revenue: np.ndarray
    fuel: np.ndarray
    opex: np.ndarray

    @property
    def ebitda(self) -> np.ndarray:
        """Revenue less fuel and operating cost."""
        return self.revenue - self.fuel - self.opex


def generate(capacity_mw: np.ndarray, hours_per_year: np.ndarray, dispatch: np.ndarray,
             tariff: np.ndarray, coal_kg_per_kwh: np.ndarray, coal_price: float,
             opex_cny_per_kw_year: float) -> Generation:  # fmt: skip
    """A plant earns capacity × hours × tariff and pays for the coal it burns at the coal price
    plus a fixed operating cost per kW; ``dispatch`` scales the normal quarterly hours."""
    hours_q = np.asarray(hours_per_year) / 4.0 * dispatch
    kwh = np.asarray(capacity_mw) * 1e3 * hours_q
    return Generation(
        hours_q=hours_q,
        revenue=kwh * tariff / 1e9,
        fuel=kwh * coal_kg_per_kwh / 1e3 * coal_price / 1e9,
        opex=np.asarray(capacity_mw) * 1e3 * opex_cny_per_kw_year / 4.0 / 1e9,
    )


def receivables(pledged_mw: np.ndarray, hours_q: np.ndarray, tariff: np.ndarray) -> np.ndarray:
    """Tariff receivables a quarter's generation of ``pledged_mw`` creates (CNY bn)."""
    return np.asarray(pledged_mw) * 1e3 * hours_q * tariff / 1e9


def capacity_added_mw(capex: float, build_cost_cny_per_kw: float) -> float:
    """Megawatts a project of ``capex`` CNY bn builds."""
    return capex * 1e6 / build_cost_cny_per_kw


def debt_ratio(debt: np.ndarray | float, assets: np.ndarray | float) -> np.ndarray:
    """Interest-bearing recourse debt / total assets (NaN for a plant without assets)."""
    debt, assets = np.asarray(debt, dtype=float), np.asarray(assets, dtype=float)
    return np.divide(debt, assets, out=np.full(np.broadcast(debt, assets).shape, np.nan),
                     where=assets > 0)  # fmt: skip


@dataclass(frozen=True)
class FleetDraw:
    """Plant characteristics drawn at the start of a run."""

    capacity_mw: np.ndarray
    hours_per_year: np.ndarray
    tariff: np.ndarray
    coal_kg_per_kwh: np.ndarray


def draw_fleet(spec: PowerSpec, rng: np.random.Generator) -> FleetDraw:
    """Heterogeneous plants: lognormal capacity, hours, tariff and heat rate around the means."""
    z = rng.standard_normal((4, spec.n_plants))

    def around(mean: float, sigma: float, row: np.ndarray) -> np.ndarray:
        return mean * np.exp(sigma * row - sigma**2 / 2)

    return FleetDraw(
        capacity_mw=around(spec.capacity_mw, spec.capacity_dispersion, z[0]),
        hours_per_year=np.minimum(around(spec.hours_per_year, spec.hours_dispersion, z[1]), 8760),
        tariff=around(spec.tariff_cny_per_kwh, spec.tariff_dispersion, z[2]),
        coal_kg_per_kwh=around(spec.coal_kg_per_kwh, spec.heat_rate_dispersion, z[3]),
    )


@dataclass(frozen=True)
class QuarterDraws:
    """Every random number the power sector uses in a quarter, drawn in full every quarter so
    that two regimes with the same seed see the same coal path, projects and defaults."""

    coal: float
    hours: np.ndarray  # standard normal per plant
    project: np.ndarray  # uniform per plant: does a project arrive this year
    size: np.ndarray  # standard normal per plant: project size
    secured: np.ndarray  # uniform per plant: is a new loan collateralised
    quality: np.ndarray  # standard normal per plant: workout quality if it defaults
    legal: np.ndarray  # uniform per plant: does bankruptcy remoteness hold if it defaults

    @classmethod
    def draw(cls, rng: np.random.Generator, n_plants: int) -> QuarterDraws:
        """Draw one quarter's numbers from the power stream."""
        normal = rng.standard_normal(1 + 3 * n_plants)
        uniform = rng.random(3 * n_plants)
        return cls(
            coal=float(normal[0]),
            hours=normal[1 : 1 + n_plants],
            size=normal[1 + n_plants : 1 + 2 * n_plants],
            quality=normal[1 + 2 * n_plants :],
            project=uniform[:n_plants],
            secured=uniform[n_plants : 2 * n_plants],
            legal=uniform[2 * n_plants :],
        )


# ---------------------------------------------------------------------------------- route costs
def average_life_years(tenor_q: int) -> float:
    """Average life of a loan amortised in equal quarterly instalments over ``tenor_q``."""
    return (tenor_q + 1) / 8.0


def upfront_bp(cost: np.ndarray | float, amount: np.ndarray | float, tenor_q: int) -> np.ndarray:
    """An upfront cost spread over the CNY-years an amortising amount is outstanding, bp a year."""
    return 1e4 * np.asarray(cost) / (np.asarray(amount) * average_life_years(tenor_q))


def running_bp(cost_per_year: np.ndarray | float, amount: np.ndarray | float,
               tenor_q: int) -> np.ndarray:  # fmt: skip
    """A fixed yearly cost over the average outstanding of an amortising amount, bp a year."""
    outstanding_share = (tenor_q + 1) / (2.0 * tenor_q)
    return 1e4 * np.asarray(cost_per_year) / (np.asarray(amount) * outstanding_share)


@dataclass(frozen=True)
class RouteCost:
    """All-in cost of a financing route, bp a year of the amount raised, by component."""

    interest: np.ndarray
    information: np.ndarray
    supervision: np.ndarray
    issuance: np.ndarray
    available: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Interest + information + supervision + issuance."""
        return self.interest + self.information + self.supervision + self.issuance

    @property
    def non_interest(self) -> np.ndarray:
        """Information + supervision + issuance: what the study says securitisation saves."""
        return self.information + self.supervision + self.issuance

    def columns(
        self, prefix: str, closed_by: str = "", i: int = 0
    ) -> dict[str, float | bool | str]:
        """One plant's costs as ``{prefix}_{component}_bp`` columns (NaN where unavailable), and
        what closed the route to it."""
        ok = bool(np.asarray(self.available).reshape(-1)[i])
        out: dict[str, float | bool | str] = {
            f"{prefix}_available": ok,
            f"{prefix}_closed_by": "" if ok else (closed_by or "not offered"),
        }
        for name in (*COMPONENTS, "total"):
            value = float(np.asarray(getattr(self, name)).reshape(-1)[i])
            out[f"{prefix}_{name}_bp"] = value if ok else float("nan")
        return out

    @classmethod
    def unavailable(cls, n: int = 1) -> RouteCost:
        """A route that is closed (all components NaN)."""
        nan = np.full(n, np.nan)
        return cls(nan, nan, nan, nan, np.zeros(n, dtype=bool))


def loan_cost(amount: np.ndarray, debt_ratio_after: np.ndarray, spec: PowerSpec,
              segment_spread: float, maturity_q: int) -> RouteCost:  # fmt: skip
    """(a) A bank loan: benchmark + credit spread (rising with leverage), plus the bank's cost of
    appraising an opaque borrower (information) and of monitoring it over the loan's life
    (supervision), both passed on in the rate; banks stop lending above a debt ratio."""
    amount = np.asarray(amount, dtype=float)
    leverage = np.maximum(np.asarray(debt_ratio_after) - spec.leverage_threshold, 0.0)
    interest = 1e4 * (
        spec.loan_benchmark_rate + segment_spread + spec.loan_leverage_spread * leverage
    )
    information = spec.bank_information_bp + upfront_bp(
        spec.bank_appraisal_cny_m / 1e3, amount, maturity_q
    )
    supervision = spec.bank_monitoring_bp + running_bp(
        spec.bank_monitoring_cny_m_per_year / 1e3, amount, maturity_q
    )
    return RouteCost(
        interest=interest * np.ones_like(amount),
        information=information,
        supervision=supervision,
        issuance=np.zeros_like(amount),
        available=np.asarray(debt_ratio_after) <= spec.max_loan_debt_ratio,
    )


def herfindahl(amounts: np.ndarray) -> float:
    """Concentration of a pool: Σ share²; 1 for one plant, 1/n for n equal plants."""
    amounts = np.asarray(amounts, dtype=float)
    total = amounts.sum()
    return float(((amounts / total) ** 2).sum()) if total > 0 else 1.0


def pool_sigma(sigma_q: float, correlation: float, concentration: float) -> float:
    """Log-s.d. of a pool's receivables: only the common part of plant risk survives pooling,
    ``σ·√(ρ + (1 − ρ)·H)`` with ``H`` the pool's Herfindahl index."""
    return sigma_q * math.sqrt(correlation + (1.0 - correlation) * concentration)


def abs_default_prob(coverage: float, sigma: float, tenor_q: int) -> float:
    """Chance that receivables fall short of scheduled service in some quarter of the deal: each
    quarter lognormal receivables with mean ``coverage`` times the service, independent."""
    if coverage <= 0:
        return 1.0
    shortfall_q = float(ndtr((-math.log(coverage) + 0.5 * sigma**2) / sigma))
    return 1.0 - (1.0 - shortfall_q) ** tenor_q


def information_premium(disclosure: float, rated: bool, concentration: float,
                        spec: PowerSpec) -> float:  # fmt: skip
    """What investors ask for appraising receivables they cannot see (annual, decimal): it falls
    with disclosure, with a rating, and in a pool, where plant-specific opacity diversifies."""
    relief = spec.rating_information_relief if rated else 0.0
    diversified = math.sqrt(
        spec.information_correlation + (1.0 - spec.information_correlation) * concentration
    )
    return spec.information_premium_bp / 1e4 * (1.0 - disclosure) * (1.0 - relief) * diversified


@dataclass(frozen=True)
class DealFees:
    """Cash costs of one ABS deal (CNY bn): paid at issue, and every year while it lives."""

    underwriting: float
    fixed: float  # rating, legal and audit
    appraisal: float  # due diligence on each plant's receivables for investors
    stamp_duty: float
    monitoring_per_year: float  # the deal's reporting and monitoring
    centre_per_year: float  # the centre's operating cost charged to a pool
    trustee_bp: float  # a year on the outstanding balance
    tax_rate: float  # VAT and SPV entity tax on the interest the vehicle pays

    @property
    def upfront(self) -> float:
        """Everything paid out of the proceeds at issue."""
        return self.underwriting + self.fixed + self.appraisal + self.stamp_duty


def deal_fees(amount: float, n_plants: int, pooled: bool, rated: bool, spec: PowerSpec,
              underwriting_bp: float, fixed_cost_cny_bn: float, trustee_bp: float,
              stamp_duty_bp: float, tax_rate: float) -> DealFees:  # fmt: skip
    """Fees of a stand-alone or pooled receivables deal: fixed costs per deal (rating, legal,
    audit, investors' appraisal, monitoring) are paid once however many plants share them."""
    fixed = fixed_cost_cny_bn * (1.0 if rated else 1.0 - spec.rating_cost_share)
    appraisal = (
        spec.investor_appraisal_cny_m_per_deal + spec.investor_appraisal_cny_m_per_plant * n_plants
    ) / 1e3
    monitoring = (
        spec.centre_monitoring_cny_m_per_year if pooled else spec.deal_monitoring_cny_m_per_year
    )
    return DealFees(
        underwriting=amount * underwriting_bp / 1e4,
        fixed=fixed,
        appraisal=appraisal,
        stamp_duty=amount * stamp_duty_bp / 1e4,
        monitoring_per_year=monitoring / 1e3,
        centre_per_year=spec.centre_operating_cny_m_per_year / 1e3 if pooled else 0.0,
        trustee_bp=trustee_bp,
        tax_rate=tax_rate,
    )


def abs_cost(amount: float, coupon_ex_information: float, information: float, fees: DealFees,
             tenor_q: int) -> RouteCost:  # fmt: skip
    """(b)/(c) A receivables ABS, per plant (every member of a pool pays the same bp): interest is
    the investors' coupon without their information premium; information = that premium plus
    the appraisal costs; supervision = trustee and monitoring (trustee reporting replaces bank
    monitoring); issuance = underwriting, rating/legal/audit, stamp duty, the centre's running
    cost and the taxes on the vehicle's interest."""
    coupon = coupon_ex_information + information
    one = np.ones(1)
    return RouteCost(
        interest=1e4 * coupon_ex_information * one,
        information=(1e4 * information + upfront_bp(fees.appraisal, amount, tenor_q)) * one,
        supervision=(fees.trustee_bp + running_bp(fees.monitoring_per_year, amount, tenor_q))
        * one,  # fmt: skip
        issuance=(
            upfront_bp(fees.underwriting + fees.fixed + fees.stamp_duty, amount, tenor_q)
            + running_bp(fees.centre_per_year, amount, tenor_q)
            + 1e4 * fees.tax_rate * coupon
        )
        * one,  # fmt: skip
        available=np.ones(1, dtype=bool),
    )


def choose_route(total: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Each plant's cheapest available route (column index into ``ROUTES``), −1 if none is open.

    Args:
        total: all-in cost, plants × routes (bp).
        available: whether each route is open to each plant.
    """
    cost = np.where(available, np.nan_to_num(total, nan=np.inf), np.inf)
    best = np.argmin(cost, axis=1)
    return np.where(np.isfinite(cost[np.arange(cost.shape[0]), best]), best, -1)


# ---------------------------------------------------------------------------------- ABS vehicles
def collect(
    share_due: np.ndarray, available: np.ndarray, overcollateralisation: float
) -> np.ndarray:
    """What a vehicle takes from each member's receivables: its share of what is due, then, to
    cover members that fell short, up to ``overcollateralisation`` × its share more from the
    others (cross-collateral: a pool's diversification; a one-plant deal cannot use it)."""
    share_due = np.asarray(share_due, dtype=float)
    taken = np.minimum(available, share_due)
    shortfall = share_due.sum() - taken.sum()
    spare = np.minimum(available - taken, overcollateralisation * share_due)
    if shortfall > 0 and spare.sum() > 0:
        taken = taken + spare * min(1.0, shortfall / spare.sum())
    return taken


@dataclass(frozen=True)
class VehiclePayments:
    """How a vehicle spends one quarter's collections (CNY bn)."""

    fees: float
    interest: float
    tax: float
    principal: float
    interest_shortfall: float


def pay_out(collected: float, fees_due: float, interest_due: float, tax_rate: float,
            principal_due: float) -> VehiclePayments:  # fmt: skip
    """The vehicle's priority of payments: fees, then interest with the tax on it, then
    principal; interest not paid is lost to investors, principal not paid is carried forward."""
    fees = min(collected, fees_due)
    left = collected - fees
    interest = min(interest_due, left / (1.0 + tax_rate))
    tax = tax_rate * interest
    principal = min(principal_due, max(left - interest - tax, 0.0))
    return VehiclePayments(fees, interest, tax, principal, interest_due - interest)


# ---------------------------------------------------------------------------------- plant loans
@dataclass
class Settlement:
    """A quarter's changes to plant loans, per plant (CNY bn)."""

    interest: np.ndarray
    principal: np.ndarray
    closed_principal: np.ndarray  # defaulted loans resolved, written off or charged off
    recovery: np.ndarray  # what creditors recovered on them from the plant's assets


class PlantLoans:
    """Which loan-book slots are power plants' loans, and their state at the last settlement.

    The loan book serves every performing loan in phase 3 and works out NPLs whoever holds them;
    at the plant's turn (phase 9) the plant pays what its performing loans were charged, and
    defaulted loans that have been closed leave its balance sheet against the collateral the
    creditors realised. A freed slot is re-lent by the bank, so closures are recognised from the
    state snapshot taken at the end of the previous settlement.
    """

    def __init__(self, n_slots: int):
        self.plant = np.full(n_slots, -1, dtype=np.int32)
        self.principal = np.zeros(n_slots)
        self.rate = np.zeros(n_slots)
        self.remaining_q = np.zeros(n_slots, dtype=np.int16)
        self.status = np.full(n_slots, Status.RESOLVED, dtype=np.int8)
        self.default_q = np.full(n_slots, -1, dtype=np.int16)
        self.base_recovery = np.zeros(n_slots)

    @property
    def mapped(self) -> np.ndarray:
        """Slots that hold a plant's loan."""
        return np.flatnonzero(self.plant >= 0)

    def assign(self, slots: np.ndarray, plants: np.ndarray, loans: LoanBook) -> None:
        """Make ``slots`` the loans of ``plants`` (they default only when the plant does)."""
        self.plant[slots] = plants
        loans.threshold[slots] = NO_DEFAULT_THRESHOLD

    def snapshot(self, loans: LoanBook) -> None:
        """Remember the plant slots' state for the next settlement."""
        idx = self.mapped
        for name in ("principal", "rate", "remaining_q", "status", "default_q"):
            getattr(self, name)[idx] = getattr(loans, name)[idx]
        npl = idx[loans.status[idx] == Status.NPL]
        self.base_recovery[idx] = 0.0
        self.base_recovery[npl] = loans.base_recovery(npl)

    def settle(self, loans: LoanBook, quarter: int, write_off_age_q: int,
               n_plants: int) -> Settlement:  # fmt: skip
        """What each plant owes for the loan book's quarter, and which of its loans are gone.

        Performing loans paid interest and an instalment in phase 3; a loan that matured is
        repaid. A defaulted loan is closed once the loan book resolved it (recovering a share of
        its base recovery that falls with its age, FACTS "Recovery timing"), charged it off at
        the maximum age, or a vehicle wrote it off at its legal final maturity.
        """
        idx = self.mapped
        owner = self.plant[idx]
        was_performing = self.status[idx] == Status.PERFORMING
        interest = np.where(was_performing, self.principal[idx] * self.rate[idx] / 4, 0.0)
        instalment = np.where(
            was_performing, self.principal[idx] / np.maximum(self.remaining_q[idx], 1), 0.0
        )
        matured = was_performing & (self.remaining_q[idx] <= 1)
        was_npl = self.status[idx] == Status.NPL
        still_npl = (loans.status[idx] == Status.NPL) & (
            loans.default_q[idx] == self.default_q[idx]
        )
        closed = was_npl & ~still_npl
        age = quarter - self.default_q[idx].astype(int)
        charged_off = (loans.status[idx] == Status.WRITTEN_OFF) | (age >= write_off_age_q)
        recovered = closed & ~charged_off
        recovery = np.where(
            recovered, self.base_recovery[idx] * recovery_timing_factor(np.maximum(age, 0)), 0.0
        )
        closed_principal = np.where(closed, self.principal[idx], 0.0)
        self.plant[idx[matured | closed]] = -1

        def by_plant(values: np.ndarray) -> np.ndarray:
            return np.bincount(owner, weights=values, minlength=n_plants)

        return Settlement(
            interest=by_plant(interest),
            principal=by_plant(instalment),
            closed_principal=by_plant(closed_principal),
            recovery=by_plant(np.minimum(recovery, closed_principal)),
        )

    def debt_by_plant(self, loans: LoanBook, n_plants: int) -> np.ndarray:
        """Outstanding principal of each plant's performing and defaulted loans."""
        idx = self.mapped
        return np.bincount(self.plant[idx], weights=loans.principal[idx], minlength=n_plants)

    def npl_by_plant(self, loans: LoanBook, n_plants: int) -> np.ndarray:
        """Principal of each plant's defaulted loans still open."""
        idx = self.mapped
        npl = np.where(loans.status[idx] == Status.NPL, loans.principal[idx], 0.0)
        return np.bincount(self.plant[idx], weights=npl, minlength=n_plants)

    def scheduled_service(self, loans: LoanBook, n_plants: int) -> np.ndarray:
        """Interest and instalment each plant's performing loans will be charged next quarter."""
        idx = self.mapped
        performing = loans.status[idx] == Status.PERFORMING
        principal = loans.principal[idx]
        due = principal * loans.rate[idx] / 4 + principal / np.maximum(loans.remaining_q[idx], 1)
        return np.bincount(
            self.plant[idx], weights=np.where(performing, due, 0.0), minlength=n_plants
        )

    def default_plant(self, loans: LoanBook, plant: int, quarter: int,
                      quality: float) -> np.ndarray:  # fmt: skip
        """Cross-default: every performing loan of ``plant`` becomes non-performing now; returns
        the slots that did."""
        idx = self.mapped
        slots = idx[(self.plant[idx] == plant) & (loans.status[idx] == Status.PERFORMING)]
        loans.mark_npl(slots, quarter)
        loans.quality[slots] = quality
        return slots

    def fresh_slot(self, loans: LoanBook, bank_account: int) -> int:
        """A slot the bank lent to an ordinary borrower this quarter (−1 if none): the plant's
        loan takes its place in the bank's new lending."""
        maturity = loans.segments.maturity_q[loans.segment].astype(int)
        fresh = (
            (loans.status == Status.PERFORMING)
            & (loans.holder == bank_account)
            & (loans.originator == bank_account)
            & (loans.remaining_q == maturity)
            & (self.plant < 0)
        )
        hits = np.flatnonzero(fresh)
        return int(hits[0]) if hits.size else -1


def assign_by_target(principal: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Hand consecutive loans to plants until each reaches its target debt; −1 for loans left.

    Args:
        principal: principal of the candidate loans, in the order they are handed out.
        targets: each plant's target debt (CNY bn).

    Returns:
        The plant index of each candidate loan, or −1.
    """
    edges = np.cumsum(targets)
    middle = np.cumsum(principal) - np.asarray(principal) / 2
    owner = np.searchsorted(edges, middle, side="right")
    return np.where(owner < len(targets), owner, -1)


def no_quote_columns() -> dict[str, float | bool | str]:
    """The route-cost columns of ``power.parquet`` for a plant that was quoted nothing."""
    return {
        key: value
        for route in ROUTES
        for key, value in RouteCost.unavailable().columns(route, "no project").items()
    }
