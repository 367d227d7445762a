"""A/B mode: a baseline and a policy run side by side on the same seed, quarter by quarter.

A is the sidebar's settings; B is A under another preset's law, A with some law changes, or A
with a reform at a chosen quarter (the reform event of ``nplsim compare --reform-at``). Both run
on one seed, so they draw the same macro shocks and borrower defaults (common random numbers)
and B − A isolates the policy. Mesa's controller steps the pair; the charts show both paths and
their paired difference. Optionally, more seeds run in the background and give the difference a
95% band and a table of paired differences, with the experiment code of ``nplsim compare``
(:func:`~nplsim.experiments.compare.run_many`, :func:`~nplsim.experiments.compare.mean_band`,
:func:`~nplsim.experiments.compare.paired_difference`).
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import mesa
import numpy as np
import pandas as pd
import solara
from mesa.visualization.solara_viz import ModelController

from nplsim.economy.model import NPLMarketModel
from nplsim.experiments.compare import (
    DEFAULT_METRICS,
    METRIC_DISPLAY,
    mean_band,
    paired_difference,
    quarter_statistic,
    reform_overrides,
    run_many,
)
from nplsim.market.errors import ConfigError
from nplsim.market.regime import list_presets
from nplsim.market.scenario import ScenarioConfig, load_scenario
from nplsim.viz.charts import CHART_HEIGHT, time_spec, time_spec_text
from nplsim.viz.controls import LabeledSlider, LeverControl
from nplsim.viz.lab import (
    LEVER_FIELDS,
    Settings,
    lab_overrides,
    law_overrides,
    lever_value,
    parse_seed,
)
from nplsim.viz.series import TIDY, empty, reform_marks
from nplsim.viz.vega import Chart

PolicyKind = Literal["preset", "levers", "reform"]
POLICY_KINDS: dict[str, PolicyKind] = {
    "another preset's law": "preset",
    "the baseline with law changes": "levers",
    "a reform at a quarter": "reform",
}
MAX_EXTRA_SEEDS = 9
DIFFERENCE = "B − A"


@dataclass(frozen=True)
class Policy:
    """What B is: a ``kind`` and its preset, quarter, or law changes (a :class:`Settings` whose
    law differs from A's)."""

    kind: PolicyKind = "preset"
    preset: str = "strengthened"
    quarter: int = 8
    levers: Settings | None = None


def baseline_config(settings: Settings) -> ScenarioConfig:
    """A: the scenario the sidebar's settings describe."""
    overrides = lab_overrides(
        settings.scenario,
        n_loans=settings.n_loans,
        shock_quarter=settings.shock_quarter,
        shock_z=settings.shock_z,
        law=settings.law,
    )
    return load_scenario(settings.scenario, overrides)[0]


def policy_config(
    settings: Settings, a: ScenarioConfig, policy: Policy
) -> tuple[ScenarioConfig, str]:
    """B (from A's ``settings`` and scenario ``a``) and its label.

    Raises:
        ConfigError: an unknown preset, a quarter outside the run, a contradictory law.
    """
    if policy.kind == "preset":
        if policy.preset not in list_presets():
            raise ConfigError(
                "A/B", "preset", f"unknown {policy.preset!r}", ", ".join(list_presets())
            )
        b = a.model_copy(update={"regime": policy.preset, "regime_overrides": {}})
        load_scenario(b)  # the preset's law must suit the world (e.g. its investors)
        return b, f"{a.name} under {policy.preset}'s law"
    if policy.kind == "reform":
        b = load_scenario(a, reform_overrides(a, None, policy.quarter, policy.preset))[0]
        return b, f"{a.name} → {policy.preset} at q{policy.quarter}"
    changes = lever_changes(settings, policy.levers)
    b = load_scenario(a, law_overrides(changes))[0]
    shown = ", ".join(f"{k}={_plain(v)}" for k, v in changes.items()) or "no change"
    return b, f"{a.name} + {shown}"


def lever_changes(settings: Settings, levers: Settings | None) -> dict[str, Any]:
    """The regime fields in which B's levers differ from A's (none if they were set for
    another scenario)."""
    if levers is None or levers.scenario != settings.scenario:
        return {}
    return {
        name: lever_value(levers, name)
        for name in LEVER_FIELDS
        if lever_value(levers, name) != lever_value(settings, name)
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class ABPair(mesa.Model):
    """Baseline A and policy B on one seed, stepped together by Mesa's controller; without
    configs (before the first Reset) it holds nothing."""

    def __init__(
        self,
        *,
        config_a: ScenarioConfig | None = None,
        config_b: ScenarioConfig | None = None,
        seed: int = 0,
        label_a: str = "A",
        label_b: str = "B",
        error: str | None = None,
    ):
        super().__init__(rng=seed)
        self.seed, self.label_a, self.label_b, self.error = seed, label_a, label_b, error
        self.a: NPLMarketModel | None = None
        self.b: NPLMarketModel | None = None
        if config_a is not None and config_b is not None and error is None:
            self.a = NPLMarketModel(scenario=config_a, rng=seed)
            self.b = NPLMarketModel(scenario=config_b, rng=seed)
        self.running = self.a is not None

    def step(self) -> None:
        """One quarter of both runs; nothing once they have reached their horizon."""
        if self.a is None or self.b is None or not (self.a.running and self.b.running):
            self.running = False
            return
        self.a.step()
        self.b.step()
        self.running = self.a.running and self.b.running


def pair_params(settings: Settings, policy: Policy) -> dict[str, Any]:
    """:class:`ABPair` keyword arguments for the settings (A) and the policy (B); an invalid
    combination gives a pair that only carries the message."""
    try:
        seed = parse_seed(settings.seed)
        a = baseline_config(settings)
        b, label_b = policy_config(settings, a, policy)
    except ConfigError as exc:
        return {"error": str(exc)}
    return {
        "config_a": a,
        "config_b": b,
        "seed": seed,
        "label_a": f"{a.name} (baseline)",
        "label_b": label_b,
    }


def pair_series(pair: ABPair, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metric of A and B (tidy, in display units) and their paired difference B − A."""
    if pair.a is None or pair.b is None:
        return empty(), empty()
    scale = METRIC_DISPLAY.get(metric, (metric, "", 1.0))[2]
    a = pair.a.model_frame()[["quarter", metric]].rename(columns={metric: "value"})
    b = pair.b.model_frame()[["quarter", metric]].rename(columns={metric: "value"})
    both = pd.concat([a.assign(series=f"A: {pair.label_a}"), b.assign(series=f"B: {pair.label_b}")])
    both["value"] = both["value"].astype(float) * scale
    n = min(len(a), len(b))
    diff = pd.DataFrame(
        {
            "quarter": a["quarter"].iloc[:n].to_numpy(),
            "series": DIFFERENCE,
            "value": scale
            * (b["value"].to_numpy(dtype=float)[:n] - a["value"].to_numpy(dtype=float)[:n]),
        }
    )
    return both[TIDY].reset_index(drop=True), diff[TIDY]


@dataclass
class SeedRuns:
    """Paired runs of more seeds: paths of A and B, ``(seed, quarter, metric)``."""

    seeds: list[int]
    metrics: tuple[str, ...]
    paths_a: np.ndarray
    paths_b: np.ndarray

    def band(self, metric: str) -> pd.DataFrame:
        """Mean paired difference B − A over the seeds with its 95% band, by quarter."""
        j = self.metrics.index(metric)
        scale = METRIC_DISPLAY.get(metric, (metric, "", 1.0))[2]
        mean, low, high = mean_band(scale * (self.paths_b[:, :, j] - self.paths_a[:, :, j]))
        quarters = np.arange(len(mean))
        return pd.DataFrame({"quarter": quarters, "mean": mean, "low": low, "high": high})

    def table(self) -> pd.DataFrame:
        """Paired differences of each metric's mean over quarters, with 95% CIs."""
        rows = []
        for j, metric in enumerate(self.metrics):
            a = quarter_statistic(self.paths_a[:, :, j], "mean")
            b = quarter_statistic(self.paths_b[:, :, j], "mean")
            rows.append({"metric": metric, **paired_difference(a, b)})
        return pd.DataFrame(rows)


def run_seeds(pair: ABPair, seeds: list[int], metrics: tuple[str, ...]) -> SeedRuns:
    """Run A and B to their horizon on each seed, in this process (the machine is shared)."""
    assert pair.a is not None and pair.b is not None
    tasks = [(model.config, seed, {}, metrics) for model in (pair.a, pair.b) for seed in seeds]
    results = run_many(tasks, workers=1)
    n = len(seeds)
    return SeedRuns(seeds, metrics, np.stack(results[:n]), np.stack(results[n:]))


def band_spec(horizon: int, unit: str, start: str | None = None) -> dict[str, Any]:
    """The paired-difference chart: the live seed's B − A with the seeds' mean and band (time
    axis in calendar quarters from ``start``)."""
    spec = time_spec(
        "line", unit, ",.3f", (DIFFERENCE,), horizon, False, False, CHART_HEIGHT, start
    )
    colors = {"muted": "@muted"}
    band = {
        "data": {"name": "band"},
        "layer": [
            {
                "mark": {"type": "area", "opacity": 0.25, "color": colors["muted"]},
                "encoding": {
                    "x": {"field": "quarter", "type": "quantitative"},
                    "y": {"field": "low", "type": "quantitative"},
                    "y2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "line", "strokeDash": [2, 2], "color": colors["muted"]},
                "encoding": {
                    "x": {"field": "quarter", "type": "quantitative"},
                    "y": {"field": "mean", "type": "quantitative"},
                    "tooltip": [
                        {"field": "quarter", "type": "quantitative"},
                        {
                            "field": "mean",
                            "type": "quantitative",
                            "format": ",.3f",
                            "title": "mean over seeds",
                        },
                        {"field": "low", "type": "quantitative", "format": ",.3f"},
                        {"field": "high", "type": "quantitative", "format": ",.3f"},
                    ],
                },
            },
        ],
    }
    zero = {
        "data": {"values": [{"zero": 0}]},
        "mark": {"type": "rule", "color": colors["muted"]},
        "encoding": {"y": {"field": "zero", "type": "quantitative"}},
    }
    return {**spec, "layer": [band, zero, *spec["layer"]]}


# ====================================================================== the tab
@solara.component
def ABTab(settings: Settings, render_interval: solara.Reactive[int], tick: int = 0) -> None:
    """Choose B, run A and B step by step on one seed, see both and their difference."""
    no_threads = solara.use_reactive(False)  # Mesa reads it as a reactive value
    policy, set_policy = solara.use_state(Policy(levers=settings))
    metric, set_metric = solara.use_state(DEFAULT_METRICS[0])
    extra, set_extra = solara.use_state(4)
    pair = solara.use_reactive(solara.use_memo(ABPair, []))
    wanted = solara.use_memo(lambda: pair_params(settings, policy), [settings, policy])
    params = solara.use_reactive(wanted)
    solara.use_effect(lambda: params.set(wanted), [wanted])
    p = pair.value
    built = (p.a.config, p.b.config, p.seed) if p.a is not None and p.b is not None else None

    def seeds_task() -> SeedRuns | None:
        if p.a is None:
            return None
        seeds = [p.seed + k for k in range(extra + 1)]
        return run_seeds(p, seeds, tuple(DEFAULT_METRICS))

    task = solara.lab.use_task(seeds_task, dependencies=None, prefer_threaded=True)
    horizon = p.a.config.quarters if p.a is not None else 40
    with solara.Column(classes=["nplsim-ab"], gap="10px"):
        with solara.Card(
            "A/B: a baseline and a policy on the same seed", margin=0, classes=["nplsim-card"]
        ):
            solara.Text(
                f"A (baseline) = the sidebar's settings: {settings.scenario}, seed "
                f"{settings.seed}"
                + (f", {len(settings.law)} law change(s)" if settings.law else "")
            )
            kinds = list(POLICY_KINDS)
            shown = next(k for k, v in POLICY_KINDS.items() if v == policy.kind)
            with solara.Row(style={"flex-wrap": "wrap", "align-items": "center"}):
                solara.Select(
                    "B is",
                    values=kinds,
                    value=shown,
                    dense=True,
                    on_value=lambda k: set_policy(replace(policy, kind=POLICY_KINDS[k])),
                    style={"min-width": "260px"},
                )
                if policy.kind in ("preset", "reform"):
                    solara.Select(
                        "preset",
                        values=list_presets(),
                        value=policy.preset,
                        dense=True,
                        style={"min-width": "220px"},
                        on_value=lambda n: set_policy(replace(policy, preset=n)),
                    )
                if policy.kind == "reform":
                    solara.SliderInt(
                        f"reform at quarter {policy.quarter}",
                        value=policy.quarter,
                        min=1,
                        max=horizon,
                        thumb_label=False,
                        on_value=lambda q: set_policy(replace(policy, quarter=q)),
                    )
            if policy.kind == "levers":
                LeverChanges(settings, policy, set_policy)
            with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
                ModelController(
                    pair,
                    model_parameters=params,
                    render_interval=render_interval,
                    use_threads=no_threads,
                )
                solara.Select(
                    "metric",
                    values=list(METRIC_DISPLAY),
                    value=metric,
                    dense=True,
                    on_value=set_metric,
                    style={"min-width": "220px"},
                )
            if p.error:
                solara.Error(f"Invalid A/B: {p.error}", classes=["nplsim-ab-error"])
            elif p.a is None:
                solara.Info("Press Reset to build A and B, then Step or Play.", dense=True)
            elif built != (wanted.get("config_a"), wanted.get("config_b"), wanted.get("seed")):
                solara.Warning(
                    "Changed: press Reset to run A and B with these choices.", dense=True
                )
        if p.a is not None and p.b is not None:
            ABCharts(p, metric, task.value if task.finished else None, tick=tick)
            card = solara.Card("More seeds", margin=0, classes=["nplsim-card", "nplsim-ab-seeds"])
            with card, solara.Column(gap="6px"):
                LabeledSlider(
                    "more_seeds",
                    f"more seeds besides seed {p.seed}",
                    extra,
                    set_extra,
                    1,
                    MAX_EXTRA_SEEDS,
                    1,
                    str(extra),
                    integer=True,
                    help_text="Each runs A and B to the horizon, one after the other.",
                )
                solara.Button(
                    "Run the seeds in the background",
                    on_click=task,
                    disabled=task.pending,
                    classes=["nplsim-ab-run-seeds"],
                )
                if task.pending:
                    solara.Text("running…", classes=["nplsim-ab-seeds-running"])
                elif task.finished and task.value is not None:
                    table = task.value.table().round(5)
                    solara.Text(
                        f"Paired differences B − A of the mean over quarters, "
                        f"{len(task.value.seeds)} seeds, 95% CI:"
                    )
                    solara.DataFrame(table, items_per_page=10)
                elif task.error:
                    solara.Error(f"The seeds failed: {task.exception}")


@solara.component
def LeverChanges(settings: Settings, policy: Policy, set_policy) -> None:
    """Law levers for B, starting from A's."""
    start = (
        policy.levers if policy.levers and policy.levers.scenario == settings.scenario else settings
    )
    levers = solara.use_reactive(start)

    def changed(new: Settings) -> None:
        set_policy(replace(policy, levers=new))

    solara.use_effect(lambda: levers.subscribe(changed), [policy])
    with solara.Details("B's law: move the levers that differ from A", expand=True):
        for name in LEVER_FIELDS:
            LeverControl(levers, name)


@solara.component
def ABCharts(pair: ABPair, metric: str, seeds: SeedRuns | None, tick: int = 0) -> None:
    """Both paths of the metric, and their paired difference (with the seeds' band)."""
    assert pair.a is not None and pair.b is not None
    title, unit, _ = METRIC_DISPLAY.get(metric, (metric, "", 1.0))
    both, diff = pair_series(pair, metric)
    marks = reform_marks(pair.b)
    horizon, start = pair.a.config.quarters, pair.a.config.start
    names = tuple(dict.fromkeys(both["series"]))
    revision = f"{id(pair)}-{pair.a.quarter}-{metric}-{seeds is not None}"
    band = seeds.band(metric) if seeds is not None and metric in seeds.metrics else None
    band_frame = (
        band if band is not None else pd.DataFrame(columns=["quarter", "mean", "low", "high"])
    )
    diff_unit = f"Δ pp{unit[1:]}" if unit.startswith("%") else f"Δ {unit}"
    with solara.Div(classes=["nplsim-grid"]):
        with solara.Card(margin=0, classes=["nplsim-card"]):
            solara.Text(f"{title}: A and B", classes=["nplsim-chart-title"])
            spec = time_spec_text(
                "line", unit, ",.3f", names, horizon, False, False, CHART_HEIGHT, start
            )
            Chart(spec, {"series": both, "reforms": marks}, revision, "ab-overlay")
        with solara.Card(margin=0, classes=["nplsim-card"]):
            solara.Text(
                f"Paired difference B − A (seed {pair.seed})"
                + (f"; band: {len(seeds.seeds)} seeds, 95% CI" if band is not None else ""),
                classes=["nplsim-chart-title"],
            )
            Chart(
                band_spec(horizon, diff_unit, start),
                {"series": diff, "reforms": marks, "band": band_frame},
                revision,
                "ab-difference",
            )
