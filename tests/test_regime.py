"""Tests of the legal regime: presets, validation errors, overrides, diffs and the field table."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nplsim.market.errors import ConfigError
from nplsim.market.regime import (
    PRESETS_DIR,
    LegalRegime,
    diff_regimes,
    field_table,
    list_presets,
    load_regime,
    regime_environment,
)

PRESETS = [
    "amc_only_1999", "mature_market", "pilot_2005", "restart_2016", "shanxi_centre_reformed",
    "shanxi_centre_today", "shanxi_no_centre", "strengthened",
]  # fmt: skip
KEY_LINE = re.compile(r"^([A-Za-z_]\w*)\s*=")


def _to_toml(data: dict[str, Any]) -> str:
    """Write a flat dict as TOML (JSON strings, numbers and string arrays are valid TOML)."""
    lines = []
    for key, value in data.items():
        text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def _preset_data(name: str) -> dict[str, Any]:
    return tomllib.loads((PRESETS_DIR / f"{name}.toml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "regime.toml"
    path.write_text(_to_toml(data), encoding="utf-8")
    return path


def test_presets_are_listed():
    assert list_presets() == PRESETS


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_and_is_frozen(name):
    regime = load_regime(name)
    assert isinstance(regime, LegalRegime)
    with pytest.raises(ValidationError):
        regime.bankruptcy_remoteness = 0.5
    assert load_regime(PRESETS_DIR / f"{name}.toml") == regime


@pytest.mark.parametrize("name", PRESETS)
def test_preset_file_sets_every_field_with_a_source_comment(name):
    lines = (PRESETS_DIR / f"{name}.toml").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#"), "preset needs a header comment"
    keys = []
    for previous, line in zip([""] + lines[:-1], lines, strict=True):
        match = KEY_LINE.match(line)
        if not match:
            continue
        keys.append(match.group(1))
        commented = re.search(r"#\s*\S", line.split("=", 1)[1]) or previous.startswith("#")
        assert commented, f"{name}: no source comment for {match.group(1)}"
    assert sorted(keys) == sorted(LegalRegime.model_fields)
    assert len(keys) == len(set(keys))


def test_load_applies_overrides():
    regime = load_regime("pilot_2005", {"bankruptcy_remoteness": 0.9})
    assert regime.bankruptcy_remoteness == 0.9
    assert regime.with_overrides(bankruptcy_remoteness=0.7) == load_regime("pilot_2005")


def test_with_overrides_returns_new_regime_and_keeps_original():
    base = load_regime("restart_2016")
    changed = base.with_overrides(risk_retention=0.1, retention_form="first_loss")
    assert (changed.risk_retention, changed.retention_form) == (0.1, "first_loss")
    assert (base.risk_retention, base.retention_form) == (0.05, "vertical")


def test_with_overrides_out_of_range_names_field_and_bound():
    with pytest.raises(ConfigError) as info:
        load_regime("pilot_2005").with_overrides(bankruptcy_remoteness=1.5)
    assert "bankruptcy_remoteness" in str(info.value)
    assert "<= 1" in str(info.value)
    assert info.value.source == "overrides"


def test_with_overrides_unknown_key_lists_fields():
    with pytest.raises(ConfigError) as info:
        load_regime("pilot_2005").with_overrides(bankrupcy_remoteness=0.9)
    assert info.value.key == "bankrupcy_remoteness"
    assert "bankruptcy_remoteness" in info.value.allowed


def test_kind_sets_are_sorted_and_deduplicated():
    regime = load_regime("pilot_2005").with_overrides(originators_allowed=["bank", "amc", "bank"])
    assert regime.originators_allowed == ("amc", "bank")


def test_unknown_key_in_file_names_key_and_allowed_keys(tmp_path):
    path = _write(tmp_path, {**_preset_data("pilot_2005"), "spv_law": "special"})
    with pytest.raises(ConfigError) as info:
        load_regime(path)
    assert info.value.source == str(path)
    assert info.value.key == "spv_law"
    assert "unknown key" in str(info.value)
    assert "bankruptcy_remoteness" in info.value.allowed and "vat_rate" in info.value.allowed


def test_missing_field_in_file_is_an_error(tmp_path):
    data = _preset_data("pilot_2005")
    del data["vat_rate"]
    with pytest.raises(ConfigError) as info:
        load_regime(_write(tmp_path, data))
    assert info.value.key == "vat_rate"


def test_malformed_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("securitisation_allowed = \nspv_form = 'trust'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_regime(path)
    assert info.value.key == "<toml>"
    assert info.value.source == str(path)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_regime(path)
    assert (info.value.source, info.value.key, info.value.problem) == (
        str(path),
        "<file>",
        "file not found",
    )


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError) as info:
        load_regime("pilot_2006")
    assert info.value.key == "preset"
    assert all(name in str(info.value) for name in PRESETS)


def test_wrong_type_names_field(tmp_path):
    path = _write(tmp_path, {**_preset_data("pilot_2005"), "bankruptcy_remoteness": "high"})
    with pytest.raises(ConfigError) as info:
        load_regime(path)
    assert info.value.key == "bankruptcy_remoteness"
    with pytest.raises(ConfigError, match="spv_form"):
        load_regime("pilot_2005").with_overrides(spv_form="foundation")


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"spv_form": "none"}, "spv_form"),
        ({"originators_allowed": []}, "originators_allowed"),
        ({"investor_classes_allowed": []}, "investor_classes_allowed"),
        ({"foreign_investors_allowed": False}, "qfii"),
    ],
)
def test_contradictions_are_rejected(changes, mentions):
    with pytest.raises(ConfigError, match=mentions):
        load_regime("restart_2016").with_overrides(**changes)


def test_no_securitisation_needs_no_spv_or_investors():
    regime = load_regime("amc_only_1999")
    assert not regime.securitisation_allowed
    assert regime.spv_form == "none"


def test_the_law_holds_no_prudential_rule_and_no_policy_decision():
    """Capital, provisioning and liquidity rules are the prudential presets'; the carve-out is the
    State's decision (the scenario's [state] block): none of them is a field of the law."""
    from nplsim.market.prudential_rules import PrudentialRules

    assert not set(LegalRegime.model_fields) & set(PrudentialRules.model_fields)
    for name in ("car_min", "policy_carveout", "carveout_share", "amc_bond_rate"):
        assert name not in LegalRegime.model_fields


def test_diff_pilot_vs_strengthened():
    a, b = load_regime("pilot_2005"), load_regime("strengthened")
    diff = diff_regimes(a, b)
    assert list(diff.columns) == ["field", "environment", "a", "b"]
    assert "bankruptcy_remoteness" in set(diff["field"])
    assert (diff["a"] != diff["b"]).all()
    order = list(LegalRegime.model_fields)
    assert list(diff["field"]) == sorted(diff["field"], key=order.index)
    assert set(diff["environment"]) <= {"participants", "process", "accounting_tax"}


@pytest.mark.parametrize("name", PRESETS)
def test_diff_with_itself_is_empty(name):
    regime = load_regime(name)
    assert diff_regimes(regime, regime).empty


def test_field_table_describes_every_field():
    table = field_table()
    assert list(table["field"]) == list(LegalRegime.model_fields)
    assert list(table.columns) == ["field", "environment", "type", "range", "description"]
    assert table["description"].str.len().gt(20).all()
    assert table.loc[table["field"] == "bankruptcy_remoteness", "range"].item() == "0-1"
    for row in table.itertuples():
        assert row.environment == regime_environment(row.field)


def test_every_environment_has_fields_in_contiguous_groups():
    environments = [regime_environment(name) for name in LegalRegime.model_fields]
    assert list(dict.fromkeys(environments)) == ["participants", "process", "accounting_tax"]
    with pytest.raises(KeyError):
        regime_environment("not_a_field")


@pytest.mark.parametrize("field", ["bankruptcy_remoteness", "investor_protection"])
def test_legal_quality_rises_along_the_reform_path(field):
    path = ["pilot_2005", "restart_2016", "strengthened", "mature_market"]
    values = [getattr(load_regime(name), field) for name in path]
    assert values == sorted(values)


def test_strengthened_reforms_point_the_study_way():
    before, after = load_regime("restart_2016"), load_regime("strengthened")
    assert after.bankruptcy_remoteness > before.bankruptcy_remoteness
    assert after.investor_protection > before.investor_protection
    assert after.notice_cost_per_borrower_cny < before.notice_cost_per_borrower_cny
    assert after.collateral_follows_claim and not after.bulk_transfer_to_amc_only
    assert after.vat_rate == after.stamp_duty_bp == after.spv_entity_tax == 0


def test_as_dict_is_json_ready():
    data = load_regime("mature_market").as_dict()
    assert isinstance(data["investor_classes_allowed"], list)
    assert json.loads(json.dumps(data)) == data


FLOAT_BOUNDS = {
    name: (
        next(m.ge for m in info.metadata if hasattr(m, "ge")),
        next(m.le for m in info.metadata if hasattr(m, "le")),
    )
    for name, info in LegalRegime.model_fields.items()
    if info.annotation is float and any(hasattr(m, "le") for m in info.metadata)
}


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(PRESETS),
    overrides=st.fixed_dictionaries(
        {},
        optional={
            name: st.floats(float(lo), float(hi), allow_nan=False)
            for name, (lo, hi) in FLOAT_BOUNDS.items()
        },
    ),
)
def test_in_range_float_overrides_validate_and_round_trip(name, overrides):
    regime = load_regime(name).with_overrides(**overrides)
    assert all(getattr(regime, key) == value for key, value in overrides.items())
    assert LegalRegime.model_validate(regime.as_dict()) == regime
