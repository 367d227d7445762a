"""``nplsim validate``: the model against the stylised facts it speaks to, with error bars.

The facts are data (``experiments/facts.toml``): each names a scenario, how the model statistic is
computed from one run, the fact's value from the project's reference facts and a tolerance band.
Every scenario a fact needs is run over ``N`` seeds from ``--seed-start`` (default
:data:`~nplsim.experiments.seeds.DEFAULT_SEED`) in a local process pool, with the scenario's own
number of loan slots (as ``nplsim compare`` runs it) unless ``--loans`` says otherwise; each
statistic is summarised by its median and 2.5–97.5 percentile range over seeds. A fact *holds*
when the median lies in its band; a floor or a ceiling (a band open on one side) holds only when
at least 95% of the seeds lie in it (``SEED_SHARE``). Deal statistics aggregate over every deal a
run issued; a seed without deals gives no value, and the report says in how many seeds there were
deals. Facts the model does not speak to yet are listed without a verdict, so the report shows the
gaps. The report
(``validation.md``, ``validation.csv``, ``manifest.json``) is written atomically; misses are
reported, never an error (exit 0). Only user mistakes exit 2.

With ``--calibration DIR`` it validates a calibration instead: the calibrated scenario at its
posterior medians against the moments it fitted (*in sample*), those it held out (*held out*) and
the era's other facts (*not used*), reported apart (:mod:`nplsim.experiments.validate_calibration`).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nplsim.experiments.fact_statistics import (  # noqa: F401 — part of this module's API
    N_DEALS,
    amc_quarterly,
    calibration_value,
    deals_value,
    run_statistics,
    series_value,
)
from nplsim.experiments.facts_spec import (  # noqa: F401 — part of this module's API
    FACTS_FILE,
    UNIT_SCALE,
    FactSpec,
    StatisticSpec,
    _slots,
    check_facts,
    load_facts,
)
from nplsim.experiments.options import add_output_flags, add_yes_flag, confirm_runs
from nplsim.experiments.pool import resolve_workers, run_tasks
from nplsim.experiments.provenance import pins
from nplsim.experiments.seeds import DEFAULT_SEED, SEED_START_HELP, seed_range
from nplsim.experiments.store import RESULTS_ROOT, Claim, holding, json_text, write_directory
from nplsim.experiments.validate_calibration import (
    FLAG,
    fit_sentence,
    load_calibration_dir,
    markdown_section,
)
from nplsim.experiments.validate_calibration import meta as calibration_meta
from nplsim.experiments.validation_report import (  # noqa: F401 — part of this module's API
    CONSOLE_WIDTH,
    console_table,
    display_table,
    markdown_report,
    misses_paragraph,
    summarise,
)
from nplsim.market.errors import printable, read_bytes
from nplsim.market.scenario import load_scenario

DEFAULT_OUT = RESULTS_ROOT / "validation"
REPORT_FILES = ("validation.md", "validation.csv", "manifest.json")


def collect_values(
    facts: Sequence[FactSpec],
    scenarios: dict[str, str],
    seeds: Sequence[int],
    n_loans: int | None,
    workers: int,
    on_done: Callable[[], None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Every fact's statistic for every seed (raw units), runs spread over a process pool.

    Results are gathered by (scenario, seed) and read back in seed order, so the output does not
    depend on which worker finishes first.

    Returns:
        The statistics by fact id, and the number of deals of each seed's run by scenario.
    """
    by_scenario: dict[str, list[tuple[str, StatisticSpec]]] = {}
    for fact in facts:
        if fact.id in scenarios:
            assert fact.statistic is not None
            by_scenario.setdefault(scenarios[fact.id], []).append((fact.id, fact.statistic))
    jobs = [
        (scenario, seed, n_loans, tuple(by_scenario[scenario]))
        for scenario in by_scenario
        for seed in seeds
    ]
    results: dict[tuple[str, int], dict[str, float]] = {}
    for outcome in run_tasks(_run_job, jobs, workers=workers):
        if outcome.error is not None:
            raise outcome.error
        scenario, seed = jobs[outcome.index][:2]
        results[scenario, seed] = outcome.value
        if on_done is not None:
            on_done()
    values: dict[str, list[float]] = {}
    for fact in facts:
        if fact.id in scenarios:
            values[fact.id] = [results[scenarios[fact.id], seed][fact.id] for seed in seeds]
        elif fact.statistic is not None and fact.statistic.table == "calibration":
            values[fact.id] = [calibration_value(fact.statistic)]
    deal_counts = {
        scenario: [int(results[scenario, seed][N_DEALS]) for seed in seeds]
        for scenario in by_scenario
    }
    return values, deal_counts


def _run_job(job: tuple[Any, ...]) -> dict[str, float]:
    """:func:`run_statistics` of one ``(scenario, seed, n_loans, specs)`` job (for the pool)."""
    return run_statistics(*job)


def _shown_path(path: Path) -> str:
    """The built-in facts file by its place in the project (the report stays machine-free)."""
    if path.resolve() == FACTS_FILE.resolve():
        return "experiments/facts.toml"
    return str(path)


def write_report(
    out_dir: str | Path | Claim, files: dict[str, str], overwrite: bool = False
) -> Path:
    """Write the report files through :mod:`nplsim.experiments.store` (complete or not at all;
    an earlier report is replaced only with ``overwrite``)."""

    def write(staging: Path) -> None:
        for name, text in files.items():
            (staging / name).write_text(text)

    return write_directory(out_dir, "validate", write, overwrite=overwrite)


def validate(
    facts_path: str | Path = FACTS_FILE,
    seeds: int = 10,
    n_loans: int | None = None,
    out_dir: str | Path | Claim = DEFAULT_OUT,
    workers: int | None = None,
    progress: bool = False,
    command: Iterable[str] | None = None,
    *,
    overwrite: bool = False,
    yes: bool = True,
    seed_start: int = DEFAULT_SEED,
    calibration: str | Path | None = None,
) -> pd.DataFrame:
    """Run the validation and write ``validation.md``, ``validation.csv`` and ``manifest.json``.

    Everything the user gave is checked, and the output directory claimed, before any run starts;
    an earlier report there is replaced only with ``overwrite``. Without ``yes``, more than
    :data:`~nplsim.experiments.options.LARGE_RUNS` runs are confirmed first. With
    ``calibration`` (a calibration directory) the calibrated scenario is validated against the
    facts of its era, each row with its role in the fit (the ``fit`` column).

    Returns:
        The summary table, one row per fact (as in ``validation.csv``).

    Raises:
        ConfigError: a bad seed count, worker count, loan count, facts file or output directory.
    """
    seed_list = seed_range(seed_start, seeds, "--seeds", "--seed-start", str(seeds))
    if workers is not None:
        resolve_workers(workers)
    facts_path = Path(facts_path)
    facts_bytes = read_bytes(facts_path, "--facts")
    facts = load_facts(facts_path)
    cal = None
    if calibration is not None:
        cal = load_calibration_dir(calibration, facts)
        facts = list(cal.chosen)
        n_loans = cal.n_loans if n_loans is None else n_loans
        load_scenario(cal.scenario_file, _slots(n_loans), origin="--loans")
        scenarios = {f.id: cal.scenario_file for f in facts if f.needs_run}
    else:
        scenarios = check_facts(facts, facts_path, n_loans)
    n_jobs = len(set(scenarios.values())) * len(seed_list)
    workers = max(1, min(resolve_workers(workers), n_jobs))
    confirm_runs(n_jobs, yes, "validate")

    from tqdm import tqdm

    with holding(out_dir, "validate", overwrite=overwrite) as claimed:
        with tqdm(total=n_jobs, desc="validate", unit="run", disable=not progress) as bar:
            values, deal_counts = collect_values(
                facts, scenarios, seed_list, n_loans, workers, bar.update
            )
        table = summarise(facts, scenarios, values, deal_counts)
        if cal is not None:
            table.insert(1, "fit", table["id"].map(cal.roles))
        scenario_names = list(dict.fromkeys(f.scenario for f in facts if f.id in scenarios))
        scenarios_by_name = {f.scenario: scenarios[f.id] for f in facts if f.id in scenarios}
        meta = {
            "kind": "nplsim validate",
            "facts_file": _shown_path(facts_path),
            "facts_sha256": hashlib.sha256(facts_bytes).hexdigest(),
            "scenarios": scenario_names,
            "seeds": seed_list,
            "n_loans": n_loans,
            "loan_slots": {
                name: load_scenario(scenarios_by_name[name], _slots(n_loans))[0].n_loans
                for name in scenario_names
            },
            "workers": workers,
            **_pins(set(scenarios.values())),
            "command": list(command) if command is not None else sys.argv,
        }
        sections = None
        if cal is not None:
            meta["calibration"] = calibration_meta(cal)
            sections = markdown_section(table, meta["calibration"])
        files = {
            "validation.md": markdown_report(table, facts, meta, sections),
            "validation.csv": table.to_csv(index=False),
            "manifest.json": json_text(meta),
        }
        write_report(claimed, files)
    return table


def _pins(scenarios: Iterable[str]) -> dict[str, Any]:
    """The code, package versions and every preset the facts' scenarios use."""
    found = pins()
    for scenario in sorted(scenarios):
        found["presets"].update(pins(load_scenario(scenario)[0])["presets"])
    return found


# ====================================================================== command line
def _cmd_validate(args: argparse.Namespace) -> int:
    table = validate(
        facts_path=args.facts,
        seeds=args.seeds,
        n_loans=args.loans,
        out_dir=args.out,
        workers=args.workers,
        progress=not args.quiet,
        overwrite=args.overwrite,
        yes=args.yes,
        seed_start=args.seed_start,
        calibration=args.calibration,
    )
    print(console_table(table))
    checked = table[table["holds"] != ""]
    missed = checked[checked["holds"] != True]  # noqa: E712
    verdict = (
        f"{len(checked) - len(missed)} of {len(checked)} checked facts hold"
        + (f"; misses: {', '.join(missed['id'])}" if len(missed) else "")
        + f"; {int((table['holds'] == '').sum())} not yet modelled"
        + (f" ({fit_sentence(table)})" if "fit" in table.columns else "")
    )
    print(textwrap.fill(verdict, CONSOLE_WIDTH, break_on_hyphens=False))
    print(f"report: {printable(Path(args.out) / 'validation.md')} (every column, with sources)")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``nplsim validate`` to the command line."""
    parser = sub.add_parser(
        "validate",
        help="compare the model with the stylised facts (writes validation.md and .csv)",
        description="Run the scenarios the stylised facts need over seeds and report, per fact, "
        "the model's median and 95% range against the fact's value and tolerance.",
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds per scenario (default 10)")
    parser.add_argument("--seed-start", type=int, default=DEFAULT_SEED, help=SEED_START_HELP)
    parser.add_argument(
        "--loans", type=int, help="loan slots per run (default: each scenario's own, as compare)"
    )
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    add_output_flags(parser, "validation", str(DEFAULT_OUT))
    parser.set_defaults(out=str(DEFAULT_OUT))
    parser.add_argument("--facts", default=str(FACTS_FILE), help="facts TOML file (built-in)")
    parser.add_argument(
        FLAG,
        metavar="DIR",
        help="validate a calibration (the directory of nplsim calibrate): its scenario at the "
        "posterior medians, the fitted and held-out moments reported apart",
    )
    add_yes_flag(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_cmd_validate)
