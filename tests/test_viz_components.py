"""The policy lab without a browser: its settings follow the scenario and reproduce ``nplsim run``,
its law changes are exactly the levers moved, reforms and supervisory limits are drawn as they
were in force, the charts' data fit their specs, A/B runs share their random numbers, the export
reproduces the run, and every view renders whatever the controls say."""

from __future__ import annotations

import json
import logging
import math
import tomllib

import ipyvuetify as v
import ipywidgets
import numpy as np
import pandas as pd
import pytest
import solara

from nplsim import NPLMarketModel
from nplsim.experiments.run import read_manifest, rerun_from_manifest, run_to_directory, simulate
from nplsim.market.errors import ConfigError
from nplsim.market.regime import LegalRegime, diff_regimes, list_presets, load_regime
from nplsim.market.scenario import list_scenarios, load_scenario
from nplsim.viz import ab, app, charts, components, controls, export, figures, lab, series, vega

PNG = b"\x89PNG\r\n\x1a\n"
SMALL = {"n_loans": 5_000}


def small_lab(scenario: str = "pilot_2005", seed: int | str = 7, **kwargs) -> lab.PolicyLab:
    settings = lab.settings_for(scenario, str(seed))
    return lab.PolicyLab(**{**settings.lab_kwargs(), **SMALL, **kwargs})


def stepped(the_lab: lab.PolicyLab, quarters: int) -> lab.PolicyLab:
    for _ in range(quarters):
        the_lab.step()
    return the_lab


def render(element):
    """Render a Solara element; errors propagate instead of being shown."""
    _, rc = solara.render(element, handle_error=False)
    return rc


def _widgets(widget):
    yield widget
    for child in getattr(widget, "children", None) or ():
        if not isinstance(child, str):
            yield from _widgets(child)


def texts(rc, css_class: str) -> list[str]:
    """The texts of the rendered elements that carry ``css_class`` (among others)."""
    found = []
    for root in rc.find().widgets[:1]:
        for w in _widgets(root):
            if isinstance(w, v.Html) and css_class in (w.class_ or "").split():
                found.append(w.children[0])
    return found


@pytest.fixture(scope="module")
def mature() -> lab.PolicyLab:
    """mature_market a few quarters in, with a live deal (small pools so that a small book
    issues)."""
    the_lab = lab.PolicyLab(scenario_name="mature_market", rng="7", n_loans=5_000)
    the_lab.market = NPLMarketModel(
        scenario="mature_market", rng=7, n_loans=5_000,
        disposal_lag_q=1,
    )  # fmt: skip
    the_lab.limits = [lab.supervisory_limits(the_lab.market)]
    the_lab.step()
    while the_lab.market.quarter < 12 and not any(s.state == "live" for s in the_lab.market.spvs):
        the_lab.step()
    assert any(s.state == "live" for s in the_lab.market.spvs), "precondition: a live deal"
    return the_lab


# ====================================================================== settings and levers
@pytest.mark.parametrize("scenario", list_scenarios())
def test_a_scenario_s_settings_are_its_own_size_and_law(scenario):
    config, regime = load_scenario(scenario)
    settings = lab.settings_for(scenario)
    assert settings.n_loans == config.n_loans
    assert settings.law == {}
    for name in lab.LEVER_FIELDS:
        assert lab.lever_value(settings, name) == getattr(regime, name)


def test_the_shanxi_scenarios_keep_their_20000_loan_slots():
    for scenario in ("shanxi_power", "shanxi_no_centre", "shanxi_centre_reformed"):
        assert lab.settings_for(scenario).n_loans == 20_000


def test_the_lab_with_a_scenario_s_settings_reproduces_nplsim_run():
    settings = lab.settings_for("shanxi_power")
    the_lab = lab.PolicyLab(**settings.lab_kwargs())
    reference = NPLMarketModel(scenario="shanxi_power", rng=lab.DEFAULT_SEED)
    for _ in range(6):
        the_lab.step()
        reference.step()
    pd.testing.assert_frame_equal(the_lab.market.model_frame(), reference.model_frame())
    pd.testing.assert_frame_equal(the_lab.market.bank_frame(), reference.bank_frame())


def test_a_law_change_is_exactly_the_levers_moved():
    settings = lab.settings_for("amc_only_1999")
    settings = lab.with_lever(settings, "disclosure_level", 0.3)
    assert settings.law == {"disclosure_level": 0.3}
    the_lab = lab.PolicyLab(**{**settings.lab_kwargs(), **SMALL})
    differences = diff_regimes(load_regime("amc_only_1999"), the_lab.market.regime)
    assert list(differences["field"]) == ["disclosure_level"]  # not restart_2016's trust SPV
    assert the_lab.market.regime.spv_form == "none"


def test_moving_a_lever_back_removes_the_change():
    settings = lab.with_lever(lab.settings_for("pilot_2005"), "risk_retention", 0.2)
    preset = load_regime("pilot_2005").risk_retention
    assert lab.with_lever(settings, "risk_retention", preset).law == {}


def test_changing_the_investor_classes_opens_the_market_to_foreigners_with_qfii():
    settings = lab.with_lever(
        lab.settings_for("pilot_2005"), "investor_classes_allowed", ["qfii", "insurer"]
    )
    the_lab = lab.PolicyLab(**{**settings.lab_kwargs(), **SMALL})
    assert the_lab.market.regime.investor_classes_allowed == ("insurer", "qfii")
    assert the_lab.market.regime.foreign_investors_allowed


def test_every_preset_value_sits_on_its_slider_s_grid():
    for preset in list_presets():
        regime = load_regime(preset)
        for name in lab.LEVER_FIELDS:
            if lab.lever_kind(name) != "number":
                continue
            low, high = lab.field_bounds(name)
            value = getattr(regime, name)
            assert low <= value <= high
            steps = (value - low) / controls.LEVER_STEP
            assert steps == pytest.approx(round(steps), abs=1e-6), (preset, name, value)


def test_every_lever_has_help_from_the_regime_field_s_description():
    for name in lab.LEVER_FIELDS:
        assert lab.field_help(name) == LegalRegime.model_fields[name].description
        assert len(lab.field_help(name)) > 20


@pytest.mark.parametrize(
    ("text", "seed"), [("42", 42), (" 7 ", 7), (0, 0), ("12345678901", 12345678901)]
)
def test_seed_text_is_coerced_to_an_integer(text, seed):
    assert small_lab(seed=text).market.seed == seed


@pytest.mark.parametrize("text", ["abc", "4.5", "-1", str(2**63), ""])
def test_a_bad_seed_is_a_message_not_a_traceback(text):
    the_lab = small_lab(seed=text)
    assert the_lab.market is None and "seed" in the_lab.config_error
    the_lab.step()  # Step on a model-less lab does nothing
    rc = render(app.MainView(the_lab, lab.settings_for("pilot_2005"), solara.reactive(1)))
    assert "seed" in str(rc.find(v.Alert).widget.children)


@pytest.mark.parametrize(
    ("law", "message"),
    [
        ({"spv_form": "none"}, "needs spv_form 'trust' or 'company'"),
        ({"investor_classes_allowed": ()}, "needs at least one class"),
    ],
)
def test_an_invalid_law_shows_the_validation_message(law, message):
    the_lab = small_lab("restart_2016", law=law)
    assert the_lab.market is None and not the_lab.running
    assert message in the_lab.config_error


@pytest.mark.parametrize("scenario", list_scenarios())
def test_levers_at_their_bounds_build_a_model_or_say_why(scenario):
    for end in (0, -1):
        law = {}
        for name in lab.LEVER_FIELDS:
            kind = lab.lever_kind(name)
            if kind == "number":
                law[name] = lab.field_bounds(name)[end]
            elif kind == "bool":
                law[name] = bool(end)
            elif kind == "choice":
                law[name] = lab.field_choices(name)[end]
            else:
                law[name] = tuple(lab.field_choices(name)) if end else ()
        the_lab = small_lab(scenario, law=law, shock_z=-lab.SHOCK_Z_LIMIT, shock_quarter=1)
        if the_lab.market is None:
            assert the_lab.config_error
            continue
        stepped(the_lab, 4)
        assert the_lab.market.invariant_violations() == []


def test_the_macro_shock_is_added_to_the_scenario_s_own():
    the_lab = small_lab("restart_2016", shock_z=-3.0, shock_quarter=2)
    assert [(s.quarter, s.z) for s in the_lab.market.config.macro.shocks] == [(2, -3.0)]
    stepped(the_lab, 2)
    kinds = [e["kind"] for e in the_lab.market.world.events.rows if e["quarter"] == 2]
    assert kinds.count("macro_shock") == 1


# ====================================================================== the horizon
def test_the_lab_never_steps_past_the_horizon():
    the_lab = small_lab("pilot_2005")
    horizon = the_lab.market.config.quarters
    stepped(the_lab, horizon + 7)  # as Mesa's Step does with a render interval past the end
    assert the_lab.market.quarter == horizon
    assert not the_lab.running
    assert len(the_lab.market.model_frame()) == horizon + 1


def test_the_model_itself_does_nothing_past_its_last_quarter(caplog):
    model = NPLMarketModel(scenario="pilot_2005", rng=3, n_loans=2_000, quarters=2)
    model.step()
    model.step()
    frame = model.model_frame()
    with caplog.at_level(logging.WARNING, logger="nplsim.economy.model"):
        model.step()
    assert model.quarter == 2 and not model.running
    pd.testing.assert_frame_equal(model.model_frame(), frame)
    assert "quarter 2 is the last of the run" in caplog.text


# ====================================================================== reforms and limits
def test_reform_now_schedules_the_law_for_the_next_quarter_as_a_scenario_event():
    the_lab = stepped(small_lab("pilot_2005"), 3)
    assert the_lab.reform_now("strengthened") == 4
    assert the_lab.market.regime_name == "pilot_2005"  # quarter 3 is over
    assert lab.scheduled_reforms(the_lab.market) == [(4, "strengthened")]
    the_lab.step()
    assert the_lab.market.regime_name == "strengthened"
    reforms = [e for e in the_lab.market.world.events.rows if e["kind"] == "reform"]
    assert [(e["quarter"], e["detail"]) for e in reforms] == [(4, "strengthened")]


def test_the_supervisory_limits_are_drawn_as_they_were_in_force():
    the_lab = stepped(small_lab("pilot_2005"), 3)
    the_lab.reform_now("strengthened")
    stepped(the_lab, 3)
    car = series.limits(the_lab, "car")
    before = car[car["quarter"] <= 3]["value"]
    after = car[car["quarter"] >= 4]["value"]
    # the CAR minimum is a prudential rule: a change of the law leaves it as it was
    rules = the_lab.market.prudential
    assert len(before) and (before == 100 * rules.car_min).all()
    assert len(after) and (after == 100 * rules.car_min).all()
    npl = series.limits(the_lab, "npl_ratio")
    assert (npl["value"] == 100 * rules.npl_ratio_target).all()


def test_reform_labels_close_together_take_different_rows_and_never_overlap():
    the_lab = small_lab("pilot_2005", reforms=[(3, "strengthened"), (4, "mature_market")])
    stepped(the_lab, 6)
    marks = series.reform_marks(the_lab.market)
    assert list(marks["quarter"]) == [3, 4]
    assert list(marks["row"]) == [0, 1]
    fig = figures.chart_figure(series.CHARTS["npl-ratio"], the_lab)
    fig.canvas.draw()
    labels = [t for t in fig.axes[0].texts if t.get_text().startswith("→")]
    boxes = [t.get_window_extent() for t in labels]
    assert len(boxes) == 2 and not boxes[0].overlaps(boxes[1])


# ====================================================================== charts
def _named_data(spec) -> set[str]:
    found = set()
    if isinstance(spec, dict):
        if set(spec) == {"name"} and isinstance(spec["name"], str):
            found.add(spec["name"])
        for key, value in spec.items():
            if key == "data" and isinstance(value, dict) and "name" in value:
                found.add(value["name"])
            found |= _named_data(value)
    elif isinstance(spec, list):
        for item in spec:
            found |= _named_data(item)
    return found


@pytest.mark.parametrize("scenario", ["restart_2016", "shanxi_power"])
def test_every_chart_s_data_sets_are_the_ones_its_spec_reads(scenario):
    the_lab = stepped(small_lab(scenario), 5)
    for name, definition in series.CHARTS.items():
        data = definition.data(the_lab)
        assert set(data["series"].columns) == set(series.TIDY), name
        spec = charts.time_spec(
            definition.draw, definition.unit, definition.fmt,
            charts.series_names(data["series"]), 40, definition.limit is not None,
        )  # fmt: skip
        assert _named_data(spec) == set(data), name
        json.loads(vega.records_json(data["series"]))  # strict JSON: NaN is a gap (null)


def test_the_a_b_charts_data_sets_are_the_ones_their_specs_read():
    settings = lab.Settings(**{**lab.settings_for("pilot_2005").__dict__, "n_loans": 3_000})
    pair = ab.ABPair(**ab.pair_params(settings, ab.Policy(kind="reform", quarter=2)))
    pair.step()
    rc = render(ab.ABCharts(pair, "car", None))
    charts_shown = rc.find(vega.VegaChart).widgets
    assert len(charts_shown) == 2
    for widget in charts_shown:
        assert _named_data(widget.spec) == set(widget.datasets), widget.name


def test_nan_and_infinity_are_gaps_in_the_data_sent():
    frame = pd.DataFrame({"quarter": [0, 1, 2], "series": "a", "value": [1.5, math.nan, math.inf]})
    rows = json.loads(vega.records_json(frame))
    assert [r["value"] for r in rows] == [1.5, None, None]


def test_a_chart_spec_uses_the_page_theme_s_colours():
    spec = charts.time_spec("line", "%", ".2f", ("a", "all banks"), 40, True)
    text = json.dumps(spec)
    assert '"@text"' in text and '"@reform"' in text
    assert set(spec["usermeta"]["palettes"]) == {"light", "dark"}
    assert spec["config"]["background"] == "transparent"


def test_the_limit_line_has_the_limit_in_force_each_quarter_and_nothing_where_none():
    the_lab = stepped(small_lab("restart_2016"), 2)
    the_lab.limits[1] = {**the_lab.limits[1], "car": math.nan}
    car = series.limits(the_lab, "car")
    assert list(car["quarter"]) == [0, 2]


def test_power_charts_read_the_power_columns():
    the_lab = stepped(small_lab("shanxi_power"), 5)
    for name in series.POWER_CHARTS:
        frame = series.CHARTS[name].series(the_lab.market)
        assert len(frame) and np.isfinite(frame["value"]).any(), name


def test_the_indicators_offer_every_numeric_output_column():
    the_lab = small_lab("restart_2016")
    columns = series.numeric_columns(the_lab.market.model_frame())
    assert "npl_ratio" in columns and "quarter" not in columns
    chart = series.indicator_chart("systematic_factor", per_bank_column=False)
    assert len(chart.series(the_lab.market)) == 1


def test_kpis_say_so_where_no_limit_is_in_force():
    the_lab = small_lab("restart_2016")
    the_lab.limits[-1] = dict.fromkeys(the_lab.limits[-1], math.nan)
    notes = [k.note for k in components.kpis(the_lab)]
    assert notes[1].startswith("no limit in force")


# ====================================================================== views
@pytest.mark.parametrize("scenario", ["restart_2016", "shanxi_power"])
def test_every_tab_renders(scenario):
    the_lab = stepped(small_lab(scenario), 3)
    names = app.tab_names(the_lab)
    assert ("Power" in names) == (scenario == "shanxi_power")
    settings = lab.settings_for(scenario)
    for _name, shown, view in components.TABS:
        if shown(the_lab):
            render(view(the_lab))
    render(ab.ABTab(settings, solara.reactive(1)))
    render(export.ExportTab(the_lab, settings))


def test_the_page_renders_the_default_lab():
    rc = render(app.Page())
    assert texts(rc, "nplsim-quarter")[0].startswith("Quarter 0 of 40 · restart_2016")
    assert rc.find(v.Btn, children=["Reform now"]).widgets


def test_the_law_panel_shows_every_field_that_differs_from_the_preset():
    the_lab = small_lab("restart_2016", law={"spv_form": "company", "stamp_duty_bp": 5.0})
    rows = {name: (now, before) for name, now, before in components.law_rows(the_lab)}
    assert rows["securitisation_allowed"] == ("yes", "")
    assert rows["spv_form"] == ("company", "trust")
    assert rows["stamp_duty_bp"] == ("5.00", "0.00")  # not a lever, but changed
    rc = render(components.LawPanel(the_lab, on_reform=lambda: None))
    assert texts(rc, "nplsim-lever-spv_form") == ["spv form: company (preset trust)"]


def test_deals_table_lists_every_deal_newest_first(mature):
    table = components.deals_table(mature)
    assert len(table) == len(mature.market.desk.deal_rows)
    assert list(table["deal"]) == sorted(table["deal"], reverse=True)
    rc = render(components.DealsTable(mature))
    (widget,) = rc.find(v.DataTable).widgets
    assert widget.items_per_page == components.DEALS_PER_PAGE and len(widget.items) == len(table)


def test_network_links_originators_spvs_and_holders(mature):
    graph = figures.holdings_graph(mature.market)
    kinds = {graph.nodes[n]["kind"] for n in graph.nodes}
    assert {"bank", "spv", "holder"} <= kinds
    for spv in (s for s in mature.market.spvs if s.state == "live"):
        assert graph.has_edge(spv.originator.name, spv.name)
    rc = render(components.HoldingsTab(mature))
    images = [bytes(w.value) for w in rc.find(ipywidgets.Image).widgets]
    assert len(images) == 2 and all(png.startswith(PNG) for png in images)  # light and dark


def test_no_figure_uses_pyplot(mature):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    figures.chart_figure(series.CHARTS["car"], mature)
    figures.network_figure(mature.market)
    assert plt.get_fignums() == before


# ====================================================================== A/B
def test_a_and_b_with_the_same_law_are_the_same_run():
    settings = lab.settings_for("pilot_2005")
    settings = lab.Settings(**{**settings.__dict__, "n_loans": 5_000})
    pair = ab.ABPair(**ab.pair_params(settings, ab.Policy(kind="levers", levers=settings)))
    for _ in range(5):
        pair.step()
    _, diff = ab.pair_series(pair, "npl_ratio")
    assert (diff["value"] == 0).all()


def test_a_reform_policy_is_the_baseline_until_the_reform_quarter():
    settings = lab.Settings(**{**lab.settings_for("pilot_2005").__dict__, "n_loans": 5_000})
    policy = ab.Policy(kind="reform", preset="strengthened", quarter=3)
    pair = ab.ABPair(**ab.pair_params(settings, policy))
    assert pair.b.config.events[-1].quarter == 3
    for _ in range(8):
        pair.step()
    both, diff = ab.pair_series(pair, "car")
    assert (diff[diff["quarter"] < 3]["value"] == 0).all()
    assert (diff[diff["quarter"] >= 4]["value"] != 0).any()


def test_a_preset_policy_puts_that_law_in_force_from_the_start():
    settings = lab.Settings(**{**lab.settings_for("pilot_2005").__dict__, "n_loans": 5_000})
    pair = ab.ABPair(**ab.pair_params(settings, ab.Policy(kind="preset", preset="strengthened")))
    assert pair.b.regime == load_regime("strengthened")
    assert pair.a.regime == load_regime("pilot_2005")


def test_an_invalid_policy_is_a_message():
    settings = lab.settings_for("pilot_2005")
    params = ab.pair_params(settings, ab.Policy(kind="reform", quarter=999))
    assert set(params) == {"error"} and "reform-at" in params["error"]
    assert ab.ABPair(**params).a is None


@pytest.mark.slow
def test_more_seeds_give_a_band_and_paired_differences_with_compare_s_code():
    settings = lab.Settings(**{**lab.settings_for("pilot_2005").__dict__, "n_loans": 3_000})
    policy = ab.Policy(kind="preset", preset="strengthened")
    pair = ab.ABPair(**ab.pair_params(settings, policy))
    runs = ab.run_seeds(pair, [1, 2, 3], ("npl_ratio", "car"))
    band = runs.band("car")
    assert len(band) == pair.a.config.quarters + 1
    assert (band["low"] <= band["mean"] + 1e-12).all() and (
        band["mean"] <= band["high"] + 1e-12
    ).all()
    table = runs.table()
    assert list(table["metric"]) == ["npl_ratio", "car"] and (table["n_seeds"] == 3).all()
    reference = simulate(pair.b.config, 2).model_frame()["car"].to_numpy()
    np.testing.assert_array_equal(runs.paths_b[1, :, 1], reference)


# ====================================================================== export and the link
@pytest.mark.parametrize("scenario", list_scenarios())
def test_the_scenario_file_is_the_scenario(scenario, tmp_path):
    config, _ = load_scenario(scenario, {"n_loans": 5_000, "disclosure_level": 0.4})
    text = export.scenario_toml(config, 42, config.quarters)
    tomllib.loads(text)
    path = tmp_path / f"{scenario}.toml"
    path.write_text(text)
    assert load_scenario(path)[0] == config


@pytest.mark.slow
def test_the_export_reproduces_the_run_byte_for_byte(tmp_path):
    the_lab = small_lab("pilot_2005", law={"disclosure_level": 0.8}, shock_z=-2.0, shock_quarter=5)
    stepped(the_lab, 6)
    the_lab.reform_now("strengthened")
    stepped(the_lab, 40)
    out = export.export_run(the_lab, tmp_path / "export", "scenario=pilot_2005")
    names = {p.name for p in out.iterdir()}
    assert {"model.parquet", "banks.parquet", "scenario.toml", "manifest.json", "csv"} <= names
    assert (out / "figures" / "lab" / "car.svg").read_text().startswith("<?xml")
    assert (out / "figures" / "lab" / "car.png").read_bytes().startswith(PNG)
    assert (out / "figures" / "dashboard.png").exists()
    rerun = run_to_directory(out / "scenario.toml", the_lab.market.seed, tmp_path / "rerun")
    assert rerun.out_dir is not None
    for table in ("model", "banks", "amcs", "deals", "trades", "events"):
        a = (out / f"{table}.parquet").read_bytes()
        assert a == (tmp_path / "rerun" / f"{table}.parquet").read_bytes(), table


@pytest.mark.slow
def test_an_export_before_the_horizon_is_repeated_from_its_manifest(tmp_path):
    the_lab = stepped(small_lab("pilot_2005"), 7)
    out = export.export_run(the_lab, tmp_path / "export")
    recorded = read_manifest(out / "manifest.json")
    assert recorded.config.quarters == 7 and recorded.differences == ()
    rerun_from_manifest(recorded, tmp_path / "rerun")
    for table in ("model", "banks", "events"):
        assert (out / f"{table}.parquet").read_bytes() == (
            tmp_path / "rerun" / f"{table}.parquet"
        ).read_bytes()


def test_nothing_to_export_is_one_message(tmp_path):
    with pytest.raises(Exception, match="has not started"):
        export.export_run(small_lab("pilot_2005"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_an_export_never_writes_over_the_user_s_files_or_an_earlier_export(tmp_path):
    the_lab = stepped(small_lab("pilot_2005"), 2)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="--out"):
        export.export_run(the_lab, mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep"
    out = export.export_run(the_lab, tmp_path / "export")
    before = (out / "model.parquet").read_bytes()
    stepped(the_lab, 1)
    with pytest.raises(ConfigError, match="earlier run results"):
        export.export_run(the_lab, out)
    assert (out / "model.parquet").read_bytes() == before


def test_the_link_carries_the_settings_and_reforms():
    settings = lab.settings_for("shanxi_power", "9")
    settings = lab.with_lever(settings, "disclosure_level", 0.9)
    settings = lab.with_lever(settings, "investor_classes_allowed", ("insurer", "qfii"))
    settings = lab.Settings(**{**settings.__dict__, "shock_z": -1.5, "shock_quarter": 6})
    query = lab.settings_query(settings, [(12, "strengthened")])
    parsed, reforms, problems = lab.parse_query(query)
    assert (parsed, reforms, problems) == (settings, [(12, "strengthened")], [])


@pytest.mark.parametrize(
    "query",
    ["scenario=nope", "disclosure_level=lots", "spv_form=llc", "reform=soon", "colour=red",
     "n_loans=many", "securitisation_allowed=maybe"],
)  # fmt: skip
def test_a_bad_link_value_is_named_and_left_at_the_scenario_s(query):
    settings, reforms, problems = lab.parse_query(query)
    assert len(problems) == 1 and reforms == []
    assert settings.law == {}


def test_the_time_axis_names_calendar_quarters_from_the_scenario_s_start():
    # was: the app's charts counted model quarters (0, 5, 10, ...) whatever the scenario's start
    expr = charts.calendar_expr("2016Q1", 5)
    names = ["2015Q4", "2016Q1", "2016Q2", "2016Q3", "2016Q4", "2017Q1"]
    assert expr == f"{names!r}[round(QUARTER)]"
    assert charts.calendar_expr(None, 5) is None
    spec = json.dumps(charts.time_spec("line", "%", ".2f", ("a",), 5, True, start="2016Q1"))
    assert expr.replace("QUARTER", "datum.value") in spec  # the axis labels
    assert expr.replace("QUARTER", "datum.quarter") in spec  # the tooltips
    assert '"calendar quarter"' in spec
    plain = json.dumps(charts.time_spec("line", "%", ".2f", ("a",), 5, True))
    assert "labelExpr" not in plain and '"quarter"' in plain
