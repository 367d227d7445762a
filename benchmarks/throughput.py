"""Throughput benchmark: nplsim loan-quarters/s against Mesa's BoltzmannWealth agent-steps/s.

Usage::

    python benchmarks/throughput.py                      # 200k and 1M loans, 3 repeats each
    python benchmarks/throughput.py --loans 50000 --repeats 1
    python benchmarks/throughput.py --one 200000         # one size in this process, JSON line out

In the main mode every nplsim size runs in a fresh subprocess (``--one SIZE``) so that its peak
RSS (``ru_maxrss``, process-wide) belongs to that size alone; Mesa's BoltzmannWealth runs in the
main process, which imports Mesa but never builds an nplsim model.

One nplsim agent-step is one loan-quarter; a run is construction plus ``quarters`` calls of
``model.step()`` (every phase, including the DataCollector).  Throughput = n_loans x quarters /
run time.  The Boltzmann figure is agents x steps / time of the steps (construction excluded),
with the example's own DataCollector and DataRecorder left on.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_LOANS = (200_000, 1_000_000)
SCENARIO = "restart_2016"


# ---------------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    """Progress goes to stderr so that ``--one`` keeps stdout for its JSON line."""
    print(msg, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1024**2 if sys.platform == "darwin" else maxrss / 1024  # macOS: bytes


def current_rss_mib() -> float | None:
    """Current RSS from /proc (Linux only)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
    }
    for pkg in ("numpy", "mesa", "nplsim"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_total_gib"] = round(int(line.split()[1]) / 1024**2, 2)
                break
    except OSError:
        pass
    return info


# ---------------------------------------------------------------------------- nplsim
def warm_up(seed: int) -> None:
    """An untimed tiny run: loads the scenario and regime files and lazy caches, and (with the
    compile threshold lowered for it) numba's compiled loan-book loops, whose first call in a
    process costs about 0.2-0.3 s (``market/kernels.py``)."""
    from nplsim import NPLMarketModel
    from nplsim.market import kernels

    threshold, kernels.COMPILE_FROM_LOANS = kernels.COMPILE_FROM_LOANS, 0
    try:
        warm = NPLMarketModel(scenario=SCENARIO, rng=seed, n_loans=1_000, quarters=2)
        while warm.running:
            warm.step()
    finally:
        kernels.COMPILE_FROM_LOANS = threshold


def bench_nplsim(n_loans: int, quarters: int | None, repeats: int, seed: int) -> dict[str, Any]:
    """Time ``repeats`` full runs of ``n_loans`` loans in this process."""
    from nplsim import NPLMarketModel

    overrides: dict[str, Any] = {"n_loans": n_loans}
    if quarters is not None:
        overrides["quarters"] = quarters

    warm_up(seed)
    gc.collect()
    rss_baseline = current_rss_mib()

    build_s: list[float] = []
    step_s: list[float] = []
    run_s: list[float] = []
    horizon = 0
    for rep in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        model = NPLMarketModel(scenario=SCENARIO, rng=seed, **overrides)
        t1 = time.perf_counter()
        horizon = model.config.quarters
        for _ in range(horizon):
            model.step()
        t2 = time.perf_counter()
        if model.running:
            raise RuntimeError(f"model still running after {horizon} quarters")
        build_s.append(t1 - t0)
        step_s.append(t2 - t1)
        run_s.append(t2 - t0)
        log(
            f"  nplsim n={n_loans:,} rep {rep + 1}/{repeats}: build {t1 - t0:.3f}s, "
            f"{horizon} quarters {t2 - t1:.3f}s, total {t2 - t0:.3f}s"
        )
        del model

    work = n_loans * horizon
    return {
        "workload": f"nplsim {SCENARIO}",
        "units": "loan-quarters",
        "agents": n_loans,
        "steps": horizon,
        "repeats": repeats,
        "seed": seed,
        "build_s": summary(build_s),
        "steps_s": summary(step_s),
        "run_s": summary(run_s),
        "throughput": work / statistics.median(run_s),
        "throughput_min": work / max(run_s),
        "throughput_max": work / min(run_s),
        "throughput_steps_only": work / statistics.median(step_s),
        "rss_baseline_mib": rss_baseline,
        "peak_rss_mib": peak_rss_mib(),
        "raw_run_s": run_s,
        "raw_build_s": build_s,
    }


def run_one_subprocess(n_loans: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        str(n_loans),
        "--repeats",
        str(args.repeats),
        "--seed",
        str(args.seed),
    ]
    if args.quarters is not None:
        cmd += ["--quarters", str(args.quarters)]
    log(f"$ {' '.join(cmd)}")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"no JSON result from subprocess for n={n_loans}:\n{proc.stdout}")
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------- Mesa reference
def bench_boltzmann(n: int, side: int, steps: int, repeats: int, seed: int) -> dict[str, Any]:
    """Mesa's BoltzmannWealth example as shipped (its DataCollector and DataRecorder on)."""
    from mesa.examples.basic.boltzmann_wealth_model.model import (
        BoltzmannScenario,
        BoltzmannWealth,
    )

    build_s: list[float] = []
    step_s: list[float] = []
    for rep in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        model = BoltzmannWealth(scenario=BoltzmannScenario(n=n, width=side, height=side, rng=seed))
        t1 = time.perf_counter()
        for _ in range(steps):
            model.step()
        t2 = time.perf_counter()
        build_s.append(t1 - t0)
        step_s.append(t2 - t1)
        log(
            f"  BoltzmannWealth n={n:,} rep {rep + 1}/{repeats}: build {t1 - t0:.3f}s, "
            f"{steps} steps {t2 - t1:.3f}s"
        )
        del model

    work = n * steps
    return {
        "workload": f"mesa BoltzmannWealth {side}x{side}",
        "units": "agent-steps",
        "agents": n,
        "steps": steps,
        "repeats": repeats,
        "seed": seed,
        "build_s": summary(build_s),
        "steps_s": summary(step_s),
        "run_s": summary(step_s),  # throughput basis: the steps
        "throughput": work / statistics.median(step_s),
        "throughput_min": work / max(step_s),
        "throughput_max": work / min(step_s),
        "throughput_steps_only": work / statistics.median(step_s),
        "rss_baseline_mib": None,
        "peak_rss_mib": peak_rss_mib(),
        "raw_run_s": step_s,
        "raw_build_s": build_s,
    }


# ---------------------------------------------------------------------------- report
CSV_FIELDS = [
    "workload",
    "units",
    "agents",
    "steps",
    "repeats",
    "build_median_s",
    "build_min_s",
    "build_max_s",
    "time_median_s",
    "time_min_s",
    "time_max_s",
    "throughput_per_s",
    "throughput_min_per_s",
    "throughput_max_per_s",
    "throughput_steps_only_per_s",
    "ratio_to_boltzmann",
    "peak_rss_mib",
]


def flat_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "workload": r["workload"],
        "units": r["units"],
        "agents": r["agents"],
        "steps": r["steps"],
        "repeats": r["repeats"],
        "build_median_s": round(r["build_s"]["median"], 4),
        "build_min_s": round(r["build_s"]["min"], 4),
        "build_max_s": round(r["build_s"]["max"], 4),
        "time_median_s": round(r["run_s"]["median"], 4),
        "time_min_s": round(r["run_s"]["min"], 4),
        "time_max_s": round(r["run_s"]["max"], 4),
        "throughput_per_s": round(r["throughput"]),
        "throughput_min_per_s": round(r["throughput_min"]),
        "throughput_max_per_s": round(r["throughput_max"]),
        "throughput_steps_only_per_s": round(r["throughput_steps_only"]),
        "ratio_to_boltzmann": round(r["ratio_to_boltzmann"], 2),
        "peak_rss_mib": round(r["peak_rss_mib"], 1),
    }


def print_table(rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    header = (
        f"{'workload':<34} {'agents':>9} {'steps':>5} {'build s':>8} {'median s':>9} "
        f"{'range s':>15} {'units/s (median)':>17} {'range units/s':>23} {'x Mesa':>7} "
        f"{'peak RSS':>9}"
    )
    print()
    print(
        f"{info['platform']} | {info.get('cpu_model', '?')} | cpus {info['cpu_count']} | "
        f"python {info['python']} numpy {info['numpy']} mesa {info['mesa']}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        rng_s = f"{r['run_s']['min']:.3f}-{r['run_s']['max']:.3f}"
        rng_t = f"{r['throughput_min']:,.0f}-{r['throughput_max']:,.0f}"
        print(
            f"{r['workload']:<34} {r['agents']:>9,} {r['steps']:>5} "
            f"{r['build_s']['median']:>8.3f} {r['run_s']['median']:>9.3f} {rng_s:>15} "
            f"{r['throughput']:>17,.0f} {rng_t:>23} {r['ratio_to_boltzmann']:>7.2f} "
            f"{r['peak_rss_mib']:>6.0f} MiB"
        )
    print(
        "nplsim time = construction + all quarters; Mesa time = steps only. "
        "x Mesa = units/s / Boltzmann agent-steps/s. Peak RSS per process (ru_maxrss)."
    )


def write_results(rows: list[dict[str, Any]], info: dict[str, Any], cli: list[str]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = RESULTS_DIR / f"throughput_{stamp}"
    with base.with_suffix(".csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["timestamp", *CSV_FIELDS, *info])
        writer.writeheader()
        for r in rows:
            writer.writerow({"timestamp": stamp, **flat_row(r), **info})
    payload = {"timestamp": stamp, "command": cli, "machine": info, "results": rows}
    base.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    return base


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loans", type=int, nargs="+", default=list(DEFAULT_LOANS))
    p.add_argument("--quarters", type=int, default=None, help="horizon (default: scenario's 40)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--one", type=int, metavar="SIZE", help="run one nplsim size here, print JSON")
    p.add_argument("--mesa-agents", type=int, default=10_000)
    p.add_argument("--mesa-side", type=int, default=100, help="grid is SIDE x SIDE")
    p.add_argument("--mesa-steps", type=int, default=20)
    p.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one is not None:
        result = bench_nplsim(args.one, args.quarters, args.repeats, args.seed)
        print(json.dumps(result), flush=True)
        return 0

    info = machine_info()
    rows: list[dict[str, Any]] = []
    for n in args.loans:
        log(f"nplsim {SCENARIO}, {n:,} loans (fresh subprocess)")
        rows.append(run_one_subprocess(n, args))

    log(f"Mesa BoltzmannWealth, {args.mesa_agents:,} agents (this process)")
    mesa_row = bench_boltzmann(
        args.mesa_agents, args.mesa_side, args.mesa_steps, args.repeats, args.seed
    )
    rows.append(mesa_row)
    for r in rows:
        r["ratio_to_boltzmann"] = r["throughput"] / mesa_row["throughput"]

    print_table(rows, info)
    if not args.no_write:
        base = write_results(rows, info, [sys.executable, *sys.argv])
        print(f"wrote {base}.csv and {base}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
