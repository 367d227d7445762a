"""The scenario's description of the banks' funding and liquidity, of liquidity shocks, and of the
State as owner of the banks: typed, validated blocks of ``ScenarioConfig``.

Money in CNY bn, time in quarters, rates annual decimals. Sources are cited next to the defaults
(``facts: <key>`` from docs/facts.md); anything else is an assumption.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nplsim.market.errors import StrictSpec

MAX_QUARTER = 400  # the longest horizon (ScenarioConfig.quarters)
MAX_CNY_BN = 1e6  # CNY 1,000 trn: above the loans of the whole Chinese banking system


class LiquidityShockSpec(StrictSpec):
    """A scheduled liquidity shock to some or all banks.

    ``deposit_outflow``: depositors withdraw ``size`` of the less stable deposits (and of the
    stable ones in the ratio of their LCR run-off rates) in each quarter of the shock.
    ``interbank_freeze``: the interbank rate rises by ``size`` (annual decimal) and lenders roll
    over only ``rollover`` of the banks' maturing interbank funding. ``fire_sale``: bonds sold
    fetch ``size`` less than their book value. Each lasts ``duration_q`` quarters from ``quarter``.
    """

    quarter: int = Field(ge=0, le=MAX_QUARTER, description="First quarter of the shock.")
    kind: Literal["deposit_outflow", "interbank_freeze", "fire_sale"]
    size: float = Field(
        ge=0, le=1, description="Share withdrawn, rate rise or price discount (decimal)."
    )
    duration_q: int = Field(default=1, ge=1, le=40, description="Quarters the shock lasts.")
    rollover: float = Field(
        default=1.0, ge=0, le=1, description="Freeze: share of maturing interbank funding rolled."
    )
    banks: list[str] = Field(default_factory=list, description="Banks hit; empty = every bank.")
    label: str = ""

    def active(self, quarter: int) -> bool:
        """Whether the shock is in force in ``quarter``."""
        return self.quarter <= quarter < self.quarter + self.duration_q

    def hits(self, bank: str) -> bool:
        """Whether the shock hits the bank named ``bank``."""
        return not self.banks or bank in self.banks


class LiquiditySpec(StrictSpec):
    """Funding structure and liquidity management of the banks (shares of deposits unless said).

    The defaults describe China's large state banks in the 2010s (facts: bank-liquidity-2023,
    balance-sheet-mix); everything else is an assumption.
    """

    loan_to_deposit: float = Field(
        default=0.77, gt=0.2, le=3, description="Opening gross loans / deposits."
    )  # facts: bank-liquidity-2023: loan-to-deposit ratio 77.69% (2023Q2)
    stable_deposit_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of deposits that are stable (insured retail)."
    )  # assumption: about half of the large banks' deposits are household deposits
    time_deposit_term_q: int = Field(
        default=4, ge=1, le=40, description="Average term of time deposits, quarters."
    )  # assumption: one-year deposits dominate
    wholesale_share: float = Field(
        default=0.06, ge=0, le=1, description="Interbank funding the bank runs / deposits."
    )  # assumption: deposits of other financial institutions, ~5% of big banks' liabilities
    placement_share: float = Field(
        default=0.05, ge=0, le=1, description="Interbank placements the bank keeps / deposits."
    )  # assumption: large banks are net lenders in the interbank market
    excess_reserve_share: float = Field(
        default=0.015, ge=0, le=0.5, description="Reserves held above the requirement."
    )  # assumption: an excess reserve ratio of 1-2% of deposits
    investment_term_q: int = Field(
        default=20, ge=1, le=120, description="Average term of non-HQLA securities, quarters."
    )  # assumption: local-government and corporate bonds of about five years
    lcr_buffer: float = Field(
        default=0.5, ge=0, le=3, description="LCR the bank targets above the minimum."
    )  # facts: bank-liquidity-2023: commercial banks' LCR 150.86% against the 100% minimum
    liquidity_ratio_buffer: float = Field(
        default=0.1, ge=0, le=1, description="Liquidity ratio the bank targets above the minimum."
    )  # assumption: a margin of 10 points over the 25% floor (facts: liquidity-rules)
    # rates on the banks' other assets and funding (annual decimals)
    policy_bond_spread: float = Field(
        default=0.003, ge=0, le=0.1, description="Policy-bank bond yield over government bonds."
    )  # assumption
    investment_yield: float = Field(
        default=0.045, ge=0, le=0.3, description="Yield of non-HQLA securities."
    )  # assumption: local-government and corporate bonds
    reserve_rate: float = Field(
        default=0.0162, ge=0, le=0.3, description="Interest the central bank pays on reserves."
    )  # assumption: the PBOC's 1.62% on required reserves (not in docs/facts.md)
    slf_spread: float = Field(
        default=0.01,
        ge=0,
        le=0.2,
        description="Standing lending facility's penalty over the interbank rate.",
    )  # assumption: the SLF rate is the ceiling of the PBOC's corridor, about a point above
    mlf_rate: float = Field(
        default=0.0325, ge=0, le=0.3, description="One-year medium-term lending facility rate."
    )  # assumption: the MLF rate of the late 2010s (not in docs/facts.md)
    sub_debt_rate: float = Field(
        default=0.045, ge=0, le=0.3, description="Coupon of tier 2 subordinated debt."
    )  # assumption
    at1_rate: float = Field(
        default=0.055, ge=0, le=0.3, description="Dividend of additional tier 1 instruments."
    )  # assumption: preference shares of the large banks
    interbank_stress_slope: float = Field(
        default=0.5,
        ge=0,
        le=10,
        description="Rise of the interbank rate per unit of the banks' central-bank borrowing"
        " over their HQLA.",
    )  # assumption
    shocks: list[LiquidityShockSpec] = Field(
        default_factory=list, description="Scheduled deposit outflows, freezes and fire sales."
    )


class StateSpec(StrictSpec):
    """The State as owner of the state banks: recapitalisations and policy carve-outs."""

    recapitalises: bool = Field(
        default=True, description="Whether the State injects capital into its systemic banks."
    )
    recap_from_quarter: int = Field(
        default=0,
        ge=0,
        le=MAX_QUARTER,
        description="From this quarter the State restores a bank's capital requirement once the"
        " supervisor's deadline has passed; before it, only a critically undercapitalised bank"
        " is topped up to the critical level.",
    )
    recap_margin: float = Field(
        default=0.01,
        ge=0,
        le=0.1,
        description="Capital ratio above the requirement a recap aims at.",
    )  # assumption: one point of headroom
    carveout_quarter: int | None = Field(
        default=None,
        ge=0,
        le=MAX_QUARTER,
        description="Quarter from which the State orders a policy carve-out (none if unset).",
    )
    carveout_npl_trigger: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="The State orders the carve-out only while its banks' NPL ratio is above this.",
    )
    carveout_share: float = Field(
        default=0.0, ge=0, le=1, description="Share of each bank's NPLs moved in the carve-out."
    )
    amc_bond_rate: float = Field(
        default=0.0225, ge=0, le=0.2, description="Coupon of the AMC bonds paid for a carve-out."
    )  # assumption (unverified): the 1999 AMC bonds are reported to pay 2.25% a year


class BankSpec(StrictSpec):
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


def default_banks() -> list[BankSpec]:
    # Assumption: big-four loan books of the late 1990s (total ~CNY 7.3 trn), internal control weak.
    return [
        BankSpec(name=n, loans_cny_bn=v, internal_control=0.4, workout_skill=1.0,
                 equity_ratio=0.06, bond_share=0.15)
        for n, v in (("ICBC", 2500.0), ("ABC", 1700.0), ("BOC", 1500.0), ("CCB", 1600.0))
    ]  # fmt: skip
