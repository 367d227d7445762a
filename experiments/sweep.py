"""Parameter sweeps: expand a TOML spec into runs, run them on any executor, store Parquet per run.

A sweep spec names a base scenario, fixed overrides, the parameters to vary (a grid of values, or
Latin-hypercube / Sobol samples of ranges crossed with categorical values) and the seeds. Each run
is simulated by a worker — a local process pool, or a Dask cluster through
``distributed.Client(...).get_executor()`` — which sends its tables back as Parquet bytes. This
process writes each run into a temporary directory and renames it to ``runs/run_id=RUNID``, so a
run is finished iff its partition exists and an interrupted sweep resumes without duplicates.
The results directory is claimed and created through :mod:`nplsim.experiments.store` (one writer
at a time, nothing replaced without ``overwrite``); ``resume`` refuses a sweep begun under other
code or presets unless allowed. Values that are one value (``1`` and ``1.0``, ``0.0`` and
``-0.0``) are one run. See ``docs/sweeps.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import logging
import math
import secrets
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

from nplsim.experiments.options import add_yes_flag, confirm_runs
from nplsim.experiments.pool import resolve_workers, run_tasks
from nplsim.experiments.provenance import (
    ALLOW_FLAG,
    CLUSTER_PACKAGES,
    PACKAGES,
    RERUN_NOTE,
    code_differences,
    pins,
)
from nplsim.experiments.seeds import MAX_SEED, SEED_RANGE, check_seeds, seed_range
from nplsim.experiments.store import (
    TMP_PREFIX,
    Claim,
    check_writable,
    claim,
    publish,
    write_json_atomic,
)
from nplsim.market.errors import (
    ConfigError,
    StrictModel,
    config_error_from_validation,
    printable,
    read_json,
    read_toml,
)
from nplsim.market.overrides import REGIME_TABLE, path_beside
from nplsim.market.scenario import (
    DEFAULT_SCENARIO,
    ScenarioConfig,
    list_scenarios,
    load_scenario,
)

logger = logging.getLogger(__name__)

OUTPUTS = ("model", "summary", "banks", "deals", "trades")
Output = Literal["model", "summary", "banks", "deals", "trades"]
MANIFEST = "sweep.json"
RUNS_DIR = "runs"
FAILURES_DIR = "failures"
RUN_ID_LENGTH = 12  # hex digits of SHA-256: 48 bits, collision-free for any practical sweep
EXIT_FAILED_RUNS = 1  # exit status of a sweep in which some runs failed
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # scheduler hosts that are this machine
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
    """One run of a sweep: its stable id, the varied parameters, the seed and all overrides."""

    run_id: str
    params: dict[str, Any]
    seed: int
    overrides: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class SweepReport:
    """What a call of :func:`run_sweep` did."""

    out_dir: Path
    total: int
    done: int
    skipped: int
    failed: int
    failed_run_ids: tuple[str, ...]
    wall_time_s: float

    @property
    def runs_per_minute(self) -> float:
        """Runs finished by this call per minute of wall time."""
        return 60.0 * self.done / self.wall_time_s if self.wall_time_s > 0 else 0.0


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
def expand(spec: SweepSpec, source: str = "spec", base_dir: Path | None = None) -> list[RunSpec]:
    """Every run of a sweep: parameter points (outer) × seeds (inner), in a stable order.

    A preset path among the overrides and parameter values is read from ``base_dir`` (the spec
    file's folder) when relative; the run id is made from the values as written.

    Raises:
        ConfigError: if two runs would be identical (an integer range narrower than ``n``).
    """
    fixed = spec.fixed_overrides()
    runs, seen = [], set()
    for params in _parameter_points(spec):
        for seed in spec.seed_list():
            rid = run_id(spec.base, spec.quarters, {**spec.overrides, **params}, seed)
            if rid in seen:
                raise ConfigError(
                    source, "sampling.n", f"two samples are identical ({params})",
                    "fewer samples, or wider integer ranges",
                )  # fmt: skip
            seen.add(rid)
            overrides = _paths_beside({**fixed, **params}, base_dir)
            runs.append(RunSpec(rid, params, seed, overrides))
    return runs


def count_runs(spec: SweepSpec) -> int:
    """How many runs :func:`expand` gives, counted without listing them."""
    points = math.prod(len(p.values) for p in spec.parameters.values() if not p.continuous)
    if any(p.continuous for p in spec.parameters.values()):
        points *= int(spec.sampling.n or 0)
    return points * (len(spec.seeds) if spec.seeds is not None else (spec.replications or 1))


def _paths_beside(overrides: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """Overrides with a relative preset path (``regime = "law.toml"``) read from ``base_dir``."""
    if base_dir is None or "regime" not in overrides:
        return overrides
    return {**overrides, "regime": path_beside(overrides["regime"], base_dir)}


def run_id(base: str, quarters: int | None, overrides: Mapping[str, Any], seed: int) -> str:
    """Short stable id of a run: SHA-256 of canonical JSON, the same on every machine."""
    payload = {"base": base, "quarters": quarters, "overrides": dict(overrides), "seed": seed}
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


# ====================================================================== the worker side
def simulate_run(base: ScenarioConfig, run: RunSpec, outputs: tuple[str, ...]) -> dict[str, Any]:
    """Simulate one run and return its tables as Parquet bytes, or the error it raised.

    Runs in a worker process (local or on a Dask cluster); it writes nothing, so workers need no
    access to the results directory.
    """
    try:
        frames = _frames(_simulate(base, run), run, outputs)
        return {"tables": {name: _parquet_bytes(frame) for name, frame in frames.items()}}
    except Exception as exc:  # a failing run is data for the sweep, not the end of it
        return {"error": _error_record(exc)}


def _simulate(base: ScenarioConfig, run: RunSpec) -> Any:
    # imported here, not at the top, so that the CLI starts without loading the model
    from nplsim.experiments.run import simulate

    return simulate(base, run.seed, run.overrides)


def _frames(model: Any, run: RunSpec, outputs: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    from nplsim.experiments.run import config_hash, summarise

    frames: dict[str, pd.DataFrame] = {}
    model_frame = model.model_frame()
    for name in outputs:
        if name == "model":
            frame = model_frame
        elif name == "summary":
            summary = summarise(model_frame)
            values = {
                f"{kind}_{col}": value
                for kind in ("final", "mean")
                for col, value in summary[kind].items()
            }
            frame = pd.DataFrame([values], dtype="float64")
            regime = model.initial_regime.as_dict()
            frame.insert(0, "config_hash", config_hash(model.config, regime, model.seed))
        elif name == "banks":
            frame = model.bank_frame()
        elif name == "trades":
            frame = model.trade_frame()
        else:
            frame = model.deal_frame()
        frames[name] = _tagged(frame, run)
    return frames


def _tagged(frame: pd.DataFrame, run: RunSpec) -> pd.DataFrame:
    """Prefix the run's id, seed and parameters (non-scalar values as canonical JSON text)."""
    tags: dict[str, Any] = {"run_id": run.run_id, "seed": run.seed}
    for name, value in run.params.items():
        tags[name] = _canonical(value) if isinstance(value, list | dict) else value
    clash = set(tags) & set(frame.columns)
    if clash:
        raise ValueError(f"parameter names clash with output columns: {sorted(clash)}")
    columns = {name: pd.Series(value, index=frame.index) for name, value in tags.items()}
    return pd.concat([pd.DataFrame(columns, index=frame.index), frame], axis=1)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _error_record(exc: BaseException) -> dict[str, str]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


# ====================================================================== the store
def _runs_dir(out_dir: Path) -> Path:
    return out_dir / RUNS_DIR


def _partition(out_dir: Path, rid: str) -> Path:
    return _runs_dir(out_dir) / f"run_id={rid}"


def write_partition(out_dir: Path, rid: str, tables: Mapping[str, bytes]) -> Path:
    """Write one run's tables into a temporary directory, then publish it atomically (fsynced)."""
    final = _partition(out_dir, rid)
    staging = _runs_dir(out_dir) / f"{TMP_PREFIX}{rid}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        for name, data in tables.items():
            (staging / f"{name}.parquet").write_bytes(data)
        publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (out_dir / FAILURES_DIR / f"{rid}.json").unlink(missing_ok=True)
    return final


def record_failure(out_dir: Path, run: RunSpec, error: Mapping[str, str]) -> Path:
    """Write ``failures/RUNID.json``: the run, its parameters and seed, and what went wrong."""
    record = {"run_id": run.run_id, "params": run.params, "seed": run.seed, **error}
    path = out_dir / FAILURES_DIR / f"{run.run_id}.json"
    write_json_atomic(path, record)
    return path


def finished_run_ids(out_dir: str | Path) -> list[str]:
    """Ids of the runs whose partition exists, sorted."""
    runs = _runs_dir(Path(out_dir))
    if not runs.is_dir():
        return []
    return sorted(p.name.removeprefix("run_id=") for p in runs.glob("run_id=*") if p.is_dir())


def load_sweep(out_dir: str | Path, table: str = "summary") -> pd.DataFrame:
    """All finished runs' rows of one table, in run-id order (deterministic).

    Raises:
        ConfigError: if ``out_dir`` holds no sweep or the table was not among its outputs.
    """
    out_dir = Path(out_dir)
    if table not in OUTPUTS:
        raise ConfigError("load_sweep", "table", f"unknown table {table!r}", ", ".join(OUTPUTS))
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        raise ConfigError(str(out_dir), "<dir>", f"not an nplsim sweep directory (no {MANIFEST})")
    outputs = _resolved_spec(read_json(manifest), str(manifest)).get("outputs", [])
    if table not in outputs:
        raise ConfigError(str(manifest), "outputs", f"{table!r} was not kept", ", ".join(outputs))
    frames = [
        pd.read_parquet(_partition(out_dir, rid) / f"{table}.parquet")
        for rid in finished_run_ids(out_dir)
    ]
    if not frames:
        return pd.DataFrame()
    non_empty = [frame for frame in frames if len(frame)] or frames[:1]
    return pd.concat(non_empty, ignore_index=True)


# ====================================================================== the runner
def run_sweep(
    spec: SweepSpec | str | Path,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: Executor | None = None,
    resume: bool = False,
    overwrite: bool = False,
    allow_different_code: bool = False,
    yes: bool = True,
    progress: bool = True,
) -> SweepReport:
    """Run every unfinished run of a sweep and store each as it finishes.

    Args:
        spec: a spec file or a validated :class:`SweepSpec` (a relative ``base`` path is read
            beside the spec file, or from the working directory for an object).
        out_dir: the results directory.
        workers: processes of the local pool (default: the number of CPUs).
        scheduler: address of a Dask scheduler (``tcp://host:8786``) to run on instead.
        executor: any ``concurrent.futures.Executor`` to run on instead (not shut down here).
        resume: continue a sweep in ``out_dir``: skip finished runs, retry failed ones.
        overwrite: replace an earlier sweep in ``out_dir``.
        allow_different_code: resume a sweep begun under other code or presets (``sweep.json``
            then says so).
        yes: start more than :data:`~nplsim.experiments.options.LARGE_RUNS` runs without asking.
        progress: show a progress bar on stderr.

    Raises:
        ConfigError: bad spec, bad options, unreachable scheduler, or an ``out_dir`` that may not
            be written (holding a sweep, without ``resume`` or ``overwrite``) — before anything is
            written; an ``OSError`` while storing results, naming the path (finished runs kept).
    """
    started = time.perf_counter()
    if isinstance(spec, str | Path):
        loaded = _load(spec)
    else:
        _check_consistency(spec, "spec")
        loaded = _Loaded(spec, "spec", spec.model_dump(mode="json"), Path.cwd())
    if workers is not None:
        resolve_workers(workers)
    if workers is not None and (scheduler or executor):
        raise ConfigError("--workers", str(workers), "applies only to the local process pool")
    if resume and overwrite:
        raise ConfigError("--resume", "--overwrite", "give one of them, not both")
    confirm_runs(count_runs(loaded.spec), yes, loaded.source)
    base = _base_config(loaded)
    runs = expand(loaded.spec, loaded.source, loaded.base_dir)
    _check_runs(loaded, base, runs)
    manifest = _manifest(loaded, base, len(runs))
    claimed = claim(out_dir, "sweep", overwrite=overwrite, resume=resume)
    failed_claim = True
    try:
        out = claimed.path
        with ExitStack() as stack:
            if executor is None:
                executor = _executor(stack, scheduler, workers)
            if claimed.existing is not None and resume:
                _resume(claimed, manifest, allow_different_code)
            else:
                _create_store(claimed, manifest)
            failed_claim = False
            for warning in _sampling_warnings(loaded.spec):  # only now that all is accepted
                logger.warning("%s", warning)
            finished = set(finished_run_ids(out))
            pending = [run for run in runs if run.run_id not in finished]
            skipped = len(runs) - len(pending)
            done, failed = _execute(
                executor, workers, base, pending, loaded.spec, claimed, skipped, progress
            )
        manifest["updated"] = _now()
        manifest["status"] = {
            "finished": len(finished_run_ids(out)),
            "failed": len(list((out / FAILURES_DIR).glob("*.json"))),
        }
        _store_manifest(claimed, manifest)
    finally:
        claimed.release(failed_claim)
    return SweepReport(
        out_dir=Path(out_dir),
        total=len(runs),
        done=done,
        skipped=skipped,
        failed=len(failed),
        failed_run_ids=tuple(sorted(failed)),
        wall_time_s=time.perf_counter() - started,
    )


def _execute(
    executor: Executor | None,
    workers: int | None,
    base: ScenarioConfig,
    pending: list[RunSpec],
    spec: SweepSpec,
    claimed: Claim,
    skipped: int,
    progress: bool,
) -> tuple[int, list[str]]:
    """Run the pending runs on the executor (or the shared local pool) and store each as it
    finishes; an ``OSError`` while storing ends the sweep with one line (the pool is stopped,
    finished runs are kept)."""
    from tqdm import tqdm

    out = claimed.path
    outputs = tuple(spec.outputs)
    tasks = [(base, run, outputs) for run in pending]
    done, failed = 0, []
    bar = tqdm(
        total=skipped + len(pending), initial=skipped, desc="sweep", unit="run",
        file=sys.stderr, disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    with bar:
        for outcome in run_tasks(_simulate_task, tasks, workers=workers, executor=executor):
            run = pending[outcome.index]
            result = outcome.value
            if outcome.error is not None:  # the worker died, or could not run the task
                result = {"error": _error_record(outcome.error)}
            try:
                if "error" in result:
                    record_failure(out, run, result["error"])
                    failed.append(run.run_id)
                    logger.info("run %s failed: %s", run.run_id, result["error"]["message"])
                else:
                    write_partition(out, run.run_id, result["tables"])
                    done += 1
            except OSError as exc:
                kept = len(finished_run_ids(out))
                error = claimed.write_error(exc, _partition(out, run.run_id))
                error.problem += f"; {kept} finished runs are kept (continue with --resume)"
                raise error from None
            bar.set_postfix(failed=len(failed), refresh=False)
            bar.update()
    return done, failed


def _simulate_task(task: tuple[ScenarioConfig, RunSpec, tuple[str, ...]]) -> dict[str, Any]:
    """:func:`simulate_run` of one ``(base, run, outputs)`` task (for the shared pool)."""
    return simulate_run(*task)


def _executor(stack: ExitStack, scheduler: str | None, workers: int | None) -> Executor | None:
    """The Dask cluster's executor for ``scheduler`` (closed with ``stack``), or None for the
    shared local pool of :mod:`nplsim.experiments.pool`."""
    if not scheduler:
        return None
    client = _connect(scheduler)
    stack.callback(client.close)
    return client.get_executor(pure=False)


def _connect(address: str) -> Any:
    """A Dask client of ``address``, secured as Dask's configuration says (``Security``: TLS
    certificates, ``require-encryption``); an unencrypted scheduler off this machine is warned
    about, since whoever reaches it can run code on the workers (see docs/sweeps.md)."""
    from distributed import Client

    host = address.removeprefix("tcp://").rsplit(":", 1)[0].strip("[]")
    if address.startswith("tcp://") and host not in LOOPBACK:
        logger.warning("%s is not encrypted: use tls:// (docs/sweeps.md)", address)
    try:
        return Client(address, timeout="5s")
    except (OSError, TimeoutError, ValueError, TypeError, RuntimeError) as exc:
        # RuntimeError: encryption required by the configuration, refused by a plain address
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(
            "--scheduler", address, f"cannot connect to Dask scheduler: {message}"
        ) from None


def _base_config(loaded: _Loaded) -> ScenarioConfig:
    base = loaded.spec.base
    source: str | Path = base
    if base not in list_scenarios() and not Path(base).is_absolute():
        source = loaded.base_dir / base
    try:
        config, _ = load_scenario(source)
    except ConfigError as exc:
        if exc.key in ("<file>", "scenario"):
            raise ConfigError(
                loaded.source, "base", f"{exc.problem}: {exc.source}", exc.allowed
            ) from None
        raise
    return config


def _check_runs(loaded: _Loaded, base: ScenarioConfig, runs: list[RunSpec]) -> None:
    """Resolve every distinct set of overrides, so a bad name or value fails before any run, and
    refuse two parameter points that are one simulation (``car_min`` and
    ``regime_overrides.car_min`` both varied)."""
    from nplsim.experiments.run import config_hash

    spec, seen, simulations = loaded.spec, set(), {}
    for run in runs:
        key = _canonical(run.overrides)
        if key in seen:
            continue
        seen.add(key)
        try:
            config, regime = load_scenario(
                base, run.overrides, origin=loaded.source, base_dir=loaded.base_dir
            )
        except ConfigError as exc:
            raise _locate(exc, spec, run, loaded.source) from None
        same = config_hash(config, regime.as_dict(), run.seed)
        if same in simulations and simulations[same] != run.params:
            raise ConfigError(
                loaded.source, "parameters",
                f"{simulations[same]} and {run.params} are one simulation",
                "parameters that each change a different field",
            )  # fmt: skip
        simulations[same] = run.params


def _locate(exc: ConfigError, spec: SweepSpec, run: RunSpec, source: str) -> ConfigError:
    """Re-address a scenario error to the spec key that caused it."""
    error_key = _normal(exc.key)
    candidates = [("parameters", name) for name in spec.parameters] + [
        ("overrides", name) for name in spec.overrides
    ]
    candidates.append(("", "quarters"))
    for table, name in sorted(candidates, key=lambda c: -len(c[1])):
        normal = _normal(name)
        if error_key == normal or error_key.startswith(normal + "."):
            key = f"{table}.{name}" if table else name
            problem = exc.problem
            if table == "parameters" and exc.problem != "unknown key":
                problem = f"value {run.params[name]!r}: {problem}"
            return ConfigError(source, key, problem, exc.allowed)
    return ConfigError(source, exc.key, exc.problem, exc.allowed)


def _manifest(loaded: _Loaded, base: ScenarioConfig, n_runs: int) -> dict[str, Any]:
    """``sweep.json``: the spec as given and resolved, the base config's hash, what the code and
    presets were (``code``, ``presets``, ``versions``) and, in ``sessions``, every call that ran
    runs into the directory with its own code and versions."""
    pinned = pins(base, [*PACKAGES, *CLUSTER_PACKAGES])
    base_json = _canonical(base.model_dump(mode="json"))
    now = _now()
    return {
        "kind": "sweep",
        "spec": loaded.raw,
        "spec_file": loaded.source if loaded.source != "spec" else None,
        "spec_resolved": loaded.spec.model_dump(mode="json"),
        "base_config_hash": hashlib.sha256(base_json.encode()).hexdigest(),
        "runs": n_runs,
        **pinned,
        "git_commit": pinned["code"]["git_commit"],
        "sessions": [{"started": now, "code": pinned["code"], "versions": pinned["versions"]}],
        "created": now,
        "updated": now,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _resolved_spec(existing: Mapping[str, Any], source: str) -> dict[str, Any]:
    resolved = existing.get("spec_resolved")
    if not isinstance(resolved, dict):
        raise ConfigError(source, "spec_resolved", "missing or not an object: not a sweep.json "
                          "nplsim wrote")  # fmt: skip
    return resolved


def _resume(claimed: Claim, manifest: dict[str, Any], allow_different_code: bool) -> None:
    """Check that the sweep in the claimed directory may be continued with this spec and this
    code, clean what an interrupted sweep left half-written, and carry its history over."""
    out = claimed.path
    path = out / MANIFEST
    existing = read_json(path, "--resume")
    source = str(path)
    if _resolved_spec(existing, source) != manifest["spec_resolved"]:
        raise ConfigError(
            source, "spec", "differs from the spec this sweep was started with",
            "the same spec with --resume, or another --out directory",
        )  # fmt: skip
    if existing.get("base_config_hash") != manifest["base_config_hash"]:
        raise ConfigError(
            source, "base", "the base scenario changed since this sweep was started",
            "another --out directory",
        )  # fmt: skip
    differences = code_differences(existing)
    if differences and not allow_different_code:
        raise ConfigError(
            source, "code", f"this sweep was begun under other code: {'; '.join(differences)}",
            f"the same code, or pass {ALLOW_FLAG} to mix runs of both in one sweep",
        )  # fmt: skip
    for folder in (out, _runs_dir(out), out / FAILURES_DIR):
        if not folder.is_dir():
            raise ConfigError(claimed.shown, "--resume", f"{folder} is missing",
                              "a sweep directory nplsim wrote")  # fmt: skip
        check_writable(folder, claimed.shown)
    _clean_stale(out)
    earlier = existing.get("sessions")
    sessions = [s for s in earlier if isinstance(s, dict)] if isinstance(earlier, list) else []
    if differences:
        manifest["sessions"][-1]["note"] = f"{RERUN_NOTE}: {'; '.join(differences)}"
    manifest["sessions"] = [*sessions, *manifest["sessions"]]
    manifest["created"] = existing.get("created", manifest["created"])
    for key in ("code", "presets", "versions", "git_commit"):  # what the sweep began under
        manifest[key] = existing.get(key, manifest[key])
    write_json_atomic(path, manifest)


def _create_store(claimed: Claim, manifest: Mapping[str, Any]) -> None:
    """Create the sweep's directory with its manifest in one rename (replacing an earlier sweep
    only if the claim allows), so that it never exists half-made."""
    with claimed.staging() as staging:
        (staging / RUNS_DIR).mkdir()
        (staging / FAILURES_DIR).mkdir()
        write_json_atomic(staging / MANIFEST, manifest)
        claimed.commit(staging, files=[MANIFEST])


def _store_manifest(claimed: Claim, manifest: Mapping[str, Any]) -> None:
    try:
        write_json_atomic(claimed.path / MANIFEST, manifest)
    except OSError as exc:
        raise claimed.write_error(exc, claimed.path / MANIFEST) from None


def _clean_stale(out_dir: Path) -> None:
    """Remove what an interrupted sweep left half-written (it never counts as finished)."""
    for folder in (out_dir, _runs_dir(out_dir), out_dir / FAILURES_DIR):
        for path in folder.glob(f"{TMP_PREFIX}*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


# ====================================================================== command line
def register_cli(sub: Any) -> None:
    """Add ``nplsim sweep SPEC --out DIR`` to the CLI's subparsers."""
    parser = sub.add_parser("sweep", help="run a parameter sweep from a TOML spec")
    parser.add_argument("spec", help="sweep spec, a TOML file (see docs/sweeps.md)")
    parser.add_argument("--out", required=True, help="results directory of the sweep")
    parser.add_argument("--workers", type=int, help="local worker processes (default: CPUs)")
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tls://head:8786"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the sweep in --out (retries failed runs)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the earlier sweep in --out"
    )
    parser.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="with --resume: continue a sweep begun under other code or presets",
    )
    add_yes_flag(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    report = run_sweep(
        args.spec,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        resume=args.resume,
        overwrite=args.overwrite,
        allow_different_code=args.allow_different_code,
        yes=args.yes,
        progress=not args.quiet,
    )
    rows = [
        ("runs", f"{report.total}"),
        ("done", f"{report.done}"),
        ("skipped", f"{report.skipped}"),
        ("failed", f"{report.failed}"),
        ("runs/minute", f"{report.runs_per_minute:,.1f}"),
        ("out", printable(report.out_dir)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if report.failed:
        where = printable(report.out_dir / FAILURES_DIR)
        print(f"nplsim: {report.failed} of {report.total} runs failed; each is described in "
              f"{where}; retry them with --resume", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED_RUNS
    return 0
