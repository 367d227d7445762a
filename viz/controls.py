"""The sidebar's controls: how the run is stepped, and the settings it is built from.

Every control shows its current value next to its label and, for a regime field, the field's own
description as help text; a lever moved away from the scenario's law is marked with the
scenario's value. Choosing a scenario loads its size and its law into every control. Sliders
carry their label above the track, so that a long label never squeezes the track.
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import Any

import solara
from mesa.visualization.solara_viz import ModelController

from nplsim.market.scenario import ScenarioConfig, list_scenarios, load_scenario
from nplsim.viz.components import format_value
from nplsim.viz.lab import (
    LEVER_FIELDS,
    N_LOANS_MAX,
    N_LOANS_MIN,
    N_LOANS_STEP,
    SHOCK_Z_LIMIT,
    PolicyLab,
    Settings,
    field_bounds,
    field_choices,
    field_help,
    lever_kind,
    lever_value,
    scenario_law,
    settings_for,
    with_lever,
)

LEVER_STEP = 0.01  # fine enough for every preset's value to sit on the slider's grid
SHOWN = {
    "scenario_name": "scenario",
    "rng": "seed",
    "n_loans": "loan slots",
    "shock_z": "shock",
    "shock_quarter": "shock quarter",
}


@lru_cache(maxsize=32)
def scenario_config(name: str) -> ScenarioConfig:
    """A built-in scenario (cached: the controls read it on every render)."""
    return load_scenario(name)[0]


def _css(name: str) -> str:
    return name.replace("_", "-")


@solara.component
def Help(text: str) -> None:
    """A control's help text, small and muted."""
    solara.Text(
        text,
        classes=["nplsim-help", "nplsim-muted"],
        style={"font-size": "12px", "line-height": "1.3"},
    )


@solara.component
def LabeledSlider(
    name: str,
    label: str,
    value: float,
    on_value: Callable[[Any], None],
    low: float,
    high: float,
    step: float,
    shown: str,
    help_text: str = "",
    integer: bool = False,
    note: str = "",
) -> None:
    """A slider with its label and current value on a line above the full-width track."""
    with solara.Column(gap="0px", classes=["nplsim-control", f"nplsim-control-{_css(name)}"]):
        with solara.Row(justify="space-between", style={"align-items": "baseline"}):
            solara.Text(
                label,
                classes=["nplsim-control-label"],
                style={"font-weight": "600" if note else "normal"},
            )
            solara.Text(shown, classes=["nplsim-control-value"], style={"font-weight": "600"})
        slider = solara.SliderInt if integer else solara.SliderFloat
        slider("", value=value, min=low, max=high, step=step, on_value=on_value, thumb_label=False)
        if note:
            Help(note)
        if help_text:
            Help(help_text)


@solara.component
def RunControls(
    lab: solara.Reactive[PolicyLab],
    params: solara.Reactive[dict[str, Any]],
    play_interval: solara.Reactive[int],
    render_interval: solara.Reactive[int],
) -> None:
    """Mesa's Reset / Play / Step, with the play and render intervals."""
    no_threads = solara.use_reactive(False)  # Mesa reads it as a reactive value
    with solara.Card("Run", margin=0, classes=["nplsim-run"]):
        ModelController(
            lab,
            model_parameters=params,
            play_interval=play_interval,
            render_interval=render_interval,
            use_threads=no_threads,
        )
        LabeledSlider(
            "play_interval",
            "Play interval",
            play_interval.value,
            play_interval.set,
            10,
            1000,
            10,
            f"{play_interval.value} ms",
            integer=True,
        )
        LabeledSlider(
            "render_interval",
            "Quarters per Step",
            render_interval.value,
            render_interval.set,
            1,
            20,
            1,
            str(render_interval.value),
            integer=True,
            help_text="Step and Play run this many quarters before the charts are "
            "drawn again; a run never goes past its last quarter.",
        )


@solara.component
def LeverControl(settings: solara.Reactive[Settings], name: str) -> None:
    """One regime field: switch, choice, set or slider, with its description and, when moved
    away from the scenario's law, the scenario's value."""
    s = settings.value
    value = lever_value(s, name)
    label = name.replace("_", " ")
    moved = name in s.law
    note = f"scenario: {format_value(getattr(scenario_law(s.scenario), name))}" if moved else ""

    def set_value(new: Any) -> None:
        settings.set(with_lever(settings.value, name, new))

    kind = lever_kind(name)
    if kind == "number":
        low, high = field_bounds(name)
        LabeledSlider(
            name,
            label,
            value,
            set_value,
            low,
            high,
            LEVER_STEP,
            f"{value:.2f}",
            field_help(name),
            note=note,
        )
        return
    with solara.Column(gap="0px", classes=["nplsim-control", f"nplsim-control-{_css(name)}"]):
        if kind == "bool":
            solara.Checkbox(
                label=f"{label}: {format_value(value)}", value=value, on_value=set_value
            )
        elif kind == "choice":
            solara.Select(
                label, values=field_choices(name), value=value, on_value=set_value, dense=True
            )
        else:
            solara.SelectMultiple(
                label,
                values=list(value),
                all_values=field_choices(name),
                on_value=set_value,
                dense=True,
            )
        if note:
            Help(note)
        Help(field_help(name))


@solara.component
def SettingsPanel(settings: solara.Reactive[Settings], lab: PolicyLab) -> None:
    """The scenario, seed, size, macro shock and law levers; applied by Reset."""
    s = settings.value
    config = scenario_config(s.scenario)
    wanted = s.lab_kwargs()
    pending = [SHOWN.get(k, k) for k, v in wanted.items() if lab.built_with.get(k) != v]
    with solara.Card("Settings", margin=0, classes=["nplsim-settings"]):
        if pending:
            solara.Warning(
                f"Changed ({', '.join(pending)}): press Reset to run with these settings.",
                dense=True,
                classes=["nplsim-pending"],
            )
        solara.Select(
            "scenario",
            values=list_scenarios(),
            value=s.scenario,
            dense=True,
            on_value=lambda name: settings.set(settings_for(name, settings.value.seed)),
        )
        Help(config.description)
        solara.InputText(
            "seed (integer)",
            value=s.seed,
            dense=True,
            classes=["nplsim-seed"],
            on_value=lambda text: settings.set(replace(settings.value, seed=text)),
        )
        LabeledSlider(
            "n_loans",
            "loan slots",
            s.n_loans,
            lambda n: settings.set(replace(settings.value, n_loans=int(n))),
            N_LOANS_MIN,
            N_LOANS_MAX,
            N_LOANS_STEP,
            f"{s.n_loans:,}",
            f"The scenario's own size is {config.n_loans:,}.",
            integer=True,
        )
        LabeledSlider(
            "shock_z",
            "macro shock to Z",
            s.shock_z,
            lambda z: settings.set(replace(settings.value, shock_z=float(z))),
            -SHOCK_Z_LIMIT,
            SHOCK_Z_LIMIT,
            0.25,
            f"{s.shock_z:+.2f}",
            "0 = none; below 0 a recession: more defaults.",
        )
        LabeledSlider(
            "shock_quarter",
            "quarter of the shock",
            s.shock_quarter,
            lambda q: settings.set(replace(settings.value, shock_quarter=int(q))),
            1,
            max(config.quarters, 1),
            1,
            str(s.shock_quarter),
            integer=True,
        )
    with solara.Card("Law", margin=0, classes=["nplsim-levers"]):
        changed = len(s.law)
        solara.Text(
            f"The scenario's law ({config.regime})"
            + (f", {changed} field{'s' * (changed != 1)} changed" if changed else ""),
            classes=["nplsim-law-status"],
        )
        solara.Button(
            "Back to the scenario's law",
            small=True,
            text=True,
            disabled=not changed,
            on_click=lambda: settings.set(replace(settings.value, law={})),
            classes=["nplsim-law-reset"],
        )
        for name in LEVER_FIELDS:
            LeverControl(settings, name)
