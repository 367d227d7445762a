"""The legal regime: a validated, immutable description of the securitisation law a run lives under.

Presets are TOML files in ``market/regimes`` with a source note for every value; any field can be
overridden, and two regimes can be diffed field by field along the study's three legal environments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self, cast, get_args, get_origin

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:  # pandas is imported where a table is built (nplsim regimes list stays fast)
    import pandas as pd

from nplsim.market.errors import (
    ConfigError,
    StrictModel,
    config_error_from_validation,
    read_toml,
)
from nplsim.market.presets import (  # noqa: E402,F401 — re-exported
    PRESETS_DIR,
    PresetInfo,
    list_presets,
    preset_info,
)

Environment = Literal["participants", "process", "accounting_tax"]
Originator = Literal["bank", "amc", "enterprise"]
NplBuyer = Literal["local_amc", "distressed_fund"]
InvestorClass = Literal[
    "bank_treasury", "insurer", "mutual_fund", "qfii", "distressed_fund", "retail"
]


def _field(environment: Environment, description: str, **bounds: float) -> Any:
    """A required model field tagged with the legal environment it belongs to."""
    return Field(description=description, json_schema_extra={"environment": environment}, **bounds)


class LegalRegime(StrictModel):
    """Securitisation law by the study's three legal environments; every field is required."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # --- participants: who may be an SPV, an originator, an investor, a buyer of NPLs ---
    securitisation_allowed: bool = _field(
        "participants", "Whether loans may be securitised through an SPV at all (true/false)."
    )
    spv_form: Literal["trust", "company", "none"] = _field(
        "participants",
        "Legal form of the special purpose vehicle that holds the pool: a company pays"
        " spv_entity_tax and is reached by courts through consolidation only (category).",
    )
    bankruptcy_remoteness: float = _field(
        "participants",
        "Probability that the SPV pool survives the originator's distress without being"
        " recharacterised as the originator's property (probability, 0-1).",
        ge=0,
        le=1,
    )
    originators_allowed: tuple[Originator, ...] = _field(
        "participants", "Kinds of institution that may originate a securitisation (set of kinds)."
    )
    bulk_transfer_to_amc_only: bool = _field(
        "participants",
        "Whether a bulk transfer of NPLs may go only to an asset management company (true/false).",
    )
    bulk_threshold: int = _field(
        "participants",
        "Number of borrowers in one transfer from which it counts as a bulk transfer (borrowers;"
        " at most 1,000,000,000, more than China's population).",
        ge=1,
        le=1_000_000_000,
    )
    retail_bulk_sale_allowed: bool = _field(
        "participants",
        "Whether NPLs of individuals (cards, mortgages) may be sold in bulk packages at all"
        " (true/false).",
    )
    npl_buyers_allowed: tuple[NplBuyer, ...] = _field(
        "participants",
        "Buyers besides the national AMCs that may buy NPLs from banks: local AMCs, distressed-debt"
        " funds (set of kinds).",
    )
    investor_classes_allowed: tuple[InvestorClass, ...] = _field(
        "participants", "Investor types eligible to buy asset-backed securities (set of types)."
    )
    foreign_investors_allowed: bool = _field(
        "participants",
        "Whether foreign institutions may hold asset-backed securities (true/false).",
    )
    guarantee_enforceability: float = _field(
        "participants",
        "Probability that a credit enhancer's guarantee is honoured in full when called"
        " (probability, 0-1).",
        ge=0,
        le=1,
    )
    state_guarantee_scheme: bool = _field(
        "participants",
        "Whether the state offers a GACS-style guarantee on senior NPL tranches (true/false).",
    )
    state_guarantee_fee_bp: float = _field(
        "participants",
        "Annual fee for the state guarantee on the guaranteed senior balance (bp a year).",
        ge=0,
        le=1000,
    )

    # --- process: transfer of claims and collateral, notice, enforcement, disclosure ---
    debtor_notice: Literal["individual", "public_announcement", "none"] = _field(
        "process",
        "How debtors must be told of a transfer for it to bind them (category).",
    )
    notice_cost_per_borrower_cny: float = _field(
        "process",
        "Cost of telling each debtor of a transfer (CNY per borrower; at most CNY 10 m, far above"
        " a registered letter or a court's service of notice).",
        ge=0,
        le=1e7,
    )
    notice_delay_q: int = _field(
        "process", "Delay that debtor notice adds to completing a transfer (quarters).", ge=0, le=8
    )
    collateral_follows_claim: bool = _field(
        "process",
        "Whether mortgages and pledges pass with an assigned claim without re-registration"
        " (true/false).",
    )
    enforcement_efficiency: float = _field(
        "process",
        "Multiplier on the quarterly NPL recovery hazard from courts and enforcement"
        " (multiplier, 1 = reference).",
        ge=0.1,
        le=3.0,
    )
    disclosure_level: float = _field(
        "process",
        "Quality of loan-level disclosure to investors, cutting their information premium and"
        " bid noise (index, 0-1).",
        ge=0,
        le=1,
    )
    investor_protection: float = _field(
        "process",
        "Strength of investors' legal remedies against trustee, servicer and originator, cutting"
        " their legal-risk premium (index, 0-1).",
        ge=0,
        le=1,
    )
    risk_retention: float = _field(
        "process",
        "Share of each issue the originator must keep to maturity (share of issuance, 0-0.5).",
        ge=0,
        le=0.5,
    )
    retention_form: Literal["vertical", "first_loss"] = _field(
        "process",
        "Whether the retained share is a slice of every tranche or the lowest tranche (category).",
    )
    rating_required: bool = _field(
        "process", "Whether securities need an external credit rating to be sold (true/false)."
    )
    # --- accounting and tax: derecognition and transaction taxes ---
    derecognition_allowed: bool = _field(
        "accounting_tax",
        "Whether a securitised pool leaves the originator's balance sheet, giving capital relief"
        " (true/false).",
    )
    stamp_duty_bp: float = _field(
        "accounting_tax",
        "Stamp duty on the transfer and issue contracts (basis points of the amount).",
        ge=0,
        le=100,
    )
    vat_rate: float = _field(
        "accounting_tax",
        "Value-added tax on the SPV's investment income (rate, decimal).",
        ge=0,
        le=0.2,
    )
    spv_entity_tax: float = _field(
        "accounting_tax",
        "Income tax a company SPV pays on its taxable income before distributions; a trust is"
        " tax-transparent (rate, decimal).",
        ge=0,
        le=0.5,
    )

    @field_validator("originators_allowed", "investor_classes_allowed", "npl_buyers_allowed")
    @classmethod
    def _sorted_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Keep sets of kinds in one canonical order so equal regimes compare and hash equal."""
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        """Reject combinations of fields that contradict each other."""
        if self.securitisation_allowed:
            if self.spv_form == "none":
                raise ValueError(
                    "securitisation_allowed = true needs spv_form 'trust' or 'company', not 'none'"
                )
            if not self.originators_allowed:
                raise ValueError(
                    "securitisation_allowed = true needs at least one kind in originators_allowed"
                )
            if not self.investor_classes_allowed:
                raise ValueError(
                    "securitisation_allowed = true needs at least one class in"
                    " investor_classes_allowed"
                )
        if "qfii" in self.investor_classes_allowed and not self.foreign_investors_allowed:
            raise ValueError(
                "investor class 'qfii' in investor_classes_allowed needs"
                " foreign_investors_allowed = true"
            )
        return self

    def securitisation_barrier(self, originator: Originator) -> str:
        """Why the law closes securitisation to an originator of this kind ('' if it is open):
        it needs an SPV law (a vehicle form) and the kind among the permitted originators."""
        if not self.securitisation_allowed or self.spv_form == "none":
            return "no SPV law"
        if originator not in self.originators_allowed:
            return f"{originator}s may not originate"
        return ""

    def with_overrides(self, **changes: Any) -> LegalRegime:
        """Return a new regime with some fields changed, validated like a preset.

        Args:
            **changes: field names and their new values.

        Returns:
            The changed regime; this one is left as it was.

        Raises:
            ConfigError: an unknown field, a wrong type, a value out of range or a contradiction.
        """
        try:
            return LegalRegime.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise config_error_from_validation(
                exc, "overrides", allowed_keys=list(LegalRegime.model_fields)
            ) from exc

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values of every field, with sets of kinds as lists (for manifests)."""
        return self.model_dump(mode="json")


def regime_environment(field: str) -> str:
    """The legal environment a regime field belongs to.

    Args:
        field: a field name of :class:`LegalRegime`.

    Returns:
        ``"participants"``, ``"process"`` or ``"accounting_tax"``.

    Raises:
        KeyError: ``field`` is not a field of the regime.
    """
    try:
        info = LegalRegime.model_fields[field]
    except KeyError:
        raise KeyError(f"{field!r} is not a LegalRegime field") from None
    return cast(dict[str, str], info.json_schema_extra)["environment"]


def _preset_or_path(name_or_path: str | Path) -> Path:
    """Resolve a preset name to its file; anything that looks like a path is taken as one."""
    path = Path(name_or_path)
    if isinstance(name_or_path, Path) or path.suffix == ".toml" or len(path.parts) > 1:
        return path
    presets = list_presets()
    if name_or_path not in presets:
        raise ConfigError(
            str(name_or_path), "preset", f"unknown preset {name_or_path!r}", ", ".join(presets)
        )
    return PRESETS_DIR / f"{name_or_path}.toml"


def load_regime(
    name_or_path: str | Path, overrides: Mapping[str, Any] | None = None
) -> LegalRegime:
    """Load a preset by name, or a regime TOML file by path, and apply overrides.

    Args:
        name_or_path: a preset name (see :func:`list_presets`) or the path of a TOML file.
        overrides: field values that replace the file's, validated with the rest.

    Returns:
        The validated, immutable regime.

    Raises:
        ConfigError: unknown preset, missing file, malformed TOML, or a field that is unknown,
            missing, of the wrong type, out of range or contradicts another.
    """
    path = _preset_or_path(name_or_path)
    source = str(path)
    data = read_toml(path)
    try:
        regime = LegalRegime.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(
            exc, source, allowed_keys=list(LegalRegime.model_fields)
        ) from exc
    return regime.with_overrides(**overrides) if overrides else regime


def format_value(value: Any) -> str:
    """Show a field value the way it is written in a TOML preset."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    return str(value)


def diff_regimes(a: LegalRegime, b: LegalRegime) -> pd.DataFrame:
    """The fields in which two regimes differ, in field order.

    Args:
        a: the first regime.
        b: the second regime.

    Returns:
        A tidy frame with columns ``field``, ``environment``, ``a`` and ``b`` (values as strings),
        one row per differing field; empty if the regimes are equal.
    """
    import pandas as pd

    rows = [
        (name, regime_environment(name), format_value(getattr(a, name)), format_value(value_b))
        for name in LegalRegime.model_fields
        if getattr(a, name) != (value_b := getattr(b, name))
    ]
    return pd.DataFrame(rows, columns=["field", "environment", "a", "b"])


class Bounds(NamedTuple):
    """The range of a numeric field: ``lower``/``upper`` (±inf where open), and whether each end
    is excluded (``gt``/``lt``) rather than included (``ge``/``le``)."""

    lower: float
    upper: float
    lower_strict: bool
    upper_strict: bool


def metadata_bounds(metadata: list[Any]) -> Bounds:
    """The range a pydantic field's constraints (``ge``, ``gt``, ``le``, ``lt``) allow."""
    lower, upper, lower_strict, upper_strict = -math.inf, math.inf, False, False
    for item in metadata:
        if getattr(item, "ge", None) is not None:
            lower = float(item.ge)
        if getattr(item, "gt", None) is not None:
            lower, lower_strict = float(item.gt), True
        if getattr(item, "le", None) is not None:
            upper = float(item.le)
        if getattr(item, "lt", None) is not None:
            upper, upper_strict = float(item.lt), True
    return Bounds(lower, upper, lower_strict, upper_strict)


def field_bounds(name: str) -> Bounds:
    """The range of a numeric regime field, from its schema (the one place it is read from).

    Raises:
        KeyError: ``name`` is not a field of the regime.
    """
    return metadata_bounds(LegalRegime.model_fields[name].metadata)


def _type_and_range(name: str) -> tuple[str, str]:
    """Human-readable type and allowed values of a regime field, from its annotation and bounds."""
    info = LegalRegime.model_fields[name]
    return type_and_range(info.annotation, info.metadata)


def type_and_range(annotation: Any, metadata: list[Any]) -> tuple[str, str]:
    """Human-readable type and allowed values of a field, from its annotation and bounds."""
    if get_origin(annotation) is tuple:
        return "list", "any of: " + ", ".join(get_args(get_args(annotation)[0]))
    if get_origin(annotation) is Literal:
        return "str", "one of: " + ", ".join(get_args(annotation))
    if annotation is bool:
        return "bool", "true, false"
    bounds = metadata_bounds(metadata)
    if math.isinf(bounds.upper):
        return annotation.__name__, f">= {_bound(bounds.lower)}"
    return annotation.__name__, f"{_bound(bounds.lower)}-{_bound(bounds.upper)}"


def _bound(value: float) -> str:
    """A bound as a reader writes it: 50,000,000 rather than 5e+07."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1e4 else f"{value:g}"


def field_table() -> pd.DataFrame:
    """Every regime field with its environment, type, allowed range and meaning.

    Returns:
        A frame with columns ``field``, ``environment``, ``type``, ``range`` and ``description``,
        one row per field in field order (for docs and ``nplsim regimes show``).
    """
    rows = []
    for name, info in LegalRegime.model_fields.items():
        kind, allowed = _type_and_range(name)
        rows.append((name, regime_environment(name), kind, allowed, info.description))
    import pandas as pd

    return pd.DataFrame(rows, columns=["field", "environment", "type", "range", "description"])
