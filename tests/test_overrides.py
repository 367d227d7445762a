"""One resolution path for every override (issue 14, "silently wrong"): nested regime keys work or
are refused against the field's bounds, strict number types, scheduled reforms that compose with
the overrides in force, and preset paths read beside the file that names them."""

from __future__ import annotations

import pytest

from nplsim import NPLMarketModel
from nplsim.market.errors import ConfigError
from nplsim.market.regime import load_regime
from nplsim.market.scenario import event_regime, load_scenario, regime_schedule

TINY = {"n_loans": 500, "quarters": 3}


@pytest.mark.parametrize(
    "overrides",
    [
        {"regime_overrides.risk_retention": 0.1},
        {"regime_overrides__risk_retention": 0.1},
        {"regime_overrides": {"risk_retention": 0.1}},
        {"risk_retention": 0.1},
    ],
    ids=["dotted", "double underscore", "table", "bare field"],
)
def test_every_spelling_of_a_regime_override_is_applied(overrides):
    # was: regime_overrides.car_min=0.1 exited 0, recorded the override and kept 0.115
    config, regime = load_scenario("restart_2016", overrides)
    assert regime.risk_retention == 0.1
    assert config.regime_overrides == {"risk_retention": 0.1}


@pytest.mark.parametrize(
    "overrides",
    [{"prudential_overrides.car_min": 0.1}, {"prudential_overrides__car_min": 0.1},
     {"prudential_overrides": {"car_min": 0.1}}, {"car_min": 0.1}],
)  # fmt: skip
def test_a_prudential_field_goes_to_the_prudential_rules_not_the_law(overrides):
    # was: the table spelling, prudential_overrides={car_min=0.1}, exited 0 and kept 0.08
    from nplsim.market.prudential_rules import scenario_prudential

    config, regime = load_scenario("restart_2016", overrides)
    assert config.prudential_overrides == {"car_min": 0.1} and config.regime_overrides == {}
    assert scenario_prudential(config).car_min == 0.1 and "car_min" not in regime.as_dict()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"regime_overrides": {"risk_retention": 2}}, "regime_overrides.risk_retention"),
        ({"regime_overrides.risk_retention": 2}, "regime_overrides.risk_retention"),
        ({"risk_retention": 2}, "risk_retention"),
    ],
)
def test_a_regime_override_out_of_range_is_refused_under_the_key_given(overrides, key):
    with pytest.raises(ConfigError) as error:
        load_scenario("restart_2016", overrides, origin="--set")
    assert (error.value.source, error.value.key) == ("--set", key)
    assert "less than or equal to 0.5" in error.value.problem


@pytest.mark.parametrize(("field", "value"), [("car_min", 2.0), ("npl_ratio_target", -1.0)])
def test_a_prudential_table_out_of_range_is_refused_under_the_key_given(field, value):
    with pytest.raises(ConfigError) as error:
        load_scenario("restart_2016", {"prudential_overrides": {field: value}}, origin="--set")
    assert (error.value.source, error.value.key) == ("--set", f"prudential_overrides.{field}")


@pytest.mark.parametrize(
    ("overrides", "field", "table"),
    [
        ({"regime_overrides.nope": 1}, "risk_retention", "regime fields"),
        ({"regime_overrides": {"nope": 1}}, "risk_retention", "regime fields"),
        ({"regime_overrides": 3}, "risk_retention", "regime fields"),
        ({"prudential_overrides.nope": 1}, "car_min", "prudential fields"),
        ({"prudential_overrides": {"nope": 1}}, "car_min", "prudential fields"),
        ({"prudential_overrides": 3}, "car_min", "prudential fields"),
    ],
)
def test_an_unknown_regime_or_prudential_key_or_a_non_table_is_refused(overrides, field, table):
    with pytest.raises(ConfigError) as error:
        load_scenario("restart_2016", overrides, origin="--set")
    assert error.value.source == "--set"
    allowed = error.value.allowed or ""
    assert field in allowed or table in allowed


def test_an_unknown_preset_from_the_command_line_blames_the_command_line():
    # was: "market/scenarios/restart_2016.toml: regime: unknown preset 'nope'"
    with pytest.raises(ConfigError) as error:
        load_scenario("restart_2016", {"regime": "nope"}, origin="--set")
    assert (error.value.source, error.value.key) == ("--set", "regime")


def test_a_regime_override_in_a_scenario_file_is_named_by_file_and_key(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('regime = "pilot_2005"\n[regime_overrides]\nrisk_retention = 9\n')
    with pytest.raises(ConfigError) as error:
        load_scenario(path)
    assert (error.value.source, error.value.key) == (str(path), "regime_overrides.risk_retention")


@pytest.mark.parametrize(
    ("key", "value"),
    [("quarters", True), ("quarters", "3"), ("disclosure_level", True), ("n_loans", "500")],
)
def test_a_boolean_or_text_where_a_number_belongs_is_refused(key, value):
    # was: --set quarters=true ran one quarter
    with pytest.raises(ConfigError) as error:
        load_scenario("restart_2016", {key: value})
    assert error.value.key == key and "expected a number" in error.value.problem


def test_an_integer_still_counts_as_a_float():
    assert load_scenario("restart_2016", {"disclosure_level": 1})[1].disclosure_level == 1.0


def _run(**overrides) -> NPLMarketModel:
    model = NPLMarketModel(scenario="restart_2016", rng=1, **{**TINY, **overrides})
    while model.running:
        model.step()
    return model


def test_an_event_with_only_overrides_keeps_the_overrides_in_force():
    # was: disclosure 0.05 (from --set) jumped back to the preset's 0.6 at the event's quarter
    event = {"quarter": 1, "overrides": {"risk_retention": 0.1, "car_min": 0.1}}
    model = _run(disclosure_level=0.05, events=[event])
    assert (model.regime.disclosure_level, model.regime.risk_retention) == (0.05, 0.1)
    assert model.prudential.car_min == 0.1  # the event's prudential field goes to the rules


def test_two_events_in_one_quarter_both_apply():
    # was: the second event dropped the first's overrides
    events = [
        {"quarter": 2, "overrides": {"investor_protection": 0.9}},
        {"quarter": 2, "overrides": {"risk_retention": 0.1}},
    ]
    model = _run(events=events)
    assert (model.regime.investor_protection, model.regime.risk_retention) == (0.9, 0.1)


def test_an_event_naming_a_preset_replaces_the_law():
    start = load_regime("restart_2016").with_overrides(disclosure_level=0.05)
    event = load_scenario("restart_2016", {"events": [{"quarter": 1, "regime": "strengthened"}]})
    name, regime = event_regime(event[0].events[0], "restart_2016", start)
    assert (name, regime) == ("strengthened", load_regime("strengthened"))


def test_the_schedule_is_what_the_model_applies():
    events = [
        {"quarter": 2, "regime": "strengthened", "overrides": {"risk_retention": 0.12}},
        {"quarter": 1, "overrides": {"disclosure_level": 0.3}},
    ]
    config, start = load_scenario("restart_2016", {**TINY, "events": events})
    schedule = regime_schedule(config, start)
    assert [(q, name) for q, name, _ in schedule] == [(1, "restart_2016"), (2, "strengthened")]
    model = _run(events=events)
    assert model.regime == schedule[-1][2]


def test_an_event_override_that_contradicts_the_law_in_force_is_refused_before_the_run():
    events = [{"quarter": 1, "overrides": {"spv_form": "none"}}]
    with pytest.raises(ConfigError) as error:
        load_scenario("restart_2016", {"events": events})
    assert error.value.key.startswith("events.0.overrides")


def test_a_regime_file_named_in_a_scenario_is_read_beside_the_scenario(tmp_path, monkeypatch):
    # was: resolved from the working directory
    folder = tmp_path / "study"
    folder.mkdir()
    law = load_regime("pilot_2005").as_dict() | {"risk_retention": 0.2}
    (folder / "law.toml").write_text("\n".join(f"{k} = {_toml(v)}" for k, v in law.items()) + "\n")
    (folder / "s.toml").write_text(
        'regime = "law.toml"\n[[events]]\nquarter = 1\nregime = "law.toml"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config, regime = load_scenario(folder / "s.toml")
    assert regime.risk_retention == 0.2
    assert config.regime == str(folder / "law.toml") == config.events[0].regime


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def test_a_claim_life_shorter_than_the_write_off_age_is_refused():
    """A claim is pursued at least until the banks write it off."""
    with pytest.raises(ConfigError) as error:
        load_scenario("restart_2016", {"claim_life_q": 8}, origin="--set")
    assert "claim_life_q" in str(error.value) and "write_off_age_q (12)" in str(error.value)
    assert (
        load_scenario("restart_2016", {"claim_life_q": 12}, origin="--set")[0].claim_end_age_q == 12
    )
