"""Equivalence check: do two revisions of nplsim give the same outputs in distribution?

Usage::

    python benchmarks/equivalence.py --reference 09f0a69 --candidate d60d9de
    python benchmarks/equivalence.py --reference 09f0a69              # candidate: working tree
    python benchmarks/equivalence.py --reference 09f0a69 --quick      # 3 seeds, 5k loans, 12 q
    python benchmarks/equivalence.py --reference 876d3d6 --candidate 0039960 \\
        --scenarios restart_2016 amc_only_1999 --seeds 30 --loans 20000 --quarters 40 --workers 2

Some optimisations change how the model draws its random numbers but not its economics, so the
two revisions' outputs for one seed are not byte-identical. This script runs both revisions for the
same seeds and tests, metric by metric, whether the two samples of per-run summaries could come
from the same distribution.

How a revision is run. A git revision is exported with ``git archive REV | tar -x`` into a
temporary directory (the repository's state is not touched). The working tree (the default
candidate) is copied the same way: every tracked and untracked, not ignored file as it is at the
start, so that all runs see the same code even while the tree is being edited. Each simulation
(one scenario, one seed) runs in a fresh child process, ``python equivalence.py --child ...``,
with the same interpreter, ``PYTHONPATH`` set to the exported source and that directory as the
working directory. The child imports the exported ``market`` package, not the editable install;
it reports where ``market`` and ``agents`` were imported from, and the parent checks that they
lie in the exported source. At most ``--workers`` children run at once (a thread pool whose
threads only wait on their child process). The child prints one JSON line of summary statistics.

Metrics of a run (from ``model_frame()``, one row per quarter): for each core column that both
revisions have, (a) its value at the final quarter and (b) its mean over quarters 1..T (NaN
quarters ignored), plus run totals: loans that defaulted during the run (counted by wrapping the
loan book's ``default`` method in the child), new NPL volume, deals issued, AMC auction sales and
secondary-market trades.

Statistics, per scenario and metric (the two samples are the runs of each revision over the same
seeds; NaN runs are dropped per metric and counted):

- mean and sd of each revision, difference of means (candidate - reference) with a 95% Welch CI,
  the standardised difference (difference / sqrt of the mean of the two variances);
- Welch's t-test and the two-sample Kolmogorov-Smirnov test (unpaired: the two methods draw
  different numbers from a seed). Where some runs have no value (NaN), Fisher's exact test on the
  NaN counts (whether the value exists is itself an outcome);
- Holm-Bonferroni over every test of the scenario (all metrics, all test kinds, one family);
  verdict ``differs`` if any of a metric's adjusted p-values is below ``--alpha``, else ``same``.
  A metric whose values are all equal in both revisions (within 1e-9 relative) is ``identical``:
  there is nothing to test and it is left out of the Holm family. A metric that is NaN in every
  run of both revisions is skipped and listed.

Informational, not part of the verdict: the revisions share the streams that the optimisations
did not touch (the initial book, the macro factor), so runs with the same seed are correlated.
The table reports that correlation and a paired t-test on the seed-wise differences (its own
Holm family). Positive correlation makes the unpaired tests conservative; the paired test is the
more sensitive one.

Outputs: ``benchmarks/results/equivalence_<UTC stamp>.csv`` (the table),
``equivalence_<stamp>_runs.csv`` (every run's metrics) and ``equivalence_<stamp>.json`` (command,
revisions resolved to full hashes, seeds, sizes, machine and package versions, conclusions).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
RESULTS_DIR = SCRIPT.parent / "results"
REPO_ROOT = SCRIPT.parent.parent
WORKTREE = "WORKTREE"
DEFAULT_SCENARIOS = ("restart_2016", "amc_only_1999")
FULL = {"seeds": 30, "loans": 20_000, "quarters": 40}
QUICK = {"seeds": 3, "loans": 5_000, "quarters": 12}

# Economically central columns of model_frame(); only those both revisions have are used.
CORE_COLUMNS = (
    "npl_ratio",  # aggregate NPL ratio of the banks
    "car",  # aggregate capital adequacy ratio
    "provision_coverage",
    "liquidity_ratio",
    "new_npl",  # new NPL volume of the quarter
    "npl_sold_amc",
    "npl_securitised",
    "abs_issued",
    "abs_outstanding",
    "amc_price_to_face",  # AMC auction clearing price / face
    "bank_recovery_rate",
    "amc_recovery_to_date",
    "liquidity_created_workout",  # banks' recovered cash net of workout costs
    "turnover",  # ABS secondary market
    "bid_ask_bp",
)
# Run totals the child reports besides the per-column statistics: (metric, stat).
RUN_TOTALS = (
    ("defaulted_loans", "count"),
    ("new_npl", "total"),
    ("deals", "count"),
    ("amc_auction_sales", "count"),
    ("secondary_trades", "count"),
)
IDENTICAL_RTOL = 1e-9
KEY_PACKAGES = ("numpy", "pandas", "scipy", "mesa", "pydantic", "pyarrow", "networkx", "nplsim")
TESTS = ("welch", "ks", "nan")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ============================================================================ child
def import_exported_model(root: Path) -> tuple[type, list[Any]]:
    """``NPLMarketModel`` of the source tree at ``root`` (the working directory), and the packages
    it came from. Since the namespace change the tree's folders are the subpackages of ``nplsim``:
    the exported ``nplsim/`` is imported with the tree's root on its search path, so
    ``nplsim.market`` is the exported ``market/`` and not the editable install's. Older revisions
    have top-level packages, imported through ``PYTHONPATH``."""
    front = root / "nplsim" / "__init__.py"
    if not front.is_file():
        from market.model import NPLMarketModel

        import agents  # noqa: F401  (older revisions: top-level packages)
        import market

        return NPLMarketModel, [market, sys.modules["agents"]]
    spec = importlib.util.spec_from_file_location(
        "nplsim", front, submodule_search_locations=[str(front.parent), str(root)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules["nplsim"] = package
    spec.loader.exec_module(package)
    model_class = package.NPLMarketModel
    return model_class, [sys.modules["nplsim.market"], sys.modules["nplsim.agents"]]


def child_main(scenario: str, seed: int, n_loans: int, quarters: int) -> int:
    """Run one (scenario, seed) with the exported source's model; print one JSON line."""
    t0 = time.perf_counter()
    import numpy as np

    NPLMarketModel, (market, agents) = import_exported_model(Path.cwd())

    model = NPLMarketModel(scenario=scenario, rng=seed, n_loans=n_loans, quarters=quarters)
    defaulted = [0]
    draw_defaults = model.loans.default

    def counting_default(*args: Any, **kwargs: Any) -> Any:
        went_bad = draw_defaults(*args, **kwargs)
        arr = np.asarray(went_bad)  # a mask in older revisions, slot indices in newer ones
        defaulted[0] += int(arr.sum()) if arr.dtype == bool else int(arr.size)
        return went_bad

    model.loans.default = counting_default
    t1 = time.perf_counter()
    while model.running:
        model.step()
    t2 = time.perf_counter()

    frame = model.model_frame()
    numeric = frame.drop(columns=["quarter"]).select_dtypes("number").astype(float)
    later = numeric[frame["quarter"] >= 1]
    values: dict[str, float | None] = {}
    for column in numeric.columns:
        series = later[column].dropna()
        values[f"{column}|final"] = float(numeric[column].iloc[-1])
        values[f"{column}|mean"] = float(series.mean()) if len(series) else None
    values["defaulted_loans|count"] = defaulted[0]
    values["new_npl|total"] = float(later["new_npl"].sum()) if "new_npl" in later else None
    deals = model.deal_frame() if hasattr(model, "deal_frame") else None
    values["deals|count"] = None if deals is None else len(deals)
    trades = model.trade_frame() if hasattr(model, "trade_frame") else None
    has_market = trades is not None and "market" in trades
    for name, market_name in (
        ("amc_auction_sales", "amc_auction"),
        ("secondary_trades", "secondary"),
    ):
        values[f"{name}|count"] = (
            int((trades["market"] == market_name).sum()) if has_market else None
        )

    out = {
        "scenario": scenario,
        "seed": seed,
        "quarters_run": int(frame["quarter"].iloc[-1]),
        "market_file": market.__file__,
        "agents_file": agents.__file__,
        "import_s": t1 - t0,
        "simulate_s": t2 - t1,
        "values": {
            k: (None if v is None or not math.isfinite(v) else v) for k, v in values.items()
        },
    }
    print(json.dumps(out), flush=True)
    return 0


# ============================================================================ revisions
def git(*args: str) -> str:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never refresh the index
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


@dataclass
class Source:
    """One side of the comparison: a revision exported to a directory."""

    role: str  # "reference" or "candidate"
    requested: str
    commit: str  # full hash (for the working tree: HEAD)
    label: str
    directory: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)


def resolve(role: str, rev: str) -> Source:
    if rev == WORKTREE:
        head = git("rev-parse", "--verify", "HEAD^{commit}").strip()
        return Source(role, rev, head, f"working tree (HEAD {head[:7]} + uncommitted changes)")
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    subject = git("log", "-1", "--format=%s", commit).strip()
    return Source(role, rev, commit, f"{commit[:7]} {subject[:60]}")


def export(source: Source, parent: Path) -> None:
    """Write the source of ``source`` into a fresh directory under ``parent``."""
    target = Path(tempfile.mkdtemp(prefix=f"{source.role}-", dir=parent))
    if source.requested == WORKTREE:
        listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
        digest = hashlib.sha256()
        copied = 0
        for rel in sorted(set(filter(None, listed.split("\0")))):
            path = REPO_ROOT / rel
            if not path.is_file():  # deleted in the tree but still tracked
                continue
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / rel)
            digest.update(rel.encode() + b"\0" + (target / rel).read_bytes() + b"\0")
            copied += 1
        modified = git("diff", "--name-only", "HEAD").split()
        untracked = git("ls-files", "--others", "--exclude-standard").split()
        source.details = {
            "head": source.commit,
            "files_copied": copied,
            "snapshot_sha256": digest.hexdigest(),
            "modified_files": modified,
            "untracked_files": untracked,
        }
    else:
        archive = subprocess.Popen(
            ["git", "-C", str(REPO_ROOT), "archive", source.commit], stdout=subprocess.PIPE
        )
        untar = subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout)
        archive.stdout.close()
        if archive.wait() != 0 or untar.returncode != 0:
            raise SystemExit(f"could not export {source.requested} with git archive | tar")
    if not any((target / where / "model.py").is_file() for where in ("economy", "market")):
        raise SystemExit(f"{source.requested}: no economy/model.py in the exported source")
    source.directory = target


# ============================================================================ runs
def run_child(source: Source, scenario: str, seed: int, loans: int, quarters: int) -> dict:
    assert source.directory is not None
    env = {
        **os.environ,
        "PYTHONPATH": str(source.directory),
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.pop("PYTHONSAFEPATH", None)
    cmd = [sys.executable, str(SCRIPT), "--child", scenario, str(seed), str(loans), str(quarters)]
    out = subprocess.run(cmd, cwd=source.directory, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{source.role} {scenario} seed {seed} failed:\n{tail}")
    line = out.stdout.strip().splitlines()[-1]
    result = json.loads(line)
    root = source.directory.resolve()
    for key in ("market_file", "agents_file"):
        path = result.get(key)
        if path is not None and not Path(path).resolve().is_relative_to(root):
            raise RuntimeError(
                f"{source.role} {scenario} seed {seed}: imported {path}, not the exported source"
                f" in {root}; the editable install shadows PYTHONPATH"
            )
    result["revision"] = source.role
    return result


def run_all(
    sources: list[Source], scenarios: list[str], seeds: list[int], args: argparse.Namespace
) -> list[dict]:
    tasks = [(src, sc, seed) for sc in scenarios for seed in seeds for src in sources]
    results: list[dict] = []
    done = 0
    lock = threading.Lock()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [
            pool.submit(run_child, src, sc, seed, args.loans, args.quarters)
            for src, sc, seed in tasks
        ]
        try:
            for future in as_completed(futures):
                res = future.result()
                with lock:
                    results.append(res)
                    done += 1
                if done == 1 or done % max(1, len(tasks) // 10) == 0 or done == len(tasks):
                    elapsed = time.perf_counter() - started
                    log(f"  {done}/{len(tasks)} runs done ({elapsed:.0f} s)")
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return results


def runs_frame(results: list[dict]):
    import pandas as pd

    rows = []
    for r in results:
        row = {
            "scenario": r["scenario"],
            "revision": r["revision"],
            "seed": r["seed"],
            "simulate_s": r["simulate_s"],
            "import_s": r["import_s"],
            "quarters_run": r["quarters_run"],
        }
        row.update({k: (math.nan if v is None else v) for k, v in r["values"].items()})
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["scenario", "revision", "seed"], ignore_index=True)


# ============================================================================ statistics
def holm(pvalues):
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    import numpy as np

    p = np.asarray(pvalues, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]).clip(max=1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def welch(a, b) -> dict[str, float]:
    """Difference of means b - a, its 95% Welch CI and the two-sided Welch p-value."""
    from scipy import stats

    n1, n2 = a.size, b.size
    v1, v2 = a.var(ddof=1) / n1, b.var(ddof=1) / n2
    diff = float(b.mean() - a.mean())
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        return {"diff": diff, "ci_low": diff, "ci_high": diff, "p_welch": 1.0 if diff == 0 else 0.0}
    denom = (v1**2 / (n1 - 1) if v1 else 0.0) + (v2**2 / (n2 - 1) if v2 else 0.0)
    dof = (v1 + v2) ** 2 / denom
    half = stats.t.ppf(0.975, dof) * se
    p = 2.0 * stats.t.sf(abs(diff) / se, dof)
    return {"diff": diff, "ci_low": diff - half, "ci_high": diff + half, "p_welch": float(p)}


def compare_metric(ref, cand, paired) -> dict[str, Any]:
    """Every statistic of one metric; ``ref``/``cand`` are per-seed arrays with NaNs."""
    import numpy as np
    from scipy import stats

    a, b = ref[~np.isnan(ref)], cand[~np.isnan(cand)]
    row: dict[str, Any] = {
        "n_ref": a.size,
        "n_cand": b.size,
        "nan_ref": int(np.isnan(ref).sum()),
        "nan_cand": int(np.isnan(cand).sum()),
        "mean_ref": a.mean() if a.size else math.nan,
        "sd_ref": a.std(ddof=1) if a.size > 1 else math.nan,
        "mean_cand": b.mean() if b.size else math.nan,
        "sd_cand": b.std(ddof=1) if b.size > 1 else math.nan,
        **dict.fromkeys(("diff", "ci_low", "ci_high", "std_diff", "corr"), math.nan),
        **dict.fromkeys(("p_welch", "p_ks", "p_nan", "p_paired"), math.nan),
        **dict.fromkeys(("paired_ci_low", "paired_ci_high"), math.nan),
        "equal_seedwise": bool(
            paired.shape[0] == ref.size
            and np.array_equal(paired[:, 0], paired[:, 1], equal_nan=True)
        ),
        "note": "",
    }
    if row["nan_ref"] or row["nan_cand"]:
        table = [[row["nan_ref"], a.size], [row["nan_cand"], b.size]]
        row["p_nan"] = float(stats.fisher_exact(table).pvalue)
    if a.size == 0 or b.size == 0:
        row["note"] = "no values in one revision"
        return row
    pooled = np.concatenate([a, b])
    scale = max(float(np.abs(pooled).max()), 1e-300)
    if np.ptp(pooled) <= IDENTICAL_RTOL * scale:
        row.update(diff=0.0, ci_low=0.0, ci_high=0.0, std_diff=0.0)
        if math.isnan(row["p_nan"]):
            row.update(p_welch=1.0, p_ks=1.0, note="identical")
        else:
            row["note"] = "values identical, NaN counts tested"
        return row
    with warnings.catch_warnings():  # ties (counts): scipy falls back to the asymptotic p
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
        row["p_ks"] = float(stats.ks_2samp(a, b).pvalue)
    if a.size >= 2 and b.size >= 2:
        row.update(welch(a, b))
        spread = math.sqrt((row["sd_ref"] ** 2 + row["sd_cand"] ** 2) / 2)
        row["std_diff"] = row["diff"] / spread if spread else math.copysign(math.inf, row["diff"])
    else:
        row["diff"] = float(b.mean() - a.mean())
        row["note"] = "fewer than 2 values in one revision: no Welch test"
    both = paired[~np.isnan(paired).any(axis=1)]
    if both.shape[0] >= 3:
        x, y = both[:, 0], both[:, 1]
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            row["corr"] = float(np.corrcoef(x, y)[0, 1])
        d = y - x
        if np.ptp(d) > IDENTICAL_RTOL * max(float(np.abs(d).max()), 1e-300):
            paired_test = stats.ttest_1samp(d, 0.0)
            ci = paired_test.confidence_interval(0.95)
            row.update(
                p_paired=float(paired_test.pvalue), paired_ci_low=ci.low, paired_ci_high=ci.high
            )
        else:
            same = 1.0 if np.all(d == 0) else 0.0
            row.update(p_paired=same, paired_ci_low=d.mean(), paired_ci_high=d.mean())
    return row


def analyse(runs, scenario: str, metrics: list[tuple[str, str]], alpha: float):
    """The comparison table of one scenario, with Holm adjustments and verdicts."""
    import numpy as np
    import pandas as pd

    sub = runs[runs["scenario"] == scenario]
    ref = sub[sub["revision"] == "reference"].set_index("seed").sort_index()
    cand = sub[sub["revision"] == "candidate"].set_index("seed").sort_index()
    seeds = ref.index.intersection(cand.index)
    rows, skipped = [], []
    for metric, stat in metrics:
        key = f"{metric}|{stat}"
        r = ref[key].to_numpy(float) if key in ref else np.full(len(ref), np.nan)
        c = cand[key].to_numpy(float) if key in cand else np.full(len(cand), np.nan)
        if np.isnan(r).all() and np.isnan(c).all():
            skipped.append(key)
            continue
        paired = np.column_stack([ref.loc[seeds, key], cand.loc[seeds, key]]).astype(float)
        row = {"scenario": scenario, "metric": metric, "stat": stat}
        rows.append({**row, **compare_metric(r, c, paired)})
    table = pd.DataFrame(rows)
    if table.empty:
        return table, skipped
    # One Holm family: every test of every metric of the scenario.
    cells = [
        (i, t)
        for i in table.index
        for t in TESTS
        if table.at[i, "note"] != "identical" and not math.isnan(table.at[i, f"p_{t}"])
    ]
    adjusted = holm([table.at[i, f"p_{t}"] for i, t in cells])
    for t in TESTS:
        table[f"p_{t}_holm"] = math.nan
    for (i, t), p in zip(cells, adjusted, strict=True):
        table.at[i, f"p_{t}_holm"] = p
    table["p_holm"] = table[[f"p_{t}_holm" for t in TESTS]].min(axis=1, skipna=True)
    table["verdict"] = np.where(
        table["note"] == "identical",
        "identical",
        np.where(
            table["p_holm"] < alpha, "differs", np.where(table["p_holm"].isna(), "untested", "same")
        ),
    )
    # Informational: paired t-test over the shared seeds, its own Holm family.
    live = table["p_paired"].notna() & (table["note"] != "identical")
    table["p_paired_holm"] = math.nan
    table.loc[live, "p_paired_holm"] = holm(table.loc[live, "p_paired"].to_numpy())
    return table, skipped


# ============================================================================ report
def fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        if x == 0:
            return "0"
        return f"{x:.{digits}g}"
    return str(x)


def fmt_p(x: float) -> str:
    if math.isnan(x):
        return "-"
    return "<1e-4" if x < 1e-4 else f"{x:.4f}"


def print_table(table, scenario: str, skipped: list[str], alpha: float) -> tuple[str, str]:
    import pandas as pd

    shown = pd.DataFrame(
        {
            "metric": table["metric"] + " " + table["stat"],
            "n ref/cand": [
                f"{a}/{b}" for a, b in zip(table["n_ref"], table["n_cand"], strict=True)
            ],
            "mean ref": table["mean_ref"].map(fmt),
            "sd ref": table["sd_ref"].map(fmt),
            "mean cand": table["mean_cand"].map(fmt),
            "sd cand": table["sd_cand"].map(fmt),
            "diff [95% CI]": [
                "0"
                if v == "identical"
                else "-"
                if math.isnan(d)
                else fmt(d, 3)
                if math.isnan(lo)
                else f"{fmt(d, 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}]"
                for d, lo, hi, v in zip(
                    table["diff"], table["ci_low"], table["ci_high"], table["verdict"], strict=True
                )
            ],
            "std diff": table["std_diff"].map(lambda x: fmt(x, 2)),
            "p Welch": table["p_welch"].map(fmt_p),
            "p KS": table["p_ks"].map(fmt_p),
            "p NaN": table["p_nan"].map(fmt_p),
            "p Holm": table["p_holm"].map(fmt_p),
            "verdict": table["verdict"],
            "corr": table["corr"].map(lambda x: fmt(x, 2)),
            "p paired": table["p_paired"].map(fmt_p),
        }
    )
    print(f"\n=== {scenario}")
    print(shown.to_string(index=False))
    if skipped:
        print(f"skipped (NaN in every run of both revisions): {', '.join(skipped)}")
    n = len(table)
    differ = int((table["verdict"] == "differs").sum())
    identical = int((table["verdict"] == "identical").sum())
    untested = int((table["verdict"] == "untested").sum())
    seedwise = int(table["equal_seedwise"].sum())
    conclusion = (
        f"{scenario}: {differ} of {n} metrics differ at {alpha:.0%} after Holm"
        f" ({identical} constant and equal in both revisions; {seedwise} equal seed by seed"
        + (f"; {untested} untested" if untested else "")
        + ")"
    )
    paired_live = table["p_paired_holm"].notna()
    paired_note = (
        f"{scenario} (informational) paired t-test over shared seeds: "
        f"{int((table.loc[paired_live, 'p_paired_holm'] < alpha).sum())} of "
        f"{int(paired_live.sum())} below {alpha:.0%} after Holm; median seed-wise correlation "
        f"between revisions {fmt(float(table['corr'].median()), 2)}"
    )
    print(paired_note)
    return conclusion, paired_note


# ============================================================================ machine
def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    for pkg in KEY_PACKAGES:
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = None
    installed = {d.metadata["Name"]: d.version for d in metadata.distributions()}
    info["all_packages"] = {name: installed[name] for name in sorted(installed) if name}
    return info


# ============================================================================ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", help="git revision to compare against")
    p.add_argument(
        "--candidate", default=WORKTREE, help=f"git revision, or {WORKTREE} (default): the tree"
    )
    p.add_argument("--scenarios", nargs="+", default=None, help="built-in scenario names")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 30)")
    p.add_argument("--first-seed", type=int, default=1, help="seeds are FIRST..FIRST+N-1")
    p.add_argument("--loans", type=int, default=None, help="loan slots (default 20,000)")
    p.add_argument("--quarters", type=int, default=None, help="horizon (default 40)")
    p.add_argument("--workers", type=int, default=2, help="simulations at once (default 2)")
    p.add_argument("--alpha", type=float, default=0.05, help="level after Holm (default 0.05)")
    p.add_argument(
        "--quick", action="store_true", help="3 seeds, 5,000 loans, 12 quarters, one scenario"
    )
    p.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    child_args = ("SCENARIO", "SEED", "LOANS", "QUARTERS")
    p.add_argument("--child", nargs=4, metavar=child_args, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return args
    if not args.reference:
        p.error("--reference is required")
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.scenarios is None:
        args.scenarios = list(DEFAULT_SCENARIOS[:1] if args.quick else DEFAULT_SCENARIOS)
    if args.seeds < 2:
        p.error("--seeds must be at least 2 (a sample needs two runs for a variance)")
    if args.loans < 100 or args.quarters < 1 or args.workers < 1:
        p.error("--loans >= 100, --quarters >= 1 and --workers >= 1 are required")
    if not 0 < args.alpha < 1:
        p.error("--alpha must lie between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        scenario, seed, loans, quarters = args.child
        return child_main(scenario, int(seed), int(loans), int(quarters))

    import numpy as np
    import pandas as pd

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    sources = [resolve("reference", args.reference), resolve("candidate", args.candidate)]
    for s in sources:
        log(f"{s.role}: {s.label}")
    log(
        f"scenarios {', '.join(args.scenarios)}; seeds {seeds[0]}..{seeds[-1]}; "
        f"{args.loans:,} loans; {args.quarters} quarters; {args.workers} workers"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nplsim-equivalence-") as tmp:
        for s in sources:
            export(s, Path(tmp))
        try:
            results = run_all(sources, args.scenarios, seeds, args)
        except RuntimeError as exc:  # a child failed or imported the wrong code
            raise SystemExit(f"error: {exc}") from None
        imported = {
            s.role: sorted({r["market_file"] for r in results if r["revision"] == s.role})
            for s in sources
        }
    wall = time.perf_counter() - started
    for s in sources:
        rel = {str(Path(f).relative_to(s.directory)) for f in imported[s.role]}
        log(f"{s.role} imported market from its exported source: {', '.join(sorted(rel))}")

    runs = runs_frame(results)
    short = runs[runs["quarters_run"] != args.quarters]
    if not short.empty:
        log(f"warning: {len(short)} runs stopped before quarter {args.quarters}")
    available = [
        {k.split("|")[0] for r in results if r["revision"] == role for k in r["values"]}
        for role in ("reference", "candidate")
    ]
    common = available[0] & available[1]
    metrics = [(c, stat) for c in CORE_COLUMNS if c in common for stat in ("final", "mean")]
    metrics += [m for m in RUN_TOTALS if m[0] in common]
    missing = [c for c in CORE_COLUMNS if c not in common]
    if missing:
        log(f"core columns not in both revisions, left out: {', '.join(missing)}")

    print(
        f"\nreference {sources[0].label}\ncandidate {sources[1].label}\n"
        f"seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} per revision), {args.loans:,} loans, "
        f"{args.quarters} quarters; unpaired tests (Welch t, Kolmogorov-Smirnov, Fisher on NaN "
        f"counts), Holm over all tests of a scenario, alpha {args.alpha}"
    )
    tables, conclusions, paired_notes, skipped_all = [], {}, {}, {}
    for scenario in args.scenarios:
        table, skipped = analyse(runs, scenario, metrics, args.alpha)
        conclusions[scenario], paired_notes[scenario] = print_table(
            table, scenario, skipped, args.alpha
        )
        skipped_all[scenario] = skipped
        tables.append(table)
    timing = runs.groupby(["scenario", "revision"])["simulate_s"].median().unstack()
    print("\nmedian simulation time per run, s (indicative: shared machine, runs in parallel)")
    print(timing.round(3).to_string())
    print()
    for line in conclusions.values():
        print(line)
    log(f"wall time {wall:.0f} s for {len(results)} runs")

    if args.no_write:
        return 0
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    base = RESULTS_DIR / f"equivalence_{stamp}"
    out = pd.concat(tables, ignore_index=True)
    first = ["scenario", "metric", "stat", "verdict", "p_holm"]
    out = out[first + [c for c in out.columns if c not in first]]
    out.insert(0, "reference", sources[0].commit)
    out.insert(1, "candidate", sources[1].commit if sources[1].requested != WORKTREE else WORKTREE)
    out.to_csv(f"{base}.csv", index=False)
    runs.to_csv(f"{base}_runs.csv", index=False)
    payload = {
        "timestamp": stamp,
        "command": [sys.executable, *sys.argv],
        "revisions": {
            s.role: {"requested": s.requested, "commit": s.commit, "label": s.label, **s.details}
            for s in sources
        },
        "scenarios": args.scenarios,
        "seeds": seeds,
        "loans": args.loans,
        "quarters": args.quarters,
        "workers": args.workers,
        "alpha": args.alpha,
        "metrics": [f"{m} {s}" for m, s in metrics],
        "core_columns_missing": missing,
        "skipped_all_nan": skipped_all,
        "conclusions": conclusions,
        "paired_informational": paired_notes,
        "imported_market": {
            s.role: [str(Path(f).relative_to(s.directory)) for f in imported[s.role]]
            for s in sources
        },
        "median_simulate_s": {
            sc: {rev: float(v) for rev, v in row.items() if np.isfinite(v)}
            for sc, row in timing.iterrows()
        },
        "wall_time_s": wall,
        "machine": machine_info(),
    }
    Path(f"{base}.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {base}.csv, {base}_runs.csv and {base}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
