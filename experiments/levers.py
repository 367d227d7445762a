"""The study's three proposals one lever at a time and together: a decomposition with paired seeds.

The strengthened regime differs from restart_2016 in three groups of law, the study's three
proposals: special SPV rules (bankruptcy remoteness by statute, tax neutrality), investor
protection (protection in a recharacterisation, disclosure, enforceable guarantees) and the NPA
transfer regime (bulk transfers open to all licensed buyers, cheap and immediate debtor notice,
collateral that follows the claim, faster enforcement). Each lever is switched on alone on top of
restart_2016, and all three together (which is the strengthened regime), on the same seeds; the
table reports each arm's paired difference from restart_2016, with a 95% CI, on NPL disposal speed
(the face-weighted age at which NPLs leave the banks and the age of the stock they keep), bank
capital and liquidity, ABS issued and the senior spread.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments import metrics
from nplsim.experiments.compare import paired_difference, run_many
from nplsim.experiments.options import add_output_flags
from nplsim.experiments.pool import resolve_workers
from nplsim.experiments.seeds import DEFAULT_SEED, SEED_START_HELP, seed_range
from nplsim.experiments.store import default_out, holding, write_directory
from nplsim.market.errors import ConfigError
from nplsim.market.regime import load_regime

BASE, REFORMED = "restart_2016", "strengthened"
# Which fields of the law belong to which proposal (every field in which the two presets differ
# belongs to exactly one; tests/test_levers.py checks it).
LEVERS: dict[str, tuple[str, ...]] = {
    "spv_rules": ("bankruptcy_remoteness", "vat_rate"),
    "investor_protection": (
        "investor_protection", "disclosure_level", "guarantee_enforceability",
    ),
    "npa_transfer": (
        "bulk_transfer_to_amc_only", "notice_cost_per_borrower_cny", "notice_delay_q",
        "collateral_follows_claim", "enforcement_efficiency",
    ),
}  # fmt: skip
ARMS = (*LEVERS, "all_three")
# metric (a name of `nplsim metrics`), label and unit for the figure
METRICS: dict[str, tuple[str, str, str]] = {
    "npl_exit_age_q_mean": ("mean", "Age of NPLs leaving the banks", "quarters"),
    "npl_age_q_mean": ("mean", "Age of the banks' NPL stock", "quarters"),
    "car_mean": ("mean", "Bank capital adequacy ratio", "ratio"),
    "liquidity_ratio_mean": ("mean", "Bank liquidity ratio", "ratio"),
    "abs_issued_sum": ("sum", "ABS issued over the run", "CNY bn"),
    "senior_spread_bp_mean": ("mean", "Senior spread, deal quarters", "bp"),
}
TABLE_COLUMNS = ["arm", "metric", "mean_base", "mean_arm", "diff", "ci_low", "ci_high", "n_seeds"]


def lever_overrides() -> dict[str, dict[str, Any]]:
    """Each arm's regime overrides on top of restart_2016: one proposal's fields, or all."""
    reformed = load_regime(REFORMED).model_dump()
    arms = {lever: {f: reformed[f] for f in fields} for lever, fields in LEVERS.items()}
    arms["all_three"] = {f: v for arm in arms.values() for f, v in arm.items()}
    return arms


def _summary(path: np.ndarray, name: str) -> float:
    """The metric over quarters 1..T (quarter 0 is the opening balance sheet)."""
    return float(metrics.evaluate(metrics.get(name), path))


def decompose(
    seeds: range | list[int],
    n_loans: int = 20_000,
    quarters: int = 40,
    workers: int | None = 1,
) -> pd.DataFrame:
    """Run restart_2016 and each arm on ``seeds`` and return the table of paired differences."""
    names = tuple(METRICS)
    columns = tuple(metrics.get(name).source for name in names)
    common = {"n_loans": n_loans, "quarters": quarters}
    arms = {"base": {}, **lever_overrides()}
    tasks = [(BASE, s, {**common, **o}, columns) for o in arms.values() for s in seeds]
    runs = run_many(tasks, workers=workers)
    n = len(seeds)
    summary = {
        arm: np.array([[_summary(run[:, j], name) for j, name in enumerate(names)]
                       for run in runs[k * n:(k + 1) * n]])
        for k, arm in enumerate(arms)
    }  # fmt: skip
    rows = []
    for arm in ARMS:
        for j, metric in enumerate(names):
            d = paired_difference(summary["base"][:, j], summary[arm][:, j])
            rows.append({"arm": arm, "metric": metric, "mean_base": d["mean_a"],
                         "mean_arm": d["mean_b"], "diff": d["diff"], "ci_low": d["ci_low"],
                         "ci_high": d["ci_high"], "n_seeds": d["n_seeds"]})  # fmt: skip
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def lever_figure(table: pd.DataFrame, path: Path) -> None:
    """One panel per metric: each arm's paired difference from restart_2016 with its 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(11, 6), constrained_layout=True)
    for ax, (metric, (_, label, unit)) in zip(axes.flat, METRICS.items(), strict=True):
        rows = table[table["metric"] == metric].set_index("arm").loc[list(ARMS)]
        y = np.arange(len(ARMS))
        err = np.vstack([rows["diff"] - rows["ci_low"], rows["ci_high"] - rows["diff"]])
        ax.barh(y, rows["diff"], xerr=np.nan_to_num(err), color="#4c72b0", capsize=3)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(y, [a.replace("_", " ") for a in ARMS])
        ax.invert_yaxis()
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(f"change vs restart_2016 ({unit})", fontsize=8)
    seeds = int(table["n_seeds"].max()) if len(table) else 0
    fig.suptitle(f"{BASE}, law {BASE} → {REFORMED}: the study's proposals one at a time and "
                 f"together ({seeds} paired seeds, 95% CI)")  # fmt: skip
    from nplsim.experiments.figures import save as save_figure

    save_figure(fig, path, dpi=150)
    plt.close(fig)


def _cmd_levers(args: argparse.Namespace) -> int:
    seeds = seed_range(args.seed_start, args.seeds, "levers", "--seed-start", "--seeds")
    if len(seeds) < 2:
        raise ConfigError("levers", "--seeds", str(args.seeds), "2 or more (a CI needs two pairs)")
    out = args.out if args.out else default_out("levers")
    workers = resolve_workers(args.workers)
    with holding(out, "levers", overwrite=args.overwrite) as claimed:  # before any run starts
        table = decompose(seeds, n_loans=args.n_loans, quarters=args.quarters, workers=workers)

        def write(staging: Path) -> None:
            table.to_csv(staging / "levers.csv", index=False)
            lever_figure(table, staging / "levers.png")

        path = write_directory(claimed, "levers", write)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"results: {path}")
    return 0


def register_cli(sub: Any) -> None:
    """Add ``nplsim levers`` to the subcommands."""
    p = sub.add_parser(
        "levers", help="the study's three proposals one at a time and together, paired seeds"
    )
    p.add_argument("--seeds", type=int, default=10, help="number of paired seeds (default 10)")
    p.add_argument("--seed-start", type=int, default=DEFAULT_SEED, help=SEED_START_HELP)
    p.add_argument("--n-loans", type=int, default=20_000, help="loan slots (default 20000)")
    p.add_argument("--quarters", type=int, default=40, help="horizon (default 40)")
    add_output_flags(p, "levers", "results/levers")
    p.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    p.set_defaults(handler=_cmd_levers)
