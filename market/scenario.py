"""Scenarios: the typed, validated description of a simulated world, loaded from TOML.

A scenario names one legal-regime preset plus overrides, the size of the economy, the banks and
AMCs, the borrower segments' calibration, the macro path and scheduled events (reforms, shocks).
Every default lives here, typed and documented; the built-in scenario files in ``market/scenarios/``
only set what differs. Sources are cited next to the numbers (docs/facts.md, the project's reference
facts); anything else is marked as an assumption.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from nplsim.market.banking_spec import MAX_CNY_BN, BankSpec, LiquiditySpec, StateSpec, default_banks
from nplsim.market.calendar import START_PATTERN
from nplsim.market.deal_spec import (  # noqa: F401 (re-exported)
    SecondaryMarketSpec,
    SecuritisationSpec,
    WaterfallSpec,
)
from nplsim.market.errors import ConfigError, StrictSpec, config_error_from_validation
from nplsim.market.institutions import (  # the scenario's institutions, re-exported
    AMCSpec,
    BuyerSpec,
    EnhancerSpec,
    InvestorSpec,
    _default_amcs,
    _default_buyers,
    _default_enhancers,
    _default_investors,
)
from nplsim.market.loans import SEGMENTS
from nplsim.market.overrides import (
    REGIME_TABLE,
    Applied,
    apply_overrides,
    is_path,
    known_preset,
    paths_beside,
)
from nplsim.market.power import PowerSpec
from nplsim.market.prudential_rules import DEFAULT_PRUDENTIAL, resolve_prudential, split_overrides
from nplsim.market.regime import LegalRegime, list_presets, load_regime
from nplsim.market.scenario_files import (  # noqa: F401 (re-exported)
    SCENARIOS_DIR,
    list_scenarios,
    scenario_data,
    scenario_source,
)

DEFAULT_SCENARIO = "restart_2016"

# Upper bounds of fields that have no natural one: generous, but finite, so that no value a file
# can hold overflows to inf or nan during a run.
MAX_QUARTER = 400  # the longest horizon (ScenarioConfig.quarters)


class SegmentSpec(StrictSpec):
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
    borrower_balance_cny: float = Field(
        default=1e6,
        gt=0,
        le=1e11,
        description="Average balance of one borrower's loans, CNY (counts borrowers in a pool or"
        " package: debtor notice, the bulk-transfer rule; at most CNY 100 bn).",
    )


def _default_segments() -> dict[str, SegmentSpec]:
    # Assumptions calibrated so that (a) the 1999 big-four book carries a ~29% NPL ratio with weak
    # internal control and (b) AMC recoveries on carved-out SOE loans land in the high teens of face
    # (facts: amc-recovery-2006: 17.43%). Correlations: facts: irb-correlation (0.15 mortgages,
    # 0.04 revolving retail, corporate formula otherwise). Borrower balances: corporate NPL pools
    # of CNY 52.6 m a borrower and card pools of CNY 26,000 (facts: npl-abs-2016-deals); the
    # others are assumptions.
    spec = SegmentSpec
    return {
        "gov_directed_soe": spec(
            pd_annual=0.04, spread=0.0, maturity_q=12, secured_share=0.3,
            collateral_cover=1.0, haircut=0.5, unsecured_recovery=0.25,
            borrower_balance_cny=2e8,
        ),
        "commercial_soe": spec(
            pd_annual=0.012, spread=0.005, maturity_q=12, secured_share=0.5,
            collateral_cover=1.0, haircut=0.45, unsecured_recovery=0.2,
            borrower_balance_cny=1e8,
        ),
        "private": spec(
            pd_annual=0.02, spread=0.02, maturity_q=8, secured_share=0.7,
            collateral_cover=1.2, haircut=0.4, unsecured_recovery=0.1,
            borrower_balance_cny=5e7,
        ),
        # Credit-card NPL pools recover 23-38% within 12 months (facts: credit-card-recovery).
        "retail_card": spec(
            pd_annual=0.03, spread=0.12, maturity_q=8, secured_share=0.0,
            collateral_cover=0.0, haircut=0.0, unsecured_recovery=0.33, correlation=0.04,
            borrower_balance_cny=2.6e4,
        ),
        "mortgage": spec(
            pd_annual=0.005, spread=0.0, maturity_q=80, secured_share=1.0,
            collateral_cover=1.3, haircut=0.3, unsecured_recovery=0.05, correlation=0.15,
            borrower_balance_cny=4e5,
        ),
        "power_plant": spec(
            pd_annual=0.01, spread=0.005, maturity_q=40, secured_share=0.8,
            collateral_cover=1.0, haircut=0.5, unsecured_recovery=0.25,
            borrower_balance_cny=5e8,
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


class ShockSpec(StrictSpec):
    """A shock to the systematic factor Z (negative = bad times, more defaults)."""

    quarter: int = Field(
        ge=0, le=MAX_QUARTER, description="Quarter it happens (at most 400, the longest horizon)."
    )
    z: float = Field(ge=-6, le=6)


class MacroSpec(StrictSpec):
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


class EventSpec(StrictSpec):
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


class ScenarioConfig(StrictSpec):
    """A whole simulated world. Money in CNY bn, time in quarters."""

    name: str = "custom"
    description: str = ""
    regime: str = Field(default=DEFAULT_SCENARIO, description="Legal-regime preset name.")
    regime_overrides: dict[str, Any] = Field(default_factory=dict)
    prudential: str = Field(default=DEFAULT_PRUDENTIAL, description="Prudential preset name.")
    prudential_overrides: dict[str, Any] = Field(default_factory=dict)
    quarters: int = Field(default=40, ge=1, le=400, description="Horizon, quarters.")
    start: str | None = Field(
        default=None,
        description="Calendar quarter of quarter 1, e.g. 2016Q1 (quarter 0, the opening balance"
        " sheets, is the one before); figures label time with it. None: quarters from 0.",
    )
    n_loans: int = Field(default=100_000, ge=100, le=50_000_000, description="Loan slots.")
    banks: list[BankSpec] = Field(default_factory=default_banks, min_length=1)
    amcs: list[AMCSpec] = Field(default_factory=_default_amcs, min_length=1)
    npl_buyers: list[BuyerSpec] = Field(default_factory=_default_buyers)
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
    write_off_age_q: int = Field(
        default=28,
        ge=1,
        le=120,
        description="Age at which a bank charges an unresolved NPL off and stops pursuing it,"
        " quarters.",
    )
    claim_life_q: int | None = Field(
        default=None,
        ge=1,
        le=120,
        description="Age up to which a holder that bought the claim (AMC, distressed-debt buyer,"
        " securitisation trust) keeps pursuing an NPL, quarters; a bank's write-off does not"
        " end a claim it has sold. None: the banks' write-off age for every holder.",
    )
    banks_pursue_written_off: bool = Field(
        default=False,
        description="Whether a bank keeps pursuing an NPL it has written off, off its balance"
        " sheet, to the claim's end age (claim_life_q); its recoveries are credited to the"
        " allowance for losses.",
    )
    bank_discount_rate: float = Field(default=0.08, ge=0, le=1, description="Annual.")
    bank_cost_of_equity: float = Field(
        default=0.0,
        ge=0,
        le=0.5,
        description="Return the banks' shareholders require on equity (annual); capital an NPL"
        " ties up costs this less the government bond yield for as long as the loan stays on the"
        " books (0: equity not priced).",
    )
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
    liquidity_buffer: float = Field(
        default=0.1,
        gt=0,
        le=2,
        description="Band above the liquidity-ratio and LCR minima over which funding gets dearer.",
    )
    funding_stress_spread: float = Field(
        default=0.02,
        ge=0,
        le=0.5,
        description="Extra cost of a bank's marginal funding at its liquidity minimum, annual"
        " (assumption: interbank stress spreads of a few hundred bp).",
    )
    disposal_lag_q: int = Field(
        default=4,
        ge=0,
        le=40,
        description="Quarters an NPL must age (classification, valuation, approval) before sale.",
    )
    package_cny_bn: float = Field(
        default=5.0,
        gt=0,
        le=MAX_CNY_BN,
        description="Face of one NPL auction package, CNY bn (assumption; ICBC's 2005 tender"
        " averaged CNY 13 bn a package, facts: commercial-sales-2004).",
    )
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

    @field_validator("start")
    @classmethod
    def _calendar_quarter(cls, value: str | None) -> str | None:
        if value is not None and re.fullmatch(START_PATTERN, value) is None:
            raise ValueError(f"{value!r} is not a calendar quarter: YYYYQn, e.g. 2016Q1")
        return value

    @property
    def claim_end_age_q(self) -> int:
        """Age at which a holder that bought an NPL's claim stops pursuing it."""
        return self.write_off_age_q if self.claim_life_q is None else self.claim_life_q

    @property
    def bank_pursuit_age_q(self) -> int:
        """Age up to which a bank collects on an NPL it keeps: the claim's end where banks pursue
        what they have written off, else the write-off age."""
        return self.claim_end_age_q if self.banks_pursue_written_off else self.write_off_age_q

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
            + [b.name for b in self.npl_buyers]
            + [e.name for e in self.enhancers]
        )
        if len(set(names)) != len(names):
            raise ValueError(
                "banks: banks, amcs, npl_buyers and enhancers must have distinct names"
            )
        if self.n_loans < 20 * len(self.banks):
            raise ValueError(f"n_loans: must be at least 20 per bank ({20 * len(self.banks)})")
        if self.claim_life_q is not None and self.claim_life_q < self.write_off_age_q:
            raise ValueError(
                f"claim_life_q: must be at least write_off_age_q ({self.write_off_age_q}), or"
                " None; a claim is pursued at least until the banks write it off"
            )
        banks = {b.name for b in self.banks}
        for k, shock in enumerate(self.liquidity.shocks):
            unknown_banks = sorted(set(shock.banks) - banks)
            if unknown_banks:
                raise ValueError(
                    f"liquidity.shocks.{k}.banks: unknown banks {unknown_banks}; of {sorted(banks)}"
                )
        return self


def _validated(data: dict[str, Any], source: str) -> ScenarioConfig:
    try:
        return ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(
            exc, source, list(ScenarioConfig.model_fields), ScenarioConfig
        ) from None


def load_scenario(
    scenario: str | Path | ScenarioConfig = DEFAULT_SCENARIO,
    overrides: Mapping[str, Any] | None = None,
    *,
    origin: str = "overrides",
    base_dir: Path | None = None,
) -> tuple[ScenarioConfig, LegalRegime]:
    """Resolve a scenario (built-in name, TOML path, or config) plus overrides.

    Override keys are those of :func:`apply_overrides`. Preset paths in a scenario file are read
    beside the file. The starting regime and every scheduled reform are resolved, so that a value
    out of a field's range or a contradiction fails here, before any run.

    Args:
        scenario: a built-in name, a TOML path or a config.
        overrides: scenario, legal-regime and prudential fields to change.
        origin: what a message calls the source of the overrides (``--set``, a spec file).
        base_dir: the folder relative preset paths in the overrides are read from.

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
        paths_beside(data, path.parent)
    config = _validated(data, source)
    applied = Applied(data)
    if overrides:
        applied = apply_overrides(
            config.model_dump(), overrides, origin, base_dir, fields=ScenarioConfig.model_fields
        )
        config = _validated(applied.data, origin)
    regime = _starting_regime(config, source, origin, applied)
    regime_schedule(config, regime, source if "events" not in applied.scenario_keys else origin)
    where = origin if overrides else source
    try:
        resolve_prudential(config.prudential, config.prudential_overrides, where)
    except ConfigError as exc:
        if exc.source != "overrides":
            raise
        given = {str(k).replace("__", "."): str(k) for k in (overrides or {})}
        table = (overrides or {}).get("prudential_overrides")
        if isinstance(table, dict):  # the whole table given at once
            given.update({f"prudential_overrides.{k}": f"prudential_overrides.{k}" for k in table})
        key = given.get(exc.key) or given.get(f"prudential_overrides.{exc.key}")
        where = origin if key else source
        key = key or f"prudential_overrides.{exc.key}"
        raise ConfigError(where, key, exc.problem, exc.allowed) from None
    for index, event in enumerate(config.events):
        _, prudential = split_overrides(event.overrides, where)
        if event.prudential is not None or prudential:
            try:
                resolve_prudential(event.prudential or config.prudential, prudential, where)
            except ConfigError as exc:
                raise ConfigError(where, f"events.{index}.{exc.key}", exc.problem,
                                  exc.allowed) from None  # fmt: skip
    return config, regime


def _starting_regime(
    config: ScenarioConfig, source: str, origin: str, applied: Applied
) -> LegalRegime:
    """The preset with the regime overrides; an error names where the offending key was set."""
    where = origin if "regime" in applied.scenario_keys else source
    name = config.regime
    if not known_preset(name):
        raise ConfigError(where, "regime", f"unknown preset {name!r}", ", ".join(list_presets()))
    base = _preset(name, where, "regime")
    try:
        return base.with_overrides(**config.regime_overrides)
    except ConfigError as exc:
        name = exc.key.split(".")[0]
        if name in applied.regime_keys:
            raise ConfigError(origin, applied.regime_keys[name], exc.problem, exc.allowed) from None
        key = f"{REGIME_TABLE}.{exc.key}" if exc.key != "<root>" else REGIME_TABLE
        where = origin if applied.regime_keys else source
        raise ConfigError(where, key, exc.problem, exc.allowed) from None


def _preset(name: str, where: str, key: str) -> LegalRegime:
    """A preset, or a preset file that cannot be read named as the key that names it."""
    try:
        return load_regime(name)
    except ConfigError as exc:
        if exc.key != "<file>":
            raise
        raise ConfigError(where, key, f"{exc.source}: {exc.problem}") from None


def regime_schedule(
    config: ScenarioConfig, start: LegalRegime, source: str = "scenario"
) -> list[tuple[int, str, LegalRegime]]:
    """The law after each scheduled reform, in the order the model applies them (by quarter, then
    as listed): ``(quarter, preset, regime)`` for every event that changes the law.

    Raises:
        ConfigError: an event's preset is unknown or its overrides are invalid where it applies.
    """
    order = sorted(range(len(config.events)), key=lambda i: config.events[i].quarter)
    preset, regime, schedule = config.regime, start, []
    for index in order:
        event = config.events[index]
        try:
            legal, _ = split_overrides(event.overrides, "<event>")
        except ConfigError as exc:
            key = f"events.{index}.{exc.key}"
            raise ConfigError(source, key, exc.problem, exc.allowed) from None
        if event.regime is None and not legal:
            continue
        if event.regime is not None and not (
            event.regime in list_presets() or is_path(event.regime)
        ):
            raise ConfigError(source, f"events.{index}.regime", f"unknown preset {event.regime!r}",
                              ", ".join(list_presets()))  # fmt: skip
        if event.regime is not None:
            _preset(event.regime, source, f"events.{index}.regime")  # a missing file, said here
        try:
            preset, regime = event_regime(event, preset, regime)
        except ConfigError as exc:
            if exc.source in ("overrides", "<event>"):
                key = f"events.{index}.overrides" + (f".{exc.key}" if exc.key != "<root>" else "")
                raise ConfigError(source, key, exc.problem, exc.allowed) from None
            raise
        schedule.append((event.quarter, preset, regime))
    return schedule


def event_regime(
    event: EventSpec, current_preset: str, current_regime: LegalRegime
) -> tuple[str, LegalRegime]:
    """The preset name and legal regime in force after a scheduled reform ``event`` (the one place
    that says how events change the law).

    An event naming a preset replaces the law by that preset, amended by the event's own
    legal-regime overrides (its prudential ones are the rules', :func:`event_prudential`). An
    event with only overrides amends the law in force, ``current_regime``: the scenario's and the
    command line's regime overrides and every earlier event's stay, and two events in one quarter
    both apply, in the order they are listed.
    """
    legal, _ = split_overrides(event.overrides, "<event>")  # prudential fields: the rules'
    if event.regime is not None:
        return event.regime, load_regime(event.regime, legal or None)
    return current_preset, current_regime.with_overrides(**legal)
