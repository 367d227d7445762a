"""Power-plant securitisation mechanisms: coal price, tariff, plants' cash flows, ABS vehicles.

A coal-heavy provincial fleet sells power at a regulated on-grid tariff and buys coal whose price
mean-reverts with shocks. Each year the plants finance new capacity by (a) a bank loan, (b) a
stand-alone ABS on the project's tariff receivables, or (c) a pooled issue through a provincial
Securitization Center (docs/ODD.md, power sector); what each route costs is priced in
``nplsim.market.route_costs`` on one funding base, with the information and supervision costs of
``nplsim.market.information_costs``. Plant loans live in the common loan book
(``nplsim.market.plant_loans``).

Plain numpy plus the pydantic calibration of the scenario's ``[power]`` block; nothing here knows
about Mesa. Money is in CNY bn unless a name says otherwise. Facts are cited from docs/facts.md as
``facts: <key>``; every other number is an assumption and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nplsim.market.errors import StrictSpec
from nplsim.market.information_costs import InformationSpec
from nplsim.market.route_costs import COMPONENTS, ROUTES

Route = Literal["loan", "standalone", "pooled"]

# Columns of ``model.parquet`` the power sector adds (``PowerSector.metrics``): the coal price
# and tariff, leverage two ways, bad assets, the financing rounds (what was funded, what it cost
# by component, and what each route quoted, by component) and the plants' distress.
MODEL_COLUMNS: tuple[str, ...] = (
    "coal_price",
    "power_tariff",
    "power_debt_ratio",
    "power_debt_ratio_median",
    "power_adjusted_leverage",
    "power_adjusted_leverage_median",
    "power_bank_debt",
    "power_abs_outstanding",
    "power_npl_new",
    "power_npl_created",
    "power_bank_npl",
    "power_abs_investor_losses",
    "power_capex_funded",
    "power_capex_unfunded",
    "power_funded_share",
    "power_rolled_over",
    *(f"power_share_{route}" for route in ROUTES),
    "power_cost_bp",
    *(f"power_cost_{component}_bp" for component in COMPONENTS),
    *(f"power_quote_{route}_bp" for route in ROUTES),
    *(f"power_quote_{route}_{component}_bp" for route in ROUTES for component in COMPONENTS),
    "power_standalone_coupon",
    "power_plants_in_default",
    "power_loss_making_share",
)
# Stocks and flows are 0 without plants; prices, ratios, shares and costs are undefined (NaN).
_ZERO_WITHOUT_PLANTS = {
    "power_bank_debt", "power_abs_outstanding", "power_npl_new", "power_npl_created",
    "power_bank_npl", "power_abs_investor_losses", "power_capex_funded", "power_capex_unfunded",
    "power_rolled_over", "power_plants_in_default",
}  # fmt: skip


def empty_metrics() -> dict[str, float]:
    """The power columns of a world without power plants: NaN for prices, ratios and shares."""
    return {c: 0.0 if c in _ZERO_WITHOUT_PLANTS else float("nan") for c in MODEL_COLUMNS}


class CoalShockSpec(StrictSpec):
    """A jump in the log coal price at a quarter (0.69 doubles the price)."""

    quarter: int = Field(ge=0, le=400)
    log_jump: float = Field(ge=-3, le=3, description="Jump in the log coal price.")
    label: str = ""


# facts: coal-price: thermal coal averaged CNY 568/t in 2020, 1,029/t in 2021 and 1,268/t in 2022;
# it also passed CNY 1,000/t in July 2008. Both spikes took coal about log(1,000/568) = 0.57 above
# its 2020 level within a year; the jumps below, in quarters 21-28 (2021-22 when quarter 0 is
# end-2015), put the model's yearly averages near 1,029 and 1,268 given the mean reversion of
# CoalSpec (calibration: experiments/facts.toml, coal_price_2021 and coal_price_2022).
COAL_SQUEEZE_2021: tuple[tuple[int, float], ...] = (
    (21, 0.34), (22, 0.22), (23, 0.24), (24, 0.21), (25, 0.13), (26, 0.12), (27, 0.12), (28, 0.12),
)  # fmt: skip


def _default_coal_shocks() -> list[CoalShockSpec]:
    return [CoalShockSpec(quarter=q, log_jump=jump, label="2021-22 coal squeeze")
            for q, jump in COAL_SQUEEZE_2021]  # fmt: skip


class CoalSpec(StrictSpec):
    """Thermal-coal price: a mean-reverting log gap to a reference price, plus scheduled jumps."""

    reference_cny_per_t: float = Field(
        default=568.0,
        gt=0,
        le=10_000,
        description="facts: coal-price: 5,500-kcal coal, 2020 average, CNY/t.",
    )
    initial_log_gap: float = Field(default=0.0, ge=-3, le=3, description="log(price/reference).")
    persistence_q: float = Field(
        default=0.85, ge=0, lt=1, description="Quarterly AR(1) coefficient of the log gap."
    )
    volatility_q: float = Field(
        default=0.06, ge=0, le=1, description="Quarterly s.d. of log-price innovations."
    )
    contract_share: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Share of plants' coal bought under long-term contracts at the reference.",
    )
    shocks: list[CoalShockSpec] = Field(default_factory=_default_coal_shocks)


class PowerSpec(StrictSpec):
    """The ``[power]`` block: a coal-fired fleet, its financing routes and their costs.

    Defaults are the Shanxi calibration of the ``shanxi_*`` scenarios. Facts (docs/facts.md):
    opening debt ratio (facts: power-debt), coal price (facts: coal-price), underwriting 10-50 bp,
    rating + legal + audit CNY 0.5-1.5 m a deal, trustee 1-5 bp a year (taken from the scenario's
    ``[securitisation]`` block, facts: issuance-costs, unverified); tariff-ABS tenors of 3-5
    years. Everything else is an assumption.
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
    tariff_cny_per_kwh: float = Field(
        default=0.332, gt=0, le=5, description="Benchmark on-grid tariff at the reference coal."
    )
    tariff_dispersion: float = Field(default=0.03, ge=0, le=1, description="Log-s.d.")
    tariff_pass_through: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Share of last year's fuel-cost change the tariff passes on (coal linkage).",
    )
    tariff_cap: float = Field(
        default=0.2, ge=0, le=1, description="Largest tariff move, share of the benchmark."
    )
    coal_kg_per_kwh: float = Field(
        default=0.38, gt=0, le=2, description="Thermal coal burnt per kWh (~300 gce/kWh)."
    )
    heat_rate_dispersion: float = Field(default=0.08, ge=0, le=1, description="Log-s.d.")
    opex_cny_per_kw_year: float = Field(
        default=250.0, ge=0, le=5000, description="Non-fuel cash costs, CNY per kW a year."
    )
    build_cost_cny_per_kw: float = Field(default=3500.0, gt=0, le=50_000)
    book_value_share: float = Field(
        default=0.6, gt=0, le=1, description="Book value of plant / cost of building it new."
    )
    depreciation_years: float = Field(default=20.0, gt=0, le=100)
    initial_debt_ratio: float = Field(
        default=0.8,
        ge=0,
        lt=1,
        description="facts: power-debt: bank debt / assets at the start (big five above 80%).",
    )
    cash_buffer_q: float = Field(
        default=2.0, ge=0, le=20, description="Quarters of debt service and costs kept in cash."
    )
    payout_share: float = Field(
        default=1.0, ge=0, le=1, description="Share of cash above the buffer paid to owners."
    )
    refinance_hurdle: float = Field(
        default=0.055,
        ge=0,
        le=1,
        description="Owners refinance repaid bank principal while a loan costs less (annual).",
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
        default=0.25, ge=0, le=5, description="Dispatch cut per unit of coal price above reference."
    )
    min_dispatch: float = Field(default=0.3, ge=0, le=1)
    distress_dispatch: float = Field(
        default=0.5, ge=0, le=1, description="Dispatch of a plant in default (no coal on credit)."
    )
    # --- (a) bank loan ---
    asset_volatility: float = Field(
        default=0.07,
        gt=0,
        le=2,
        description="Lenders' annual log-s.d. of a plant's asset value (default risk).",
    )
    loan_maturity_q: int = Field(
        default=60, ge=4, le=120, description="Tenor of new plant loans (project loans), quarters."
    )
    max_loan_debt_ratio: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Banks lend no further above this adjusted leverage.",
    )
    # --- (b) and (c) ABS on tariff receivables ---
    abs_tenor_q: int = Field(
        default=20,
        ge=2,
        le=80,
        description="facts: huaneng-abn-2017, power-abs-2016: tariff ABS of 3-5 years.",
    )
    rating_cost_share: float = Field(
        default=0.4, ge=0, le=1, description="Rating fee / fixed deal costs."
    )
    centre_operating_cny_m_per_year: float = Field(
        default=2.0, ge=0, le=1000, description="The centre's running cost charged to a pool."
    )
    centre_min_plants: int = Field(default=3, ge=2, le=400)
    centre_liquidity_cover: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="The centre admits a plant to a pool only if its cash and a year's projected"
        " cash flow cover a year's debt service after the pool's schedule this many times (0: no"
        " screen, the default: measured, a screen of 1.2 did not lower the debt of plants that"
        " default only because the centre exists, docs/securitisation.md); 1.2 is a rating"
        " agency's 'adequate' liquidity, facts: liquidity-cover (unverified).",
    )
    revenue_sigma_q: float = Field(
        default=0.2, gt=0, le=3, description="Investors' log-s.d. of quarterly receivables."
    )
    revenue_correlation: float = Field(
        default=0.5, ge=0, le=1, description="Share of receivables risk common to all plants."
    )
    abs_loss_severity: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Investors' loss, share of face, when a power ABS's receivables fall short or"
        " a court reaches a member's receivables (assumption).",
    )
    min_coverage: float = Field(
        default=1.5, ge=1, le=20, description="Receivables / scheduled ABS service needed to issue."
    )
    overcollateralisation: float = Field(
        default=0.25, ge=0, le=5, description="Extra receivables a pool may draw to cover others."
    )
    # --- who pays to know and to watch the plants (market/information_costs.py) ---
    information: InformationSpec = Field(default_factory=InformationSpec)
    coal: CoalSpec = Field(default_factory=CoalSpec)

    @property
    def asset_volatility_q(self) -> float:
        """Quarterly log-s.d. of a plant's asset value (the annual over √4)."""
        return self.asset_volatility / 2

    @model_validator(mode="after")
    def _check(self) -> PowerSpec:
        if len(set(self.routes)) != len(self.routes):
            raise ValueError(f"routes: each of {list(ROUTES)} at most once")
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


def linked_tariff_shift(average_coal_price: float, reference: float, coal_kg_per_kwh: float,
                        pass_through: float, cap: float, benchmark: float) -> float:  # fmt: skip
    """The tariff rule, a coal-power price linkage: once a year the provincial benchmark tariff
    moves by ``pass_through`` of the change in the fuel cost of a standard plant since the
    reference, at last year's average coal price, within ``± cap`` of the benchmark (CNY/kWh)."""
    shift = pass_through * coal_kg_per_kwh * (average_coal_price - reference) / 1e3
    return float(np.clip(shift, -cap * benchmark, cap * benchmark))


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
    """Every random number the plants use in a quarter, drawn in full every quarter so that two
    regimes with the same seed see the same projects and defaults (the coal innovation is drawn
    earlier in the quarter, with the other systematic shocks: ``economy.coal_market``)."""

    hours: np.ndarray  # standard normal per plant
    project: np.ndarray  # uniform per plant: does a project arrive this year
    size: np.ndarray  # standard normal per plant: project size
    secured: np.ndarray  # uniform per plant: is a new loan collateralised
    quality: np.ndarray  # standard normal per plant: workout quality if it defaults
    legal: np.ndarray  # uniform per plant: does bankruptcy remoteness hold if it defaults

    @classmethod
    def draw(cls, rng: np.random.Generator, n_plants: int) -> QuarterDraws:
        """Draw one quarter's numbers from the power stream."""
        normal = rng.standard_normal(3 * n_plants)
        uniform = rng.random(3 * n_plants)
        return cls(
            hours=normal[:n_plants],
            size=normal[n_plants : 2 * n_plants],
            quality=normal[2 * n_plants :],
            project=uniform[:n_plants],
            secured=uniform[n_plants : 2 * n_plants],
            legal=uniform[2 * n_plants :],
        )


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
