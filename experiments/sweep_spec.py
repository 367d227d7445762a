"""Sweep specs: the TOML spec of a sweep validated, and expanded into runs with stable ids.

A spec names a base scenario, fixed overrides, the parameters to vary (a grid of values, or
Latin-hypercube / Sobol samples of ranges crossed with categorical values), the seeds and the
outcomes to summarise. Values that are one value (``1`` and ``1.0``, ``0.0`` and ``-0.0``) are one
run. See ``docs/sweeps.md``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

from nplsim.experiments.seeds import MAX_SEED, SEED_RANGE, check_seeds, seed_range
from nplsim.market.errors import (
    ConfigError,
    StrictModel,
    config_error_from_validation,
    read_toml,
)
from nplsim.market.overrides import REGIME_TABLE, path_beside
from nplsim.market.scenario import DEFAULT_SCENARIO

OUTPUTS = ("model", "summary", "banks", "deals", "trades")
Output = Literal["model", "summary", "banks", "deals", "trades"]
MANIFEST = "sweep.json"
RUNS_DIR = "runs"
FAILURES_DIR = "failures"
RUN_ID_LENGTH = 12  # hex digits of SHA-256: 48 bits, collision-free for any practical sweep
# Integer parameter values are stored in 64-bit integer Parquet columns (seeds too).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT64_RANGE = f"integers from -2**63 to 2**63 - 1 ({INT64_MIN} to {INT64_MAX})"


# ====================================================================== the spec
class _Strict(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterSpec(_Strict):
    """One varied parameter: explicit ``values`` (grid or categorical) or a ``low``–``high`` range.

    A range with integer bounds is sampled as integers (both ends included); with a float bound, as
    floats in ``[low, high)``.
    """

    values: list[Any] | None = Field(default=None, min_length=1)
    low: StrictInt | StrictFloat | None = None
    high: StrictInt | StrictFloat | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_run_per_value(cls, data: Any) -> Any:
        """Keep one of values that are one value (``1`` and ``1.0``, ``0.0`` and ``-0.0``)."""
        if isinstance(data, Mapping) and isinstance(data.get("values"), list):
            data = {**data, "values": distinct_values(data["values"])}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> ParameterSpec:
        ranged = self.low is not None or self.high is not None
        if self.values is not None and ranged:
            raise ValueError("give either values = [...] or low and high, not both")
        if self.values is None and not ranged:
            raise ValueError("missing values: give values = [...] or low and high")
        if ranged and (self.low is None or self.high is None):
            raise ValueError("a range needs both low and high")
        if ranged and not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low ({self.low}) and high ({self.high}) must be finite numbers")
        if ranged and not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be less than high ({self.high})")
        return self

    @property
    def continuous(self) -> bool:
        """Whether this is a range to sample rather than a list of values."""
        return self.values is None

    def scale(self, unit: float) -> int | float:
        """Map a point of ``[0, 1)`` onto the range."""
        if isinstance(self.low, int) and isinstance(self.high, int):
            return min(self.high, self.low + math.floor(unit * (self.high - self.low + 1)))
        return float(self.low + unit * (self.high - self.low))


class SamplingSpec(_Strict):
    """How parameter points are chosen: a full grid, or ``n`` LHS / Sobol samples of the ranges."""

    method: Literal["grid", "lhs", "sobol"] = "grid"
    n: int | None = Field(default=None, ge=1, le=1_000_000, description="Samples (lhs, sobol).")
    seed: int = Field(default=0, ge=0, description="Seed of the sampler (scrambling for Sobol).")


class SweepSpec(_Strict):
    """A sweep: base scenario, fixed overrides, varied parameters, seeds and the tables to keep."""

    base: str = Field(default=DEFAULT_SCENARIO, description="Scenario name or TOML path.")
    quarters: int | None = Field(default=None, ge=1, le=400, description="Horizon, quarters.")
    overrides: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] | None = Field(
        default=None, min_length=1, description="Distinct seeds, each from 0 to 2**63 - 1."
    )
    replications: int | None = Field(default=None, ge=1, le=100_000)
    seed_start: int = Field(
        default=0, ge=0, description="First of the replications' seeds (the last <= 2**63 - 1)."
    )
    outputs: list[Output] = Field(default_factory=lambda: ["model", "summary"], min_length=1)
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    outcomes: list[str] = Field(
        default_factory=list, description="Metric names (`nplsim metrics`) to summarise."
    )
    posterior: str | None = Field(
        default=None, min_length=1, description="A calibration directory (nplsim calibrate)."
    )
    draws: int | None = Field(
        default=None, ge=1, le=10_000, description="Posterior draws crossed with every point."
    )

    def resolved(self) -> dict[str, Any]:
        """The spec as JSON (without ``outcomes`` when it names none, and without ``posterior``
        and ``draws`` when it has no posterior, as before they existed)."""
        exclude = set() if self.outcomes else {"outcomes"}
        if self.posterior is None and self.draws is None:
            exclude |= {"posterior", "draws"}
        return self.model_dump(mode="json", exclude=exclude or None)

    def seed_list(self) -> list[int]:
        """The seeds every parameter point is run with."""
        if self.seeds is not None:
            return list(self.seeds)
        return list(range(self.seed_start, self.seed_start + (self.replications or 1)))

    def fixed_overrides(self) -> dict[str, Any]:
        """Overrides every run shares: ``overrides`` plus ``quarters``."""
        fixed = dict(self.overrides)
        if self.quarters is not None:
            fixed["quarters"] = self.quarters
        return fixed


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its stable id, the varied parameters, the seed and all overrides;
    with a posterior, the draw's index and its parameter values (also among the overrides)."""

    run_id: str
    params: dict[str, Any]
    seed: int
    overrides: dict[str, Any] = field(repr=False)
    draw: int | None = None
    drawn: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Loaded:
    spec: SweepSpec
    source: str
    raw: dict[str, Any]
    base_dir: Path


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file.

    Raises:
        ConfigError: missing file, malformed TOML, unknown key, wrong type or inconsistent values.
    """
    return _load(path).spec


def _load(path: str | Path) -> _Loaded:
    path = Path(path)
    raw = read_toml(path)
    return _Loaded(_validate(raw, str(path)), str(path), raw, path.parent)


def _validate(raw: Mapping[str, Any], source: str) -> SweepSpec:
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        model: type[BaseModel] = SweepSpec
        if len(loc) > 2 and loc[0] == "parameters":
            model = ParameterSpec
        elif len(loc) > 1 and loc[0] == "sampling":
            model = SamplingSpec
        error = config_error_from_validation(exc, source, list(model.model_fields))
        error.problem = error.problem.removeprefix("Value error, ")
        raise ConfigError(error.source, error.key, error.problem, error.allowed) from None
    _check_consistency(spec, source)
    return spec


def _check_consistency(spec: SweepSpec, source: str) -> None:
    if (spec.posterior is None) != (spec.draws is None):
        given, missing = ("posterior", "draws") if spec.draws is None else ("draws", "posterior")
        raise ConfigError(source, missing, f"required with {given}",
                          "posterior = DIR and draws = K together, or neither")  # fmt: skip
    if spec.seeds is not None and spec.replications is not None:
        raise ConfigError(source, "replications", "give seeds or replications, not both")
    if spec.seeds is not None:
        check_seeds(spec.seeds, source, "seeds")
    else:
        last = spec.seed_start + (spec.replications or 1) - 1
        if last > MAX_SEED:
            raise ConfigError(
                source, "seed_start", f"the last seed, seed_start + replications - 1 = {last}, is"
                " out of range", SEED_RANGE,
            )  # fmt: skip
        seed_range(spec.seed_start, spec.replications or 1, source, "seed_start", "replications")
    _check_int64(spec, source)
    _check_outcomes(spec, source)
    if len(set(spec.outputs)) < len(spec.outputs):
        raise ConfigError(source, "outputs", "outputs must be distinct", ", ".join(OUTPUTS))
    fixed = {_normal(k) for k in spec.fixed_overrides()}
    named: set[str] = set()
    for name in spec.parameters:
        if _normal(name) in named:
            raise ConfigError(source, f"parameters.{name}", "names the same field twice")
        named.add(_normal(name))
        if _normal(name) in fixed:
            raise ConfigError(
                source, f"parameters.{name}", "also fixed in overrides or quarters; set it once"
            )
    ranged = [name for name, p in spec.parameters.items() if p.continuous]
    method = spec.sampling.method
    if method == "grid":
        if ranged:
            raise ConfigError(
                source, f"parameters.{ranged[0]}", "a grid needs values = [...]",
                "values, or low/high with sampling.method lhs or sobol",
            )  # fmt: skip
        if spec.sampling.n is not None:
            raise ConfigError(source, "sampling.n", "applies only to lhs and sobol sampling")
        return
    if spec.sampling.n is None:
        raise ConfigError(source, "sampling.n", f"required for {method} sampling", "integer >= 1")
    if not ranged:
        raise ConfigError(
            source, "parameters", f"{method} sampling needs a parameter with low and high"
        )


def _check_outcomes(spec: SweepSpec, source: str) -> None:
    """Outcomes are metric names, and the tables they are computed from are kept."""
    from nplsim.experiments import metrics

    for k, name in enumerate(spec.outcomes):
        metrics.get(name, source, f"outcomes.{k}")
    needed = ["model", *(["banks"] if metrics.needs_banks(spec.outcomes) else [])]
    missing = [table for table in needed if spec.outcomes and table not in spec.outputs]
    if missing:
        raise ConfigError(source, "outputs", f"the outcomes need {', '.join(missing)}",
                          ", ".join(dict.fromkeys([*spec.outputs, *needed])))  # fmt: skip


def _check_int64(spec: SweepSpec, source: str) -> None:
    """Refuse integer parameter values that a 64-bit Parquet column cannot hold."""
    for name, param in spec.parameters.items():
        given = {"values": param.values or [], "low": [param.low], "high": [param.high]}
        for key, values in given.items():
            for value in values:
                if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
                    raise ConfigError(
                        source, f"parameters.{name}.{key}",
                        f"{value} does not fit a 64-bit integer", INT64_RANGE,
                    )  # fmt: skip


# ====================================================================== expansion
def expand(
    spec: SweepSpec,
    source: str = "spec",
    base_dir: Path | None = None,
    draws: list[dict[str, float]] | None = None,
) -> list[RunSpec]:
    """Every run of a sweep: parameter points (outer) × posterior draws × seeds (inner), in a
    stable order. Without ``draws`` (the posterior's parameter vectors) there is one draw: none.

    A preset path among the overrides and parameter values is read from ``base_dir`` (the spec
    file's folder) when relative; the run id is made from the values as written (and the draw's
    index, so that a vector drawn twice is two runs with equal results).

    Raises:
        ConfigError: if two runs would be identical (an integer range narrower than ``n``).
    """
    fixed = spec.fixed_overrides()
    runs, seen = [], set()
    indexed: list[tuple[int | None, dict[str, float]]] = (
        list(enumerate(draws)) if draws is not None else [(None, {})]
    )
    for params in _parameter_points(spec):
        for k, drawn in indexed:
            for seed in spec.seed_list():
                given = {**spec.overrides, **drawn, **params}
                rid = run_id(spec.base, spec.quarters, given, seed, k)
                if rid in seen:
                    raise ConfigError(
                        source, "sampling.n", f"two samples are identical ({params})",
                        "fewer samples, or wider integer ranges",
                    )  # fmt: skip
                seen.add(rid)
                overrides = _paths_beside({**fixed, **drawn, **params}, base_dir)
                runs.append(RunSpec(rid, params, seed, overrides, k, dict(drawn)))
    return runs


def count_runs(spec: SweepSpec) -> int:
    """How many runs :func:`expand` gives, counted without listing them."""
    points = math.prod(len(p.values) for p in spec.parameters.values() if not p.continuous)
    if any(p.continuous for p in spec.parameters.values()):
        points *= int(spec.sampling.n or 0)
    points *= spec.draws or 1
    return points * (len(spec.seeds) if spec.seeds is not None else (spec.replications or 1))


def _paths_beside(overrides: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """Overrides with a relative preset path (``regime = "law.toml"``) read from ``base_dir``."""
    if base_dir is None or "regime" not in overrides:
        return overrides
    return {**overrides, "regime": path_beside(overrides["regime"], base_dir)}


def run_id(
    base: str,
    quarters: int | None,
    overrides: Mapping[str, Any],
    seed: int,
    draw: int | None = None,
) -> str:
    """Short stable id of a run: SHA-256 of canonical JSON, the same on every machine (a run
    without a posterior draw has the id it had before draws existed)."""
    payload = {"base": base, "quarters": quarters, "overrides": dict(overrides), "seed": seed}
    if draw is not None:
        payload["draw"] = draw
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:RUN_ID_LENGTH]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def canonical_value(value: Any) -> Any:
    """One form of every value that means the same: ``-0.0`` is ``0.0``, a float that is a whole
    number is that integer (so ``1.0`` and ``1`` are one value; booleans stay booleans)."""
    if isinstance(value, float):
        if value == 0.0:
            return 0.0
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, list):
        return [canonical_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): canonical_value(v) for k, v in value.items()}
    return value


def distinct_values(values: list[Any]) -> list[Any]:
    """``values`` without repeats of one value (see :func:`canonical_value`), first kept, and
    ``-0.0`` written ``0.0``."""
    kept, seen = [], set()
    for value in values:
        key = _canonical([type(value) is bool, canonical_value(value)])
        if key not in seen:
            seen.add(key)
            kept.append(0.0 if isinstance(value, float) and value == 0.0 else value)
    return kept


def _normal(key: str) -> str:
    """The field a key sets: ``a__b`` is ``a.b``, ``regime_overrides.car_min`` is ``car_min``."""
    return key.replace("__", ".").removeprefix(f"{REGIME_TABLE}.")


def _parameter_points(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    params = spec.parameters
    categorical = {name: p.values for name, p in params.items() if not p.continuous}
    ranged = {name: p for name, p in params.items() if p.continuous}
    samples = _unit_samples(spec.sampling, len(ranged)) if ranged else [[]]
    for combo in itertools.product(*categorical.values()):
        chosen = dict(zip(categorical, combo, strict=True))
        for row in samples:
            sampled = {name: p.scale(u) for (name, p), u in zip(ranged.items(), row, strict=True)}
            merged = {**chosen, **sampled}
            yield {name: merged[name] for name in params}


def _unit_samples(sampling: SamplingSpec, dims: int) -> list[list[float]]:
    from scipy.stats import qmc

    if sampling.method == "lhs":
        engine: qmc.QMCEngine = qmc.LatinHypercube(d=dims, rng=sampling.seed)
    else:
        engine = qmc.Sobol(d=dims, scramble=True, rng=sampling.seed)
    n = int(sampling.n or 0)
    with warnings.catch_warnings():  # said once, in the project's log: see _sampling_warnings
        warnings.filterwarnings("ignore", "The balance properties", UserWarning)
        return engine.random(n).tolist()


def _sampling_warnings(spec: SweepSpec) -> list[str]:
    """What is legal but unwise in how a spec samples (logged by :func:`run_sweep` once the spec
    and the options are accepted, so that an error is never preceded by a warning)."""
    n = int(spec.sampling.n or 0)
    if spec.sampling.method == "sobol" and n & (n - 1):
        return [f"sobol: n={n} is not a power of 2, so the sample is less balanced"]
    return []
