"""The prudential rules: a validated, immutable description of how a supervisor regulates banks.

The legal regime (``nplsim.market.regime``) is the securitisation law; these are the bank
regulator's rules — capital tiers with their minima and buffers, risk weights, provisioning,
liquidity ratios and the ladder of prompt corrective action. Keeping them apart lets a reform
change the law alone, or the prudential rules alone. Presets are TOML files in
``market/prudential`` with a source note for every value; any field can be overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nplsim.market.errors import ConfigError, config_error_from_validation, read_toml
from nplsim.market.regime import LegalRegime, format_value, type_and_range

if TYPE_CHECKING:
    from nplsim.market.scenario import EventSpec, ScenarioConfig

PRUDENTIAL_DIR: Path = Path(__file__).resolve().parent / "prudential"
DEFAULT_PRUDENTIAL = "basel3_china_2013"

Area = Literal["capital", "provisioning", "liquidity", "supervision"]


def _field(area: Area, description: str, **bounds: float) -> Any:
    """A required field tagged with the area of prudential regulation it belongs to."""
    return Field(description=description, json_schema_extra={"area": area}, **bounds)


class PrudentialRules(BaseModel):
    """Bank regulation by area: capital, provisioning, liquidity, supervision; all required."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # --- capital: tiers, minima, buffers, risk weights ---
    cet1_min: float = _field(
        "capital", "Minimum common equity tier 1 / risk-weighted assets, before buffers.",
        ge=0, le=0.2,
    )  # fmt: skip
    tier1_min: float = _field(
        "capital", "Minimum tier 1 (CET1 + additional tier 1) / risk-weighted assets, before"
        " buffers.", ge=0, le=0.2,
    )  # fmt: skip
    car_min: float = _field(
        "capital", "Minimum capital adequacy ratio, total capital (tier 1 + tier 2) / risk-weighted"
        " assets, before buffers.", ge=0.02, le=0.25,
    )  # fmt: skip
    conservation_buffer: float = _field(
        "capital", "Capital conservation buffer of CET1 on top of every minimum (decimal).",
        ge=0, le=0.1,
    )  # fmt: skip
    systemic_surcharge: float = _field(
        "capital", "Extra CET1 a systemically important bank holds on top of every minimum"
        " (decimal).", ge=0, le=0.05,
    )  # fmt: skip
    tier2_provision_cap: float = _field(
        "capital", "Provisions above the regulatory requirement count as tier 2 up to this share"
        " of credit risk-weighted assets (decimal).", ge=0, le=0.05,
    )  # fmt: skip
    placement_risk_weight: float = _field(
        "capital", "Risk weight of short interbank placements (claims on banks).", ge=0, le=2,
    )  # fmt: skip
    investment_risk_weight: float = _field(
        "capital", "Risk weight of securities that are not high-quality liquid assets (local"
        " government and corporate bonds).", ge=0, le=2,
    )  # fmt: skip
    securitisation_weight_aa: float = _field(
        "capital", "Risk weight of a securitisation exposure rated AAA to AA-.", ge=0, le=12.5,
    )  # fmt: skip
    securitisation_weight_a: float = _field(
        "capital", "Risk weight of a securitisation exposure rated A.", ge=0, le=12.5,
    )  # fmt: skip
    securitisation_weight_bbb: float = _field(
        "capital", "Risk weight of a securitisation exposure rated BBB.", ge=0, le=12.5,
    )  # fmt: skip
    securitisation_weight_bb: float = _field(
        "capital", "Risk weight of a securitisation exposure rated BB.", ge=0, le=12.5,
    )  # fmt: skip
    securitisation_weight_unrated: float = _field(
        "capital", "Risk weight of an unrated or sub-BB securitisation exposure (12.5 = a"
        " deduction from capital).", ge=0, le=12.5,
    )  # fmt: skip
    npl_senior_risk_weight: float = _field(
        "capital", "Risk weight of the senior tranche of an NPL securitisation bought at a"
        " discount.", ge=0, le=12.5,
    )  # fmt: skip

    # --- provisioning ---
    provision_coverage_min: float = _field(
        "provisioning", "Minimum loan-loss provisions over gross NPLs (ratio, 1.5 = 150%).",
        ge=0, le=3,
    )  # fmt: skip
    loan_provision_ratio_min: float = _field(
        "provisioning", "Minimum loan-loss provisions over gross loans (ratio, decimal).",
        ge=0, le=0.1,
    )  # fmt: skip

    # --- liquidity ---
    liquidity_ratio_min: float = _field(
        "liquidity", "Minimum liquidity ratio: current assets over current liabilities, both"
        " due within a month (decimal).", ge=0, le=1,
    )  # fmt: skip
    lcr_min: float = _field(
        "liquidity", "Minimum liquidity coverage ratio, HQLA over 30-day net outflows; 0 where"
        " not in force (ratio, 1 = 100%).", ge=0, le=3,
    )  # fmt: skip
    policy_bond_haircut: float = _field(
        "liquidity", "Haircut on policy-bank bonds counted as high-quality liquid assets.",
        ge=0, le=1,
    )  # fmt: skip
    runoff_stable_deposits: float = _field(
        "liquidity", "30-day run-off rate of stable (insured retail) deposits in the LCR.",
        ge=0, le=1,
    )  # fmt: skip
    runoff_less_stable_deposits: float = _field(
        "liquidity", "30-day run-off rate of less stable deposits (other retail and corporate)"
        " in the LCR.", ge=0, le=1,
    )  # fmt: skip
    runoff_wholesale: float = _field(
        "liquidity", "30-day run-off rate of unsecured funding from financial institutions.",
        ge=0, le=1,
    )  # fmt: skip
    loan_inflow_rate: float = _field(
        "liquidity", "Share of contractual 30-day repayments of performing loans counted as"
        " inflow in the LCR.", ge=0, le=1,
    )  # fmt: skip
    inflow_cap: float = _field(
        "liquidity", "Inflows count against outflows up to this share of outflows in the LCR.",
        ge=0, le=1,
    )  # fmt: skip

    # --- supervision: targets and prompt corrective action ---
    npl_ratio_target: float = _field(
        "supervision", "Supervisory NPL ratio above which regulatory pressure to dispose rises"
        " (ratio, decimal).", ge=0, le=1,
    )  # fmt: skip
    pca_deadline_q: int = _field(
        "supervision", "Quarters a bank below its capital requirement has to carry out its"
        " capital plan before the supervisor escalates (quarters).", ge=1, le=20,
    )  # fmt: skip
    pca_critical_cet1: float = _field(
        "supervision", "CET1 ratio below which a bank is critically undercapitalised and must be"
        " recapitalised at once (decimal).", ge=0, le=0.1,
    )  # fmt: skip
    pca_rwa_growth_cap: float = _field(
        "supervision", "Annual growth of its loans a bank under a restraint on risk-weighted"
        " assets may still make (decimal; 1 = no restraint).", ge=0, le=1,
    )  # fmt: skip
    pca_npl_pressure: float = _field(
        "supervision", "Weight of the NPL shadow price while a mandated NPL disposal plan is in"
        " force (per unit of face, as the scenario's npl_pressure_weight).", ge=0, le=5,
    )  # fmt: skip

    # ------------------------------------------------------------------ what the rules ask
    def buffers(self, systemic: bool) -> float:
        """CET1 buffers on top of every minimum: conservation, plus the surcharge if systemic."""
        return self.conservation_buffer + (self.systemic_surcharge if systemic else 0.0)

    def requirements(self, systemic: bool) -> dict[str, float]:
        """The three ratios a bank must hold, buffers included, by tier."""
        extra = self.buffers(systemic)
        return {
            "cet1": self.cet1_min + extra,
            "tier1": self.tier1_min + extra,
            "total": self.car_min + extra,
        }

    def minima(self) -> dict[str, float]:
        """The three ratios below which a bank breaches its minimum (no buffers), by tier."""
        return {"cet1": self.cet1_min, "tier1": self.tier1_min, "total": self.car_min}

    def securitisation_weight(self, rating: str) -> float:
        """Risk weight of a rated securitisation exposure (AAA and AA share one bucket)."""
        table = {
            "AAA": self.securitisation_weight_aa,
            "AA": self.securitisation_weight_aa,
            "A": self.securitisation_weight_a,
            "BBB": self.securitisation_weight_bbb,
            "BB": self.securitisation_weight_bb,
        }
        return table.get(rating, self.securitisation_weight_unrated)

    def with_overrides(self, **changes: Any) -> PrudentialRules:
        """A new set of rules with some fields changed, validated like a preset.

        Raises:
            ConfigError: an unknown field, a wrong type, a value out of range or a contradiction.
        """
        try:
            return PrudentialRules.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise config_error_from_validation(
                exc, "overrides", allowed_keys=list(PrudentialRules.model_fields)
            ) from exc

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values of every field (for manifests)."""
        return self.model_dump(mode="json")


def prudential_area(field: str) -> str:
    """The area of regulation a field belongs to (``capital``, ``provisioning``, ...).

    Raises:
        KeyError: ``field`` is not a field of the prudential rules.
    """
    try:
        info = PrudentialRules.model_fields[field]
    except KeyError:
        raise KeyError(f"{field!r} is not a PrudentialRules field") from None
    return cast(dict[str, str], info.json_schema_extra)["area"]


def list_prudential_presets() -> list[str]:
    """Names of the prudential presets shipped in :data:`PRUDENTIAL_DIR`, sorted."""
    return sorted(path.stem for path in PRUDENTIAL_DIR.glob("*.toml"))


def prudential_source(name_or_path: str | Path) -> Path:
    """The file behind a preset name or path; a ConfigError names the presets if unknown."""
    path = Path(name_or_path)
    if isinstance(name_or_path, Path) or path.suffix == ".toml" or len(path.parts) > 1:
        return path
    presets = list_prudential_presets()
    if name_or_path not in presets:
        raise ConfigError(
            str(name_or_path), "prudential", f"unknown preset {name_or_path!r}", ", ".join(presets)
        )
    return PRUDENTIAL_DIR / f"{name_or_path}.toml"


def load_prudential(
    name_or_path: str | Path, overrides: Mapping[str, Any] | None = None
) -> PrudentialRules:
    """Load a prudential preset by name, or a TOML file by path, and apply overrides.

    Raises:
        ConfigError: unknown preset, missing file, malformed TOML, or a field that is unknown,
            missing, of the wrong type, out of range or contradicts another.
    """
    path = prudential_source(name_or_path)
    try:
        rules = PrudentialRules.model_validate(read_toml(path))
    except ValidationError as exc:
        raise config_error_from_validation(
            exc, str(path), allowed_keys=list(PrudentialRules.model_fields)
        ) from exc
    return rules.with_overrides(**overrides) if overrides else rules


def diff_prudential(a: PrudentialRules, b: PrudentialRules) -> pd.DataFrame:
    """The fields in which two sets of rules differ: columns ``field``, ``area``, ``a``, ``b``."""
    rows = [
        (name, prudential_area(name), format_value(getattr(a, name)), format_value(value_b))
        for name in PrudentialRules.model_fields
        if getattr(a, name) != (value_b := getattr(b, name))
    ]
    return pd.DataFrame(rows, columns=["field", "area", "a", "b"])


def prudential_field_table() -> pd.DataFrame:
    """Every prudential field with its area, type, allowed range and meaning."""
    rows = []
    for name, info in PrudentialRules.model_fields.items():
        kind, allowed = type_and_range(info.annotation, info.metadata)
        rows.append((name, prudential_area(name), kind, allowed, info.description))
    return pd.DataFrame(rows, columns=["field", "area", "type", "range", "description"])


def resolve_prudential(name: str, overrides: Mapping[str, Any], source: str) -> PrudentialRules:
    """The rules a scenario names (a preset or a ``.toml`` path) with its overrides.

    Raises:
        ConfigError: an unknown preset, naming ``source`` and the presets there are.
    """
    presets = list_prudential_presets()
    if name not in presets and not name.endswith(".toml"):
        raise ConfigError(source, "prudential", f"unknown preset {name!r}", ", ".join(presets))
    return load_prudential(name, overrides or None)


def split_overrides(
    overrides: Mapping[str, Any], source: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Field changes split into the legal regime's and the prudential rules'.

    Raises:
        ConfigError: a key that is neither a legal-regime nor a prudential field.
    """
    legal: dict[str, Any] = {}
    prudential: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in PrudentialRules.model_fields:
            prudential[key] = value
        elif key in LegalRegime.model_fields:
            legal[key] = value
        else:
            allowed = sorted([*LegalRegime.model_fields, *PrudentialRules.model_fields])
            raise ConfigError(source, f"overrides.{key}", "unknown key", ", ".join(allowed))
    return legal, prudential


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
