"""Speed targets: measure each of nplsim's performance targets and say whether it holds.

Usage::

    python benchmarks/targets.py                  # every target at full size (several minutes)
    python benchmarks/targets.py --quick          # small sizes, about a minute: checks the script
    python benchmarks/targets.py --only T1,T3 --skip-5m --repeats 5

The targets, and what this script times for each (``--quick`` shrinks every size):

T1  Throughput at 1M loans: at least 100 times Mesa's BoltzmannWealth agent-steps/s (10,000
    agents on 100x100, its data collection on), one loan-quarter = one agent-step. One fresh
    process alternates a full nplsim run (construction + 40 quarters) with 20 Boltzmann steps,
    ``--repeats`` times, so that drift of the shared machine hits both. Reported: the median and
    min-max of the per-pair ratios.
T2  Linear cost. (a) Time at 1M loans / time at 100k (medians of repeats, each size in a fresh
    process) at most 11. (b) Banks: 4, 8 and 16 banks at a fixed number of loans per bank (the
    restart_2016 banks repeated); time at 2B banks / time at B banks at most 2.2 per doubling.
    Deals issued per run are reported next to it.
T3  Memory. (a) Peak RSS of a fresh process doing 1M-loan, 40-quarter runs under 1.5 GiB.
    (b) A 5M-loan, 40-quarter run completes (its own process, one repeat; ``--skip-5m``).
T4  Sweeps. (a) ``run_sweep`` of N runs of restart_2016 (default 100k loans, seeds 0..N-1)
    with 2 local workers gives at least 1.7 times the runs/min of 1 worker. (b) Per-run overhead
    of the runner under 5%: wall time of the 1-worker sweep / N against the mean time of the very
    same N runs done in one warm process by ``nplsim.experiments.sweep.simulate_run`` (model,
    Parquet tables as bytes; no pool, no files).
T5  Data collection and Parquet writing at most 15% of a default ``nplsim run``
    (``nplsim.experiments.run.run_to_directory``: restart_2016, 100k loans, 40 quarters, all
    outputs),
    timed by wrapping the model's collection methods and the writers in this process only.

The final block prints target, measured value and PASS/FAIL; results go to
``benchmarks/results/targets_<UTC stamp>.{csv,json}`` and ``scaling_<stamp>.png`` (a full run also
copies the figure to ``benchmarks/scaling.png``). The exit status is 0 whether targets hold or
not; it is non-zero only when the measurement itself fails.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import throughput as tp  # benchmarks/throughput.py, beside this file

HERE = Path(__file__).resolve().parent
RESULTS_DIR = tp.RESULTS_DIR
SCENARIO = tp.SCENARIO
COMMITTED_FIGURE = HERE / "scaling.png"
TARGET_IDS = ("T1", "T2", "T3", "T4", "T5")
MIB_LIMIT_T3 = 1.5 * 1024  # 1.5 GiB in MiB


# ====================================================================== sizes
@dataclass(frozen=True)
class Profile:
    """The sizes one invocation measures."""

    name: str
    t1_loans: int  # T1: nplsim size compared with Boltzmann
    small: int  # T2a: cost ratio large / small
    large: int  # T2a, T3a
    scaling: tuple[int, ...]  # the scaling figure (small and large included)
    huge: int | None  # T3b (None: not measured)
    loans_per_bank: int  # T2b
    bank_counts: tuple[int, ...]  # T2b, each the double of the one before
    sweep_runs: int  # T4
    sweep_loans: int | None  # T4 (None: the scenario's default)
    run_loans: int | None  # T5 (None: the scenario's default)


FULL = Profile(
    name="full",
    t1_loans=1_000_000,
    small=100_000,
    large=1_000_000,
    scaling=(100_000, 200_000, 500_000, 1_000_000, 2_000_000),
    huge=5_000_000,
    loans_per_bank=25_000,
    bank_counts=(4, 8, 16),
    sweep_runs=24,
    sweep_loans=None,
    run_loans=None,
)
QUICK = Profile(
    name="quick",
    t1_loans=200_000,
    small=20_000,
    large=200_000,
    scaling=(20_000, 50_000, 200_000),
    huge=None,
    loans_per_bank=5_000,
    bank_counts=(4, 8, 16),
    sweep_runs=8,
    sweep_loans=20_000,
    run_loans=20_000,
)


def loans_label(n: int) -> str:
    """100000 -> '100k', 5000000 -> '5M'."""
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1_000 and n % 100 == 0:
        return f"{n / 1_000:g}k"
    return f"{n:,}"


# ====================================================================== small helpers
def median_min_max(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fmt_range(lo: float, hi: float, spec: str, unit: str = "") -> str:
    return f"{lo:{spec}}–{hi:{spec}}{unit}"


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: the machine is shared, so the results record them."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


class WorkerError(RuntimeError):
    """A measurement subprocess exited with an error."""


def run_worker(mode: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run ``targets.py --worker MODE`` in a fresh process and return its JSON line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode]
    cmd += ["--params", json.dumps(params)]
    tp.log(f"$ targets.py --worker {mode} --params '{json.dumps(params)}'")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise WorkerError(f"worker {mode} {params} exited with status {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise WorkerError(f"worker {mode} printed no JSON result:\n{proc.stdout}")
    result = json.loads(lines[-1])
    result["process_wall_s"] = wall
    return result


# ====================================================================== workers (subprocesses)
def worker_t1(p: dict[str, Any]) -> dict[str, Any]:
    """T1: alternate nplsim runs and Boltzmann runs in this one process."""
    loans, repeats, seed = p["loans"], p["repeats"], p["seed"]
    agents, side, steps = p["mesa_agents"], p["mesa_side"], p["mesa_steps"]
    tp.log("  untimed Boltzmann warm-up (1 step)")
    tp.bench_boltzmann(agents, side, 1, 1, seed)
    nplsim_runs: list[dict[str, Any]] = []
    boltz_runs: list[dict[str, Any]] = []
    for rep in range(repeats):
        tp.log(f"  pair {rep + 1}/{repeats}")
        nplsim_runs.append(tp.bench_nplsim(loans, None, 1, seed))  # own tiny warm-up inside
        boltz_runs.append(tp.bench_boltzmann(agents, side, steps, 1, seed))
    quarters = nplsim_runs[0]["steps"]
    npl_tp = [loans * quarters / r["raw_run_s"][0] for r in nplsim_runs]
    boltz_tp = [agents * steps / r["raw_run_s"][0] for r in boltz_runs]
    return {
        "loans": loans,
        "quarters": quarters,
        "mesa_agents": agents,
        "mesa_side": side,
        "mesa_steps": steps,
        "nplsim_run_s": [r["raw_run_s"][0] for r in nplsim_runs],
        "nplsim_build_s": [r["raw_build_s"][0] for r in nplsim_runs],
        "boltzmann_steps_s": [r["raw_run_s"][0] for r in boltz_runs],
        "boltzmann_build_s": [r["raw_build_s"][0] for r in boltz_runs],
        "nplsim_loan_quarters_per_s": npl_tp,
        "boltzmann_agent_steps_per_s": boltz_tp,
        "pair_ratios": [a / b for a, b in zip(npl_tp, boltz_tp, strict=True)],
        "peak_rss_mib_process": tp.peak_rss_mib(),
    }


def scaled_banks(count: int) -> list[dict[str, Any]]:
    """``count`` banks: the scenario's banks repeated in order, renamed from the second round on."""
    from nplsim.market.scenario import load_scenario

    base = load_scenario(SCENARIO)[0].banks
    banks = []
    for k in range(count):
        spec = base[k % len(base)].model_dump()
        if k >= len(base):
            spec["name"] = f"{spec['name']} {k // len(base) + 1}"
        banks.append(spec)
    return banks


def worker_banks(p: dict[str, Any]) -> dict[str, Any]:
    """T2b: full runs with 4, 8, 16 ... banks at fixed loans per bank, interleaved by repeat."""
    import gc

    from nplsim import NPLMarketModel

    counts, per_bank, repeats, seed = p["counts"], p["loans_per_bank"], p["repeats"], p["seed"]
    tp.warm_up(seed)
    rows: dict[int, dict[str, list]] = {c: defaultdict(list) for c in counts}
    for rep in range(repeats):
        for count in counts:
            banks = scaled_banks(count)
            gc.collect()
            t0 = time.perf_counter()
            model = NPLMarketModel(
                scenario=SCENARIO, rng=seed, n_loans=per_bank * count, banks=banks
            )
            t1 = time.perf_counter()
            while model.running:
                model.step()
            t2 = time.perf_counter()
            row = rows[count]
            row["run_s"].append(t2 - t0)
            row["build_s"].append(t1 - t0)
            row["deals"].append(len(model.desk.deal_rows))
            row["trades"].append(len(model.blotter.rows))
            row["quarters"].append(model.config.quarters)
            tp.log(
                f"  {count} banks x {per_bank:,} loans rep {rep + 1}/{repeats}: "
                f"{t2 - t0:.3f}s, {len(model.desk.deal_rows)} deals"
            )
            del model
    return {
        "loans_per_bank": per_bank,
        "by_banks": {str(c): dict(rows[c]) for c in counts},
    }


def write_sweep_spec(path: Path, runs: int, loans: int | None) -> None:
    """A sweep of ``runs`` replications (seeds 0..runs-1) of the base scenario."""
    lines = [
        f'base = "{SCENARIO}"',
        f"replications = {runs}",
        "seed_start = 0",
        'outputs = ["model", "summary"]  # the sweep default',
    ]
    if loans is not None:
        lines.append(f"overrides = {{ n_loans = {loans} }}")
    path.write_text("\n".join(lines) + "\n")


def worker_sweep(p: dict[str, Any]) -> dict[str, Any]:
    """T4: one ``run_sweep`` call with a local pool of ``workers`` processes."""
    from nplsim.experiments.sweep import run_sweep

    t0 = time.perf_counter()
    report = run_sweep(p["spec"], p["out"], workers=p["workers"], progress=False)
    wall = time.perf_counter() - t0
    if report.failed:
        raise RuntimeError(f"{report.failed} sweep runs failed: {report.failed_run_ids}")
    # When each run's partition was written (its files' modification times): the steady-state
    # rate of the pool is (runs - 1) over the time from the first completion to the last.
    finished = sorted(
        max(f.stat().st_mtime for f in part.iterdir())
        for part in (Path(p["out"]) / "runs").iterdir()
        if part.is_dir()
    )
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 2 else 0.0
    gaps = [b - a for a, b in zip(finished, finished[1:], strict=False)]
    return {
        "steady_runs_per_minute": 60.0 * steady,
        "median_gap_s": statistics.median(gaps) if gaps else float("nan"),
        "workers": p["workers"],
        "runs": report.total,
        "done": report.done,
        "run_sweep_wall_s": wall,
        "report_wall_s": report.wall_time_s,
        "runs_per_minute": 60.0 * report.done / wall,
    }


def worker_direct(p: dict[str, Any]) -> dict[str, Any]:
    """T4: the sweep's runs done one after another in this warm process, without the runner."""
    from nplsim.experiments.sweep import expand, load_spec, simulate_run
    from nplsim.market.scenario import load_scenario

    spec = load_spec(p["spec"])
    base, _ = load_scenario(spec.base)
    runs = expand(spec)
    outputs = tuple(spec.outputs)
    warm = dataclasses.replace(
        runs[0], overrides={**runs[0].overrides, "n_loans": 1_000, "quarters": 2}
    )
    if "error" in simulate_run(base, warm, outputs):  # loads pyarrow, regime files
        raise RuntimeError("warm-up run failed")
    times = []
    for run in runs:
        t0 = time.perf_counter()
        result = simulate_run(base, run, outputs)
        times.append(time.perf_counter() - t0)
        if "error" in result:
            raise RuntimeError(f"run {run.run_id} failed: {result['error']['message']}")
    tp.log(f"  direct: {len(runs)} runs, mean {statistics.fmean(times):.3f}s")
    return {"runs": len(runs), "run_s": times}


def worker_run(p: dict[str, Any]) -> dict[str, Any]:
    """T5: ``run_to_directory`` (what ``nplsim run`` calls) with timers around its parts."""
    import mesa
    import pandas as pd

    import nplsim.economy.model as model_module
    import nplsim.experiments.figures as figures_module
    import nplsim.experiments.run as run_module
    from nplsim.economy.outputs import AgentRecorder
    from nplsim.economy.power_sector import PowerSector

    timers: dict[str, float] = defaultdict(float)

    def timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers[key] += time.perf_counter() - t0

        return wrapper

    # Patched in this process only (class and module attributes); the project's code is unchanged.
    hooks = [
        (mesa.DataCollector, "collect", "collect"),  # Mesa's DataCollector.collect
        (model_module, "measure", "measure"),  # computes the values the DataCollector reads
        (AgentRecorder, "record", "record_agents"),  # bank and AMC rows
        (PowerSector, "record_plants", "record_agents"),  # power-plant rows (power only)
        (pd.DataFrame, "to_parquet", "to_parquet"),
        (figures_module, "dashboard", "figures"),
        (figures_module, "power_figures", "figures"),
        (run_module, "simulate", "simulate"),  # construction + every quarter
        (run_module, "write_results", "write_results"),  # tables, summary, figures, manifest
    ]
    missing = []
    for owner, name, key in hooks:
        if hasattr(owner, name):
            setattr(owner, name, timed(key, getattr(owner, name)))
        else:
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
    if missing:
        tp.log(f"  WARNING: not found, so not timed: {', '.join(missing)}")

    overrides = {} if p["loans"] is None else {"n_loans": p["loans"]}
    reps = []
    with tempfile.TemporaryDirectory(prefix="nplsim-t5-") as tmp:
        # warm-up: imports pyarrow and matplotlib, loads fonts, outside the timing
        run_module.run_to_directory(
            SCENARIO, p["seed"], Path(tmp) / "warm", {"n_loans": 1_000, "quarters": 2},
            command=["nplsim", "run"],
        )  # fmt: skip
        for rep in range(p["repeats"]):
            timers.clear()
            out = Path(tmp) / f"run{rep}"
            t0 = time.perf_counter()
            result = run_module.run_to_directory(
                SCENARIO, p["seed"], out, overrides, command=["nplsim", "run"]
            )
            total = time.perf_counter() - t0
            files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
            reps.append({"total_s": total, **timers, "files": files})
            n_loans = result.model.config.n_loans
            quarters = result.model.config.quarters
            tp.log(
                f"  run_to_directory rep {rep + 1}/{p['repeats']}: {total:.3f}s "
                f"(simulate {timers['simulate']:.3f}s, write {timers['write_results']:.3f}s)"
            )
            del result
            shutil.rmtree(out)
    return {"n_loans": n_loans, "quarters": quarters, "not_timed": missing, "repeats": reps}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "t1": worker_t1,
    "banks": worker_banks,
    "sweep": worker_sweep,
    "direct": worker_direct,
    "run": worker_run,
}


# ====================================================================== verdicts
@dataclass
class Verdict:
    """One line of the final block."""

    tid: str
    target: str
    threshold: str
    measured: str
    holds: bool | None  # None: not measured
    value: float | None = None
    low: float | None = None
    high: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "skipped"}[self.holds]


# ====================================================================== measurements
def measure_t1(prof: Profile, args: argparse.Namespace) -> tuple[list[Verdict], dict[str, Any]]:
    tp.log(f"T1: nplsim {loans_label(prof.t1_loans)} loans and BoltzmannWealth, one process")
    raw = run_worker(
        "t1",
        {
            "loans": prof.t1_loans,
            "repeats": args.repeats,
            "seed": args.seed,
            "mesa_agents": args.mesa_agents,
            "mesa_side": args.mesa_side,
            "mesa_steps": args.mesa_steps,
        },
    )
    med, lo, hi = median_min_max(raw["pair_ratios"])
    npl_med = statistics.median(raw["nplsim_loan_quarters_per_s"])
    boltz_med = statistics.median(raw["boltzmann_agent_steps_per_s"])
    run_med, run_lo, run_hi = median_min_max(raw["nplsim_run_s"])
    b_med, b_lo, b_hi = median_min_max(raw["boltzmann_steps_s"])
    v = Verdict(
        "T1",
        f"throughput at {loans_label(prof.t1_loans)} loans vs Mesa BoltzmannWealth",
        "≥ 100×",
        f"{med:.1f}× ({fmt_range(lo, hi, '.1f', '×')})",
        med >= 100.0,
        med,
        lo,
        hi,
        [
            f"nplsim {SCENARIO}, {prof.t1_loans:,} loans x {raw['quarters']} quarters, time = "
            f"construction + all quarters: median {run_med:.3f}s "
            f"({fmt_range(run_lo, run_hi, '.3f')} s) = {npl_med:,.0f} loan-quarters/s",
            f"BoltzmannWealth {raw['mesa_agents']:,} agents on {raw['mesa_side']}x"
            f"{raw['mesa_side']}, DataCollector on, {raw['mesa_steps']} steps (construction "
            f"excluded): median {b_med:.3f}s ({fmt_range(b_lo, b_hi, '.3f')} s) = "
            f"{boltz_med:,.0f} agent-steps/s",
            f"one process, {args.repeats} pairs run alternately (nplsim, Boltzmann, ...); the "
            "ratio is taken per pair, then median and min-max over the pairs",
        ],
    )
    return [v], raw


def measure_scaling(prof: Profile, args: argparse.Namespace) -> dict[str, Any]:
    """Every scaling size in a fresh ``throughput.py --one`` process; the huge one may fail."""
    sizes = sorted(set(prof.scaling) | {prof.small, prof.large})
    rows: list[dict[str, Any]] = []
    for n in sizes:
        tp.log(f"scaling: {loans_label(n)} loans, fresh process, {args.repeats} repeats")
        ns = argparse.Namespace(repeats=args.repeats, seed=args.seed, quarters=None)
        rows.append(tp.run_one_subprocess(n, ns))
    huge: dict[str, Any] | None = None
    if prof.huge is not None and not args.skip_5m:
        tp.log(f"scaling: {loans_label(prof.huge)} loans, fresh process, 1 repeat")
        ns = argparse.Namespace(repeats=1, seed=args.seed, quarters=None)
        try:
            huge = {"ok": True, "result": tp.run_one_subprocess(prof.huge, ns)}
            rows.append(huge["result"])
        except subprocess.CalledProcessError as exc:
            huge = {"ok": False, "returncode": exc.returncode}
            tp.log(f"  the {loans_label(prof.huge)}-loan run failed: status {exc.returncode}")
    return {"rows": rows, "huge": huge}


def by_size(scaling: dict[str, Any], n: int) -> dict[str, Any]:
    return next(r for r in scaling["rows"] if r["agents"] == n)


def measure_t2a(prof: Profile, scaling: dict[str, Any]) -> Verdict:
    small, large = by_size(scaling, prof.small), by_size(scaling, prof.large)
    s, lg = small["run_s"], large["run_s"]
    ratio = lg["median"] / s["median"]
    lo, hi = lg["min"] / s["max"], lg["max"] / s["min"]
    factor = prof.large / prof.small
    limit = 1.1 * factor
    return Verdict(
        "T2",
        f"{factor:g}× loans ({loans_label(prof.small)} → {loans_label(prof.large)}) costs",
        f"≤ {limit:g}× time",
        f"{ratio:.2f}× ({fmt_range(lo, hi, '.2f', '×')})",
        ratio <= limit,
        ratio,
        lo,
        hi,
        [
            f"median full-run time (construction + {large['steps']} quarters) at "
            f"{prof.large:,} / at {prof.small:,} loans: {lg['median']:.3f}s / "
            f"{s['median']:.3f}s; each size in a fresh process, {large['repeats']} repeats",
            "range: slowest-vs-fastest bounds (large min / small max to large max / small min)",
        ],
    )


def measure_t2b(prof: Profile, args: argparse.Namespace) -> tuple[Verdict, dict[str, Any]]:
    tp.log(f"T2: banks {prof.bank_counts} x {prof.loans_per_bank:,} loans each, one process")
    raw = run_worker(
        "banks",
        {
            "counts": list(prof.bank_counts),
            "loans_per_bank": prof.loans_per_bank,
            "repeats": args.repeats,
            "seed": args.seed,
        },
    )
    data = raw["by_banks"]
    counts = list(prof.bank_counts)
    doubling = []
    pair_ratios: list[float] = []
    parts = []
    for a, b in zip(counts, counts[1:], strict=False):
        ta, tb = data[str(a)]["run_s"], data[str(b)]["run_s"]
        doublings = math.log2(b / a)  # 1 for 4 -> 8; ratios are given per doubling
        ratio = (statistics.median(tb) / statistics.median(ta)) ** (1 / doublings)
        doubling.append(ratio)
        pair_ratios += [(y / x) ** (1 / doublings) for x, y in zip(ta, tb, strict=True)]
        parts.append(f"{a}→{b} {ratio:.2f}×")
    worst = max(doubling)
    lines = []
    for c in counts:
        d = data[str(c)]
        t = statistics.median(d["run_s"])
        q = d["quarters"][0]
        deals = statistics.median(d["deals"])
        per_deal = f"{t / deals:.3f}s/deal" if deals else "no deals"
        lines.append(
            f"{c:>3} banks, {c * prof.loans_per_bank:>9,} loans: median {t:.3f}s "
            f"({fmt_range(min(d['run_s']), max(d['run_s']), '.3f')} s), "
            f"{1e3 * t / (c * q):.2f} ms per bank-quarter, deals/run {deals:g}, "
            f"AMC+secondary trades/run {statistics.median(d['trades']):g}, {per_deal}"
        )
    v = Verdict(
        "T2",
        f"doubling banks ({'→'.join(map(str, counts))}, {loans_label(prof.loans_per_bank)} "
        "loans/bank)",
        "≤ 2.2× time",
        f"{worst:.2f}× worst ({', '.join(parts)})",
        worst <= 2.2,
        worst,
        min(pair_ratios),
        max(pair_ratios),
        [
            *lines,
            "full runs (construction + 40 quarters), the scenario's 4 banks repeated with the "
            "same loans per bank, so loans double with banks: linear cost means 2.0× per "
            "doubling (time per bank-quarter flat); medians of repeats, one process, interleaved",
            "per-repeat doubling ratios range "
            f"{fmt_range(min(pair_ratios), max(pair_ratios), '.2f')}×; deals issued per run are "
            "listed so cost per deal can be read",
        ],
    )
    return v, raw


def measure_t3(prof: Profile, scaling: dict[str, Any], args: argparse.Namespace) -> list[Verdict]:
    large = by_size(scaling, prof.large)
    rss = large["peak_rss_mib"]
    a = Verdict(
        "T3",
        f"peak RSS, {loans_label(prof.large)} loans × {large['steps']} quarters",
        "< 1.5 GiB",
        f"{rss:,.0f} MiB ({rss / 1024:.2f} GiB)",
        rss < MIB_LIMIT_T3,
        rss,
        notes=[
            f"ru_maxrss of a fresh process (throughput.py --one {prof.large}) that ran "
            f"{large['repeats']} full run(s); RSS after imports and warm-up "
            f"{large['rss_baseline_mib']:.0f} MiB"
        ],
    )
    huge = scaling["huge"]
    if prof.huge is None or huge is None:
        why = "--skip-5m" if args.skip_5m else "not in --quick"
        b = Verdict(
            "T3", "5M-loan run completes (24 GiB machine)", "completes", f"not run ({why})", None
        )
    elif huge["ok"]:
        r = huge["result"]
        b = Verdict(
            "T3",
            f"{loans_label(prof.huge)}-loan run completes (24 GiB machine)",
            "completes",
            f"yes: {r['run_s']['median']:.1f}s, peak {r['peak_rss_mib']:,.0f} MiB",
            True,
            r["peak_rss_mib"],
            notes=[f"one full run ({r['steps']} quarters) in a fresh process"],
        )
    else:
        b = Verdict(
            "T3",
            f"{loans_label(prof.huge)}-loan run completes (24 GiB machine)",
            "completes",
            f"no: process exited with status {huge['returncode']}",
            False,
        )
    return [a, b]


def measure_t4(prof: Profile, args: argparse.Namespace) -> tuple[list[Verdict], dict[str, Any]]:
    runs = args.sweep_runs or prof.sweep_runs
    loans = args.sweep_loans if args.sweep_loans is not None else prof.sweep_loans
    label = loans_label(loans) if loans else "default (100k)"
    tp.log(f"T4: sweeps of {runs} runs, {label} loans, 1 and 2 workers, and direct runs")
    one: list[dict[str, Any]] = []
    two: list[dict[str, Any]] = []
    direct: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nplsim-sweep-") as tmp:
        spec = Path(tmp) / "spec.toml"
        write_sweep_spec(spec, runs, loans)
        for rep in range(args.repeats):
            for workers, store in ((1, one), (2, two)):
                out = Path(tmp) / f"out-w{workers}-r{rep}"
                store.append(
                    run_worker("sweep", {"spec": str(spec), "out": str(out), "workers": workers})
                )
                tp.log(
                    f"  {workers} worker(s): {store[-1]['run_sweep_wall_s']:.2f}s, "
                    f"{store[-1]['runs_per_minute']:.1f} runs/min"
                )
                shutil.rmtree(out, ignore_errors=True)
            direct.append(run_worker("direct", {"spec": str(spec)}))
    w1 = [r["run_sweep_wall_s"] for r in one]
    w2 = [r["run_sweep_wall_s"] for r in two]
    s1 = [r["steady_runs_per_minute"] for r in one]
    s2 = [r["steady_runs_per_minute"] for r in two]
    rates = [b / a for a, b in zip(s1, s2, strict=True)]
    steady = statistics.median(s2) / statistics.median(s1)
    speedups = [a / b for a, b in zip(w1, w2, strict=True)]
    speedup = statistics.median(w1) / statistics.median(w2)
    rpm1, rpm2 = 60 * runs / statistics.median(w1), 60 * runs / statistics.median(w2)
    a = Verdict(
        "T4",
        "sweep runs/min, 2 workers vs 1 worker",
        "≥ 1.7×",
        f"{steady:.2f}× ({fmt_range(min(rates), max(rates), '.2f', '×')})",
        steady >= 1.7,
        steady,
        min(rates),
        max(rates),
        [
            f"run_sweep() of {runs} runs of {SCENARIO} ({label} loans, 40 quarters, seeds "
            f"0..{runs - 1}, outputs model+summary) into a new directory, local process pool, "
            f"median of {args.repeats}; runs/min in steady state = (runs - 1) / time from the "
            "first run's partition to the last (file modification times): 1 worker "
            f"{statistics.median(s1):.1f}, 2 workers {statistics.median(s2):.1f} runs/min",
            f"whole call instead (start-up included): 1 worker {statistics.median(w1):.2f}s = "
            f"{rpm1:.1f} runs/min, 2 workers {statistics.median(w2):.2f}s = {rpm2:.1f} runs/min: "
            f"{speedup:.2f}× ({fmt_range(min(speedups), max(speedups), '.2f', '×')}) for "
            f"{runs} runs",
            "the call includes starting the pool (forkserver, model import), expanding and "
            "checking the spec, each run, and writing each run's Parquet partition and the "
            "manifest",
        ],
    )
    direct_means = [statistics.fmean(d["run_s"]) for d in direct]
    direct_medians = [statistics.median(d["run_s"]) for d in direct]
    direct_all = [t for d in direct for t in d["run_s"]]
    base = statistics.median(direct_means)
    per_run = statistics.median(w1) / runs
    overhead = (per_run - base) / base
    per_rep = [(w / runs - m) / m for w, m in zip(w1, direct_means, strict=True)]
    overhead_vs_median = (per_run - statistics.median(direct_all)) / statistics.median(direct_all)
    process = statistics.median(r["process_wall_s"] for r in one) / runs
    fixed = statistics.median(w1) - runs * base  # what the runner adds to the whole sweep
    # Steady-state time per run of the 1-worker sweep (what the runner spends once per sweep,
    # starting the pool and importing in the worker, is before the first completion).
    # Medians on both sides: one slow run (the machine, a GC pass) should not decide it.
    per_run_steady = [r["median_gap_s"] for r in one]
    steady_overhead = [(t - d) / d for t, d in zip(per_run_steady, direct_medians, strict=True)]
    per_run_steady_s = statistics.median(per_run_steady)
    direct_median = statistics.median(direct_all)
    overhead_steady = (per_run_steady_s - direct_median) / direct_median
    once = statistics.median(w1) - runs * 60.0 / statistics.median(s1)
    b = Verdict(
        "T4",
        "sweep runner overhead per run (1 worker)",
        "< 5%",
        f"{100 * overhead_steady:+.1f}% "
        f"({fmt_range(100 * min(steady_overhead), 100 * max(steady_overhead), '+.1f', '%')})",
        overhead_steady < 0.05,
        overhead_steady,
        min(steady_overhead),
        max(steady_overhead),
        [
            f"steady-state sweep time per run, 1 worker = median time between two runs' "
            f"partitions = {per_run_steady_s:.3f}s, against the median direct run "
            f"{direct_median:.3f}s; the runner's once-per-sweep cost (pool start, imports in the "
            f"worker, before the first run completes) is about {once:.2f}s a sweep",
            f"amortised instead (1-worker wall / {runs} = {per_run:.3f}s, once-per-sweep cost "
            f"included): {100 * overhead:+.1f}% "
            f"({fmt_range(100 * min(per_rep), 100 * max(per_rep), '+.1f', '%')})",
            f"direct run = the same {runs} runs (same seeds) in one warm process, each "
            "nplsim.experiments.sweep.simulate_run(): construction + 40 quarters + the model and "
            "summary tables as Parquet bytes, i.e. what a worker computes, without pool, "
            f"pickling or files: mean {base:.3f}s (median of per-repeat means; median of all "
            f"runs {statistics.median(direct_all):.3f}s, giving {100 * overhead_vs_median:+.1f}%)",
            f"overhead = (steady-state sweep time per run - direct median) / direct median; range "
            f"over repeats. With interpreter start and imports (whole process) the per-run sweep "
            f"time is {process:.3f}s ({100 * (process - base) / base:+.1f}%)",
            f"the runner adds {fixed:.2f}s to the whole 1-worker sweep, mostly once per sweep "
            "(pool start, model import, first-run costs in the worker), so the percentage falls "
            "as runs get longer or more numerous",
        ],
    )
    raw = {"runs": runs, "loans": loans, "one_worker": one, "two_workers": two, "direct": direct,
           }  # fmt: skip
    return [a, b], raw


def measure_t5(prof: Profile, args: argparse.Namespace) -> tuple[list[Verdict], dict[str, Any]]:
    label = loans_label(prof.run_loans) if prof.run_loans else "default (100k)"
    tp.log(f"T5: nplsim run (run_to_directory), {label} loans, fresh process")
    raw = run_worker("run", {"loans": prof.run_loans, "repeats": args.repeats, "seed": args.seed})
    parts: dict[str, list[float]] = defaultdict(list)
    for r in raw["repeats"]:
        collection = r.get("measure", 0.0) + r.get("collect", 0.0) + r.get("record_agents", 0.0)
        figures = r.get("figures", 0.0)
        writes = r["write_results"]
        tables = writes - figures  # frames, to_parquet, summary.json, manifest.json
        sim = r["simulate"]
        parts["simulate"].append(sim)
        parts["collection"].append(collection)
        parts["collect_only"].append(r.get("collect", 0.0))
        parts["tables"].append(tables)
        parts["to_parquet"].append(r.get("to_parquet", 0.0))
        parts["figures"].append(figures)
        parts["total"].append(r["total_s"])
        parts["share"].append((collection + tables) / (sim + tables))
        parts["share_fig"].append((collection + writes) / (sim + writes))
        narrow = r.get("collect", 0.0) + r.get("to_parquet", 0.0)
        parts["share_narrow"].append(narrow / (sim + tables))

    def med(key: str) -> float:
        return statistics.median(parts[key])

    share, share_fig = med("share"), med("share_fig")
    run_desc = f"{raw['n_loans']:,} loans x {raw['quarters']} quarters"
    notes = [
        f"nplsim.experiments.run.run_to_directory({SCENARIO!r}, seed {args.seed}) = nplsim run "
        f"without its progress bar, {run_desc}, median of {args.repeats} in a fresh process "
        "after an untimed small run (imports pyarrow and matplotlib)",
        f"simulation (construction + all quarters, collection included) {med('simulate'):.3f}s; "
        f"of it data collection {med('collection'):.3f}s = economy.measurement.measure (the "
        f"values the DataCollector reports) + DataCollector.collect ({med('collect_only'):.4f}s)"
        " + AgentRecorder.record/PowerSector.record_plants (bank, AMC and plant rows)",
        f"output tables {med('tables'):.3f}s = write_results minus figures: the 6 DataFrames, "
        f"to_parquet ({med('to_parquet'):.3f}s), summary.json, manifest.json; figures (PNG) "
        f"{med('figures'):.3f}s; whole call {med('total'):.3f}s",
        "share = (collection + output tables) / (simulation + output tables), figures excluded; "
        "narrow share (DataCollector.collect + to_parquet only, same denominator) "
        f"{100 * med('share_narrow'):.1f}%",
    ]
    if raw["not_timed"]:
        notes.append(f"NOT timed (methods not found): {', '.join(raw['not_timed'])}")
    lo, hi = min(parts["share"]), max(parts["share"])
    a = Verdict(
        "T5",
        "data collection + Parquet writing share of a run",
        "≤ 15%",
        f"{100 * share:.1f}% ({fmt_range(100 * lo, 100 * hi, '.1f', '%')})",
        share <= 0.15,
        share,
        lo,
        hi,
        notes,
    )
    a.notes.append(
        f"not a target (figures are not data): drawing the dashboard PNGs takes "
        f"{med('figures'):.3f}s more; counted as output too, the share would be "
        f"{100 * share_fig:.1f}%"
    )
    raw["summary"] = {k: statistics.median(v) for k, v in parts.items()}
    return [a], raw


# ====================================================================== figure
def scaling_figure(
    scaling: dict[str, Any], prof: Profile, info: dict[str, Any], path: Path
) -> None:
    """Run time and peak RSS against loans, log-log, with lines proportional to the loans."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    # minor ticks: only 2x and 5x a power of ten are labelled, so that wide ranges stay legible
    sparse = FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:e}"[0] in "25" else "")

    rows = sorted(scaling["rows"], key=lambda r: r["agents"])
    n = [r["agents"] for r in rows]
    t = [r["run_s"]["median"] for r in rows]
    t_err = [
        [r["run_s"]["median"] - r["run_s"]["min"] for r in rows],
        [r["run_s"]["max"] - r["run_s"]["median"] for r in rows],
    ]
    rss = [r["peak_rss_mib"] for r in rows]
    anchor = n.index(prof.large)
    n_ref = [min(n), max(n)]
    through = f"∝ loans, through {loans_label(n[anchor])}"

    fig = Figure(figsize=(11, 5.4), layout="constrained")
    ax_t, ax_m = fig.subplots(1, 2)
    ax_t.errorbar(n, t, yerr=t_err, marker="o", capsize=3, label="measured: median, min–max")
    ax_t.plot(n_ref, [t[anchor] * x / n[anchor] for x in n_ref], "--", color="grey", label=through)
    ax_t.set_title(f"Run time ({rows[0]['steps']} quarters, construction included)")
    ax_t.set_ylabel("run time (s)")

    ax_m.plot(n, rss, marker="o", color="C1", label="peak RSS of the process")
    base = [r.get("rss_baseline_mib") for r in rows]
    if all(b is not None for b in base):  # the part that grows: peak minus imports and warm-up
        grown = [max(r - b, 1e-3) for r, b in zip(rss, base, strict=True)]
        ax_m.plot(n, grown, marker="s", color="C2", label="peak RSS minus RSS after imports")
        ref = [grown[anchor] * x / n[anchor] for x in n_ref]
        ax_m.plot(n_ref, ref, "--", color="grey", label=f"{through} (of the green line)")
    else:
        ax_m.plot(n_ref, [rss[anchor] * x / n[anchor] for x in n_ref], "--", color="grey",
                  label=through)  # fmt: skip
    ax_m.axhline(MIB_LIMIT_T3, color="C3", linestyle=":", label="T3 limit at 1M loans (1.5 GiB)")
    ax_m.set_title("Peak resident memory")
    ax_m.set_ylabel("memory (MiB)")

    for ax in (ax_t, ax_m):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(n))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([loans_label(x) for x in n])
        ax.set_xlabel("loans (count, log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(sparse)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize="small")
    repeats = sorted({r["repeats"] for r in rows}, reverse=True)
    fig.suptitle(
        f"nplsim {SCENARIO} scaling: each size in a fresh process, "
        f"{' or '.join(map(str, repeats))} repeats — {info.get('cpu_count')} CPUs, "
        f"Python {info['python']}, numpy {info['numpy']}, Mesa {info['mesa']}"
    )
    fig.savefig(path, dpi=120)


# ====================================================================== report
def print_block(verdicts: list[Verdict]) -> None:
    names = [f"{v.tid} {v.target}" for v in verdicts]
    w_t = max(len("target"), *map(len, names))
    w_th = max(len("threshold"), *(len(v.threshold) for v in verdicts))
    w_m = max(len("measured"), *(len(v.measured) for v in verdicts))
    header = f"{'target':<{w_t}}  {'threshold':<{w_th}}  {'measured':<{w_m}}  holds"
    print()
    print(header)
    print("-" * len(header))
    for name, v in zip(names, verdicts, strict=True):
        print(f"{name:<{w_t}}  {v.threshold:<{w_th}}  {v.measured:<{w_m}}  {v.status}")
    print()
    print("What was measured:")
    for name, v in zip(names, verdicts, strict=True):
        if v.notes:
            print(f"  {name}")
            for note in v.notes:
                print(f"    - {note}")


CSV_FIELDS = ["timestamp", "profile", "id", "target", "threshold", "measured", "holds",
              "value", "low", "high", "notes"]  # fmt: skip


def write_outputs(
    stamp: str, prof: Profile, verdicts: list[Verdict], payload: dict[str, Any]
) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    base = RESULTS_DIR / f"targets_{stamp}"
    with base.with_suffix(".csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for v in verdicts:
            writer.writerow(
                {
                    "timestamp": stamp,
                    "profile": prof.name,
                    "id": v.tid,
                    "target": v.target,
                    "threshold": v.threshold,
                    "measured": v.measured,
                    "holds": v.status,
                    "value": v.value,
                    "low": v.low,
                    "high": v.high,
                    "notes": " | ".join(v.notes),
                }
            )
    base.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return base


# ====================================================================== main
def parse_only(text: str | None) -> set[str]:
    if not text:
        return set(TARGET_IDS)
    chosen = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = chosen - set(TARGET_IDS)
    if unknown:
        raise SystemExit(f"--only: unknown target(s) {sorted(unknown)}; choose from {TARGET_IDS}")
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="repeats of every timing (default 3)")
    p.add_argument("--quick", action="store_true", help="small sizes: checks the script (~1 min)")
    p.add_argument("--skip-5m", action="store_true", help="do not run the 5M-loan run of T3")
    p.add_argument("--only", metavar="T1,T3", help="run only these targets")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--sweep-runs", type=int, help="runs per sweep in T4 (default 24; quick 8)")
    p.add_argument(
        "--sweep-loans", type=int, help="loans per sweep run in T4 (default: the scenario's 100k)"
    )
    p.add_argument("--mesa-agents", type=int, default=10_000)
    p.add_argument("--mesa-side", type=int, default=100, help="grid is SIDE x SIDE")
    p.add_argument("--mesa-steps", type=int, default=20)
    p.add_argument("--no-write", action="store_true", help="write nothing to benchmarks/")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.sweep_runs is not None and args.sweep_runs < 1:
        p.error("--sweep-runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(args.params))), flush=True)
        return 0

    only = parse_only(args.only)
    prof = QUICK if args.quick else FULL
    info = tp.machine_info()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    load_before = load_average()
    started = time.perf_counter()
    tp.log(f"profile {prof.name}, targets {sorted(only)}, {args.repeats} repeats")

    verdicts: list[Verdict] = []
    raw: dict[str, Any] = {}
    if "T1" in only:
        v, raw["T1"] = measure_t1(prof, args)
        verdicts += v
    scaling = None
    if only & {"T2", "T3"}:
        scaling = measure_scaling(prof, args)
        raw["scaling"] = scaling
    if "T2" in only:
        verdicts.append(measure_t2a(prof, scaling))
        v2b, raw["T2_banks"] = measure_t2b(prof, args)
        verdicts.append(v2b)
    if "T3" in only:
        verdicts += measure_t3(prof, scaling, args)
    if "T4" in only:
        v, raw["T4"] = measure_t4(prof, args)
        verdicts += v
    if "T5" in only:
        v, raw["T5"] = measure_t5(prof, args)
        verdicts += v

    elapsed = time.perf_counter() - started
    load_after = load_average()
    print(
        f"\n{info['platform']} | {info.get('cpu_model', '?')} | cpus {info['cpu_count']} | "
        f"python {info['python']} numpy {info['numpy']} mesa {info['mesa']} | profile "
        f"{prof.name}, {args.repeats} repeats | load avg {load_before} -> {load_after} | "
        f"{elapsed:.0f}s"
    )
    # before only: afterwards the load average includes this benchmark's own processes
    if load_before and load_before[0] >= 0.5 * (os.cpu_count() or 1):
        print(
            f"WARNING: 1-minute load average {load_before[0]} on {os.cpu_count()} CPUs before "
            "the start: other work was competing for the CPUs, so the times (T1, T2 and T4 above "
            "all) may not be reliable"
        )
    print_block(verdicts)

    if args.no_write:
        return 0
    payload = {
        "timestamp": stamp,
        "command": [sys.executable, *sys.argv],
        "profile": dataclasses.asdict(prof),
        "repeats": args.repeats,
        "seed": args.seed,
        "machine": info,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "elapsed_s": elapsed,
        "verdicts": [{**dataclasses.asdict(v), "status": v.status} for v in verdicts],
        "raw": raw,
    }
    base = write_outputs(stamp, prof, verdicts, payload)
    print(f"\nwrote {base}.csv and {base}.json")
    if scaling is not None:
        figure = RESULTS_DIR / f"scaling_{stamp}.png"
        scaling_figure(scaling, prof, info, figure)
        print(f"wrote {figure}")
        if prof is FULL:
            shutil.copyfile(figure, COMMITTED_FIGURE)
            print(f"copied it to {COMMITTED_FIGURE}")
        else:
            print(f"(--quick: {COMMITTED_FIGURE.name} left unchanged)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
