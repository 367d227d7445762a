"""``nplsim calibrate``: Bayesian calibration by approximate Bayesian computation (ABC-SMC).

The search is pyabc's sequential Monte Carlo: a population of parameter vectors (particles) is
drawn from the priors; each particle runs the scenario ``seeds_per_particle`` times and is kept
if its moments lie within a distance ``epsilon`` of the targets; each generation perturbs the
last one's particles and tightens ``epsilon`` (the median of the last distances), until
``generations`` have been made or ``epsilon`` reaches ``min_epsilon``. The distance is the
Euclidean norm of each fitted moment's gap from the centre of its band, in units of the band's
half-width: a particle whose every moment lies inside its band is at distance at most
``sqrt(#moments)``, and ``epsilon = 1`` is a tight fit.

The results directory holds ``calibration.json`` (the spec, pins, sessions), ``history/abc.db``
(pyabc's SQLite history: every generation, written when it is complete) and ``results/`` (the
posterior, the fit table, diagnostics, figures, the calibrated scenario; see
:mod:`nplsim.experiments.calibration_report`). A calibration that was stopped — Ctrl-C, SIGTERM,
a killed machine — continues with ``--resume`` from its last complete generation: a generation cut
off half-way is sampled again, none is counted twice.

Each particle's runs use seeds derived from the spec's seed and the particle's parameter values,
so a particle's moments do not depend on which worker computed them. With ``--workers 1`` the
sampler itself is seeded from the spec, so that the whole calibration repeats exactly; in
parallel (local pool or Dask) the order in which particles arrive differs between runs, and two
calibrations agree within Monte Carlo error only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import shutil
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from nplsim.experiments.calibration_spec import LoadedCalibration, ParameterPrior, load_calibration
from nplsim.experiments.fact_statistics import run_statistics
from nplsim.experiments.facts_spec import UNIT_SCALE
from nplsim.experiments.interrupt import deferred_in_methods
from nplsim.experiments.options import add_yes_flag
from nplsim.experiments.pool import process_pool, resolve_workers
from nplsim.experiments.provenance import ALLOW_FLAG, code_differences, pins
from nplsim.experiments.seeds import MAX_SEED
from nplsim.experiments.store import Claim, claim, default_out, write_json_atomic
from nplsim.market.errors import ConfigError, printable, read_json

logger = logging.getLogger(__name__)

MANIFEST = "calibration.json"
HISTORY_DIR = "history"
DATABASE = "abc.db"
RESULTS_DIR = "results"
JOBS_PER_WORKER = 2  # particles in flight per worker: keeps workers busy, wastes little at the end


# ====================================================================== the model side
def particle_seeds(values: Mapping[str, float], seed: int, count: int) -> list[int]:
    """The seeds of one particle's runs: derived from the spec's seed and the parameter values
    (rounded to 12 significant digits), so that they do not depend on the worker or the order."""
    text = json.dumps({k: float(f"{v:.12g}") for k, v in sorted(values.items())}, sort_keys=True)
    digest = hashlib.sha256(f"{seed}|{text}".encode()).digest()
    first = int.from_bytes(digest[:8], "big") % (MAX_SEED - count)
    return [first + i for i in range(count)]


def pyabc_name(key: str) -> str:
    """The name of a parameter inside pyabc (its history stores names as given)."""
    return key.replace(".", "__")


@dataclass(frozen=True)
class Simulator:
    """One particle's moments: the scenario run with the particle's parameter values, each
    fitted moment's statistic averaged over the particle's seeds, in the fact's unit. Picklable,
    for process pools and Dask workers."""

    scenario: str
    base_overrides: tuple[tuple[str, Any], ...]
    keys: tuple[tuple[str, str], ...]  # (pyabc name, override key)
    statistics: tuple[tuple[str, Any, float], ...]  # (moment id, StatisticSpec, unit scale)
    seeds_per_particle: int
    seed: int

    def values(self, parameters: Mapping[str, Any]) -> dict[str, float]:
        """The override values of a pyabc parameter dictionary."""
        return {key: float(parameters[name]) for name, key in self.keys}

    def __call__(self, parameters: Mapping[str, Any]) -> dict[str, float]:
        values = self.values(parameters)
        seeds = particle_seeds(values, self.seed, self.seeds_per_particle)
        return self.moments(values, seeds)

    def moments(self, values: Mapping[str, float], seeds: list[int]) -> dict[str, float]:
        """The moments of the runs with ``seeds``, averaged (a NaN seed is left out)."""
        overrides = {**dict(self.base_overrides), **values}
        specs = tuple((mid, spec) for mid, spec, _ in self.statistics)
        runs = [run_statistics(self.scenario, s, None, specs, overrides) for s in seeds]
        found = {}
        for mid, _, scale in self.statistics:
            column = np.array([run[mid] for run in runs], dtype=float) * scale
            finite = column[np.isfinite(column)]
            found[mid] = float(finite.mean()) if finite.size else math.nan
        return found


def simulator(loaded: LoadedCalibration, held_out: bool = False) -> Simulator:
    """The simulator of a spec's fitted moments (or of every moment, ``held_out=True``)."""
    moments = loaded.moments if held_out else loaded.fitted
    return Simulator(
        scenario=loaded.scenario,
        base_overrides=tuple(sorted(loaded.overrides().items())),
        keys=tuple((pyabc_name(key), key) for key in loaded.spec.parameters),
        statistics=tuple((m.id, m.fact.statistic, UNIT_SCALE[m.fact.unit]) for m in moments),
        seeds_per_particle=loaded.spec.seeds_per_particle,
        seed=loaded.spec.seed,
    )


def targets(loaded: LoadedCalibration) -> tuple[dict[str, float], dict[str, float]]:
    """The observed moments (each band's centre) and the distance weights (1 / half-width)."""
    observed, weights = {}, {}
    for moment in loaded.fitted:
        low, high = moment.fact.band()
        observed[moment.id] = (low + high) / 2
        weights[moment.id] = 2 / (high - low)
    return observed, weights


def prior_rv(prior: ParameterPrior) -> Any:
    """The pyabc random variable of a prior."""
    import pyabc

    if prior.prior == "uniform":
        return pyabc.RV("uniform", prior.low, prior.high - prior.low)
    if prior.prior == "loguniform":
        return pyabc.RV("loguniform", prior.low, prior.high)
    mean, sd = float(prior.mean), float(prior.sd)  # type: ignore[arg-type]
    a, b = (prior.low - mean) / sd, (prior.high - mean) / sd
    return pyabc.RV("truncnorm", a, b, loc=mean, scale=sd)


# ====================================================================== the search
@dataclass(frozen=True)
class CalibrationReport:
    """What a call of :func:`calibrate` did."""

    out_dir: Path
    generations: int  # complete generations in the history
    new_generations: int  # of which made by this call
    epsilon: float  # the last generation's threshold
    simulations: int  # simulations in the history
    wall_time_s: float


def calibrate(
    spec: str | Path | LoadedCalibration,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    allow_different_code: bool = False,
    progress: bool = True,
) -> CalibrationReport:
    """Run (or continue) a calibration and write its results.

    Args:
        spec: a spec file or a loaded spec.
        out_dir: the results directory.
        workers: processes of the local pool (1: in this process, deterministic).
        scheduler: a Dask scheduler's address to run on instead.
        resume: continue the calibration in ``out_dir`` from its last complete generation.
        overwrite: replace an earlier calibration in ``out_dir``.
        allow_different_code: resume one begun under other code (the manifest says so).
        progress: one line per generation on stderr, with the time left.

    Raises:
        ConfigError: a bad spec or option, or an ``out_dir`` that may not be written, before
            anything is written.
    """
    started = time.perf_counter()
    loaded = spec if isinstance(spec, LoadedCalibration) else load_calibration(spec)
    if resume and overwrite:
        raise ConfigError("--resume", "--overwrite", "give one of them, not both")
    if workers is not None and scheduler:
        raise ConfigError("--workers", str(workers), "applies only to the local process pool")
    n_workers = 1 if scheduler else resolve_workers(workers)
    config_pins = pins(_config(loaded))
    manifest = _manifest(loaded, config_pins, n_workers, scheduler)
    claimed = claim(out_dir, "calibrate", overwrite=overwrite, resume=resume)
    failed = True
    try:
        if claimed.existing is not None and resume:
            _resume(claimed, manifest, allow_different_code)
        else:
            _create(claimed, manifest)
        failed = False
        history_before = _complete_generations(claimed.path, strict=True)
        with ExitStack() as stack:
            sampler = _sampler(stack, n_workers, scheduler)
            history = _search(loaded, claimed.path, sampler, history_before, progress)
        from nplsim.experiments.calibration_report import write_results

        write_results(loaded, claimed, history, workers=n_workers, scheduler=scheduler)
        done = history.max_t + 1
        epsilon = float(history.get_all_populations()["epsilon"].iloc[-1])
        manifest["status"] = {"generations": done, "epsilon": epsilon,
                              "simulations": int(history.total_nr_simulations)}  # fmt: skip
        manifest["updated"] = _now()
        write_json_atomic(claimed.path / MANIFEST, manifest)
    finally:
        claimed.release(failed)
    return CalibrationReport(
        out_dir=Path(out_dir),
        generations=done,
        new_generations=done - history_before,
        epsilon=epsilon,
        simulations=int(history.total_nr_simulations),
        wall_time_s=time.perf_counter() - started,
    )


def _config(loaded: LoadedCalibration) -> Any:
    from nplsim.market.scenario import load_scenario

    return load_scenario(loaded.scenario, loaded.overrides())[0]


def _search(loaded: LoadedCalibration, out: Path, sampler: Any, before: int, progress: bool) -> Any:
    """Run pyabc's ABC-SMC for the generations still to make; return its history."""
    import pyabc

    # a Ctrl-C or SIGTERM waits until the history's database call in progress has ended, so
    # that pyabc can still close the history (it marks the run done) and the command end
    deferred_in_methods(pyabc.History)
    spec = loaded.spec
    observed, weights = targets(loaded)
    prior = pyabc.Distribution(
        **{pyabc_name(key): prior_rv(p) for key, p in spec.parameters.items()}
    )
    abc = pyabc.ABCSMC(
        simulator(loaded),
        prior,
        pyabc.PNormDistance(p=2, fixed_weights=weights),
        population_size=spec.population,
        sampler=sampler,
    )
    database = f"sqlite:///{out / HISTORY_DIR / DATABASE}"
    # the sampler's own random numbers: seeded from the spec and the generation it starts at, so
    # that a calibration in one process repeats exactly (and a resumed one from where it stopped)
    np.random.seed((spec.seed * 1_000_003 + before) % 2**32)  # noqa: NPY002 — pyabc's own RNG
    with _generation_lines(spec.generations, before, enabled=False):
        if before > 0:
            abc.load(database, 1)
        else:
            abc.new(database, observed)
    remaining = spec.generations - before
    last_eps = _last_epsilon(abc.history)
    if remaining <= 0 or (last_eps is not None and last_eps <= spec.min_epsilon):
        return abc.history
    with _generation_lines(spec.generations, before, enabled=progress):
        abc.run(minimum_epsilon=spec.min_epsilon, max_nr_populations=remaining)
    return abc.history


def _last_epsilon(history: Any) -> float | None:
    if history.max_t < 0:
        return None
    return float(history.get_all_populations()["epsilon"].iloc[-1])


def _complete_generations(out: Path, strict: bool = False) -> int:
    """Generations complete in the history of ``out`` (0 if none, or if it cannot be read yet
    — unless ``strict``: then an unreadable history is a ConfigError). Read-only: opening it
    with pyabc's ``History`` and closing it with ``done`` would write the run's end time, and
    take a write lock, while a calibration may be writing."""
    path = out / HISTORY_DIR / DATABASE
    if not path.is_file():
        return 0
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            (last,) = db.execute("SELECT MAX(t) FROM populations WHERE abc_smc_id = 1").fetchone()
    except sqlite3.Error as exc:  # a database being created, or damaged
        if strict:
            raise ConfigError(str(path), "history", f"cannot be read: {exc}".split("\n")[0],
                              "the history nplsim calibrate wrote") from None  # fmt: skip
        return 0
    return 0 if last is None else max(int(last) + 1, 0)


def _sampler(stack: ExitStack, workers: int, scheduler: str | None) -> Any:
    """pyabc's sampler: in this process (one worker), on the shared local pool, or on Dask."""
    from pyabc.sampler import ConcurrentFutureSampler, SingleCoreSampler

    if scheduler:
        from nplsim.experiments.sweep import _connect

        client = _connect(scheduler)
        stack.callback(client.close)
        executor = client.get_executor(pure=False)
        jobs = JOBS_PER_WORKER * max(1, len(client.scheduler_info().get("workers", {})))
        return ConcurrentFutureSampler(executor, client_max_jobs=jobs)
    if workers == 1:
        return SingleCoreSampler()
    executor = stack.enter_context(process_pool(workers))
    return ConcurrentFutureSampler(executor, client_max_jobs=JOBS_PER_WORKER * workers)


@contextmanager
def _generation_lines(total: int, before: int, enabled: bool) -> Iterator[None]:
    """pyabc's log replaced, while it runs, by one line per finished generation on stderr (if
    ``enabled``): its threshold, acceptance and the time left (the mean time of this call's
    generations times those still to make)."""
    source = logging.getLogger("ABC")
    saved = (source.handlers[:], source.level, source.propagate)
    source.handlers = [_GenerationHandler(total, before)] if enabled else []
    source.setLevel(logging.INFO if enabled else logging.WARNING)
    source.propagate = False
    try:
        yield
    finally:
        source.handlers, level, source.propagate = saved[0], saved[1], saved[2]
        source.setLevel(level)


class _GenerationHandler(logging.Handler):
    def __init__(self, total: int, before: int) -> None:
        super().__init__(logging.INFO)
        self.total, self.done, self.started = total, before, time.perf_counter()
        self.eps = ""
        self.made = 0

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        message = record.getMessage()
        if message.startswith("t: "):
            self.eps = message.split("eps:")[-1].strip().rstrip(".")
        elif message.startswith("Accepted:"):
            self.done += 1
            self.made += 1
            elapsed = time.perf_counter() - self.started
            left = elapsed / self.made * (self.total - self.done)
            accepted = message.split("=")[1].split(",")[0].strip()
            print(f"calibrate: generation {self.done}/{self.total}  epsilon {float(self.eps):.3g}"
                  f"  acceptance {float(accepted):.2f}  elapsed {elapsed:.0f} s"
                  f"  left ~{left:.0f} s", file=sys.stderr, flush=True)  # fmt: skip


# ====================================================================== the store
def _manifest(
    loaded: LoadedCalibration, config_pins: dict[str, Any], workers: int, scheduler: str | None
) -> dict[str, Any]:
    return {
        "kind": "calibrate",
        "spec_file": loaded.source,
        "spec_resolved": loaded.spec.model_dump(mode="json"),
        "scenario": loaded.scenario,
        "moments": {
            m.id: {"held_out": m.held_out, "band": list(m.fact.band()), "unit": m.fact.unit}
            for m in loaded.moments
        },  # fmt: skip
        "created": _now(),
        "sessions": [{"started": _now(), "workers": workers, "scheduler": scheduler}],
        **config_pins,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _create(claimed: Claim, manifest: Mapping[str, Any]) -> None:
    """The calibration's directory with its manifest and an empty history folder, in one rename."""
    with claimed.staging() as staging:
        (staging / HISTORY_DIR).mkdir()
        write_json_atomic(staging / MANIFEST, manifest)
        claimed.commit(staging, files=[MANIFEST])


def _resume(claimed: Claim, manifest: dict[str, Any], allow_different_code: bool) -> None:
    """Check that the calibration in the claimed directory may go on with this spec and code."""
    path = claimed.path / MANIFEST
    existing = read_json(path, "--resume")
    if existing.get("spec_resolved") != manifest["spec_resolved"]:
        raise ConfigError(str(path), "spec", "differs from the spec this calibration was started "
                          "with", "the same spec with --resume, or another --out")  # fmt: skip
    differences = code_differences(existing)
    if differences and not allow_different_code:
        raise ConfigError(str(path), "code", f"begun under other code: {'; '.join(differences)}",
                          f"the same code, or {ALLOW_FLAG}")  # fmt: skip
    if not (claimed.path / HISTORY_DIR).is_dir():
        raise ConfigError(claimed.shown, "--resume", "its history folder is missing",
                          "a calibration directory nplsim wrote")  # fmt: skip
    if differences:
        manifest["sessions"][-1]["note"] = "resumed under different code: " + "; ".join(differences)
    manifest["sessions"] = [*existing.get("sessions", []), *manifest["sessions"]]
    manifest["created"] = existing.get("created", manifest["created"])
    for key in ("code", "presets", "versions", "git_commit"):
        manifest[key] = existing.get(key, manifest.get(key))
    write_json_atomic(path, manifest)


def replace_results(claimed: Claim, staging: Path) -> None:
    """Put a finished ``results/`` folder in place of an earlier one (after a resume)."""
    final = claimed.path / RESULTS_DIR
    if final.exists():
        old = claimed.path / f".tmp-old-results-{staging.name[-8:]}"
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)


# ====================================================================== command line
def register_cli(sub: Any) -> None:
    """Add ``nplsim calibrate`` to the subcommands."""
    p = sub.add_parser(
        "calibrate",
        help="Bayesian calibration (ABC-SMC) of a scenario's behavioural parameters to facts",
        description="Fit a scenario's behavioural parameters to target moments by approximate "
        "Bayesian computation (pyabc's ABC-SMC); writes the posterior, the fit table, "
        "diagnostics, figures and a calibrated scenario file.",
    )
    p.add_argument("spec", help="calibration spec (TOML); see docs/calibration.md")
    p.add_argument("--out", help="results directory (default results/calibrate-SPEC)")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per CPU; "
                   "1 runs in this process and repeats exactly)")  # fmt: skip
    p.add_argument("--scheduler", help="a Dask scheduler address to run on (tcp:// or tls://)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the calibration in --out from its last complete generation",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier calibration")
    p.add_argument(ALLOW_FLAG, action="store_true", dest="allow_different_code",
                   help="resume a calibration begun under other code")  # fmt: skip
    add_yes_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    loaded = load_calibration(args.spec)
    out = args.out if args.out else default_out(f"calibrate-{Path(args.spec).stem}")
    report = calibrate(
        loaded, out, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
        overwrite=args.overwrite, allow_different_code=args.allow_different_code,
        progress=not args.quiet,
    )  # fmt: skip
    fit = (Path(out) / RESULTS_DIR / "fit.md").read_text(encoding="utf-8")
    print(fit)
    print(f"{report.generations} generations ({report.new_generations} new), epsilon "
          f"{report.epsilon:.3g}, {report.simulations} simulations, "
          f"{report.wall_time_s:.0f} s")  # fmt: skip
    print(f"results: {printable(out)}")
    return 0
