"""``nplsim stress``: what NPL disposal does for a bank in a liquidity crisis, channel by channel
and law by law, with paired seeds.

One bank loses deposits while the interbank market freezes (a June-2013-like rate spike, with
lenders rolling over only part of its funding) and bonds sell at a fire-sale discount. The same
stress, on the same seeds, is run with every disposal channel open (the baseline), with each
channel closed in turn (no securitisation, no AMC sales, workout only), and under other legal
regimes. For the stressed bank each run gives its LCR and liquidity-ratio troughs, its borrowing
from the central bank, its funding cost and the quarters it takes to recover; each variant's
effect is the mean paired difference from the baseline with a 95% t-interval over seeds.

Writes ``runs.csv`` (one row per variant and seed), ``effects.csv``, ``paths.csv`` (the stressed
bank's quarterly LCR, central-bank borrowing and funding cost), ``stress.md``, ``stress.png`` and
``manifest.json`` into a new directory, atomically.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nplsim.experiments.compare import mean_band, paired_difference
from nplsim.experiments.options import add_output_flags, add_yes_flag, confirm_runs, parse_set
from nplsim.experiments.pool import run_tasks
from nplsim.experiments.provenance import pins
from nplsim.experiments.seeds import DEFAULT_SEED, SEED_START_HELP, seed_range
from nplsim.experiments.store import Claim, default_out, holding, json_text, write_directory
from nplsim.market.errors import ConfigError, printable
from nplsim.market.regime import list_presets
from nplsim.market.scenario import DEFAULT_SCENARIO, load_scenario

# The paths recorded for the stressed bank, with the label and scale of their figures.
PATHS = {
    "lcr": ("LCR", "%", 100.0),
    "liquidity_ratio": ("Liquidity ratio", "%", 100.0),
    "central_bank_borrowing": ("Central-bank borrowing (SLF + MLF)", "CNY bn", 1.0),
    "funding_cost": ("Funding cost", "% a year", 100.0),
}
# Per-run statistics: label, unit, and how a larger value reads.
METRICS = {
    "lcr_trough": ("LCR trough after the shock", "%"),
    "liquidity_ratio_trough": ("Liquidity-ratio trough after the shock", "%"),
    "cb_borrowing_peak": ("Peak central-bank borrowing", "CNY bn"),
    "cb_borrowing_total": ("Central-bank borrowing summed over quarters", "CNY bn x quarter"),
    "funding_cost_mean": ("Mean funding cost, 8 quarters from the shock", "% a year"),
    "recovery_quarters": ("Quarters to recover (LCR back, central bank repaid)", "quarters"),
    "disposal_cash": ("Cash from AMC sales, securitisation and workout", "CNY bn"),
}
CHANNEL_VARIANTS = {
    "no securitisation": ["amc"],
    "no AMC sales": ["securitisation"],
    "workout only": [],
}
WINDOW_Q = 8  # quarters after the shock over which funding cost is averaged
RECOVERY_TOLERANCE = 0.01  # LCR counts as recovered within a point of its level (assumption)


@dataclass(frozen=True)
class StressDesign:
    """The stress and the variants compared under it."""

    scenario: str = DEFAULT_SCENARIO
    seeds: tuple[int, ...] = tuple(range(1, 11))
    quarters: int = 24
    at: int = 8
    bank: str | None = None
    # The default stress (assumptions): a run on 15% of less stable deposits a quarter; an
    # interbank spike of 3 pp on the quarter's average rate, as a June-2013 crunch of days at
    # 8-13% overnight and weeks of elevated rates (facts: shibor-2013); half of maturing interbank
    # funding rolled over; bonds sold 5% below book; for two quarters.
    outflow: float = 0.15
    freeze_spike: float = 0.03
    rollover: float = 0.5
    fire_sale: float = 0.05
    duration_q: int = 2
    regimes: tuple[str, ...] = ("strengthened",)
    overrides: dict[str, Any] = field(default_factory=dict)

    def shocks(self, bank: str) -> list[dict[str, Any]]:
        """The scheduled liquidity shocks of the stress (``liquidity.shocks``)."""
        common = {"quarter": self.at, "duration_q": self.duration_q}
        return [
            {**common, "kind": "deposit_outflow", "size": self.outflow, "banks": [bank],
             "label": f"deposit run on {bank}"},
            {**common, "kind": "interbank_freeze", "size": self.freeze_spike,
             "rollover": self.rollover, "label": "interbank freeze (June-2013-like spike)"},
            {**common, "kind": "fire_sale", "size": self.fire_sale, "label": "bond fire sale"},
        ]  # fmt: skip

    def variants(self, bank: str) -> dict[str, dict[str, Any]]:
        """Overrides of each variant, the baseline first."""
        base = {**self.overrides, "quarters": self.quarters,
                "liquidity.shocks": self.shocks(bank)}  # fmt: skip
        out = {"all channels": base}
        for name, channels in CHANNEL_VARIANTS.items():
            out[name] = {**base, "disposal_channels": channels}
        for regime in self.regimes:
            out[f"law: {regime}"] = {**base, "regime": regime}
        return out


def check_design(design: StressDesign) -> str:
    """Check the design before anything runs; returns the stressed bank's name.

    Raises:
        ConfigError: an unknown scenario, bank or preset, or a shock outside the horizon.
    """
    if not 1 <= len(design.seeds) <= 10_000:
        raise ConfigError("--seeds", str(len(design.seeds)), "must be 1 to 10000", "1 to 10000")
    config, _ = load_scenario(design.scenario, {**design.overrides, "quarters": design.quarters})
    names = [b.name for b in config.banks]
    bank = design.bank or names[0]
    if bank not in names:
        raise ConfigError("--bank", bank, "not a bank of the scenario", ", ".join(names))
    if not 1 <= design.at < design.quarters:
        raise ConfigError("--at", str(design.at), "must fall inside the horizon",
                          f"1 to {design.quarters - 1}")  # fmt: skip
    for regime in design.regimes:
        if regime not in list_presets():
            raise ConfigError("--regimes", regime, "unknown preset", ", ".join(list_presets()))
    for overrides in design.variants(bank).values():
        load_scenario(design.scenario, overrides)
    return bank


# ====================================================================== one run
def run_one(task: tuple[str, int, dict[str, Any], str]) -> dict[str, np.ndarray]:
    """Run one variant on one seed; the stressed bank's quarterly paths (a top-level function, so
    a process pool can pickle it)."""
    from nplsim.experiments.run import simulate

    scenario, seed, overrides, bank = task
    targets: list[float] = []  # the bank's own LCR target each quarter (NaN: no LCR in force)

    def note_target(model: Any) -> None:
        lcr_target, _ = next(b for b in model.banks if b.name == bank).liquidity_targets()
        targets.append(np.nan if lcr_target is None else lcr_target)

    frame = simulate(scenario, seed, overrides, on_quarter=note_target).bank_frame()
    rows = frame[frame["bank"] == bank].set_index("quarter").sort_index()
    cash = sum(rows[c] for c in ("amc_sale_proceeds", "securitisation_proceeds", "abs_income")) + (
        rows["recoveries"] - rows["workout_costs"]
    )
    return {
        "lcr": rows["lcr"].to_numpy(float),
        "liquidity_ratio": rows["liquidity_ratio"].to_numpy(float),
        "central_bank_borrowing": (rows["slf"] + rows["mlf"]).to_numpy(float),
        "funding_cost": rows["funding_cost"].to_numpy(float),
        "disposal_cash": cash.to_numpy(float),
        "lcr_target": np.array(targets[:1] + targets, dtype=float),
    }


def run_metrics(paths: dict[str, np.ndarray], at: int) -> dict[str, float]:
    """The per-run statistics of ``METRICS`` from the stressed bank's paths (shock at ``at``)."""
    lcr, borrowing = paths["lcr"], paths["central_bank_borrowing"]
    after = slice(at, None)
    # recovered: the central bank repaid and the LCR back at its pre-shock level, or at the
    # bank's own target where that is lower (a treasury drifting down to its target)
    back_to = np.fmin(lcr[at - 1], paths["lcr_target"]) - RECOVERY_TOLERANCE
    horizon = lcr.size - 1
    recovered = [
        q for q in range(at, horizon + 1) if lcr[q] >= back_to[q] and borrowing[q] <= 1e-9
    ]  # fmt: skip
    return {
        "lcr_trough": 100 * float(np.nanmin(lcr[after])),
        "liquidity_ratio_trough": 100 * float(np.nanmin(paths["liquidity_ratio"][after])),
        "cb_borrowing_peak": float(borrowing[after].max()),
        "cb_borrowing_total": float(borrowing[after].sum()),
        "funding_cost_mean": 100 * float(np.nanmean(paths["funding_cost"][at : at + WINDOW_Q])),
        "recovery_quarters": float((recovered[0] if recovered else horizon + 1) - at),
        "disposal_cash": float(paths["disposal_cash"][after].sum()),
    }


# ====================================================================== the experiment
@dataclass
class StressResult:
    """Everything ``nplsim stress`` measured."""

    design: StressDesign
    bank: str
    runs: pd.DataFrame  # variant, seed, metrics
    effects: pd.DataFrame  # variant, metric, diff, ci_low, ci_high, ...
    paths: pd.DataFrame  # variant, seed, quarter, PATHS columns


def run_stress(
    design: StressDesign, workers: int | None = None, progress: bool = False
) -> StressResult:
    """Run every variant on every seed and measure their paired effects against the baseline."""
    from tqdm import tqdm

    bank = check_design(design)
    variants = design.variants(bank)
    tasks = [(design.scenario, s, o, bank) for o in variants.values() for s in design.seeds]
    results: list[Any] = [None] * len(tasks)
    with tqdm(total=len(tasks), desc="stress", unit="run", disable=not progress) as bar:
        for outcome in run_tasks(run_one, tasks, workers=workers):
            if outcome.error is not None:
                raise outcome.error
            results[outcome.index] = outcome.value
            bar.update()
    n = len(design.seeds)
    by_variant = {name: results[k * n : (k + 1) * n] for k, name in enumerate(variants)}
    runs, paths = [], []
    for name, variant_runs in by_variant.items():
        for seed, run in zip(design.seeds, variant_runs, strict=True):
            runs.append({"variant": name, "seed": seed, **run_metrics(run, design.at)})
            for quarter in range(run["lcr"].size):
                paths.append({"variant": name, "seed": seed, "quarter": quarter,
                              **{c: run[c][quarter] for c in PATHS}})  # fmt: skip
    runs_frame = pd.DataFrame(runs)
    return StressResult(design, bank, runs_frame, effects_table(runs_frame), pd.DataFrame(paths))


def effects_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each variant's paired effect on each metric against the baseline (the first variant)."""
    variants = list(dict.fromkeys(runs["variant"]))
    baseline = runs[runs["variant"] == variants[0]].set_index("seed")
    rows = []
    for name in variants[1:]:
        other = runs[runs["variant"] == name].set_index("seed").loc[baseline.index]
        for metric in METRICS:
            result = paired_difference(baseline[metric].to_numpy(), other[metric].to_numpy())
            excludes = result["ci_low"] > 0 or result["ci_high"] < 0
            rows.append({"variant": name, "metric": metric, "unit": METRICS[metric][1],
                         **result, "ci_excludes_zero": bool(excludes)})  # fmt: skip
    return pd.DataFrame(rows)


# ====================================================================== outputs
def stress_figure(result: StressResult, path: Path) -> None:
    """The stressed bank's LCR, liquidity ratio, central-bank borrowing and funding cost by
    variant (mean and 95% band over seeds), and each variant's paired effect on the LCR trough
    and on peak central-bank borrowing with its 95% interval."""
    fig = Figure(figsize=(16, 9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    design = result.design
    path_axes = [axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]]
    for ax, (column, (label, unit, scale)) in zip(path_axes, PATHS.items(), strict=True):
        for name, rows in result.paths.groupby("variant", sort=False):
            values = rows.pivot(index="seed", columns="quarter", values=column).to_numpy()
            mean, low, high = mean_band(scale * values)
            quarters = np.arange(mean.size)
            (line,) = ax.plot(quarters, mean, lw=1.6, label=name)
            ax.fill_between(quarters, low, high, color=line.get_color(), alpha=0.15)
        ax.axvspan(design.at, design.at + design.duration_q, color="0.85", zorder=0,
                   label="shock")  # fmt: skip
        ax.set_title(f"{result.bank}: {label}")
        ax.set_xlabel("quarter")
        ax.set_ylabel(unit)
        ax.legend(fontsize=7)
    for ax, metric in ((axes[0, 2], "lcr_trough"), (axes[1, 2], "cb_borrowing_peak")):
        effects = result.effects[result.effects["metric"] == metric]
        y = np.arange(len(effects))
        ax.errorbar(
            effects["diff"], y, xerr=[effects["diff"] - effects["ci_low"],
                                      effects["ci_high"] - effects["diff"]],
            fmt="o", capsize=4, color="tab:blue", label="mean paired effect, 95% CI",
        )  # fmt: skip
        ax.axvline(0, color="0.3", lw=1)
        ax.set_yticks(y, effects["variant"])
        label, unit = METRICS[metric]
        ax.set_title(f"Effect on: {label}\n(vs all channels open)")
        ax.set_xlabel("pp" if unit == "%" else unit)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Liquidity stress on {result.bank} ({design.scenario}, {len(design.seeds)} paired "
        f"seeds)\ndeposit outflow {design.outflow:.0%} of less stable deposits, interbank spike "
        f"{100 * design.freeze_spike:.1f} pp with {design.rollover:.0%} rollover, fire-sale "
        f"discount {design.fire_sale:.0%}, from quarter {design.at} for {design.duration_q}"
    )
    from nplsim.experiments.figures import save as save_figure

    save_figure(fig, path, dpi=100)


def markdown(result: StressResult) -> str:
    """``stress.md``: the design, the baseline and the effects with their intervals."""
    design = result.design
    base = result.runs[result.runs["variant"] == "all channels"]
    lines = [
        f"# Liquidity stress on {result.bank} ({design.scenario})",
        "",
        f"Seeds {design.seeds[0]}-{design.seeds[-1]} ({len(design.seeds)}, paired); shock at "
        f"quarter {design.at} for {design.duration_q} quarters: {design.outflow:.0%} of less "
        f"stable deposits withdrawn from {result.bank}, interbank rate +"
        f"{100 * design.freeze_spike:.1f} pp with {design.rollover:.0%} of maturing interbank "
        f"funding rolled over, bonds sold at a {design.fire_sale:.0%} discount.",
        "",
        "## Baseline (every disposal channel open): median and 2.5-97.5% range over seeds",
        "",
        "| metric | unit | median | 95% range |",
        "|---|---|---|---|",
    ]
    for metric, (label, unit) in METRICS.items():
        values = base[metric].to_numpy(float)
        low, high = np.percentile(values, [2.5, 97.5])
        lines.append(f"| {label} | {unit} | {np.median(values):.2f} | {low:.2f}-{high:.2f} |")
    lines += ["", "## Effects against the baseline (variant − baseline, paired)", "",
              "| variant | metric | unit | effect | 95% CI | CI excludes 0 |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for row in result.effects.itertuples():
        lines.append(
            f"| {row.variant} | {METRICS[row.metric][0]} | {row.unit} | {row.diff:.3f} | "
            f"[{row.ci_low:.3f}, {row.ci_high:.3f}] | {'yes' if row.ci_excludes_zero else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def write_stress(
    result: StressResult,
    out_dir: str | Path | Claim,
    command: list[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write the tables, the report, the figure and the manifest into ``out_dir``, which appears
    complete or not at all (:mod:`nplsim.experiments.store`)."""
    design = result.design
    config, _ = load_scenario(design.scenario, {**design.overrides, "quarters": design.quarters})
    manifest = {
        "kind": "stress",
        "scenario": design.scenario,
        "bank": result.bank,
        "seeds": list(design.seeds),
        "design": {k: v for k, v in design.__dict__.items() if k != "seeds"},
        "variants": list(dict.fromkeys(result.runs["variant"])),
        **pins(config),
        "command": command,
    }

    def write(staging: Path) -> None:
        result.runs.to_csv(staging / "runs.csv", index=False)
        result.effects.to_csv(staging / "effects.csv", index=False)
        result.paths.to_csv(staging / "paths.csv", index=False)
        (staging / "stress.md").write_text(markdown(result))
        stress_figure(result, staging / "stress.png")
        (staging / "manifest.json").write_text(json_text(manifest))

    return write_directory(out_dir, "stress", write, overwrite=overwrite)


# ====================================================================== command line
def _cmd_stress(args: argparse.Namespace) -> int:
    seeds = tuple(seed_range(args.seed_start, args.seeds, "stress", "--seed-start", "--seeds"))
    design = StressDesign(
        scenario=args.scenario or DEFAULT_SCENARIO, seeds=seeds, quarters=args.quarters,
        at=args.at, bank=args.bank, outflow=args.outflow, freeze_spike=args.freeze_spike,
        rollover=args.rollover, fire_sale=args.fire_sale, duration_q=args.duration,
        regimes=tuple(r for r in args.regimes.split(",") if r), overrides=parse_set(args.set),
    )  # fmt: skip
    bank = check_design(design)
    out = args.out if args.out else default_out(f"stress-{Path(design.scenario).stem}")
    confirm_runs(len(design.variants(bank)) * len(seeds), args.yes, "stress")
    with holding(out, "stress", overwrite=args.overwrite) as claimed:
        result = run_stress(design, args.workers, progress=not args.quiet)
        write_stress(result, claimed, sys.argv)
    table = result.effects[["variant", "metric", "diff", "ci_low", "ci_high", "ci_excludes_zero"]]
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    print(f"results: {printable(out)}")
    return 0


def register_stress_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``nplsim stress`` to the command line."""
    p = sub.add_parser(
        "stress",
        help="liquidity stress: a bank's LCR, central-bank borrowing, funding cost and recovery "
        "by disposal channel and legal regime (paired seeds)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("scenario", nargs="?", help=f"scenario (default {DEFAULT_SCENARIO})")
    p.add_argument("--seeds", type=int, default=10, help="number of paired seeds (10)")
    p.add_argument("--seed-start", type=int, default=DEFAULT_SEED, help=SEED_START_HELP)
    p.add_argument("--quarters", type=int, default=24, help="horizon (24)")
    p.add_argument("--at", type=int, default=8, help="quarter the shock starts (8)")
    p.add_argument("--bank", help="the bank hit by the deposit outflow (default: the first)")
    p.add_argument("--outflow", type=float, default=0.15,
                   help="share of less stable deposits withdrawn a quarter (0.15)")  # fmt: skip
    p.add_argument("--freeze-spike", type=float, default=0.03,
                   help="rise of the interbank rate, annual decimal (0.03)")  # fmt: skip
    p.add_argument("--rollover", type=float, default=0.5,
                   help="share of maturing interbank funding rolled over (0.5)")  # fmt: skip
    p.add_argument("--fire-sale", type=float, default=0.05,
                   help="discount on bonds sold (0.05)")  # fmt: skip
    p.add_argument("--duration", type=int, default=2, help="quarters the shock lasts (2)")
    p.add_argument("--regimes", default="strengthened",
                   help="comma-separated legal presets to compare (strengthened)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario, regime or prudential field in every run")  # fmt: skip
    add_output_flags(p, "stress", "results/stress-SCENARIO")
    add_yes_flag(p)
    p.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_stress)
