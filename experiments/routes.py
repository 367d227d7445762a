"""``nplsim routes``: the financing routes of one power scenario compared on the same plants.

Every plant with a project is quoted each open route in the same financing round (a loan from its
house bank, a stand-alone receivables ABS, a place in the centre's pool), so one run already holds
a paired comparison. Each seed's run gives the mean quote of every route and component over the
run (the metrics ``power_quote_*_final`` of ``nplsim metrics``: the last defined value of the
cumulative mean quote, so a horizon that is not a financing round still counts; interest,
information, supervision, issuance, total, bp a year); the table shows their means over seeds
with 95% t-intervals, and the difference of every route from a base route (the bank loan by
default), paired by seed, with its interval and p-value (the total's difference of the pooled
route from the loan is the metric
``power_pooled_minus_loan_bp_final``, which ``compare``, ``sweep`` and ``sensitivity`` also take).
A route closed in a run (no centre, no SPV law) has no quote there: its rows count the seeds in
which it was open. Results go to ``routes.csv``/``.md``/``.tex`` and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments.compare import CONFIDENCE, mean_band, paired_difference, run_many
from nplsim.experiments.metrics import reduce
from nplsim.experiments.options import add_output_flags, add_yes_flag, confirm_runs, parse_set
from nplsim.experiments.pool import resolve_workers
from nplsim.experiments.provenance import pins
from nplsim.experiments.seeds import DEFAULT_SEED, SEED_START_HELP, seed_range
from nplsim.experiments.store import Claim, default_out, holding, json_text, write_directory
from nplsim.experiments.tables import write_tables
from nplsim.market.errors import ConfigError, printable
from nplsim.market.route_costs import COMPONENTS, ROUTES
from nplsim.market.scenario import load_scenario

PARTS = ("total", *COMPONENTS)
TABLE_COLUMNS = [
    "metric", "route", "component", "mean_bp", "ci_low", "ci_high", "n_seeds", "base", "diff_bp",
    "diff_ci_low", "diff_ci_high", "n_pairs", "p_value",
]  # fmt: skip


def quote_column(route: str, part: str) -> str:
    """The ``model.parquet`` column of a route's mean quote (``part`` a component or total)."""
    return f"power_quote_{route}_bp" if part == "total" else f"power_quote_{route}_{part}_bp"


def compare_routes(
    scenario: str | Path,
    seeds: Iterable[int],
    *,
    overrides: Mapping[str, Any] | None = None,
    base: str = "loan",
    workers: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Run ``scenario`` once per seed and compare its routes' quotes (table ``TABLE_COLUMNS``).

    Raises:
        ConfigError: a scenario without power plants, a bad override or an unknown base route.
    """
    if base not in ROUTES:
        raise ConfigError("routes", "--base", f"unknown route {base!r}", ", ".join(ROUTES))
    overrides = dict(overrides or {})
    config, _ = load_scenario(scenario, overrides)
    if config.power is None:
        raise ConfigError("routes", "scenario", f"{config.name} has no power plants",
                          "a scenario with a [power] block")  # fmt: skip
    seed_list = list(seeds)
    columns = tuple(quote_column(r, p) for r in ROUTES for p in PARTS)
    tasks = [(scenario, seed, overrides, columns) for seed in seed_list]
    runs = run_many(tasks, workers, progress, "routes")
    finals = np.array([reduce(path.T, "final") for path in runs])  # last defined value
    value = {name: finals[:, j] for j, name in enumerate(columns)}
    rows = []
    for route in ROUTES:
        for part in PARTS:
            own = value[quote_column(route, part)]
            mean, low, high = (float(x[0]) for x in mean_band(own[:, None], CONFIDENCE))
            pair = paired_difference(value[quote_column(base, part)], own, CONFIDENCE)
            rows.append({
                "metric": f"{quote_column(route, part)}_final", "route": route,
                "component": part, "mean_bp": mean, "ci_low": low,
                "ci_high": high, "n_seeds": int(np.isfinite(own).sum()), "base": base,
                "diff_bp": pair["diff"], "diff_ci_low": pair["ci_low"],
                "diff_ci_high": pair["ci_high"], "n_pairs": pair["n_seeds"],
                "p_value": pair["p_value"],
            })  # fmt: skip
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def write_routes(
    table: pd.DataFrame,
    out_dir: str | Path | Claim,
    settings: dict[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``routes.csv`` and ``manifest.json`` through :mod:`nplsim.experiments.store`: the
    directory appears complete or not at all, and earlier results are replaced only with
    ``overwrite``."""
    config, _ = load_scenario(settings["scenario"], settings["overrides"])
    manifest = {"kind": "routes", **settings, **pins(config)}

    def write(staging: Path) -> None:
        caption = (f"{Path(str(settings['scenario'])).stem}: financing routes' all-in "
                   f"cost (bp a year) over {len(settings['seeds'])} seeds, "
                   f"{CONFIDENCE:.0%} CIs")  # fmt: skip
        write_tables(table, staging, "routes", caption)
        (staging / "manifest.json").write_text(json_text(manifest))

    return write_directory(out_dir, "routes", write, overwrite=overwrite)


def format_routes(table: pd.DataFrame) -> str:
    """The route table for the console."""
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        return table.drop(columns=["base", "metric"]).to_string(
            index=False, float_format=lambda v: f"{v:.4g}", na_rep="nan"
        )


def _cmd_routes(args: argparse.Namespace) -> int:
    seeds = seed_range(args.seed_start, args.seeds, "routes", "--seed-start", "--seeds")
    workers = resolve_workers(args.workers)
    overrides = parse_set(args.set)
    if args.quarters is not None:
        overrides["quarters"] = args.quarters
    name = Path(args.scenario).stem
    out = args.out if args.out else default_out(f"routes-{name}")
    confirm_runs(len(seeds), args.yes, "routes")
    started = time.perf_counter()
    with holding(out, "routes", overwrite=args.overwrite) as claimed:
        table = compare_routes(args.scenario, seeds, overrides=overrides, base=args.base,
                               workers=workers, progress=not args.quiet)  # fmt: skip
        settings = {
            "scenario": args.scenario, "overrides": overrides, "seeds": list(seeds),
            "base": args.base, "confidence": CONFIDENCE,
            "wall_time_s": round(time.perf_counter() - started, 3),
        }  # fmt: skip
        write_routes(table, claimed, settings)
    print(f"{name}: financing routes over {len(seeds)} seeds; mean quote per project, bp a year; "
          f"diff = route − {args.base} (paired by seed), {CONFIDENCE:.0%} CIs")  # fmt: skip
    print(format_routes(table))
    print(f"results: {printable(out)}")
    return 0


def register_routes_cli(sub: Any) -> None:
    """Add ``nplsim routes`` to the subcommands."""
    p = sub.add_parser("routes", help="compare the financing routes of a power scenario")
    p.add_argument("scenario", help="a power scenario: built-in name or TOML file")
    p.add_argument("--seeds", type=int, default=10, help="number of seeds (default 10)")
    p.add_argument("--seed-start", type=int, default=DEFAULT_SEED, help=SEED_START_HELP)
    p.add_argument("--quarters", type=int, help="horizon")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario or regime field")  # fmt: skip
    p.add_argument("--base", default="loan", help=f"route to compare with ({', '.join(ROUTES)})")
    add_output_flags(p, "route comparison", "results/routes-SCENARIO")
    p.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    add_yes_flag(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_routes)
