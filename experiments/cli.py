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
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from nplsim.experiments.interrupt import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    signals_as_exceptions,
)

if TYPE_CHECKING:
    from nplsim.experiments.run import RunResult

EXIT_USAGE = 2
EXIT_FAILED = 1  # work could not be completed (not the user's input)
SUMMARY_COLUMNS = (
    "npl_ratio",
    "car",
    "provision_coverage",
    "liquidity_ratio",
    "npl_stock",
    "npl_sold_amc",
    "bank_recovery_rate",
)
# Every subcommand: the module that builds its parser (imported only when that subcommand runs, so
# that ``nplsim --help`` and ``nplsim regimes list`` answer at once), the function that adds it,
# and its one-line help. tests/test_cli.py checks the help here is the one the module gives.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (__name__, "register_run_cli", "run a scenario and write its results directory"),
    "regimes": (__name__, "register_regimes_cli",
                "list legal-regime presets (with era and summary), show one, or diff two"),
    "viz": (__name__, "register_viz_cli",
            "serve the interactive policy lab (default on 127.0.0.1)"),
    "sweep": ("nplsim.experiments.sweep", "register_cli", "run a parameter sweep from a TOML spec"),
    "compare": ("nplsim.experiments.compare", "register_compare_cli",
                "paired comparison of two scenarios on common seeds"),
    "levers": ("nplsim.experiments.levers", "register_cli",
               "the study's three proposals one at a time and together, paired seeds"),
    "routes": ("nplsim.experiments.routes", "register_routes_cli",
               "compare the financing routes of a power scenario"),
    "sensitivity": ("nplsim.experiments.sensitivity", "register_sensitivity_cli",
                    "Sobol or Morris sensitivity to regime parameters"),
    "validate": ("nplsim.experiments.validate", "register_cli",
                 "compare the model with the stylised facts (writes validation.md and .csv)"),
    "stress": ("nplsim.experiments.stress", "register_stress_cli",
               "liquidity stress: a bank's LCR, central-bank borrowing, funding cost and recovery "
               "by disposal channel and legal regime (paired seeds)"),
    "calibrate": ("nplsim.experiments.calibrate", "register_cli",
                  "Bayesian calibration (ABC-SMC) of a scenario's behavioural parameters to facts"),
    "metrics": ("nplsim.experiments.metrics", "register_cli", "list metrics: name, unit, meaning"),
}  # fmt: skip
SET_KEYS_DOC = "docs/ODD.md, sections 2.2 (legal and prudential fields) and 5 (scenario parameters)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        from nplsim.market.errors import printable

        # one line whatever the user typed: escape line breaks and control characters
        self.exit(EXIT_USAGE, f"nplsim: {printable(message)} (see '{self.prog} --help')\n")


class _OneLineFormatter(logging.Formatter):
    """Log records as one line, with the control characters of echoed user input escaped."""

    def format(self, record: logging.LogRecord) -> str:
        from nplsim.market.errors import printable

        return printable(super().format(record))


def _cmd_run(args: argparse.Namespace) -> int:
    from nplsim.experiments.options import parse_set
    from nplsim.experiments.run import run_to_directory
    from nplsim.experiments.seeds import DEFAULT_SEED, check_seed
    from nplsim.experiments.store import default_out
    from nplsim.market.errors import ConfigError
    from nplsim.market.scenario import DEFAULT_SCENARIO, load_scenario

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
    from nplsim.experiments.store import default_out
    from nplsim.market.errors import ConfigError, printable

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
    from nplsim.market.errors import printable

    frame = result.model.model_frame()
    table = frame.loc[[0, len(frame) - 1], ["quarter", *SUMMARY_COLUMNS]].set_index("quarter")
    print(table.T.to_string(float_format=lambda v: f"{v:,.4g}"))
    print(f"results: {printable(out)}  ({result.wall_time_s:.1f} s)")


def _cmd_regimes(args: argparse.Namespace) -> int:
    from nplsim.market.presets import list_presets, preset_info

    if args.action == "list":
        infos = [preset_info(name) for name in list_presets()]
        width = max(len(info.name) for info in infos)
        era_width = max(len(info.era) for info in infos)
        for info in infos:
            print(f"{info.name:<{width}}  {info.era:<{era_width}}  {info.summary}")
        return 0
    import pandas as pd

    from nplsim.market.regime import diff_regimes, field_table, load_regime

    with pd.option_context("display.width", 160, "display.max_colwidth", 80):
        if args.action == "show":
            regime = load_regime(_one(args.names, "show"))
            table = field_table()[["field", "environment", "range"]]
            table.insert(1, "value", [str(v) for v in regime.as_dict().values()])
            print(table.to_string(index=False))
        else:
            a, b = _two(args.names)
            table = diff_regimes(load_regime(a), load_regime(b))
            names = (Path(a).stem, Path(b).stem)
            if names[0] == names[1]:
                names = (f"{names[0]} (1)", f"{names[1]} (2)")
            print(table.rename(columns=dict(zip(("a", "b"), names, strict=True))).to_string(
                index=False))  # fmt: skip
    return 0


def _one(names: list[str], action: str) -> str:
    from nplsim.market.errors import ConfigError
    from nplsim.market.regime import list_presets

    if len(names) != 1:
        raise ConfigError("regimes", action, "needs one preset name", ", ".join(list_presets()))
    return names[0]


def _two(names: list[str]) -> tuple[str, str]:
    from nplsim.market.errors import ConfigError
    from nplsim.market.regime import list_presets

    if len(names) != 2:
        raise ConfigError("regimes", "diff", "needs two preset names", ", ".join(list_presets()))
    return names[0], names[1]


VIZ_PORT = 8765
VIZ_HOST = "127.0.0.1"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
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


def _host(text: str) -> str:
    """An IP address to listen on (argparse type): IPv4 or IPv6, or ``localhost``."""
    import ipaddress

    if text == "localhost":
        return text
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an IP address: {text!r} (e.g. 127.0.0.1, 0.0.0.0 or ::1)"
        ) from None


def viz_argv(args: argparse.Namespace) -> list[str]:
    """The server's command line for ``nplsim viz`` (and one warning line when it is not bound
    to this machine alone)."""
    if args.host not in LOOPBACK:
        print(f"nplsim viz: warning: listening on {args.host}:{args.port}, so other machines can "
              "reach the lab (it has no login); use --host 127.0.0.1 to keep it local",
              file=sys.stderr)  # fmt: skip
    return [sys.executable, "-m", "nplsim.viz.server", "--port", str(args.port),
            "--host", args.host]  # fmt: skip


def _cmd_viz(args: argparse.Namespace) -> int:
    """Replace this process by the policy lab's server (:mod:`nplsim.viz.server`).

    The server is started by name, not imported here (the viz layer sits above experiments).
    """
    os.execv(sys.executable, viz_argv(args))
    return 0


def register_run_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``nplsim run``."""
    from nplsim.experiments.options import add_output_flags
    from nplsim.experiments.provenance import ALLOW_FLAG
    from nplsim.experiments.seeds import DEFAULT_SEED
    from nplsim.market.scenario import DEFAULT_SCENARIO, list_scenarios

    run = sub.add_parser("run", help=COMMANDS["run"][2])
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
        "--set regime_overrides.car_min=0.1 (repeatable); the valid keys, their ranges and "
        f"meanings are listed in {SET_KEYS_DOC} and by 'nplsim regimes show NAME'",
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


def register_regimes_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``nplsim regimes list | show NAME | diff A B``."""
    regimes = sub.add_parser(
        "regimes",
        help=COMMANDS["regimes"][2],
        description="Legal-regime presets (market/regimes/*.toml). 'list': every preset with its "
        "era and a one-line summary; 'show NAME': every field of one preset with its legal "
        "environment and allowed range; 'diff A B': the fields in which two presets (or regime "
        "TOML files) differ, one column per preset.",
    )
    regimes.add_argument(
        "action",
        choices=("list", "show", "diff"),
        help="list (no names), show (one name) or diff (two names)",
    )
    regimes.add_argument("names", nargs="*", help="preset name(s) or regime TOML file(s)")
    regimes.set_defaults(handler=_cmd_regimes)


def register_viz_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``nplsim viz``."""
    viz = sub.add_parser("viz", help=COMMANDS["viz"][2])
    viz.add_argument("--port", type=_port, default=VIZ_PORT, help=f"port (default {VIZ_PORT})")
    viz.add_argument(
        "--host",
        type=_host,
        default=VIZ_HOST,
        help=f"address to listen on (default {VIZ_HOST}, this machine only); any other address "
        "lets other machines reach the lab and prints a one-line warning",
    )
    viz.set_defaults(handler=_cmd_viz)


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand in full (``command`` None), or only ``command`` in
    full and the others by name and help (what ``nplsim --help`` shows, without their imports)."""
    parser = _Parser(
        prog="nplsim",
        description="nplsim: an agent-based laboratory for securitisation law and policy.",
        epilog="'nplsim COMMAND --help' describes a command; docs/tutorial.md walks through them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module, function, help_text) in COMMANDS.items():
        if command is None or name == command:
            getattr(import_module(module), function)(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def parse_command_line(argv: list[str] | None = None) -> argparse.Namespace:
    """Set up logging and parse ``argv``, importing only the named subcommand's modules (the
    entry point calls this while it still turns signals into a prompt exit)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    words = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(words)
    return build_parser(command if command in COMMANDS else "").parse_args(words)


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    """Entry point of the ``nplsim`` console script (``args``: ``argv`` already parsed)."""
    if args is None:
        args = parse_command_line(argv)
    with signals_as_exceptions():
        try:
            return args.handler(args)
        except KeyboardInterrupt:
            print("nplsim: interrupted (Ctrl-C); nothing half-written was kept", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Terminated:
            print("nplsim: terminated (SIGTERM); nothing half-written was kept", file=sys.stderr)
            return EXIT_TERMINATED
        except Exception as exc:
            return _reported(exc)


def _reported(exc: Exception) -> int:
    """The exit status of a user mistake (one line, 2) or of a run that died (one line, 1);
    anything else is raised again. The error classes are looked up only if their modules were
    imported (a command that never imported them cannot raise them)."""
    errors = sys.modules.get("nplsim.market.errors")
    if errors is not None and isinstance(exc, errors.ConfigError):
        print(f"nplsim: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    pool = sys.modules.get("nplsim.experiments.pool")
    if pool is not None and isinstance(exc, pool.WorkerDiedError):
        print(f"nplsim: error: a run stopped: {exc} (out of memory?)", file=sys.stderr)
        return EXIT_FAILED
    raise exc


if __name__ == "__main__":
    sys.exit(main())
