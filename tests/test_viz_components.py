"""The policy lab's views render what the model holds, reforms leave a mark on every time-series
chart, and no control value (at its bounds, or contradictory) breaks the page."""

from __future__ import annotations

import ipyvuetify as v
import ipywidgets
import numpy as np
import pytest
import solara
from matplotlib.colors import to_hex
from mesa.visualization.solara_viz import _build_model_init_kwargs
from solara.components.datatable import DataTableWidget

from nplsim import NPLMarketModel
from nplsim.market.loans import collateral_realisation
from nplsim.market.regime import LegalRegime, field_bounds, list_presets
from nplsim.market.scenario import list_scenarios
from nplsim.viz import app, components

PNG = b"\x89PNG\r\n\x1a\n"
TIME_SERIES = (
    components.balance_sheet_figure,
    components.bank_ratios_figure,
    components.disposal_figure,
    components.abs_market_figure,
)
# Small pools and a short disposal lag, so that a 5,000-loan economy issues deals within a few
# quarters (the default pool minimum is sized for the 100,000-loan scenarios).
SMALL_DEALS = {"n_loans": 5_000, "securitisation__min_pool_loans": 5, "disposal_lag_q": 1}


@pytest.fixture(scope="module")
def market() -> NPLMarketModel:
    """mature_market a few quarters in: a live deal whose tranches trade, AMC sales."""
    model = NPLMarketModel(scenario="mature_market", rng=7, **SMALL_DEALS)
    model.step()
    while model.quarter < 12 and not (
        any(spv.state == "live" for spv in model.spvs) and components.has_secondary_market(model)
    ):
        model.step()
    assert any(s.state == "live" for s in model.spvs), "precondition: a live deal"
    return model


def render(element):
    """Render a Solara element; errors propagate instead of being shown."""
    _, rc = solara.render(element, handle_error=False)
    return rc


def texts(rc, css_class: str) -> list[str]:
    return [w.children[0] for w in rc.find(v.Html, class_=css_class).widgets]


def images(rc) -> list[bytes]:
    return [bytes(w.value) for w in rc.find(ipywidgets.Image).widgets]


def reform_lines(fig) -> list[float]:
    """x positions of the reform markers drawn on a figure's axes."""
    return [
        line.get_xdata()[0]
        for ax in fig.axes
        for line in ax.lines
        if to_hex(line.get_color()) == components.REFORM_COLOR
    ]


# ---------------------------------------------------------------------- views
def test_kpi_cards_show_the_quarter_s_headline_numbers(market):
    rc = render(components.KpiCards(market))
    values = texts(rc, "nplsim-kpi-value")
    assert len(values) == 5
    assert values[0] == f"{100 * market.metrics['npl_ratio']:.2f}%"
    assert values[1] == f"{100 * market.metrics['car']:.2f}%"
    assert values[3] == f"CNY {market.metrics['abs_outstanding']:,.1f} bn"
    assert texts(rc, "nplsim-quarter") == [f"Quarter {market.quarter} of 40 · mature_market"]


@pytest.mark.parametrize(
    ("view", "name"),
    [
        (components.BalanceSheetView, "balance-sheet"),
        (components.BankRatiosView, "bank-ratios"),
        (components.DisposalView, "disposal"),
        (components.AbsMarketView, "abs-market"),
        (components.NetworkView, "network"),
    ],
)
def test_every_chart_view_renders_a_png(market, view, name):
    rc = render(view(market))
    (image,) = [w for w in rc.find(ipywidgets.Image).widgets if f"nplsim-{name}" in w._dom_classes]
    assert bytes(image.value).startswith(PNG) and len(image.value) > 5_000


def test_abs_market_says_so_before_the_secondary_market_exists():
    fresh = NPLMarketModel(scenario="mature_market", rng=7, n_loans=5_000)
    assert not components.has_secondary_market(fresh)
    rc = render(components.AbsMarketView(fresh))
    assert rc.find(v.Alert, class_="nplsim-no-secondary").widgets
    assert len(components.abs_market_figure(fresh).axes) == 2  # no bid-ask, turnover panels


def test_abs_market_adds_bid_ask_and_turnover_once_tranches_trade(market):
    assert components.has_secondary_market(market)
    rc = render(components.AbsMarketView(market))
    assert not rc.find(v.Alert, class_="nplsim-no-secondary").widgets
    fig = components.abs_market_figure(market)
    assert len(fig.axes) == 4
    bid_ask = fig.axes[2].lines[0].get_ydata()
    assert np.isfinite(bid_ask).any()


def test_deals_table_lists_every_deal_newest_first(market):
    table = components.deals_table(market)
    assert len(table) == len(market.desk.deal_rows)
    assert list(table["deal"]) == sorted(table["deal"], reverse=True)
    assert table["ABS CNY bn"].sum() == pytest.approx(
        sum(d["issued_total"] for d in market.desk.deal_rows), abs=0.01 * len(table)
    )
    rc = render(components.DealsView(market))
    assert texts(rc, "nplsim-deal-count")[0].startswith(f"{len(table)} deal")
    (widget,) = rc.find(DataTableWidget).widgets
    assert widget.total_length == len(table)


def test_network_links_originators_spvs_and_holders(market):
    graph = components.holdings_graph(market)
    kinds = {graph.nodes[n]["kind"] for n in graph.nodes}
    assert {"bank", "spv", "holder"} <= kinds
    for spv in (s for s in market.spvs if s.state == "live"):
        assert graph.has_edge(spv.originator.name, spv.name)
        held = sum(w for _, _, w in graph.out_edges(spv.name, data="weight"))
        assert held == pytest.approx(sum(sum(h.values()) for h in spv.holders.values()))
    sold = sum(t["face"] for t in market.blotter.rows if t["market"] == "amc_auction")
    to_amcs = sum(
        w for u, x, w in graph.edges(data="weight") if graph.nodes[x]["kind"] == "amc"
        and graph.nodes[u]["kind"] == "bank"
    )  # fmt: skip
    assert to_amcs >= sold - 1e-9


def test_a_figure_drawn_again_in_place_matches_a_fresh_one(market):
    for draw in TIME_SERIES:
        fresh = components.figure_png(draw(market))
        reused = draw(market)
        reused = draw(market, fig=reused)
        assert components.figure_png(reused) == fresh, draw.__name__


def test_no_view_plots_with_pyplot(market):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for draw in (*TIME_SERIES, components.network_figure):
        draw(market)
    assert plt.get_fignums() == before


# ---------------------------------------------------------------------- reform now
def test_reform_now_changes_the_law_from_the_next_quarter_and_marks_every_chart():
    model = NPLMarketModel(scenario="pilot_2005", rng=3, **SMALL_DEALS)
    for _ in range(3):
        model.step()
    rc = render(components.LawPanel(model, on_reform=lambda: None))
    assert texts(rc, "nplsim-regime-name") == ["Regime in force: pilot_2005"]
    assert all(reform_lines(draw(model)) == [] for draw in TIME_SERIES)

    rc.find(v.Btn, children=["Reform now"]).widget.click()

    assert model.regime_name == "strengthened"
    assert model.regime.bankruptcy_remoteness == 0.97
    assert model.loans.collateral_realisation == pytest.approx(collateral_realisation(1.2))
    assert [e["quarter"] for e in model.world.events.rows if e["kind"] == "reform"] == [3]
    for draw in TIME_SERIES:
        assert 3 in reform_lines(draw(model)), draw.__name__
    model.step()  # the new law governs the next quarter
    assert model.regime_name == "strengthened"
    rc = render(components.LawPanel(model, on_reform=lambda: None))
    assert texts(rc, "nplsim-regime-name") == ["Regime in force: strengthened"]
    assert texts(rc, "nplsim-reform-log") == ["reform at quarter 3: strengthened (reform now)"]


def test_reform_to_each_preset_keeps_the_model_running():
    for preset in list_presets():
        model = NPLMarketModel(scenario="restart_2016", rng=5, n_loans=5_000)
        model.step()
        components.apply_reform(model, preset)
        for _ in range(3):
            model.step()
        assert model.regime_name == preset
        assert model.invariant_violations() == []


# ---------------------------------------------------------------------- controls and the page
def _schema_bounds(name: str) -> tuple[float, float]:
    """The regime field's range as its pydantic schema states it (independently of the app)."""
    bounds = {}
    for item in LegalRegime.model_fields[name].metadata:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(item, key, None) is not None:
                bounds[key[0]] = getattr(item, key)
    return bounds["g"], bounds["l"]


def test_controls_stay_inside_each_regime_field_s_range():
    sliders = [name for name in app.LEVER_FIELDS if app.MODEL_PARAMS[name]["type"] == "SliderFloat"]
    assert sliders
    for name in sliders:
        spec = app.MODEL_PARAMS[name]
        if spec["type"] == "SliderFloat":
            low, high, _, _ = field_bounds(name)
            assert (spec["min"], spec["max"]) == (low, high)
            assert low <= spec["value"] <= high
    assert app.MODEL_PARAMS["scenario_name"]["values"] == list_scenarios()
    assert app.MODEL_PARAMS["rng"]["type"] == "InputText"


@pytest.mark.parametrize(
    ("text", "seed"), [("42", 42), (" 7 ", 7), (0, 0), ("12345678901", 12345678901)]
)
def test_seed_text_is_coerced_to_an_integer(text, seed):
    lab = app.PolicyLab(rng=text, n_loans=5_000)
    assert lab.config_error is None
    assert lab.market.seed == seed


@pytest.mark.parametrize("text", ["abc", "4.5", "-1", str(2**63), ""])
def test_a_bad_seed_is_a_message_not_a_traceback(text):
    lab = app.PolicyLab(rng=text, n_loans=5_000)
    assert lab.market is None and "seed" in lab.config_error
    lab.step()  # pressing Step on a model-less lab does nothing
    rc = render(app.headline(lab))
    (alert,) = rc.find(v.Alert).widgets
    assert "seed" in str(alert.children)


@pytest.mark.parametrize(
    ("levers", "message"),
    [
        ({"spv_form": "none"}, "needs spv_form 'trust' or 'company'"),
        ({"investor_base": "none"}, "needs at least one class in investor_classes_allowed"),
    ],
)
def test_an_invalid_combination_shows_the_validation_message(levers, message):
    lab = app.PolicyLab(custom_law=True, n_loans=5_000, **levers)
    assert lab.market is None and not lab.running
    assert message in lab.config_error
    for view, _page in app.VIEWS:
        render(view(lab))  # every cell renders: the message, or "no model"
    rc = render(app.headline(lab))
    assert message in str(rc.find(v.Alert).widget.children)


LOW = {
    "securitisation_allowed": False, "spv_form": "none", "bankruptcy_remoteness": 0.0,
    "investor_protection": 0.0, "disclosure_level": 0.0, "debtor_notice": "individual",
    "risk_retention": 0.0, "derecognition_allowed": False, "state_guarantee_scheme": False,
    "enforcement_efficiency": 0.1, "investor_base": "none", "shock_z": -4.0, "shock_quarter": 1,
    "rng": "0",
}  # fmt: skip
HIGH = {
    "securitisation_allowed": True, "spv_form": "company", "bankruptcy_remoteness": 1.0,
    "investor_protection": 1.0, "disclosure_level": 1.0, "debtor_notice": "none",
    "risk_retention": 0.5, "derecognition_allowed": True, "state_guarantee_scheme": True,
    "enforcement_efficiency": 3.0, "investor_base": "all incl. retail", "shock_z": 4.0,
    "shock_quarter": 40, "rng": str(2**63 - 1),
}  # fmt: skip


def test_the_extreme_values_are_the_controls_bounds():
    for values in (LOW, HIGH):
        for name, value in values.items():
            spec = app.MODEL_PARAMS[name]
            if spec["type"].startswith("Slider"):
                assert value in (spec["min"], spec["max"]), name
            elif spec["type"] == "Select":
                assert value in spec["values"], name


@pytest.mark.parametrize("scenario", list_scenarios())
@pytest.mark.parametrize("levers", [LOW, HIGH], ids=["all-low", "all-high"])
def test_levers_at_their_bounds_build_a_model_or_show_a_message(scenario, levers):
    lab = app.PolicyLab(scenario_name=scenario, custom_law=True, n_loans=5_000, **levers)
    if lab.market is None:
        assert lab.config_error  # e.g. securitisation with no originator allowed
    else:
        for _ in range(6):
            lab.step()
        assert lab.market.invariant_violations() == []
    for view, _page in app.VIEWS:
        render(view(lab))


@pytest.mark.parametrize("n_loans", [app.MODEL_PARAMS["n_loans"]["min"],
                                     app.MODEL_PARAMS["n_loans"]["max"]])  # fmt: skip
def test_scenario_size_at_its_bounds_builds_and_steps(n_loans):
    lab = app.PolicyLab(n_loans=n_loans)
    lab.step()
    assert lab.market.config.n_loans == n_loans
    assert lab.market.quarter == 1


def test_the_macro_shock_control_adds_a_shock_to_the_scenario():
    lab = app.PolicyLab(n_loans=5_000, shock_z=-3.0, shock_quarter=2)
    assert [(s.quarter, s.z) for s in lab.market.config.macro.shocks] == [(2, -3.0)]
    calm = app.PolicyLab(n_loans=5_000)
    assert calm.market.config.macro.shocks == []
    for _ in range(2):
        lab.step()
    kinds = [e["kind"] for e in lab.market.world.events.rows if e["quarter"] == 2]
    assert kinds.count("macro_shock") == 1


def test_the_levers_apply_only_when_overriding_the_preset():
    preset = app.PolicyLab(n_loans=5_000, bankruptcy_remoteness=0.1)
    assert preset.market.regime.bankruptcy_remoteness == 0.8  # restart_2016's own value
    custom = app.PolicyLab(
        n_loans=5_000,
        custom_law=True,
        bankruptcy_remoteness=0.1,
        investor_base="domestic incl. distressed funds",
    )
    assert custom.market.regime.bankruptcy_remoteness == 0.1
    assert "qfii" not in custom.market.regime.investor_classes_allowed
    assert not custom.market.regime.foreign_investors_allowed


def test_mesa_reset_rebuilds_the_lab_from_the_controls():
    lab = app.PolicyLab(n_loans=5_000)
    controls = {**app.DEFAULTS, "n_loans": 5_000, "rng": "9", "custom_law": True,
                "state_guarantee_scheme": True, "scenario_name": "pilot_2005"}  # fmt: skip
    kwargs = _build_model_init_kwargs(
        lab, controls, add_scenario_when_empty=True, require_model_accepts_scenario=True
    )
    rebuilt = type(lab)(**kwargs)
    assert rebuilt.market.seed == 9
    assert rebuilt.market.config.name == "pilot_2005"
    assert rebuilt.market.regime.state_guarantee_scheme


def test_the_page_renders_every_view_of_the_default_lab():
    rc = render(app.Page())
    assert texts(rc, "nplsim-quarter") == ["Quarter 0 of 40 · restart_2016"]
    assert all(png.startswith(PNG) for png in images(rc))
    assert rc.find(v.Btn, children=["Reform now"]).widgets
