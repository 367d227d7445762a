"""The ``nplsim`` command line: run scenarios and inspect legal regimes.

A mistake in the input (unknown key, wrong type, out-of-range value, malformed TOML, missing file,
unknown preset, an output directory that may not be written) prints one line naming the file, the
key and the allowed values, and exits with status 2 without writing anything. Ctrl-C and SIGTERM
end any command with one line and exit status 130 or 143, leaving nothing half-written.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pandas as pd

from nplsim.experiments.calibrate import register_cli as register_calibrate_cli
from nplsim.experiments.compare import register_compare_cli
from nplsim.experiments.interrupt import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    signals_as_exceptions,
)
from nplsim.experiments.levers import register_cli as register_levers_cli
from nplsim.experiments.options import add_output_flags, parse_set
from nplsim.experiments.pool import WorkerDiedError
from nplsim.experiments.provenance import ALLOW_FLAG
from nplsim.experiments.routes import register_routes_cli
from nplsim.experiments.seeds import check_seed
from nplsim.experiments.sensitivity import register_sensitivity_cli
from nplsim.experiments.store import default_out
from nplsim.experiments.stress import register_stress_cli
from nplsim.experiments.sweep import register_cli as register_sweep_cli
from nplsim.experiments.validate import register_cli as register_validate_cli
from nplsim.market.errors import ConfigError, printable
from nplsim.market.regime import diff_regimes, field_table, list_presets, load_regime
from nplsim.market.scenario import DEFAULT_SCENARIO, list_scenarios

if TYPE_CHECKING:
    from nplsim.experiments.run import RunResult

EXIT_USAGE = 2
EXIT_FAILED = 1  # work could not be completed (not the user's input)
DEFAULT_SEED = 42
SUMMARY_COLUMNS = (
    "npl_ratio",
    "car",
    "provision_coverage",
    "liquidity_ratio",
    "npl_stock",
    "npl_sold_amc",
    "bank_recovery_rate",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        # one line whatever the user typed: escape line breaks and control characters
        self.exit(EXIT_USAGE, f"nplsim: {printable(message)} (see '{self.prog} --help')\n")


class _OneLineFormatter(logging.Formatter):
    """Log records as one line, with the control characters of echoed user input escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _cmd_run(args: argparse.Namespace) -> int:

    from nplsim.experiments.run import run_to_directory
    from nplsim.market.scenario import load_scenario

    if args.from_manifest is not None:
        return _rerun(args)
    scenario = args.scenario or DEFAULT_SCENARIO
    seed = DEFAULT_SEED if args.seed is None else check_seed(args.seed, "--seed", str(args.seed))
    overrides = parse_set(args.set)
    if args.quarters is not None:
        overrides["quarters"] = args.quarters
    try:
        config, _ = load_scenario(scenario, overrides, origin="--set")
    except ConfigError as exc:
        if exc.source == "--set" and exc.key == "quarters" and args.quarters is not None:
            raise ConfigError("--quarters", exc.key, exc.problem, exc.allowed) from None
        raise
    name = Path(scenario).stem
    out = args.out if args.out else default_out(f"{name}-seed{seed}")
    with _ProgressBar(config.quarters, f"{name} seed {seed}", args.quiet) as bar:
        result = run_to_directory(
            scenario, seed, out, overrides, on_quarter=bar.update, overwrite=args.overwrite,
            origin="--set",
        )  # fmt: skip
    _print_run(result, out)
    return 0


class _ProgressBar:
    """A tqdm bar that appears only once the first quarter has run, so that an input error found
    while checking the output directory or building the model stays a single line."""

    def __init__(self, total: int, desc: str, quiet: bool):
        self.total, self.desc, self.quiet, self.bar = total, desc, quiet, None

    def update(self, _model=None) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=self.total, desc=self.desc, unit="q", disable=self.quiet)
        self.bar.update()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _rerun(args: argparse.Namespace) -> int:
    """``nplsim run --from-manifest FILE``: repeat exactly the run a manifest describes."""

    from nplsim.experiments.run import read_manifest, rerun_from_manifest

    given = {"SCENARIO": args.scenario, "--seed": args.seed, "--quarters": args.quarters,
             "--set": args.set or None}  # fmt: skip
    for flag, value in given.items():
        if value is not None:
            raise ConfigError(
                "--from-manifest", flag, "not allowed: the manifest fixes the whole run"
            )
    recorded = read_manifest(args.from_manifest, allow_different_code=args.allow_different_code)
    name, seed = recorded.config.name, recorded.seed
    out = args.out if args.out else default_out(f"{name}-seed{seed}-rerun")
    with _ProgressBar(
        recorded.config.quarters, f"{printable(name)} seed {seed}", args.quiet
    ) as bar:
        result = rerun_from_manifest(recorded, out, on_quarter=bar.update, overwrite=args.overwrite)
    _print_run(result, out)
    return 0


def _print_run(result: RunResult, out: str | Path) -> None:
    """The first and last quarter of the headline columns, and where the results are."""
    frame = result.model.model_frame()
    table = frame.loc[[0, len(frame) - 1], ["quarter", *SUMMARY_COLUMNS]].set_index("quarter")
    print(table.T.to_string(float_format=lambda v: f"{v:,.4g}"))
    print(f"results: {printable(out)}  ({result.wall_time_s:.1f} s)")


def _cmd_regimes(args: argparse.Namespace) -> int:
    with pd.option_context("display.width", 160, "display.max_colwidth", 80):
        if args.action == "list":
            for name in list_presets():
                print(name)
        elif args.action == "show":
            regime = load_regime(_one(args.names, "show"))
            table = field_table()[["field", "environment", "range"]]
            table.insert(1, "value", [str(v) for v in regime.as_dict().values()])
            print(table.to_string(index=False))
        else:
            a, b = _two(args.names)
            print(diff_regimes(load_regime(a), load_regime(b)).to_string(index=False))
    return 0


def _one(names: list[str], action: str) -> str:
    if len(names) != 1:
        raise ConfigError("regimes", action, "needs one preset name", ", ".join(list_presets()))
    return names[0]


def _two(names: list[str]) -> tuple[str, str]:
    if len(names) != 2:
        raise ConfigError("regimes", "diff", "needs two preset names", ", ".join(list_presets()))
    return names[0], names[1]


VIZ_PORT = 8765
PORTS = (1, 65535)  # TCP ports a server can listen on


def _port(text: str) -> int:
    """A TCP port number from the command line (argparse type)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not PORTS[0] <= port <= PORTS[1]:
        raise argparse.ArgumentTypeError(f"port {port} out of range {PORTS[0]}-{PORTS[1]}")
    return port


def _cmd_viz(args: argparse.Namespace) -> int:
    """Replace this process by the policy lab's server (:mod:`nplsim.viz.server`) on 127.0.0.1.

    The server is started by name, not imported here (the viz layer sits above experiments).
    """
    argv = [sys.executable, "-m", "nplsim.viz.server", "--port", str(args.port)]
    os.execv(sys.executable, argv)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="nplsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a scenario and write its results directory")
    run.add_argument(
        "scenario",
        nargs="?",
        help=f"built-in scenario ({', '.join(list_scenarios())}) or a TOML file "
        f"(default {DEFAULT_SCENARIO})",
    )
    run.add_argument(
        "--seed", type=int, help=f"seed of every random stream (default {DEFAULT_SEED})"
    )
    run.add_argument("--quarters", type=int, help="horizon in quarters (overrides the scenario)")
    add_output_flags(run, "run", "results/SCENARIO-seedN")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario or regime field, e.g. --set bankruptcy_remoteness=0.9 or "
        "--set regime_overrides.car_min=0.1",
    )
    run.add_argument(
        "--from-manifest",
        metavar="FILE",
        help="repeat the run a manifest.json describes, byte for byte (default --out "
        "results/SCENARIO-seedN-rerun); refused under other code or presets",
    )
    run.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="with --from-manifest: re-run even though the code or a preset differs from the "
        "manifest's (the new manifest says so)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=_cmd_run)
    regimes = sub.add_parser("regimes", help="list, show or diff legal-regime presets")
    regimes.add_argument("action", choices=("list", "show", "diff"))
    regimes.add_argument("names", nargs="*", help="preset name(s)")
    regimes.set_defaults(handler=_cmd_regimes)
    viz = sub.add_parser("viz", help="serve the interactive policy lab on 127.0.0.1")
    viz.add_argument("--port", type=_port, default=VIZ_PORT, help=f"port (default {VIZ_PORT})")
    viz.set_defaults(handler=_cmd_viz)
    # subcommands registered by experiment modules (one register_cli(sub) call each, below)
    register_sweep_cli(sub)
    register_compare_cli(sub)
    register_levers_cli(sub)
    register_routes_cli(sub)
    register_sensitivity_cli(sub)
    register_validate_cli(sub)
    register_stress_cli(sub)
    register_calibrate_cli(sub)
    __import__("nplsim.experiments.metrics", fromlist=["_"]).register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nplsim`` console script."""
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    args = build_parser().parse_args(argv)
    with signals_as_exceptions():
        try:
            return args.handler(args)
        except ConfigError as exc:
            print(f"nplsim: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("nplsim: interrupted (Ctrl-C); nothing half-written was kept", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Terminated:
            print("nplsim: terminated (SIGTERM); nothing half-written was kept", file=sys.stderr)
            return EXIT_TERMINATED
        except WorkerDiedError as exc:
            print(f"nplsim: error: a run stopped: {exc} (out of memory?)", file=sys.stderr)
            return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
