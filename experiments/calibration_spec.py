"""The calibration spec: what ``nplsim calibrate`` fits, to what, and how long it searches.

A spec is a TOML file, validated like every other input::

    scenario = "restart_2016"        # built-in name or scenario file (read beside the spec)
    n_loans = 20000                  # loan slots of every simulation
    seeds_per_particle = 2           # runs averaged into one particle's moments
    population = 60                  # particles per generation
    generations = 6                  # stop after this many generations ...
    min_epsilon = 1.0                # ... or once the distance threshold falls to this
    seed = 1                         # the sampler's random seed

    [parameters.bank_base_hazard]    # a scenario field (dotted for nested tables)
    prior = "uniform"                # uniform | loguniform | normal (truncated to low..high)
    low = 0.03
    high = 0.2

    [[moments]]                      # a fact of the validation file, fitted
    fact = "restart_npl_ratio_2018_2023"

    [[moments]]                      # a fact kept out of the fit, reported out of sample
    fact = "restart_coverage"
    held_out = true

A moment is either a fact of ``experiments/facts.toml`` (a fact of ``nplsim validate``, the
same statistic, target and tolerance, so there is one copy of each) or a whole fact table written in
the spec (``[[moments]]`` with ``id``, ``description``, ``source``, ``unit``, ``target``,
``tolerance`` and ``[moments.statistic]``). A fitted moment's band (its target and tolerance) sets
its weight in the distance. Parameters are behavioural and unobserved ones only: legal-regime
fields are refused (the law stays as the scenario's preset says), and each prior's bounds must be
values the scenario accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from nplsim.experiments.facts_spec import FACTS_FILE, FactSpec, load_facts
from nplsim.market.errors import (
    ConfigError,
    StrictModel,
    config_error_from_validation,
    read_toml,
)
from nplsim.market.overrides import path_beside
from nplsim.market.regime import LegalRegime
from nplsim.market.scenario import ScenarioConfig, load_scenario

PRIORS = ("uniform", "loguniform", "normal")


class ParameterPrior(StrictModel):
    """The prior of one calibrated parameter."""

    prior: Literal["uniform", "loguniform", "normal"] = "uniform"
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    mean: float | None = Field(default=None, allow_inf_nan=False, description="normal only")
    sd: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="normal only")

    @model_validator(mode="after")
    def _check(self) -> ParameterPrior:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        if self.prior == "loguniform" and self.low <= 0:
            raise ValueError("a loguniform prior needs low > 0")
        if self.prior == "normal" and (self.mean is None or self.sd is None):
            raise ValueError("a normal prior needs mean and sd")
        if self.prior != "normal" and (self.mean is not None or self.sd is not None):
            raise ValueError("mean and sd apply to a normal prior only")
        return self

    def sd_of_prior(self) -> float:
        """The prior's standard deviation (for the identification diagnostic)."""
        if self.prior == "uniform":
            return (self.high - self.low) / math.sqrt(12)
        if self.prior == "loguniform":
            a, b = math.log(self.low), math.log(self.high)
            m1 = (self.high - self.low) / (b - a)
            m2 = (self.high**2 - self.low**2) / (2 * (b - a))
            return math.sqrt(max(m2 - m1**2, 0.0))
        return float(self.sd)  # type: ignore[arg-type]


class MomentSpec(StrictModel):
    """A moment: a fact by id, or a fact written out; ``held_out`` keeps it out of the fit."""

    fact: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$")
    held_out: bool = False
    id: str | None = None
    kind: str | None = None
    description: str | None = None
    source: str | None = None
    scenario: str | None = None
    when: str | None = None
    unit: str | None = None
    target: float | None = None
    target_range: tuple[float, float] | None = None
    target_text: str | None = None
    tolerance: float | None = None
    tolerance_kind: str | None = None
    note: str | None = None
    statistic: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> MomentSpec:
        written = {k for k in self.model_fields_set if k not in ("fact", "held_out")}
        if self.fact is not None and written:
            raise ValueError(f"give `fact` or a fact's fields, not both ({', '.join(written)})")
        if self.fact is None and not written:
            raise ValueError("give `fact = ID` or the fact's fields")
        return self


class CalibrationSpec(StrictModel):
    """A calibration: the scenario, the parameters and their priors, the moments, the search."""

    scenario: str = Field(min_length=1)
    n_loans: int = Field(default=20_000, ge=200, le=1_000_000)
    quarters: int | None = Field(default=None, ge=1, le=400)
    seeds_per_particle: int = Field(default=2, ge=1, le=100)
    population: int = Field(default=60, ge=10, le=10_000)
    generations: int = Field(default=6, ge=1, le=100)
    min_epsilon: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    seed: int = Field(default=1, ge=0, le=2**32 - 1)
    predictive_draws: int = Field(default=20, ge=2, le=1000)
    facts_file: str | None = Field(
        default=None, description="a facts file (default: the shipped one)"
    )
    parameters: dict[str, ParameterPrior] = Field(min_length=1)
    moments: list[MomentSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Moment:
    """A resolved moment: its fact (statistic, band) and whether it is held out of the fit."""

    fact: FactSpec
    held_out: bool

    @property
    def id(self) -> str:
        return self.fact.id


@dataclass(frozen=True)
class LoadedCalibration:
    """A validated spec with its moments resolved, and where it was read from."""

    spec: CalibrationSpec
    source: str
    scenario: str  # the scenario as a name or an absolute path
    moments: tuple[Moment, ...]
    raw: dict[str, Any]

    @property
    def fitted(self) -> tuple[Moment, ...]:
        return tuple(m for m in self.moments if not m.held_out)

    @property
    def held_out(self) -> tuple[Moment, ...]:
        return tuple(m for m in self.moments if m.held_out)

    def overrides(self, values: dict[str, float] | None = None) -> dict[str, Any]:
        """The overrides of one simulation: loan slots, horizon, and parameter values."""
        found: dict[str, Any] = {"n_loans": self.spec.n_loans}
        if self.spec.quarters is not None:
            found["quarters"] = self.spec.quarters
        found.update(values or {})
        return found


def load_calibration(path: str | Path) -> LoadedCalibration:
    """Read and check a spec file: one line naming the file, the key and the allowed values for
    anything wrong (an unknown parameter, a prior outside the field's bounds, a legal-regime
    field, a moment without a model statistic or of another scenario).

    Raises:
        ConfigError: for any invalid input.
    """
    path = Path(path)
    raw = read_toml(path)
    source = str(path)
    try:
        spec = CalibrationSpec.model_validate(raw)
    except ValidationError as exc:
        raise config_error_from_validation(
            exc, source, list(CalibrationSpec.model_fields)
        ) from None
    scenario = str(path_beside(spec.scenario, path.parent))
    return resolve_calibration(spec, source, scenario, path.parent, raw)


def resolve_calibration(
    spec: CalibrationSpec,
    source: str,
    scenario: str,
    base_dir: Path,
    raw: dict[str, Any] | None = None,
) -> LoadedCalibration:
    """Check a validated spec against the scenario and the facts, and resolve its moments."""
    loaded = LoadedCalibration(spec, source, scenario, (), raw or spec.model_dump(mode="json"))
    config = _check_parameters(loaded)
    given = spec.facts_file
    facts_path = Path(str(path_beside(given, base_dir))) if given else FACTS_FILE
    facts = {f.id: f for f in load_facts(facts_path)}
    moments = tuple(
        _moment(entry, index, facts, source, config) for index, entry in enumerate(spec.moments)
    )
    ids = [m.id for m in moments]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(source, "moments", f"listed twice: {', '.join(duplicated)}",
                          "each moment once")  # fmt: skip
    if not any(not m.held_out for m in moments):
        raise ConfigError(source, "moments", "every moment is held out", "at least one fitted")
    return LoadedCalibration(spec, source, scenario, moments, loaded.raw)


def _check_parameters(loaded: LoadedCalibration) -> ScenarioConfig:
    spec, source = loaded.spec, loaded.source
    for name in spec.parameters:
        key = name.replace("__", ".")
        if key in LegalRegime.model_fields or key.startswith("regime_overrides"):
            problem = "a legal-regime field: the law stays as the scenario's preset says"
            raise ConfigError(source, f"parameters.{name}", problem, "behavioural scenario fields")
        if key in ("n_loans", "quarters", "regime", "events", "name", "description"):
            raise ConfigError(source, f"parameters.{name}", "not a behavioural parameter",
                              "behavioural scenario fields")  # fmt: skip
    try:
        config, _ = load_scenario(loaded.scenario, loaded.overrides(), origin=source)
    except ConfigError as exc:
        raise ConfigError(source, "scenario", f"{exc.source}: {exc.key}: {exc.problem}",
                          exc.allowed) from None  # fmt: skip
    for name, prior in spec.parameters.items():
        for end, value in (("low", prior.low), ("high", prior.high)):
            try:
                load_scenario(loaded.scenario, loaded.overrides({name: value}), origin=source)
            except ConfigError as exc:
                if exc.problem == "unknown key":
                    raise ConfigError(source, f"parameters.{name}", "unknown key",
                                      exc.allowed) from None  # fmt: skip
                allowed = exc.allowed or "a value the scenario accepts"
                problem = (
                    exc.problem if exc.key == "<root>" or name.endswith(exc.key.split(".")[-1])
                    else f"{exc.key}: {exc.problem}"
                )  # fmt: skip
                raise ConfigError(source, f"parameters.{name}.{end}", f"{value}: {problem}",
                                  allowed) from None  # fmt: skip
    return config


def _moment(
    entry: MomentSpec,
    index: int,
    known: dict[str, FactSpec],
    source: str,
    config: ScenarioConfig,
) -> Moment:
    where = f"moments.{index}"
    if entry.fact is not None:
        if entry.fact not in known:
            raise ConfigError(source, f"{where}.fact", f"unknown fact {entry.fact!r}",
                              ", ".join(sorted(known)))  # fmt: skip
        fact = known[entry.fact]
    else:
        data = entry.model_dump(exclude={"fact", "held_out"}, exclude_none=True)
        data.setdefault("kind", "output")
        data.setdefault("scenario", config.name)
        try:
            fact = FactSpec.model_validate(data)
        except ValidationError as exc:
            error = config_error_from_validation(exc, source, list(FactSpec.model_fields))
            raise ConfigError(source, f"{where}.{error.key}", error.problem,
                              error.allowed) from None  # fmt: skip
    if fact.scenario and fact.scenario != config.name:
        raise ConfigError(source, where, f"{fact.id} is a fact about {fact.scenario}'s era, "
                          f"not {config.name}'s", f"facts of scenario {config.name}")  # fmt: skip
    if fact.kind == "not_modelled" or fact.statistic is None:
        raise ConfigError(source, where, f"{fact.id}: the model has no statistic for it",
                          "a fact with a [statistic] the model computes")  # fmt: skip
    if not fact.needs_run:
        raise ConfigError(source, where, f"{fact.id}: a calibration input, not a model output",
                          "a fact whose statistic comes from runs")  # fmt: skip
    low, high = fact.band()
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        problem = f"{fact.id}: its band {low:g}..{high:g} is not a finite interval"
        raise ConfigError(source, where, problem, "a target with a tolerance or a finite range")
    return Moment(fact, entry.held_out)
