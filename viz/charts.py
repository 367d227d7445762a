"""The lab's interactive charts: Vega-Lite specs built with Altair, drawn by :mod:`nplsim.viz.vega`.

A time-series spec has four layers over named data sets: the series (lines, or stacked areas),
the supervisory limit as it was in force each quarter (a dashed step line), a red rule and label
at every reform (labels stacked in rows so that none overlap) and an invisible rule per quarter
that shows every series' value at the quarter under the pointer. Specs depend only on the chart,
the horizon, the series names and the theme, so they are built once and cached; a step of the
model only sends new data.
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import altair as alt
import pandas as pd
import solara

from nplsim.experiments.channels import CHANNEL_COLOURS
from nplsim.market.calendar import calendar_quarter
from nplsim.viz.lab import PolicyLab
from nplsim.viz.series import ALL_BANKS, ChartDef
from nplsim.viz.vega import VEGA_LITE_SCHEMA, Chart, spec_json

REFORM_COLOR = "#c0392b"
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#d62728",
    "#7f7f7f",
)
CHART_HEIGHT = 190
LEGEND_PX = 330  # legends fit the narrowest chart: so many columns of labels at most
LEGEND_PX_PER_CHAR = 6.2


PALETTES = {
    "light": {
        "text": "#222222",
        "muted": "#555555",
        "grid": "#e3e3e3",
        "strong": "#111111",
        "reform": REFORM_COLOR,
    },
    "dark": {
        "text": "#e6e6e6",
        "muted": "#b8b8b8",
        "grid": "#3d3d3d",
        "strong": "#f5f5f5",
        "reform": "#ff7b6b",
    },
}


def theme(dark: bool) -> dict[str, str]:
    """Colours of text, grid, limits, reforms and the "all banks" line in a theme."""
    return PALETTES["dark" if dark else "light"]


def _field(name: str) -> str:
    """A series name as a Vega field reference (dots, brackets and quotes escaped)."""
    return "".join("\\" + ch if ch in ".[]'\"\\" else ch for ch in name)


def vega_config() -> dict[str, Any]:
    """Vega-Lite config: transparent background, type in the page theme's colours."""
    axis = {
        "labelColor": "@text",
        "titleColor": "@text",
        "gridColor": "@grid",
        "domainColor": "@muted",
        "tickColor": "@muted",
        "labelFontSize": 11,
        "titleFontSize": 11,
        "titleFontWeight": "normal",
    }
    return {
        "background": "transparent",
        "view": {"stroke": None},
        "axis": axis,
        "legend": {
            "labelColor": "@text",
            "titleColor": "@text",
            "labelFontSize": 11,
            "symbolSize": 80,
            "labelLimit": 220,
        },
        "font": "Roboto, Helvetica, Arial, sans-serif",
    }


@lru_cache(maxsize=256)
def time_spec(
    draw: str,
    unit: str,
    fmt: str,
    series: tuple[str, ...],
    horizon: int,
    with_limits: bool,
    zero: bool = False,
    height: int = CHART_HEIGHT,
    start: str | None = None,
) -> dict[str, Any]:
    """The Vega-Lite spec of a time-series chart (see the module docstring); its colours are
    the page theme's (``"@name"``, see :mod:`nplsim.viz.vega`). With the scenario's ``start``
    the time axis and the tooltips name calendar quarters (``2016Q1``)."""
    colors = {name: f"@{name}" for name in PALETTES["light"]}
    color_range = series_colours(series, colors["strong"])
    when = calendar_expr(start, horizon)
    x = alt.X(
        "quarter:Q",
        title="quarter" if when is None else "calendar quarter",
        scale=alt.Scale(domain=[0, horizon], nice=False, zero=True),
        axis=alt.Axis(
            format="d", tickMinStep=1, labelFlush=True,
            **({} if when is None else {"labelExpr": when.replace("QUARTER", "datum.value")}),
        ),
    )  # fmt: skip
    when_tip = alt.Tooltip("quarter:Q" if when is None else "when:N", title="quarter")
    longest = max((len(s) for s in series), default=1)
    columns = max(1, min(len(series), int(LEGEND_PX // (26 + LEGEND_PX_PER_CHAR * longest))))
    color = alt.Color(
        "series:N",
        scale=alt.Scale(domain=list(series), range=color_range),
        legend=alt.Legend(orient="bottom", title=None, columns=columns, direction="horizontal"),
    )
    data = alt.NamedData("series")
    if draw == "area":
        order = {s: k for k, s in enumerate(series)}
        main = (
            alt.Chart(data)
            .transform_calculate(order=f"indexof({list(order)!r}, datum.series)")
            .mark_area(opacity=0.85, interpolate="linear")
            .encode(
                x=x,
                y=alt.Y("value:Q", title=unit, stack="zero"),
                color=color,
                order=alt.Order("order:Q"),
            )
        )
    else:
        main = (
            alt.Chart(data)
            .mark_line(interpolate="linear", strokeWidth=2, point=alt.OverlayMarkDef(size=12))
            .encode(
                x=x,
                y=alt.Y("value:Q", title=unit, scale=alt.Scale(zero=zero)),
                color=color,
            )
        )
    layers = [main]
    if with_limits:
        layers.append(
            alt.Chart(alt.NamedData("limits"))
            .transform_calculate(when=when.replace("QUARTER", "datum.quarter") if when else "''")
            .mark_line(
                interpolate="step-after",
                strokeDash=[6, 4],
                strokeWidth=1.6,
                color=colors["muted"],
            )
            .encode(
                x=x,
                y="value:Q",
                detail="series:N",
                tooltip=[
                    alt.Tooltip("series:N", title="limit"),
                    when_tip,
                    alt.Tooltip("value:Q", format=fmt),
                ],
            )
        )
    reforms = alt.NamedData("reforms")
    layers.append(
        alt.Chart(reforms)
        .mark_rule(color=colors["reform"], strokeDash=[5, 3], strokeWidth=1.6)
        .encode(x=x, tooltip=[alt.Tooltip("text:N", title="reform")])
    )
    layers.append(
        alt.Chart(reforms)
        .mark_text(
            align="left",
            baseline="top",
            dx=3,
            fontSize=11,
            fontWeight="bold",
            color=colors["reform"],
        )
        .encode(
            x=x,
            y=alt.Y("y:Q", scale=None),
            text="label:N",
            tooltip=[alt.Tooltip("text:N", title="reform")],
        )
    )
    hover = alt.selection_point(
        name="hover",
        fields=["quarter"],
        nearest=True,
        on="mouseover",
        clear="mouseout",
        empty=False,
    )
    tooltip = [when_tip] + [
        alt.Tooltip(field=_field(s), type="quantitative", title=s, format=fmt) for s in series
    ]
    layers.append(
        alt.Chart(data)
        .transform_pivot("series", value="value", groupby=["quarter"])
        .transform_calculate(when=when.replace("QUARTER", "datum.quarter") if when else "''")
        .mark_rule(color=colors["muted"], strokeWidth=1)
        .encode(x=x, opacity=alt.condition(hover, alt.value(0.7), alt.value(0)), tooltip=tooltip)
        .add_params(hover)
    )
    chart = alt.layer(*layers).properties(width="container", height=height)
    spec = chart.to_dict(validate=False)
    spec["$schema"] = VEGA_LITE_SCHEMA
    spec["config"] = vega_config()
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    spec["usermeta"] = {"palettes": PALETTES, "embedOptions": {}}
    return spec


@lru_cache(maxsize=256)
def calendar_expr(start: str | None, horizon: int) -> str | None:
    """A Vega expression naming the calendar quarter of model quarter ``QUARTER`` (a
    placeholder for the field it reads) for quarters 0 to ``horizon``; None without a start."""
    if not start:
        return None
    names = [calendar_quarter(start, q) for q in range(horizon + 1)]
    return f"{names!r}[round(QUARTER)]"


def time_spec_text(*args: Any) -> str:
    """:func:`time_spec` as JSON text, cached too."""
    return spec_json(time_spec(*args))


def series_colours(series: Sequence[str], strong: str) -> list[str]:
    """A colour for each series: ``strong`` for all banks, a disposal channel's own colour
    (:mod:`nplsim.experiments.channels`, as in the run's figures), else the next of the palette."""
    palette = iter(PALETTE)
    return [
        strong if s == ALL_BANKS else CHANNEL_COLOURS.get(s) or next(palette, "#999999")
        for s in series
    ]


def series_names(frame: pd.DataFrame) -> tuple[str, ...]:
    """The series of a tidy frame in the order they first appear ("all banks" last)."""
    names = list(dict.fromkeys(frame["series"]))
    if ALL_BANKS in names:
        names.remove(ALL_BANKS)
        names.append(ALL_BANKS)
    return tuple(names)


def revision(lab: PolicyLab, *extra: object) -> str:
    """What a chart shows, as a string the page can compare: the run, its quarter, its reforms."""
    market = lab.market
    assert market is not None
    parts = [id(market), market.quarter, len(market.config.events), *extra]
    return "-".join(str(p) for p in parts)


@solara.component
def ChartCard(definition: ChartDef, lab: PolicyLab, key_extra: str = "", tick: int = 0) -> None:
    """A titled card with one interactive chart of the lab's run (``tick``: Mesa's update
    counter, which makes it draw again after a step)."""
    market = lab.market
    assert market is not None
    data = definition.data(lab)
    spec = time_spec_text(
        definition.draw,
        definition.unit,
        definition.fmt,
        series_names(data["series"]),
        max(market.config.quarters, 1),
        definition.limit is not None,
        definition.zero,
        CHART_HEIGHT,
        market.config.start,
    )
    with solara.Card(classes=["nplsim-card", f"nplsim-card-{definition.name}"], margin=0):
        solara.Text(definition.title, classes=["nplsim-chart-title"])
        if data["series"].empty:
            solara.Text("No data in this run.", classes=["nplsim-chart-empty"])
        else:
            Chart(spec, data, revision(lab, key_extra), definition.name)
