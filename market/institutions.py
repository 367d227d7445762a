"""The institutions a scenario starts with beside its banks (``market/banking_spec.py``): the
national AMCs, the other buyers of NPL packages, the ABS investors and the guarantors, with their
default calibrations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nplsim.market.banking_spec import MAX_CNY_BN  # the upper bound of amounts
from nplsim.market.errors import StrictSpec


class AMCSpec(StrictSpec):
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


def _default_amcs() -> list[AMCSpec]:
    # Huarong recovered 17.97% of face at a cost of CNY 5.57 per 100 recovered, Great Wall 10.36%
    # (facts: amc-recovery-2006); skills are set in that order. Capital CNY 10 bn each and
    # funding capacity are assumptions.
    return [
        AMCSpec(name=n, equity_cny_bn=10.0, funding_capacity_cny_bn=300.0,
                workout_skill=s, cost_per_recovered=0.0557)
        for n, s in (("Huarong", 1.9), ("Great Wall", 1.2), ("Orient", 1.5), ("Cinda", 1.7))
    ]  # fmt: skip


BuyerKind = Literal["local_amc", "distressed_fund"]


class BuyerSpec(StrictSpec):
    """A buyer of NPL packages other than the four national AMCs (local AMCs licensed since
    2012, private and foreign distressed-debt funds); who may buy is the law's
    (``npl_buyers_allowed``, the bulk-transfer rule)."""

    name: str = Field(min_length=1)
    kind: BuyerKind = Field(description="Local AMC (an AMC in law) or distressed-debt fund.")
    equity_cny_bn: float = Field(
        gt=0, le=MAX_CNY_BN, description="Paid-in capital, CNY bn (at most 1e6 = CNY 1,000 trn)."
    )
    funding_capacity_cny_bn: float = Field(
        ge=0, le=MAX_CNY_BN, description="Debt it can raise for purchases, CNY bn (at most 1e6)."
    )
    workout_skill: float = Field(gt=0, le=5, description="Multiplier on the recovery hazard.")
    cost_per_recovered: float = Field(
        ge=0, le=1, description="Workout cost per unit of cash recovered."
    )
    discount_rate: float = Field(ge=0, le=1, description="Required return on NPLs, annual.")
    foreign: bool = Field(default=False, description="Needs foreign_investors_allowed.")

    @property
    def is_amc(self) -> bool:
        """Whether the law counts it as an asset management company (bulk-transfer rule)."""
        return self.kind == "local_amc"


def _default_buyers() -> list[BuyerSpec]:
    # facts: npl-buyers: provincial AMCs licensed from 2012 (two per province from 2016), private
    # and foreign distressed-debt funds since about 2017. Their number, size, skill, cost and
    # required return are assumptions: local AMCs smaller and less skilled than the national four,
    # funds specialised but with private-equity hurdle rates.
    local = [
        BuyerSpec(name=f"Local AMC {k}", kind="local_amc", equity_cny_bn=5.0,
                  funding_capacity_cny_bn=60.0, workout_skill=1.3, cost_per_recovered=0.06,
                  discount_rate=0.10)
        for k in range(1, 5)
    ]  # fmt: skip
    funds = [
        BuyerSpec(name=f"Distressed fund {k}", kind="distressed_fund", equity_cny_bn=3.0,
                  funding_capacity_cny_bn=20.0, workout_skill=1.7, cost_per_recovered=0.08,
                  discount_rate=0.13, foreign=k == 3)
        for k in range(1, 4)
    ]  # fmt: skip
    return local + funds


InvestorClassName = Literal[
    "bank_treasury", "insurer", "mutual_fund", "qfii", "distressed_fund", "retail"
]


class InvestorSpec(StrictSpec):
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
        default=0.02,
        gt=0,
        le=1,
        description="Share of its cash it bids into one new issue, within its concentration limit"
        " (calibrated to the 2.3-3.1 times cover of facts: npl-abs-2016-deals).",
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


class EnhancerSpec(StrictSpec):
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
