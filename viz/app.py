"""The nplsim policy lab, served by ``nplsim viz``: a Solara page around Mesa's model controller.

The sidebar holds Mesa's Reset / Play / Step (:class:`~mesa.visualization.solara_viz.
ModelController`, with the play interval and the quarters a Step runs) and the settings: a
scenario, whose size and law every control takes when it is chosen, the seed, a macro shock and
the law's levers. Reset builds a :class:`~nplsim.viz.lab.PolicyLab` from them. The page shows the
run in tabs chosen by what the scenario has (power plants add a Power tab), an A/B mode that runs
a policy against the baseline on the same seed, and the export. A link with a query string
(``/?scenario=pilot_2005&seed=7&disclosure_level=0.9&reform=12:strengthened``) opens the lab with
those settings.
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

import solara
import solara.server.settings
from mesa.visualization.utils import update_counter

from nplsim.viz.ab import ABTab
from nplsim.viz.components import TABS
from nplsim.viz.controls import RunControls, SettingsPanel
from nplsim.viz.export import ExportTab
from nplsim.viz.lab import PolicyLab, Settings, parse_query

PLAY_INTERVAL_MS = 150
solara.server.settings.theme.show_banner = False  # no "runs on Solara" note over the charts
CSS = """
.nplsim-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr));
  gap: 12px; margin: 10px 0; }
.nplsim-card { padding: 8px 12px !important; min-width: 0; overflow: hidden; }
.nplsim-chart { width: 100%; min-width: 0; }
.nplsim-chart-title { font-weight: 600; font-size: 14px; display: block; margin-bottom: 2px; }
.nplsim-law-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
  gap: 2px 16px; margin: 6px 0; }
.nplsim-deals .v-data-table { width: 100%; }
.nplsim-deals .v-data-table__wrapper { overflow-x: auto; }
.nplsim-deals td, .nplsim-deals th { white-space: nowrap; padding: 0 6px !important; }
.nplsim-deals th { white-space: normal; line-height: 1.2; vertical-align: bottom;
  padding-bottom: 4px !important; }
.nplsim-control { margin-top: 10px; }
.nplsim-settings .v-input { margin-top: 10px; }
.nplsim-help { display: block; margin-bottom: 2px; }
.nplsim-control .v-input__slot { margin-bottom: 0; }
.nplsim-control .v-messages { min-height: 0; }
.nplsim-status { font-weight: 600; font-size: 15px; margin: 2px 0 6px 0; }
.nplsim-main { max-width: 100%; overflow-x: hidden; }
.nplsim-seed { margin-top: 14px !important; }
.nplsim-card .v-input, .nplsim-settings .v-input, .nplsim-levers .v-input { margin-top: 12px; }
.nplsim-tabs .v-tab { text-transform: none; min-width: 0; padding: 0 12px; font-size: 15px;
  letter-spacing: 0; }
.nplsim-muted { color: #555555; }
.theme--dark .nplsim-muted { color: #c4c4c4; }
.nplsim-ok { color: #1e7e34; }
.theme--dark .nplsim-ok { color: #7ee2a0; }
.nplsim-bad { color: #b52a1c; }
.theme--dark .nplsim-bad { color: #ff9a8f; }
.nplsim-reform-log { color: #c0392b; }
.theme--dark .nplsim-reform-log { color: #ff8a7d; }
.theme--dark .nplsim-light-only, .theme--light .nplsim-dark-only { display: none !important; }
.vega-embed { width: 100%; }
.vega-embed .vega-actions { z-index: 4; }
"""


def tab_names(lab: PolicyLab) -> list[str]:
    """The tabs this run has: the views its scenario supports, then A/B compare and Export."""
    if lab.market is None:
        return []
    return [name for name, shown, _ in TABS if shown(lab)] + ["A/B compare", "Export"]


@solara.component
def Status(lab: PolicyLab, tick: int = 0) -> None:
    """The quarter, the scenario and the law in force, above every tab."""
    model = lab.market
    assert model is not None
    with solara.Row(style={"align-items": "baseline", "flex-wrap": "wrap"}):
        solara.Text(
            f"Quarter {model.quarter} of {model.config.quarters} · {model.config.name} · "
            f"law: {model.regime_name}",
            classes=["nplsim-status", "nplsim-quarter"],
        )
        if lab.step_seconds:
            solara.Text(
                f"model: {1e3 * lab.step_seconds[-1]:.0f} ms for quarter {model.quarter}",
                classes=["nplsim-muted", "nplsim-step-ms"],
                style={"font-size": "12px"},
            )


@solara.component
def MainView(lab: PolicyLab, settings: Settings, render_interval: solara.Reactive[int]) -> None:
    """The run's tabs, or why there is no run."""
    tab, set_tab = solara.use_state(0)
    tick = update_counter.get()  # the one reader of Mesa's counter: one render pass a step
    if lab.market is None:
        solara.Error(f"Invalid settings: {lab.config_error}", classes=["nplsim-config-error"])
        solara.Text("No run: change the settings and press Reset.")
        return
    names = tab_names(lab)
    tab = min(tab, len(names) - 1)
    Status(lab, tick)
    with solara.v.Tabs(v_model=tab, on_v_model=set_tab, show_arrows=True, class_="nplsim-tabs"):
        for name in names:
            solara.v.Tab(children=[name], class_=f"nplsim-tab-{name.split()[0].lower()}")
    chosen = names[tab]
    with solara.Div(classes=["nplsim-main", "nplsim-tab-content"]):
        if chosen == "A/B compare":
            ABTab(settings, render_interval, tick=tick)
        elif chosen == "Export":
            ExportTab(lab, settings, tick=tick)
        else:
            view = next(view for name, _, view in TABS if name == chosen)
            view(lab, tick=tick)


@solara.component
def Page() -> None:
    """One lab per browser session; the settings come from the link's query, if any."""
    router = solara.use_router()
    start = solara.use_memo(lambda: parse_query(router.search or ""), [])
    first, reforms, problems = start
    settings = solara.use_reactive(first)
    built = solara.use_memo(lambda: PolicyLab(**first.lab_kwargs(), reforms=reforms), [])
    lab = solara.use_reactive(built)
    params = solara.use_reactive(first.lab_kwargs())
    solara.use_effect(lambda: params.set(settings.value.lab_kwargs()), [settings.value])
    play_interval = solara.use_reactive(PLAY_INTERVAL_MS)
    render_interval = solara.use_reactive(1)

    solara.Style(CSS)
    solara.Title("nplsim policy lab")
    with solara.AppBar():
        solara.AppBarTitle("nplsim policy lab")
        solara.lab.ThemeToggle()
    with solara.Sidebar():
        RunControls(lab, params, play_interval, render_interval)
        SettingsPanel(settings, lab.value)
    for problem in problems:
        solara.Warning(f"Link: {problem}", dense=True, classes=["nplsim-link-problem"])
    MainView(lab.value, settings.value, render_interval)


page = Page
