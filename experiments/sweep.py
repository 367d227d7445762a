"""Parameter sweeps: expand a TOML spec into runs, run them on any executor, store Parquet per run.

A sweep spec names a base scenario, fixed overrides, the parameters to vary (a grid of values, or
Latin-hypercube / Sobol samples of ranges crossed with categorical values) and the seeds. Each run
is simulated by a worker — a local process pool, or a Dask cluster through
``distributed.Client(...).get_executor()`` — which sends its tables back as Parquet bytes. This
process writes each run into a temporary directory and renames it to ``runs/run_id=RUNID``, so a
run is finished iff its partition exists and an interrupted sweep resumes without duplicates.
See ``docs/sweeps.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import logging
import math
import multiprocessing
import os
import secrets
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
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

from nplsim.market.errors import ConfigError, config_error_from_validation, read_toml
from nplsim.market.scenario import DEFAULT_SCENARIO, ScenarioConfig, list_scenarios, load_scenario

logger = logging.getLogger(__name__)

OUTPUTS = ("model", "summary", "banks", "deals", "trades")
Output = Literal["model", "summary", "banks", "deals", "trades"]
MANIFEST = "sweep.json"
RUNS_DIR = "runs"
FAILURES_DIR = "failures"
RUN_ID_LENGTH = 12  # hex digits of SHA-256: 48 bits, collision-free for any practical sweep
TMP_PREFIX = ".tmp-"
# Seeds and integer parameter values are stored in 64-bit integer Parquet columns.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_SEED = INT64_MAX
SEED_RANGE = f"integers from 0 to 2**63 - 1 ({MAX_SEED})"
INT64_RANGE = f"integers from -2**63 to 2**63 - 1 ({INT64_MIN} to {INT64_MAX})"


# ====================================================================== the spec
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterSpec(_Strict):
    """One varied parameter: explicit ``values`` (grid or categorical) or a ``low``–``high`` range.

    A range with integer bounds is sampled as integers (both ends included); with a float bound, as
    floats in ``[low, high)``.
    """

    values: list[Any] | None = Field(default=None, min_length=1)
    low: StrictInt | StrictFloat | None = None
    high: StrictInt | StrictFloat | None = None

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
        if self.values is not None and len({_canonical(v) for v in self.values}) < len(self.values):
            raise ValueError("values must be distinct")
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
        outside = [seed for seed in spec.seeds if not 0 <= seed <= MAX_SEED]
        if outside:
            raise ConfigError(source, "seeds", f"seed {outside[0]} out of range", SEED_RANGE)
        if len(set(spec.seeds)) < len(spec.seeds):
            raise ConfigError(source, "seeds", "seeds must be distinct")
    last = spec.seed_start + (spec.replications or 1) - 1
    if spec.seeds is None and last > MAX_SEED:
        raise ConfigError(
            source, "seed_start", f"the last seed, seed_start + replications - 1 = {last}, is out"
            " of range", SEED_RANGE,
        )  # fmt: skip
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
def expand(spec: SweepSpec, source: str = "spec") -> list[RunSpec]:
    """Every run of a sweep: parameter points (outer) × seeds (inner), in a stable order.

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
            runs.append(RunSpec(rid, params, seed, {**fixed, **params}))
    return runs


def run_id(base: str, quarters: int | None, overrides: Mapping[str, Any], seed: int) -> str:
    """Short stable id of a run: SHA-256 of canonical JSON, the same on every machine."""
    payload = {"base": base, "quarters": quarters, "overrides": dict(overrides), "seed": seed}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:RUN_ID_LENGTH]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _normal(key: str) -> str:
    return key.replace("__", ".")


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
    """Write one run's tables into a temporary directory, then rename it into place atomically."""
    final = _partition(out_dir, rid)
    staging = _runs_dir(out_dir) / f"{TMP_PREFIX}{rid}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        for name, data in tables.items():
            (staging / f"{name}.parquet").write_bytes(data)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (out_dir / FAILURES_DIR / f"{rid}.json").unlink(missing_ok=True)
    return final


def record_failure(out_dir: Path, run: RunSpec, error: Mapping[str, str]) -> Path:
    """Write ``failures/RUNID.json``: the run, its parameters and seed, and what went wrong."""
    record = {"run_id": run.run_id, "params": run.params, "seed": run.seed, **error}
    path = out_dir / FAILURES_DIR / f"{run.run_id}.json"
    _write_json_atomic(path, record)
    return path


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    staging = path.with_name(f"{TMP_PREFIX}{path.name}-{secrets.token_hex(4)}")
    staging.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(staging, path)


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
    outputs = json.loads(manifest.read_text())["spec_resolved"]["outputs"]
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
        progress: show a progress bar on stderr.

    Raises:
        ConfigError: bad spec, bad options, unreachable scheduler, or an ``out_dir`` that already
            holds a sweep without ``resume`` — always before anything is written.
    """
    started = time.perf_counter()
    if isinstance(spec, str | Path):
        loaded = _load(spec)
    else:
        _check_consistency(spec, "spec")
        loaded = _Loaded(spec, "spec", spec.model_dump(mode="json"), Path.cwd())
    if workers is not None and workers < 1:
        raise ConfigError("--workers", str(workers), "must be at least 1")
    if workers is not None and (scheduler or executor):
        raise ConfigError("--workers", str(workers), "applies only to the local process pool")
    base = _base_config(loaded)
    runs = expand(loaded.spec, loaded.source)
    _check_runs(loaded, base, runs)
    out_dir = Path(out_dir)
    manifest = _manifest(loaded, base, len(runs))
    existing = _existing_manifest(out_dir, resume, manifest)

    with ExitStack() as stack:
        if executor is None:
            executor = _executor(stack, scheduler, workers)
        for warning in _sampling_warnings(loaded.spec):  # only now that everything is accepted
            logger.warning("%s", warning)
        if existing is None:
            _create_store(out_dir, manifest)
        else:
            manifest["created"] = existing.get("created", manifest["created"])
            _clean_stale(out_dir)
        finished = set(finished_run_ids(out_dir))
        pending = [run for run in runs if run.run_id not in finished]
        skipped = len(runs) - len(pending)
        done, failed = _execute(executor, base, pending, loaded.spec, out_dir, skipped, progress)

    manifest["updated"] = _now()
    manifest["status"] = {
        "finished": len(finished_run_ids(out_dir)),
        "failed": len(list((out_dir / FAILURES_DIR).glob("*.json"))),
    }
    _write_json_atomic(out_dir / MANIFEST, manifest)
    return SweepReport(
        out_dir=out_dir,
        total=len(runs),
        done=done,
        skipped=skipped,
        failed=len(failed),
        failed_run_ids=tuple(sorted(failed)),
        wall_time_s=time.perf_counter() - started,
    )


def _execute(
    executor: Executor,
    base: ScenarioConfig,
    pending: list[RunSpec],
    spec: SweepSpec,
    out_dir: Path,
    skipped: int,
    progress: bool,
) -> tuple[int, list[str]]:
    from tqdm import tqdm

    outputs = tuple(spec.outputs)
    done, failed = 0, []
    futures = {executor.submit(simulate_run, base, run, outputs): run for run in pending}
    bar = tqdm(
        total=skipped + len(pending), initial=skipped, desc="sweep", unit="run",
        file=sys.stderr, disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    try:
        with bar:
            for future in as_completed(futures):
                run = futures.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # the worker itself died or could not run the task
                    result = {"error": _error_record(exc)}
                if "error" in result:
                    record_failure(out_dir, run, result["error"])
                    failed.append(run.run_id)
                    logger.info("run %s failed: %s", run.run_id, result["error"]["message"])
                else:
                    write_partition(out_dir, run.run_id, result["tables"])
                    done += 1
                bar.set_postfix(failed=len(failed), refresh=False)
                bar.update()
    finally:
        for future in futures:
            future.cancel()
    return done, failed


def _executor(stack: ExitStack, scheduler: str | None, workers: int | None) -> Executor:
    if scheduler:
        client = _connect(scheduler)
        stack.callback(client.close)
        return client.get_executor(pure=False)
    # forkserver: workers never inherit this process's threads (tqdm, Dask, a GUI); the server
    # imports the model once, so every worker it forks starts without re-importing it
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["nplsim.experiments.run"])
    pool = ProcessPoolExecutor(max_workers=workers or os.cpu_count(), mp_context=context)
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)
    return pool


def _connect(address: str) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout="5s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
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
    """Resolve every distinct set of overrides, so a bad name or value fails before any run."""
    spec, seen = loaded.spec, set()
    for run in runs:
        key = _canonical(run.overrides)
        if key in seen:
            continue
        seen.add(key)
        try:
            load_scenario(base, run.overrides)
        except ConfigError as exc:
            raise _locate(exc, spec, run, loaded.source) from None


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
    from nplsim.experiments.run import _git_commit, _versions

    versions = _versions()
    for package in ("dask", "distributed"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    base_json = _canonical(base.model_dump(mode="json"))
    now = _now()
    return {
        "spec": loaded.raw,
        "spec_file": loaded.source if loaded.source != "spec" else None,
        "spec_resolved": loaded.spec.model_dump(mode="json"),
        "base_config_hash": hashlib.sha256(base_json.encode()).hexdigest(),
        "runs": n_runs,
        "versions": versions,
        "git_commit": _git_commit(),
        "created": now,
        "updated": now,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _existing_manifest(
    out_dir: Path, resume: bool, manifest: dict[str, Any]
) -> dict[str, Any] | None:
    """The manifest of the sweep already in ``out_dir`` (resume), or None for a new sweep."""
    from nplsim.experiments.run import check_creatable, check_writable, occupied

    path = out_dir / MANIFEST
    try:
        holds_sweep = path.is_file()
    except OSError:  # a directory above it that may not be searched: check_creatable says so
        holds_sweep = False
    if not holds_sweep:
        check_creatable(out_dir)
        if occupied(out_dir):
            raise ConfigError(
                str(out_dir), "--out", "exists and is not an nplsim sweep directory",
                "a new or empty directory",
            )  # fmt: skip
        return None
    if not resume:
        raise ConfigError(
            str(out_dir), "--out", "already holds a sweep",
            "pass --resume to continue it, or choose another directory",
        )  # fmt: skip
    existing = json.loads(path.read_text())
    if existing.get("spec_resolved") != manifest["spec_resolved"]:
        raise ConfigError(
            str(path), "spec", "differs from the spec this sweep was started with",
            "the same spec with --resume, or another --out directory",
        )  # fmt: skip
    if existing.get("base_config_hash") != manifest["base_config_hash"]:
        raise ConfigError(
            str(path), "base", "the base scenario changed since this sweep was started",
            "another --out directory",
        )  # fmt: skip
    check_writable(out_dir, out_dir)  # a resumed sweep writes inside it, not beside it
    return existing


def _create_store(out_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Create ``out_dir`` with its manifest in one rename, so it never exists half-made."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f"{TMP_PREFIX}{out_dir.name}-{secrets.token_hex(4)}")
    staging.mkdir()
    try:
        (staging / RUNS_DIR).mkdir()
        (staging / FAILURES_DIR).mkdir()
        _write_json_atomic(staging / MANIFEST, manifest)
        os.rename(staging, out_dir)  # replaces an empty out_dir atomically on POSIX
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _clean_stale(out_dir: Path) -> None:
    """Remove what an interrupted sweep left half-written (it never counts as finished)."""
    for folder in (out_dir, _runs_dir(out_dir), out_dir / FAILURES_DIR):
        folder.mkdir(exist_ok=True)
        for path in folder.glob(f"{TMP_PREFIX}*"):
            if path.is_dir():
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
        "--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://head:8786"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the sweep in --out (retries failed runs)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    report = run_sweep(
        args.spec,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        resume=args.resume,
        progress=not args.quiet,
    )
    rows = [
        ("runs", f"{report.total}"),
        ("done", f"{report.done}"),
        ("skipped", f"{report.skipped}"),
        ("failed", f"{report.failed}"),
        ("runs/minute", f"{report.runs_per_minute:,.1f}"),
        ("out", str(report.out_dir)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if report.failed:
        print(f"failed runs are described in {report.out_dir / FAILURES_DIR}; retry with --resume")
    return 0
