"""The policy lab's run: what the controls describe, and the model they build.

:class:`Settings` is the state of the controls: a scenario, a seed, its size, a macro shock and the
law changes the user made (only the regime fields moved away from the scenario's own law). A
:class:`PolicyLab` turns settings into an :class:`~nplsim.economy.model.NPLMarketModel` (or, for
an invalid combination, into a model-less state that shows the validation message); Mesa's
controller steps it. "Reform now" schedules the new law for the next quarter as a reform event of
the run's scenario, so that the run stays exactly what its scenario file describes. Settings
travel in a URL query (:func:`settings_query`, :func:`parse_query`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlencode

import mesa

from nplsim.economy.model import NPLMarketModel
from nplsim.experiments import seeds
from nplsim.experiments.compare import reform_overrides
from nplsim.market.errors import ConfigError
from nplsim.market.regime import LegalRegime, list_presets
from nplsim.market.regime import field_bounds as regime_bounds
from nplsim.market.scenario import DEFAULT_SCENARIO, list_scenarios, load_scenario

DEFAULT_SEED = seeds.DEFAULT_SEED  # the one default seed of every command
SHOCK_Z_LIMIT = 4.0  # the scenario schema allows |z| <= 6; 4 is already a deep recession
DEFAULT_SHOCK_QUARTER = 8
N_LOANS_MIN, N_LOANS_MAX, N_LOANS_STEP = 5_000, 1_000_000, 5_000
LEVER_FIELDS = (
    "securitisation_allowed",
    "spv_form",
    "bankruptcy_remoteness",
    "investor_protection",
    "disclosure_level",
    "debtor_notice",
    "investor_classes_allowed",
    "risk_retention",
    "derecognition_allowed",
    "state_guarantee_scheme",
    "enforcement_efficiency",
)
# The supervisory limits the charts draw, as fields of the rules in force (NaN where absent).
LIMIT_FIELDS = {
    "npl_ratio": ("npl_ratio_target", "NPL target"),
    "car": ("car_min", "CAR minimum"),
    "liquidity_ratio": ("liquidity_ratio_min", "liquidity minimum"),
    "lcr": ("lcr_min", "LCR minimum"),
}


# ====================================================================== the controls' state
@dataclass(frozen=True)
class Settings:
    """What the controls describe.

    Attributes:
        scenario: a built-in scenario name.
        seed: the seed as typed (checked by :func:`parse_seed` when a run is built).
        n_loans: loan slots; the scenario's own size unless the user changed it.
        shock_z: a macro shock added to the scenario's own (0 = none).
        shock_quarter: the quarter of that shock.
        law: regime fields whose value differs from the scenario's own law, and only those.
    """

    scenario: str = DEFAULT_SCENARIO
    seed: str = str(DEFAULT_SEED)
    n_loans: int = 100_000
    shock_z: float = 0.0
    shock_quarter: int = DEFAULT_SHOCK_QUARTER
    law: Mapping[str, Any] = field(default_factory=dict)

    def lab_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`PolicyLab` (what Mesa's Reset passes)."""
        return {
            "scenario_name": self.scenario,
            "rng": self.seed,
            "n_loans": self.n_loans,
            "shock_z": self.shock_z,
            "shock_quarter": self.shock_quarter,
            "law": dict(self.law),
        }


def scenario_law(scenario: str) -> LegalRegime:
    """The law a scenario starts under: its preset with its own overrides."""
    return load_scenario(scenario)[1]


def settings_for(scenario: str, seed: str = str(DEFAULT_SEED)) -> Settings:
    """The controls for ``scenario``: its own size and law, no extra shock."""
    config, _ = load_scenario(scenario)
    return Settings(
        scenario=scenario,
        seed=seed,
        n_loans=config.n_loans,
        shock_quarter=min(DEFAULT_SHOCK_QUARTER, config.quarters),
    )


def with_lever(settings: Settings, name: str, value: Any) -> Settings:
    """``settings`` with one regime field set: kept as a law change only where it differs from
    the scenario's own law (moving a lever back removes the change)."""
    if name == "investor_classes_allowed":
        value = tuple(sorted(set(value)))
    law = dict(settings.law)
    if value == getattr(scenario_law(settings.scenario), name):
        law.pop(name, None)
    else:
        law[name] = value
    return replace(settings, law=law)


def lever_value(settings: Settings, name: str) -> Any:
    """What a lever shows: the user's change, else the scenario's own law."""
    return settings.law.get(name, getattr(scenario_law(settings.scenario), name))


def field_bounds(name: str) -> tuple[float, float]:
    """The valid range of a numeric regime field, from its schema (a slider's two ends)."""
    low, high, _, _ = regime_bounds(name)
    return low, high


def field_choices(name: str) -> list[str]:
    """The allowed values of a category or set-of-kinds regime field."""
    annotation = LegalRegime.model_fields[name].annotation
    if getattr(annotation, "__origin__", None) is tuple:
        annotation = get_args(annotation)[0]
    return list(get_args(annotation))


def field_help(name: str) -> str:
    """The regime field's own description."""
    return LegalRegime.model_fields[name].description or ""


def lever_kind(name: str) -> Literal["bool", "choice", "set", "number"]:
    """How a regime field is set: a switch, a choice, a set of kinds, or a number."""
    annotation = LegalRegime.model_fields[name].annotation
    if annotation is bool:
        return "bool"
    if getattr(annotation, "__origin__", None) is Literal:
        return "choice"
    if getattr(annotation, "__origin__", None) is tuple:
        return "set"
    return "number"


def law_overrides(law: Mapping[str, Any]) -> dict[str, Any]:
    """Regime overrides for the user's law changes; changing the investor classes also opens or
    closes the market to foreign institutions with them (QFII are the foreign class)."""
    overrides = {k: list(v) if isinstance(v, tuple) else v for k, v in law.items()}
    if "investor_classes_allowed" in law and "foreign_investors_allowed" not in law:
        overrides["foreign_investors_allowed"] = "qfii" in law["investor_classes_allowed"]
    return overrides


def parse_seed(value: object) -> int:
    """The seed control's value as a seed (the control sends text), checked like every seed.

    Raises:
        ConfigError: not a whole number in ``[0, 2**63)``.
    """
    return seeds.parse_seed(value, "controls", "seed")


def lab_overrides(
    scenario_name: str,
    *,
    n_loans: int | None = None,
    shock_quarter: int = DEFAULT_SHOCK_QUARTER,
    shock_z: float = 0.0,
    law: Mapping[str, Any] | None = None,
    reforms: Sequence[tuple[int, str]] = (),
) -> dict[str, Any]:
    """``NPLMarketModel`` overrides for the controls: the size, the macro shock (added to the
    scenario's own), the law changes and reforms scheduled at given quarters.

    Raises:
        ConfigError: an invalid value or combination.
    """
    overrides: dict[str, Any] = {**law_overrides(law or {})}
    if n_loans is not None:
        overrides["n_loans"] = int(n_loans)
    if shock_z:
        config, _ = load_scenario(scenario_name)
        shocks = [s.model_dump() for s in config.macro.shocks]
        overrides["macro__shocks"] = [*shocks, {"quarter": int(shock_quarter), "z": shock_z}]
    for quarter, preset in reforms:
        overrides = reform_overrides(scenario_name, overrides, int(quarter), preset)
    return overrides


def supervisory_limits(model: NPLMarketModel) -> dict[str, float]:
    """The supervisory limits in force, by the metric they bound (NaN where the rules in force
    have no such field)."""
    rules = [getattr(model, "prudential", None), model.regime]
    limits = {}
    for metric, (name, _label) in LIMIT_FIELDS.items():
        value = next((getattr(r, name) for r in rules if hasattr(r, name)), math.nan)
        limits[metric] = float(value)
    return limits


def schedule_reform(model: NPLMarketModel, preset: str) -> int:
    """Put ``preset`` in force from the next quarter on, as a reform event of the run's scenario
    (the same event ``nplsim compare --reform-at`` adds), so that the scenario file of the run
    reproduces it. Returns the quarter the reform takes effect.

    Raises:
        ConfigError: an unknown preset, or a run already at its last quarter.
    """
    quarter = model.quarter + 1
    overrides = reform_overrides(model.config, None, quarter, preset)
    config, _ = load_scenario(model.config, overrides)
    model.config = model.world.scenario = config
    return quarter


def scheduled_reforms(model: NPLMarketModel) -> list[tuple[int, str]]:
    """(quarter, new law) of every reform event of the run's scenario."""
    return [
        (event.quarter, event.regime or f"{model.config.regime} amended")
        for event in model.config.events
        if event.regime is not None or event.overrides
    ]


# ====================================================================== the lab
class PolicyLab(mesa.Model):
    """What Mesa's controller drives: the controls' ``NPLMarketModel``, or the reason there is
    none.

    Mesa's Reset calls this class with :meth:`Settings.lab_kwargs`. A :class:`ConfigError` (a
    contradictory law, a bad seed) leaves ``market`` as ``None`` and the message in
    ``config_error``. ``limits`` records the supervisory limits in force each quarter, so that
    the charts draw them as they were, not as they are now; ``step_seconds`` the time the model
    took for each quarter.
    """

    def __init__(
        self,
        *,
        scenario_name: str = DEFAULT_SCENARIO,
        rng: int | str = DEFAULT_SEED,
        n_loans: int | None = None,
        shock_z: float = 0.0,
        shock_quarter: int = DEFAULT_SHOCK_QUARTER,
        law: Mapping[str, Any] | None = None,
        reforms: Sequence[tuple[int, str]] = (),
    ):
        self.market: NPLMarketModel | None = None
        self.config_error: str | None = None
        self.limits: list[dict[str, float]] = []
        self.hand_reforms: list[tuple[int, str]] = [(int(q), p) for q, p in reforms]
        self.step_seconds: list[float] = []  # the model's own time of each quarter
        self.built_with = {
            "scenario_name": scenario_name,
            "rng": rng,
            "n_loans": n_loans,
            "shock_z": shock_z,
            "shock_quarter": shock_quarter,
            "law": dict(law or {}),
        }
        try:
            seed = parse_seed(rng)
        except ConfigError as exc:
            seed, self.config_error = 0, str(exc)
        super().__init__(rng=seed)
        if self.config_error is None:
            try:
                overrides = lab_overrides(
                    scenario_name,
                    n_loans=n_loans,
                    shock_quarter=shock_quarter,
                    shock_z=shock_z,
                    law=law,
                    reforms=reforms,
                )
                self.market = NPLMarketModel(scenario=scenario_name, rng=seed, **overrides)
            except ConfigError as exc:
                self.config_error = str(exc)
        self.running = self.market is not None
        if self.market is not None:
            self.limits.append(supervisory_limits(self.market))

    def reform_now(self, preset: str) -> int:
        """ "Reform now": ``preset`` in force from the next quarter (see :func:`schedule_reform`);
        returns that quarter."""
        assert self.market is not None
        quarter = schedule_reform(self.market, preset)
        self.hand_reforms.append((quarter, preset))
        return quarter

    def step(self) -> None:
        """One quarter of the market; nothing once it has reached its horizon (Mesa's Step runs
        "Render Interval" steps in a row)."""
        if self.market is None or not self.market.running:
            self.running = False
            return
        started = time.perf_counter()
        self.market.step()
        self.step_seconds.append(time.perf_counter() - started)
        self.limits.append(supervisory_limits(self.market))
        self.running = self.market.running


# ====================================================================== the URL
QUERY_KEYS = ("scenario", "seed", "n_loans", "shock_z", "shock_quarter")


def settings_query(settings: Settings, reforms: Sequence[tuple[int, str]] = ()) -> str:
    """The settings (and reforms scheduled by hand) as a URL query string."""
    pairs: list[tuple[str, str]] = [
        ("scenario", settings.scenario),
        ("seed", str(settings.seed).strip()),
        ("n_loans", str(settings.n_loans)),
    ]
    if settings.shock_z:
        pairs += [
            ("shock_z", f"{settings.shock_z:g}"),
            ("shock_quarter", str(settings.shock_quarter)),
        ]
    for name, value in settings.law.items():
        pairs.append((name, _query_value(value)))
    pairs += [("reform", f"{quarter}:{preset}") for quarter, preset in reforms]
    return urlencode(pairs)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_query(query: str) -> tuple[Settings, list[tuple[int, str]], list[str]]:
    """Settings and reforms from a URL query; a value that cannot be used is left at the
    scenario's own and named in the returned problems."""
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    given = dict(pairs)
    problems: list[str] = []
    scenario = given.get("scenario", DEFAULT_SCENARIO)
    if scenario not in list_scenarios():
        problems.append(f"scenario: unknown {scenario!r}; one of {', '.join(list_scenarios())}")
        scenario = DEFAULT_SCENARIO
    settings = settings_for(scenario, given.get("seed", str(DEFAULT_SEED)))
    numbers = {"n_loans": int, "shock_z": float, "shock_quarter": int}
    for key, kind in numbers.items():
        if key in given:
            try:
                settings = replace(settings, **{key: kind(given[key])})
            except ValueError:
                problems.append(f"{key}: {given[key]!r} is not a number")
    for name, text in pairs:
        if name in LegalRegime.model_fields:
            try:
                settings = with_lever(settings, name, _parse_field(name, text))
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        elif name not in (*QUERY_KEYS, "reform"):
            problems.append(f"{name}: unknown key")
    reforms = []
    for name, text in pairs:
        if name == "reform":
            quarter, _, preset = text.partition(":")
            if quarter.isdigit() and preset in list_presets():
                reforms.append((int(quarter), preset))
            else:
                problems.append(f"reform: {text!r} is not QUARTER:PRESET")
    return settings, reforms, problems


def _parse_field(name: str, text: str) -> Any:
    """A regime field's value from its query text, checked against the field's type."""
    kind = lever_kind(name)
    if kind == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text == "true"
    if kind == "choice":
        if text not in field_choices(name):
            raise ValueError(f"{text!r} is not one of {', '.join(field_choices(name))}")
        return text
    if kind == "set":
        items = tuple(t for t in text.split(",") if t)
        unknown = set(items) - set(field_choices(name))
        if unknown:
            raise ValueError(f"unknown {', '.join(sorted(unknown))}")
        return items
    annotation = LegalRegime.model_fields[name].annotation
    value = annotation(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value
