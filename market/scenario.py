"""Scenarios: the typed, validated description of a simulated world, loaded from TOML.

A scenario names one legal-regime preset plus overrides, the size of the economy, the banks and
AMCs, the borrower segments' calibration, the macro path and scheduled events (reforms, shocks).
Every default lives here, typed and documented; the built-in scenario files in ``market/scenarios/``
only set what differs. Sources are cited next to the numbers (docs/facts.md, the project's reference
facts); anything else is marked as an assumption.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nplsim.market.banking_spec import LiquiditySpec, StateSpec
from nplsim.market.errors import ConfigError, config_error_from_validation, read_toml
from nplsim.market.loans import SEGMENTS
from nplsim.market.power import PowerSpec
from nplsim.market.prudential_rules import (
    DEFAULT_PRUDENTIAL,
    PrudentialRules,
    load_prudential,
    resolve_prudential,
    split_overrides,
)
from nplsim.market.regime import LegalRegime, list_presets, load_regime

SCENARIOS_DIR = Path(__file__).with_name("scenarios")
DEFAULT_SCENARIO = "restart_2016"

# Upper bounds of fields that have no natural one: generous, but finite, so that no value a file
# can hold overflows to inf or nan during a run.
MAX_CNY_BN = 1e6  # CNY 1,000 trn: above the loans of the whole Chinese banking system
MAX_QUARTER = 400  # the longest horizon (ScenarioConfig.quarters)
MAX_BORROWERS_PER_LOAN = 1e6  # the smallest book (100 slots) then stands for 100 m borrowers


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SegmentSpec(_Strict):
    """Calibration of one borrower segment (see ``nplsim.market.loans.SegmentTable``)."""

    pd_annual: float = Field(ge=0.0001, le=0.9, description="Annual PD of a new loan.")
    spread: float = Field(ge=-0.05, le=0.3, description="Lending spread over benchmark, annual.")
    maturity_q: int = Field(ge=1, le=120, description="Contractual maturity, quarters.")
    secured_share: float = Field(ge=0, le=1, description="Share of loans with collateral.")
    collateral_cover: float = Field(ge=0, le=5, description="Collateral value / principal.")
    haircut: float = Field(ge=0, le=1, description="Collateral value lost in enforcement.")
    unsecured_recovery: float = Field(ge=0, le=1, description="Recovery on the unsecured claim.")
    correlation: float | None = Field(
        default=None, ge=0, le=0.9, description="Asset correlation; None = IRB corporate formula."
    )


def _default_segments() -> dict[str, SegmentSpec]:
    # Assumptions calibrated so that (a) the 1999 big-four book carries a ~29% NPL ratio with weak
    # internal control and (b) AMC recoveries on carved-out SOE loans land in the high teens of face
    # (facts: amc-recovery-2006: 17.43%). Correlations: facts: irb-correlation (0.15 mortgages,
    # 0.04 revolving retail, corporate formula otherwise).
    spec = SegmentSpec
    return {
        "gov_directed_soe": spec(
            pd_annual=0.04, spread=0.0, maturity_q=12, secured_share=0.3,
            collateral_cover=1.0, haircut=0.5, unsecured_recovery=0.25,
        ),
        "commercial_soe": spec(
            pd_annual=0.012, spread=0.005, maturity_q=12, secured_share=0.5,
            collateral_cover=1.0, haircut=0.45, unsecured_recovery=0.2,
        ),
        "private": spec(
            pd_annual=0.02, spread=0.02, maturity_q=8, secured_share=0.7,
            collateral_cover=1.2, haircut=0.4, unsecured_recovery=0.1,
        ),
        # Credit-card NPL pools recover 23-38% within 12 months (facts: credit-card-recovery).
        "retail_card": spec(
            pd_annual=0.03, spread=0.12, maturity_q=8, secured_share=0.0,
            collateral_cover=0.0, haircut=0.0, unsecured_recovery=0.33, correlation=0.04,
        ),
        "mortgage": spec(
            pd_annual=0.005, spread=0.0, maturity_q=80, secured_share=1.0,
            collateral_cover=1.3, haircut=0.3, unsecured_recovery=0.05, correlation=0.15,
        ),
        "power_plant": spec(
            pd_annual=0.01, spread=0.005, maturity_q=40, secured_share=0.8,
            collateral_cover=1.0, haircut=0.5, unsecured_recovery=0.25,
        ),
    }  # fmt: skip


def _default_commercial_mix() -> dict[str, float]:
    # Assumption: composition of lending that is not government-directed.
    return {
        "commercial_soe": 0.4,
        "private": 0.25,
        "retail_card": 0.05,
        "mortgage": 0.25,
        "power_plant": 0.05,
    }


class BankSpec(_Strict):
    """One state-owned commercial bank at the start of the run."""

    name: str = Field(min_length=1)
    loans_cny_bn: float = Field(
        gt=0,
        le=MAX_CNY_BN,
        description="Gross loan book, CNY bn (at most 1e6 = CNY 1,000 trn, more than the loans"
        " of the whole Chinese banking system).",
    )
    internal_control: float = Field(
        ge=0, le=1, description="Quality of credit control: 1 = segment PDs, 0 = 2.5 times them."
    )
    workout_skill: float = Field(
        gt=0, le=5, description="Multiplier on the bank's own NPL recovery hazard."
    )
    equity_ratio: float = Field(
        ge=0.005, le=0.3, description="Book equity (common equity tier 1) / gross loans."
    )
    bond_share: float = Field(ge=0, le=2, description="Government bonds / gross loans.")
    policy_bond_share: float = Field(
        default=0.0, ge=0, le=2, description="Policy-bank bonds / gross loans."
    )
    at1_ratio: float = Field(
        default=0.0, ge=0, le=0.1, description="Additional tier 1 instruments / gross loans."
    )
    sub_debt_ratio: float = Field(
        default=0.0, ge=0, le=0.2, description="Tier 2 subordinated debt / gross loans."
    )
    systemic: bool = Field(
        default=True, description="Systemically important: holds the systemic capital surcharge."
    )


class AMCSpec(_Strict):
    """One asset management company."""

    name: str = Field(min_length=1)
    equity_cny_bn: float = Field(
        gt=0, le=MAX_CNY_BN, description="Paid-in capital, CNY bn (at most 1e6 = CNY 1,000 trn)."
    )
    funding_capacity_cny_bn: float = Field(
        ge=0,
        le=MAX_CNY_BN,
        description="Bonds / central-bank lending it can raise for purchases, CNY bn (at most"
        " 1e6 = CNY 1,000 trn).",
    )
    workout_skill: float = Field(gt=0, le=5, description="Multiplier on the recovery hazard.")
    cost_per_recovered: float = Field(
        ge=0, le=1, description="Workout cost per unit of cash recovered."
    )


def _default_banks() -> list[BankSpec]:
    # Assumption: big-four loan books of the late 1990s (total ~CNY 7.3 trn), internal control weak.
    return [
        BankSpec(name=n, loans_cny_bn=v, internal_control=0.4, workout_skill=1.0,
                 equity_ratio=0.06, bond_share=0.15)
        for n, v in (("ICBC", 2500.0), ("ABC", 1700.0), ("BOC", 1500.0), ("CCB", 1600.0))
    ]  # fmt: skip


def _default_amcs() -> list[AMCSpec]:
    # Huarong recovered 17.97% of face at a cost of CNY 5.57 per 100 recovered, Great Wall 10.36%
    # (facts: amc-recovery-2006); skills are set in that order. Capital CNY 10 bn each and
    # funding capacity are assumptions.
    return [
        AMCSpec(name=n, equity_cny_bn=10.0, funding_capacity_cny_bn=300.0,
                workout_skill=s, cost_per_recovered=0.0557)
        for n, s in (("Huarong", 1.9), ("Great Wall", 1.2), ("Orient", 1.5), ("Cinda", 1.7))
    ]  # fmt: skip


InvestorClassName = Literal[
    "bank_treasury", "insurer", "mutual_fund", "qfii", "distressed_fund", "retail"
]


class InvestorSpec(_Strict):
    """A group of primary-market investors of one class (each member bids separately)."""

    investor_class: InvestorClassName
    count: int = Field(ge=1, le=200, description="Number of investors of this class.")
    capacity_cny_bn: float = Field(
        gt=0,
        le=MAX_CNY_BN,
        description="Cash each can invest, CNY bn (at most 1e6 = CNY 1,000 trn).",
    )
    risk_aversion: float = Field(
        default=1.0, gt=0, le=10, description="Scales the unexpected-loss premium."
    )
    liquidity_premium_bp: float = Field(
        default=50.0, ge=0, le=1000, description="Premium for holding an illiquid security, bp."
    )
    liquidity_shock_prob: float = Field(
        default=0.05, ge=0, le=1, description="Chance a quarter's redemptions force it to sell."
    )
    appetite: float = Field(
        default=0.15, gt=0, le=1, description="Share of a new tranche it bids for (cash allowing)."
    )
    foreign: bool = Field(default=False, description="Needs foreign_investors_allowed.")


def _default_investors() -> list[InvestorSpec]:
    # Assumption: the interbank market's main buyers of senior ABS are bank treasuries and
    # insurers; mutual funds and foreign institutions take senior and mezzanine; distressed-debt
    # funds (including AMC subsidiaries) buy subordinated tranches; retail only where allowed.
    # Liquidity-shock chances (assumption): open-ended funds and retail face redemptions most,
    # insurers least.
    spec = InvestorSpec
    return [
        spec(investor_class="bank_treasury", count=6, capacity_cny_bn=8.0, risk_aversion=1.0,
             liquidity_shock_prob=0.05),
        spec(investor_class="insurer", count=4, capacity_cny_bn=6.0, risk_aversion=1.5,
             liquidity_shock_prob=0.02),
        spec(investor_class="mutual_fund", count=6, capacity_cny_bn=3.0, risk_aversion=0.8,
             liquidity_premium_bp=80.0, liquidity_shock_prob=0.15),
        spec(investor_class="qfii", count=4, capacity_cny_bn=4.0, risk_aversion=0.7, foreign=True,
             liquidity_shock_prob=0.08),
        spec(investor_class="distressed_fund", count=4, capacity_cny_bn=2.0, risk_aversion=0.5,
             liquidity_premium_bp=150.0, liquidity_shock_prob=0.05),
        spec(investor_class="retail", count=10, capacity_cny_bn=0.5, risk_aversion=2.0,
             liquidity_premium_bp=100.0, liquidity_shock_prob=0.1),
    ]  # fmt: skip


class EnhancerSpec(_Strict):
    """A private credit enhancer (guarantor of senior tranches)."""

    name: str = Field(min_length=1)
    capital_cny_bn: float = Field(
        gt=0,
        le=MAX_CNY_BN,
        description="Capital backing its guarantees, CNY bn (at most 1e6 = CNY 1,000 trn).",
    )
    max_leverage: float = Field(default=10.0, gt=0, le=100, description="Guarantees / capital.")
    fee_markup: float = Field(
        default=1.5, ge=1, le=10, description="Guarantee fee / expected loss covered."
    )


def _default_enhancers() -> list[EnhancerSpec]:
    # Assumption: two guarantee companies of moderate size.
    return [
        EnhancerSpec(name="Guarantor A", capital_cny_bn=5.0),
        EnhancerSpec(name="Guarantor B", capital_cny_bn=3.0),
    ]


class SecuritisationSpec(_Strict):
    """How deals are put together, serviced and priced (the regime decides what is legal)."""

    min_pool_loans: int = Field(default=30, ge=1, le=100_000)
    max_pool_loans: int = Field(default=5000, ge=1, le=1_000_000)
    tenor_q: int = Field(default=20, ge=2, le=120, description="Legal final maturity, quarters.")
    with_mezz: bool = True
    senior_default_prob: float = Field(default=0.005, gt=0, lt=0.5)
    mezz_default_prob: float = Field(default=0.10, gt=0, lt=0.9)
    reserve_share: float = Field(default=0.03, ge=0, le=0.5, description="Reserve / senior.")
    servicer: Literal["originator", "amc"] = "originator"
    servicer_base_fee: float = Field(
        default=0.05, ge=0, le=0.5, description="Base fee, share of collections."
    )
    servicer_incentive_share: float = Field(
        default=0.2, ge=0, le=1, description="Incentive fee, share of the residual."
    )
    disposal_cost_cap: float = Field(
        default=0.08, ge=0, le=1, description="Cap on senior disposal costs, share of collections."
    )
    # facts: issuance-costs (unverified): trustee 1–5 bp a year, underwriting 10–50 bp, rating,
    # legal and audit CNY 0.5–1.5 m a deal
    trustee_bp_per_year: float = Field(default=3.0, ge=0, le=100)
    underwriting_bp: float = Field(default=30.0, ge=0, le=500)
    fixed_cost_cny_bn: float = Field(default=0.001, ge=0, le=1)
    firm_commitment: bool = True
    sub_required_return: float = Field(default=0.15, ge=0, le=1, description="Annual.")
    trigger_ratio: float = Field(default=0.5, ge=0, le=1)
    sigma_floor: float = Field(default=0.15, ge=0, le=2)
    sigma_opacity: float = Field(default=0.45, ge=0, le=3)
    legal_premium_scale: float = Field(default=0.03, ge=0, le=0.5)
    information_premium_scale: float = Field(default=0.02, ge=0, le=0.5)
    collateral_loss_without_transfer: float = Field(
        default=0.5, ge=0, le=1, description="Collateral value lost where it does not follow."
    )
    individual_notice_min_delay_q: int = Field(default=2, ge=0, le=12)
    bulk_approval_delay_q: int = Field(default=1, ge=0, le=12)
    freeze_q: int = Field(default=4, ge=1, le=40, description="Collections frozen, quarters.")
    recharacterisation_haircut: float = Field(default=0.4, ge=0, le=1)
    distress_car_gap: float = Field(
        default=0.03, ge=0, le=0.2, description="Distress: CAR below the minimum by this much."
    )
    initial_price_belief: float = Field(default=0.9, gt=0, le=3)
    underwriter_capital_cny_bn: float = Field(
        default=20.0,
        ge=0,
        le=MAX_CNY_BN,
        description="Underwriter's capital, CNY bn (at most 1e6 = CNY 1,000 trn).",
    )
    max_coupon_spread: float = Field(
        default=0.08, gt=0, le=1, description="Highest coupon over risk-free the book accepts."
    )
    borrowers_per_loan: float = Field(
        default=200.0,
        gt=0,
        le=MAX_BORROWERS_PER_LOAN,
        description="Real borrowers one loan slot stands for (notice costs); at most 1e6, far"
        " above any calibration (the smallest book, 100 slots, then stands for 100 m borrowers).",
    )
    taxable_income_share: float = Field(
        default=0.3, ge=0, le=1, description="Share of SPV collections taxed as income."
    )
    private_guarantee_cover: float = Field(
        default=0.8, ge=0, le=1, description="Cover investors credit to a private guarantee."
    )


class SecondaryMarketSpec(_Strict):
    """The quarterly call auction for outstanding tranches and its dealer (all assumptions)."""

    forced_sale_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of a position a liquidity shock forces out."
    )
    forced_sale_floor: float = Field(
        default=0.6, gt=0, le=1, description="Lowest price / fundamental a forced seller takes."
    )
    rebalance_share: float = Field(
        default=0.1, ge=0, le=1, description="Share of a position a holder offers each quarter."
    )
    buy_appetite: float = Field(
        default=0.05, gt=0, le=1, description="Share of a tranche each eligible buyer bids for."
    )
    trading_margin: float = Field(
        default=0.002, ge=0, le=0.2, description="Margin each side keeps from its valuation."
    )
    valuation_sigma_floor: float = Field(default=0.005, ge=0, le=1)
    valuation_sigma_opacity: float = Field(
        default=0.04, ge=0, le=1, description="Extra dispersion of valuations at zero disclosure."
    )
    dealer_base_half_spread: float = Field(default=0.001, ge=0, le=0.2)
    dealer_information_half_spread: float = Field(default=0.01, ge=0, le=0.5)
    dealer_inventory_half_spread: float = Field(default=0.01, ge=0, le=0.5)
    dealer_capital_share: float = Field(
        default=0.3, ge=0, le=1, description="Share of dealer capital it will hold in one tranche."
    )
    feedback_turnover_scale: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="Turnover at which the liquidity premium falls by 1/e.",
    )
    feedback_floor: float = Field(
        default=0.3, ge=0, le=1, description="Share of the liquidity premium a deep market keeps."
    )
    feedback_memory: float = Field(
        default=0.3, gt=0, le=1, description="Weight of the latest quarter in observed turnover."
    )


class ShockSpec(_Strict):
    """A shock to the systematic factor Z (negative = bad times, more defaults)."""

    quarter: int = Field(
        ge=0, le=MAX_QUARTER, description="Quarter it happens (at most 400, the longest horizon)."
    )
    z: float = Field(ge=-6, le=6)


class MacroSpec(_Strict):
    """Systematic factor and interest rates (annual, decimal)."""

    z_persistence: float = Field(default=0.7, ge=0, lt=1, description="AR(1) coefficient of Z.")
    z_initial: float = Field(default=0.0, ge=-6, le=6)
    benchmark_rate: float = Field(default=0.0585, ge=0, le=0.3, description="1-year lending.")
    deposit_rate: float = Field(default=0.0225, ge=0, le=0.3)
    gov_bond_yield: float = Field(default=0.03, ge=0, le=0.3)
    interbank_rate: float = Field(default=0.03, ge=0, le=0.3)
    shocks: list[ShockSpec] = Field(default_factory=list)
    credit_factor_sd: float = Field(
        default=1.0,
        gt=0,
        le=3,
        description="S.d. of the one-year systematic credit factor relative to the"
        " through-the-cycle factor of the IRB correlations (1 = Basel's).",
    )


class EventSpec(_Strict):
    """Something scheduled: a regime reform and/or a macro shock at a quarter."""

    quarter: int = Field(
        ge=0, le=MAX_QUARTER, description="Quarter it happens (at most 400, the longest horizon)."
    )
    regime: str | None = Field(default=None, description="Preset to switch to.")
    prudential: str | None = Field(default=None, description="Prudential preset to switch to.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Legal-regime or prudential field changes."
    )
    label: str = ""


class ScenarioConfig(_Strict):
    """A whole simulated world. Money in CNY bn, time in quarters."""

    name: str = "custom"
    description: str = ""
    regime: str = Field(default=DEFAULT_SCENARIO, description="Legal-regime preset name.")
    regime_overrides: dict[str, Any] = Field(default_factory=dict)
    prudential: str = Field(default=DEFAULT_PRUDENTIAL, description="Prudential preset name.")
    prudential_overrides: dict[str, Any] = Field(default_factory=dict)
    quarters: int = Field(default=40, ge=1, le=400, description="Horizon, quarters.")
    n_loans: int = Field(default=100_000, ge=100, le=50_000_000, description="Loan slots.")
    banks: list[BankSpec] = Field(default_factory=_default_banks, min_length=1)
    amcs: list[AMCSpec] = Field(default_factory=_default_amcs, min_length=1)
    segments: dict[str, SegmentSpec] = Field(default_factory=_default_segments)
    commercial_mix: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=_default_commercial_mix
    )
    gov_directed_share: float = Field(
        default=0.3, ge=0, le=1, description="Share of new lending directed by government."
    )
    initial_npl_ratio: float = Field(default=0.05, ge=0, le=0.95)
    initial_npl_max_age_q: int = Field(default=12, ge=0, le=40)
    loan_growth_annual: float = Field(default=0.1, ge=-0.5, le=1.0)
    deposit_growth_annual: float = Field(default=0.1, ge=-0.5, le=1.0)
    reserve_ratio: float = Field(default=0.12, ge=0, le=0.5, description="Required reserves.")
    demand_deposit_share: float = Field(
        default=0.45, ge=0, le=1, description="Demand deposits / deposits (due within a month)."
    )
    opex_rate: float = Field(default=0.008, ge=0, le=0.1, description="Opex / assets, annual.")
    tax_rate: float = Field(default=0.25, ge=0, le=0.6)
    payout_ratio: float = Field(default=0.3, ge=0, le=1, description="Dividends / profit.")
    provision_coverage_target: float = Field(
        default=0.0,
        ge=0,
        le=5,
        description="Provisions / NPLs the banks aim at above the rules' floors (0: the floors).",
    )
    provision_adjustment: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the gap to their provision target banks close in a quarter.",
    )  # assumption: banks smooth provisioning charges over about two quarters
    bank_base_hazard: float = Field(
        default=0.075, gt=0, le=2, description="Quarterly NPL resolution hazard at skill 1."
    )
    borrower_quality_dispersion: float = Field(
        default=0.6, ge=0, le=2, description="Log-s.d. of NPL workout quality known to the lender."
    )
    bank_workout_cost: float = Field(default=0.08, ge=0, le=1)
    write_off_age_q: int = Field(default=28, ge=1, le=120)
    bank_discount_rate: float = Field(default=0.08, ge=0, le=1, description="Annual.")
    amc_discount_rate: float = Field(default=0.1, ge=0, le=1, description="Annual.")
    amc_funding_rate: float = Field(default=0.0225, ge=0, le=0.3)
    capital_pressure_weight: float = Field(default=0.3, ge=0, le=5)
    npl_pressure_weight: float = Field(default=0.05, ge=0, le=5)
    car_buffer: float = Field(default=0.02, gt=0, le=0.2)
    disposal_channels: list[Literal["amc", "securitisation"]] = Field(
        default_factory=lambda: ["amc", "securitisation"],
        description="Disposal channels banks may use beside their own workout (an experiment"
        " closes one by leaving it out).",
    )
    disposal_lag_q: int = Field(
        default=4,
        ge=0,
        le=40,
        description="Quarters an NPL must age (classification, valuation, approval) before sale.",
    )
    package_loans: int = Field(default=200, ge=1, le=100_000, description="Loans per package.")
    bid_noise_at_zero_disclosure: float = Field(default=0.5, ge=0, le=3)
    bid_noise_floor: float = Field(default=0.05, ge=0, le=1)
    bid_shading: float = Field(
        default=1.0, ge=0, le=3, description="Bid cut per unit of valuation noise (winner's curse)."
    )
    price_learning_rate: float = Field(default=0.3, ge=0, le=1)
    investors: list[InvestorSpec] = Field(default_factory=_default_investors)
    enhancers: list[EnhancerSpec] = Field(default_factory=_default_enhancers)
    securitisation: SecuritisationSpec = Field(default_factory=SecuritisationSpec)
    secondary: SecondaryMarketSpec = Field(default_factory=SecondaryMarketSpec)
    macro: MacroSpec = Field(default_factory=MacroSpec)
    liquidity: LiquiditySpec = Field(default_factory=LiquiditySpec)
    state: StateSpec = Field(default_factory=StateSpec)
    events: list[EventSpec] = Field(default_factory=list)
    power: PowerSpec | None = Field(
        default=None, description="Power plants and the Securitization Center."
    )

    @model_validator(mode="after")
    def _check(self) -> ScenarioConfig:
        missing = set(SEGMENTS) - set(self.segments)
        if missing:
            raise ValueError(f"segments: missing {sorted(missing)}; all of {list(SEGMENTS)}")
        unknown = set(self.commercial_mix) - set(SEGMENTS)
        if unknown:
            raise ValueError(f"commercial_mix: unknown segments {sorted(unknown)}")
        if abs(sum(self.commercial_mix.values()) - 1.0) > 1e-6:
            raise ValueError("commercial_mix: shares must sum to 1")
        names = (
            [b.name for b in self.banks]
            + [a.name for a in self.amcs]
            + [e.name for e in self.enhancers]
        )
        if len(set(names)) != len(names):
            raise ValueError("banks, amcs and enhancers must have distinct names")
        if self.n_loans < 20 * len(self.banks):
            raise ValueError("n_loans must be at least 20 per bank")
        banks = {b.name for b in self.banks}
        for k, shock in enumerate(self.liquidity.shocks):
            unknown_banks = sorted(set(shock.banks) - banks)
            if unknown_banks:
                raise ValueError(
                    f"liquidity.shocks.{k}.banks: unknown banks {unknown_banks}; of {sorted(banks)}"
                )
        return self


def list_scenarios() -> list[str]:
    """Names of the built-in scenarios."""
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml"))


def scenario_source(name_or_path: str | Path) -> Path:
    """The file behind a scenario name or path; a ConfigError names the choices if unknown."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists() or "/" in str(name_or_path):
        return path
    if str(name_or_path) not in list_scenarios():
        raise ConfigError(
            str(name_or_path), "scenario", "unknown scenario", ", ".join(list_scenarios())
        )
    return SCENARIOS_DIR / f"{name_or_path}.toml"


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node: Any = data
    fields = ScenarioConfig.model_fields
    for part in parts[:-1]:
        if isinstance(node, dict):
            if node.get(part) is None:  # an absent optional block, e.g. power
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(source, dotted, "cannot set inside a value that is not a table")
    if not isinstance(node, dict):
        raise ConfigError(source, dotted, "cannot set inside a value that is not a table")
    if len(parts) == 1 and parts[0] not in fields:
        allowed = sorted(
            list(fields) + list(LegalRegime.model_fields) + list(PrudentialRules.model_fields)
        )
        raise ConfigError(source, dotted, "unknown key", ", ".join(allowed))
    node[parts[-1]] = value


def _validated(data: dict[str, Any], source: str) -> ScenarioConfig:
    try:
        return ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(exc, source, list(ScenarioConfig.model_fields)) from None


def load_scenario(
    scenario: str | Path | ScenarioConfig = DEFAULT_SCENARIO,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[ScenarioConfig, LegalRegime]:
    """Resolve a scenario (built-in name, TOML path, or config) plus overrides.

    Override keys are scenario fields (dotted for nested tables, ``__`` accepted for a dot),
    legal-regime fields, which go to ``regime_overrides``, or prudential fields, which go to
    ``prudential_overrides``. A scenario file may name a ``base`` scenario it changes
    (:func:`scenario_data`).

    Returns:
        The validated scenario and its resolved starting legal regime.

    Raises:
        ConfigError: for any invalid input, naming the file, the key and the allowed values.
    """
    if isinstance(scenario, ScenarioConfig):
        data, source = scenario.model_dump(), "scenario"
    else:
        path = scenario_source(scenario)
        data, source = scenario_data(path), str(path)
        data.setdefault("name", path.stem)
    config = _validated(data, source)
    if overrides:
        data = config.model_dump()
        regime_changes = dict(data.get("regime_overrides", {}))
        prudential_changes = dict(data.get("prudential_overrides", {}))
        for raw_key, value in overrides.items():
            key = raw_key.replace("__", ".")
            if key in LegalRegime.model_fields:
                regime_changes[key] = value
            elif key in PrudentialRules.model_fields:
                prudential_changes[key] = value
            else:
                _set_dotted(data, key, value, "overrides")
        data["regime_overrides"] = regime_changes
        data["prudential_overrides"] = prudential_changes
        config = _validated(data, "overrides")
    regime = _resolve_regime(config.regime, config.regime_overrides, source)
    resolve_prudential(config.prudential, config.prudential_overrides, source)
    for event in config.events:
        legal, prudential = split_overrides(event.overrides, source)
        if event.regime is not None or legal:
            _resolve_regime(event.regime or config.regime, legal, source)
        if event.prudential is not None or prudential:
            resolve_prudential(event.prudential or config.prudential, prudential, source)
    return config, regime


def _resolve_regime(name: str, overrides: Mapping[str, Any], source: str) -> LegalRegime:
    if name not in list_presets() and not name.endswith(".toml"):
        raise ConfigError(source, "regime", f"unknown preset {name!r}", ", ".join(list_presets()))
    return load_regime(name, overrides or None)


def event_regime(event: EventSpec, current_preset: str) -> tuple[str, LegalRegime]:
    """The preset name and legal regime in force after a scheduled reform ``event``, when
    ``current_preset`` is in force before it (the one place that says how events change the law)."""
    name = event.regime or current_preset
    return name, load_regime(name, split_overrides(event.overrides, "events")[0] or None)


# ----------------------------------------------------------------------- prudential rules
def scenario_prudential(config: ScenarioConfig) -> PrudentialRules:
    """The prudential rules in force at quarter 0: the scenario's preset with its overrides."""
    return resolve_prudential(config.prudential, config.prudential_overrides, "scenario")


def event_prudential(
    event: EventSpec, current_preset: str, kept: Mapping[str, Any] | None = None
) -> tuple[str, PrudentialRules]:
    """The prudential preset name and rules in force after a scheduled ``event``, when
    ``current_preset`` is in force before it. The scenario's own prudential overrides (``kept``)
    hold through the change unless the event sets the same fields."""
    name = event.prudential or current_preset
    changes = {**(kept or {}), **split_overrides(event.overrides, "events")[1]}
    return name, load_prudential(name, changes or None)


# ----------------------------------------------------------------------- inheritance
def scenario_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A scenario file's table with its ``base`` resolved: the base scenario (a built-in name,
    or a path relative to the file) with this file's keys laid over it. Tables merge key by key;
    any other value (a number, a list such as ``banks`` or ``events``) replaces the base's.

    Raises:
        ConfigError: an unknown base, a base that is not a string, or a cycle of bases.
    """
    data = read_toml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(str(path), "base", "must be a scenario name or a path",
                          ", ".join(list_scenarios()) + " or a TOML file")  # fmt: skip
    base_path = Path(base)
    if base in list_scenarios():
        base_path = SCENARIOS_DIR / f"{base}.toml"
    elif not base_path.is_absolute():
        base_path = path.parent / base_path
    if not base_path.is_file():
        raise ConfigError(str(path), "base", f"unknown scenario {base!r}",
                          ", ".join(list_scenarios()) + " or a TOML file")  # fmt: skip
    chain = (*seen, path.resolve())
    if base_path.resolve() in chain:
        raise ConfigError(str(path), "base", f"{base!r} leads back to this file (a cycle)")
    inherited = scenario_data(base_path, chain)
    inherited.pop("name", None)  # a scenario is named after its own file, and says what it is
    inherited.pop("description", None)
    return _merged(inherited, data)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
