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
import logging
import shutil
import sys
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from nplsim.experiments.store import (
    TMP_PREFIX,
    Claim,
    check_writable,
    claim,
    write_json_atomic,
)
from nplsim.experiments.sweep_spec import (  # noqa: F401 (the sweep's public names, re-exported)
    FAILURES_DIR,
    INT64_MAX,
    INT64_MIN,
    INT64_RANGE,
    MANIFEST,
    OUTPUTS,
    RUN_ID_LENGTH,
    RUNS_DIR,
    Output,
    ParameterSpec,
    RunSpec,
    SamplingSpec,
    SweepSpec,
    _canonical,
    _check_consistency,
    _load,
    _Loaded,
    _normal,
    _sampling_warnings,
    canonical_value,
    count_runs,
    distinct_values,
    expand,
    load_spec,
    run_id,
)
from nplsim.experiments.sweep_store import (  # noqa: F401 (the sweep's public names, re-exported)
    _error_record,
    _partition,
    _resolved_spec,
    _runs_dir,
    finished_run_ids,
    load_sweep,
    record_failure,
    simulate_run,
    write_partition,
)
from nplsim.experiments.sweep_summary import SUMMARY_DIR, write_summary
from nplsim.market.errors import ConfigError, printable, read_json
from nplsim.market.scenario import ScenarioConfig, list_scenarios, load_scenario

logger = logging.getLogger(__name__)

EXIT_FAILED_RUNS = 1  # exit status of a sweep in which some runs failed
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # scheduler hosts that are this machine


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
        loaded = _Loaded(spec, "spec", spec.resolved(), Path.cwd())
    if workers is not None:
        resolve_workers(workers)
    if workers is not None and (scheduler or executor):
        raise ConfigError("--workers", str(workers), "applies only to the local process pool")
    if resume and overwrite:
        raise ConfigError("--resume", "--overwrite", "give one of them, not both")
    confirm_runs(count_runs(loaded.spec), yes, loaded.source)
    base = _base_config(loaded)
    draws, posterior = _posterior(loaded, base)
    runs = expand(loaded.spec, loaded.source, loaded.base_dir, draws)
    _check_runs(loaded, base, runs)
    manifest = _manifest(loaded, base, len(runs))
    if posterior is not None:
        manifest["posterior"] = posterior
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
        write_summary(out, loaded.spec)  # outcomes table and figures (with outcomes only)
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


def _posterior(loaded: _Loaded, base: ScenarioConfig) -> tuple[Any, dict[str, Any] | None]:
    """The posterior draws a spec crosses with its points (``posterior``, ``draws``), or none."""
    spec = loaded.spec
    if spec.posterior is None or spec.draws is None:
        return None, None
    from nplsim.experiments.posterior import check_draws, load_draws

    directory = Path(spec.posterior)  # read beside the spec file when relative
    directory = directory if directory.is_absolute() else loaded.base_dir / directory
    draws, info = load_draws(directory, spec.draws, loaded.source, "posterior")
    info["directory"] = spec.posterior  # as written (the manifest stays machine-free)
    fixed = [*spec.fixed_overrides(), *spec.parameters]
    check_draws(info, base.name, fixed, loaded.source, "posterior")
    return draws, info


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
        "spec_resolved": loaded.spec.resolved(),
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
    then, now = existing.get("posterior"), manifest.get("posterior")
    if (then or {}).get("posterior_sha256") != (now or {}).get("posterior_sha256"):
        raise ConfigError(
            source, "posterior", "the posterior changed since this sweep was started",
            "another --out directory",
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
    if (report.out_dir / SUMMARY_DIR).is_dir():
        rows.append(("summary", printable(report.out_dir / SUMMARY_DIR / "outcomes.md")))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if report.failed:
        where = printable(report.out_dir / FAILURES_DIR)
        print(f"nplsim: {report.failed} of {report.total} runs failed; each is described in "
              f"{where}; retry them with --resume", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED_RUNS
    return 0
