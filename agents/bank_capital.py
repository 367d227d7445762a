"""A bank's regulatory capital: risk-weighted assets, the three tiers and their ratios, what the
prudential rules ask of it, and how it keeps its capital structure as it grows.

Capital is counted as the 2013 rules count it (facts: capital-minima): common equity tier 1 is
book equity; additional tier 1 is preference shares; tier 2 is subordinated debt plus provisions
above the regulatory requirement, up to a cap on credit risk-weighted assets. The capital ratio
(CAR) is total capital over risk-weighted assets; every ratio is compared with its minimum plus
the buffers (conservation, and the surcharge of a systemic bank).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nplsim.market.prudential_rules import PrudentialRules

# Risk weights of the banking book (Basel II standardised approach, facts: capital-minima era;
# assumption): performing loans 100%; past-due loans net of provisions 150% when specific
# provisions are below 20% of the outstanding, 100% otherwise; government and policy-bank bonds
# and central-bank reserves 0%; AMC bonds 0% (assumption: backed by the Ministry of Finance).
LOAN_WEIGHT = 1.0
PAST_DUE_WEIGHT_LOW_PROVISIONS = 1.5
PAST_DUE_WEIGHT = 1.0
LOW_PROVISION_SHARE = 0.2


class CapitalAdequacy:
    """Mixin of ``StateBank``: risk-weighted assets, capital tiers and ratios, requirements.

    Expects the bank's ``world``, ``spec``, balance sheet (``equity``, ``at1``, ``sub_debt``,
    ``provisions``, ``placements``, ``investments``, ``pending_securitisation``), its loans
    (``performing_loans``, ``npl_on_books``), ``securitisation_rwa`` and ``provision_floor()``.
    """

    @property
    def rules(self) -> PrudentialRules:
        """The prudential rules in force."""
        return self.world.prudential

    # ------------------------------------------------------------------ risk-weighted assets
    def _past_due_weight(self, npl: float) -> float:
        low = self.provisions < LOW_PROVISION_SHARE * npl
        return PAST_DUE_WEIGHT_LOW_PROVISIONS if low else PAST_DUE_WEIGHT

    @property
    def npl_risk_weight(self) -> float:
        """Risk weight on net past-due loans (see ``risk_weighted_assets``)."""
        return self._past_due_weight(self.npl_on_books)

    @property
    def risk_weighted_assets(self) -> float:
        """Credit risk-weighted assets (CNY bn): performing loans 100%, past-due loans net of
        provisions 100–150%, pools in the pipeline as past-due loans, retained tranches by
        rating, interbank placements and other securities at the rules' weights; bonds,
        reserves and AMC bonds 0%."""
        rules = self.rules
        npl = self.npl_on_books
        weight = self._past_due_weight(npl)
        net_npl = max(npl - self.provisions, 0.0)
        return (
            LOAN_WEIGHT * self.performing_loans
            + weight * (net_npl + self.pending_securitisation)
            + self.securitisation_rwa
            + rules.placement_risk_weight * self.placements
            + rules.investment_risk_weight * self.investments
        )

    # ------------------------------------------------------------------ capital tiers
    @property
    def cet1(self) -> float:
        """Common equity tier 1: book equity (CNY bn)."""
        return self.equity

    @property
    def additional_tier1(self) -> float:
        """Additional tier 1: preference shares outstanding (CNY bn)."""
        return self.at1

    @property
    def eligible_provisions(self) -> float:
        """Provisions above the regulatory requirement, up to the rules' cap on credit RWA
        (CNY bn): the part of tier 2 that provisions make."""
        excess = max(self.provisions - self.provision_floor(), 0.0)
        return min(excess, self.rules.tier2_provision_cap * self.risk_weighted_assets)

    @property
    def tier2(self) -> float:
        """Tier 2: subordinated debt plus eligible provisions (CNY bn)."""
        return self.sub_debt + self.eligible_provisions

    @property
    def total_capital(self) -> float:
        """CET1 + additional tier 1 + tier 2 (CNY bn)."""
        return self.cet1 + self.additional_tier1 + self.tier2

    @property
    def cet1_ratio(self) -> float:
        """CET1 / risk-weighted assets."""
        return _ratio(self.cet1, self.risk_weighted_assets)

    @property
    def tier1_ratio(self) -> float:
        """(CET1 + additional tier 1) / risk-weighted assets."""
        return _ratio(self.cet1 + self.additional_tier1, self.risk_weighted_assets)

    @property
    def car(self) -> float:
        """Capital adequacy ratio: total capital / risk-weighted assets."""
        return _ratio(self.total_capital, self.risk_weighted_assets)

    def capital_ratios(self) -> dict[str, float]:
        """The three ratios by tier (``cet1``, ``tier1``, ``total``)."""
        return {"cet1": self.cet1_ratio, "tier1": self.tier1_ratio, "total": self.car}

    # ------------------------------------------------------------------ what is required
    @property
    def car_requirement(self) -> float:
        """The total-capital ratio this bank must hold, buffers included (decimal)."""
        return self.rules.requirements(self.spec.systemic)["total"]

    @property
    def capital_headroom(self) -> float:
        """Total capital above what the requirement asks on today's risk-weighted assets
        (CNY bn; negative when short)."""
        return self.total_capital - self.car_requirement * self.risk_weighted_assets

    def capital_shortfall(self, ratios: dict[str, float]) -> float:
        """Common equity that would bring every tier up to ``ratios`` (CNY bn, 0 if none).

        New CET1 counts in every tier, so the shortfall is the largest of the three."""
        rwa = self.risk_weighted_assets
        held = {
            "cet1": self.cet1,
            "tier1": self.cet1 + self.additional_tier1,
            "total": self.total_capital,
        }
        return max(0.0, *(ratios[tier] * rwa - held[tier] for tier in ratios))

    # ------------------------------------------------------------------ capital structure
    def instruments_to_issue(self) -> tuple[float, float]:
        """Additional tier 1 and subordinated debt the bank issues to keep them at its
        structure's shares of risk-weighted assets (``BankSpec.at1_ratio``, ``sub_debt_ratio``);
        instruments are not bought back when assets shrink (CNY bn)."""
        rwa = self.risk_weighted_assets
        return (
            max(self.spec.at1_ratio * rwa - self.at1, 0.0),
            max(self.spec.sub_debt_ratio * rwa - self.sub_debt, 0.0),
        )


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")
