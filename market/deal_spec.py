"""How deals are put together, serviced, priced and traded: the securitisation and secondary
market parts of a scenario (``ScenarioConfig.securitisation``, ``ScenarioConfig.secondary``); the
regime decides what is legal."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from nplsim.market.banking_spec import MAX_CNY_BN
from nplsim.market.errors import StrictSpec
from nplsim.market.waterfall import PRIORITIES, parse_priority


class WaterfallSpec(StrictSpec):
    """A priority of payments written out step by step, as ``"kind target"`` strings
    (``"tax"``, ``"fee trustee"``, ``"interest senior"``, ``"pro_rata_principal senior+mezz"``,
    ``"reserve_topup"``, ``"residual sub"``): before and after the performance trigger."""

    normal: list[str] = Field(min_length=1, max_length=50)
    after_trigger: list[str] = Field(min_length=1, max_length=50)

    @field_validator("normal", "after_trigger")
    @classmethod
    def _steps(cls, steps: list[str], info: Any) -> list[str]:
        parse_priority(steps, info.field_name)
        return steps

    def lists(self) -> tuple[list[str], list[str]]:
        """The two lists, for ``nplsim.market.waterfall.priority``."""
        return self.normal, self.after_trigger


class SecuritisationSpec(StrictSpec):
    """How deals are put together, serviced and priced (the regime decides what is legal)."""

    max_pool_cny_bn: float = Field(
        default=10.0,
        gt=0,
        le=MAX_CNY_BN,
        description="Most face in one pool (oldest NPLs first), CNY bn (facts: npl-abs-2016-deals:"
        " CNY 10.7 bn, the largest 2016 pool).",
    )
    tenor_q: int = Field(default=20, ge=2, le=120, description="Legal final maturity, quarters.")
    remainder_sale: bool = Field(
        default=True,
        description="Whether the trust sells the loans left at the legal final maturity in the"
        " NPL auction, proceeds through the waterfall (true), or writes them off (false)"
        " (assumption; facts: trust-asset-sale).",
    )
    with_mezz: bool = Field(
        default=False,
        description="Whether deals have a mezzanine tranche (facts: npl-abs-2016-deals: senior"
        " and subordinated only).",
    )
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
    waterfall: str | WaterfallSpec = Field(
        default="sequential",
        description="Priority of payments: a name (sequential, interest_first, pro_rata) or a "
        "table with the step lists `normal` and `after_trigger`.",
    )

    @field_validator("waterfall", mode="before")
    @classmethod
    def _waterfall(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in PRIORITIES:
            raise ValueError(
                f"unknown priority of payments {value!r}; allowed: {', '.join(PRIORITIES)}, or a "
                "table with the step lists normal and after_trigger"
            )
        if isinstance(value, dict):
            try:
                return WaterfallSpec.model_validate(value)
            except ValidationError as exc:
                problems = []
                for error in exc.errors():
                    where = ".".join(map(str, error["loc"]))
                    message = error["msg"].removeprefix("Value error, ")
                    problems.append(message if message.startswith(where) else f"{where}: {message}")
                raise ValueError("; ".join(problems)) from None
        if not isinstance(value, str | WaterfallSpec):
            raise ValueError("a name or a table with the step lists normal and after_trigger")
        return value

    sigma_floor: float = Field(default=0.15, ge=0, le=2)
    sigma_opacity: float = Field(default=0.45, ge=0, le=3)
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
    price_range_width: float | None = Field(
        default=0.015,  # assumption: a price-talk range of about 150 bp over the expected yield
        ge=0,
        le=1,
        description="Width of the bookbuilding range above the underwriter's estimate of the"
        " tranche's required yield (annual); bids above its top are rejected and a firm"
        " commitment takes the balance at the top. None: the range reaches the coupon cap.",
    )
    taxable_income_share: float = Field(
        default=0.3, ge=0, le=1, description="Share of SPV collections taxed as income."
    )
    private_guarantee_cover: float = Field(
        default=0.8, ge=0, le=1, description="Cover investors credit to a private guarantee."
    )


class SecondaryMarketSpec(StrictSpec):
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
