"""The command line's finish: results directories are never replaced without --overwrite, every
figure is titled with its scenario and written as PNG, SVG and PDF, the presets describe
themselves, viz --host, one default seed, help that answers at once, and the documented
scenario syntax loads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from matplotlib.figure import Figure

from nplsim.experiments import cli
from nplsim.experiments.channels import CHANNEL_COLOURS, DISPOSAL_CHANNELS
from nplsim.experiments.cli import COMMANDS, build_parser, main, viz_argv
from nplsim.experiments.seeds import DEFAULT_SEED
from nplsim.experiments.store import write_directory
from nplsim.market.calendar import calendar_quarter
from nplsim.market.errors import ConfigError
from nplsim.market.presets import list_presets, preset_info
from nplsim.market.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "experiments" / "specs"

# Every subcommand that writes a results directory: (kind of results, argv before --out).
WRITERS = {
    "run": ("run", ["run", "pilot_2005", "--quarters", "2", "--set", "n_loans=2000"]),
    "compare": ("compare", ["compare", "restart_2016", "strengthened", "--seeds", "2"]),
    "levers": ("levers", ["levers", "--seeds", "2"]),
    "routes": ("routes", ["routes", "shanxi_power", "--seeds", "2"]),
    "sensitivity": ("sensitivity", ["sensitivity", str(SPECS / "sensitivity_example.toml")]),
    "validate": ("validate", ["validate", "--seeds", "2"]),
    "stress": ("stress", ["stress", "restart_2016", "--seeds", "2"]),
    "sweep": ("sweep", ["sweep", str(SPECS / "sweep_example.toml")]),
    "calibrate": ("calibrate", ["calibrate", str(SPECS / "calibrate_restart_2016.toml")]),
}


def _no_work(*args, **kwargs):
    raise AssertionError("work started although the results directory should have been refused")


@pytest.mark.parametrize("command", list(WRITERS))
def test_earlier_results_are_replaced_only_with_overwrite(command, tmp_path, capsys):
    kind, argv = WRITERS[command]
    out = tmp_path / "earlier"
    write_directory(out, kind, lambda staging: (staging / "earlier.txt").write_text("kept\n"))
    with mock.patch("nplsim.experiments.run.simulate", _no_work):
        quiet = [] if command == "levers" else ["--quiet"]
        assert main([*argv, "--out", str(out), *quiet]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err, err
    assert (out / "earlier.txt").read_text() == "kept\n"


def test_every_command_that_writes_results_is_covered():
    helps = " ".join(COMMANDS)
    writers = {name for name in COMMANDS if name not in ("regimes", "viz", "metrics")}
    assert writers == set(WRITERS), helps


# ------------------------------------------------------------------------------ figures
def _drawn(argv: list[str]) -> list[Figure]:
    figures: list[Figure] = []
    real = Figure.savefig

    def record(fig, *args, **kwargs):
        figures.append(fig)
        return real(fig, *args, **kwargs)

    with mock.patch.object(Figure, "savefig", record):
        assert main(argv) == 0
    return figures


def _titles(fig: Figure) -> str:
    texts = [fig._suptitle.get_text() if fig._suptitle else ""]
    texts += [ax.get_title() for ax in fig.axes]
    return " ".join(texts)


@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario, law", [("pilot_2005", "law pilot_2005"), ("shanxi_power", "law shanxi_centre_today")]
)
def test_every_figure_of_a_run_is_titled_with_scenario_seed_and_law(scenario, law, tmp_path):
    out = tmp_path / "run"
    argv = ["run", scenario, "--quarters", "8", "--set", "n_loans=2000", "--out", str(out)]
    figures = _drawn([*argv, "--quiet", "--seed", "7"])
    pngs = sorted((out / "figures").glob("*.png"))
    assert pngs and len(figures) == 3 * len(pngs)  # PNG, SVG and PDF of each
    for fig in figures:
        title = _titles(fig)
        assert scenario in title and "seed 7" in title and law in title, title
        assert "nplsim run" not in title
    for png in pngs:
        assert png.with_suffix(".svg").stat().st_size > 0
        assert png.with_suffix(".pdf").read_bytes().startswith(b"%PDF")


def test_the_dashboard_shows_calendar_quarters_and_every_disposal_channel(tmp_path):
    out = tmp_path / "run"
    figures = _drawn(["run", "restart_2016", "--quarters", "8", "--set", "n_loans=2000",
                      "--out", str(out), "--quiet"])  # fmt: skip
    dashboard = figures[0]
    disposal = next(ax for ax in dashboard.axes if ax.get_title().startswith("NPL disposal"))
    labels = [t.get_text() for t in disposal.get_xticklabels()]
    assert any(re.fullmatch(r"20\d\dQ[1-4]", label) for label in labels), labels
    legend = [t.get_text() for t in disposal.get_legend().get_texts()]
    assert legend == [c.label for c in DISPOSAL_CHANNELS]
    tallest = max(p.get_y() + p.get_height() for p in disposal.patches)
    assert disposal.get_ylim()[1] >= tallest  # the tallest bar is not cut off


def test_disposal_colours_are_shared_with_the_lab():
    from nplsim.viz.charts import series_colours
    from nplsim.viz.series import DISPOSAL_CHANNELS as LAB_CHANNELS

    labels = list(LAB_CHANNELS.values())
    assert series_colours(labels, "#000000") == [CHANNEL_COLOURS[label] for label in labels]
    assert len(set(CHANNEL_COLOURS.values())) == len(CHANNEL_COLOURS)


def test_calendar_quarters_and_a_bad_start_is_one_line(tmp_path, capsys):
    assert calendar_quarter("2016Q1", 0) == "2015Q4"
    assert calendar_quarter("2016Q1", 1) == "2016Q1"
    assert calendar_quarter("1999Q4", 5) == "2000Q4"
    assert calendar_quarter(None, 3) == "q3"
    assert load_scenario("strengthened")[0].start == "2016Q1"  # from its base
    with pytest.raises(ConfigError, match="start.*2016Q1"):
        load_scenario("restart_2016", {"start": "2016Q5"})
    assert main(["run", "--set", "start=16Q1", "--out", str(tmp_path / "x")]) == 2
    assert "start" in capsys.readouterr().err and not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------ regimes
def test_regimes_list_gives_each_preset_its_era_and_summary(capsys):
    assert main(["regimes", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_presets()
    for line, name in zip(lines, list_presets(), strict=True):
        info = preset_info(name)
        assert info.era in line and info.summary in line


def test_regimes_diff_names_its_columns_after_the_presets(capsys):
    assert main(["regimes", "diff", "pilot_2005", "strengthened"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["field", "environment", "pilot_2005", "strengthened"]


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_cites_its_facts_from_a_file_in_the_repository(name):
    info = preset_info(name)
    assert info.era and info.summary
    assert (ROOT / info.sources).is_file(), f"{name}: Sources: {info.sources} does not exist"


def test_a_preset_without_a_sources_line_is_refused(tmp_path, monkeypatch):
    import nplsim.market.presets as presets

    (tmp_path / "bare.toml").write_text("# bare — no header\n# era: now\n# summary: s\nx = 1\n")
    monkeypatch.setattr(presets, "PRESETS_DIR", tmp_path)
    with pytest.raises(ConfigError, match="sources"):
        presets.preset_info("bare")


# ------------------------------------------------------------------------------ viz --host
def test_viz_listens_on_this_machine_unless_told(capsys):
    args = build_parser("viz").parse_args(["viz"])
    assert (args.host, args.port) == ("127.0.0.1", 8765)
    assert viz_argv(args)[-2:] == ["--host", "127.0.0.1"]
    assert capsys.readouterr().err == ""
    args = build_parser("viz").parse_args(["viz", "--host", "0.0.0.0", "--port", "9000"])
    assert viz_argv(args)[3:] == ["--port", "9000", "--host", "0.0.0.0"]
    warning = capsys.readouterr().err
    assert len(warning.splitlines()) == 1 and "0.0.0.0:9000" in warning


@pytest.mark.parametrize("host", ["not-an-address", "300.1.1.1", ""])
def test_viz_refuses_a_host_that_is_not_an_address(host, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser("viz").parse_args(["viz", "--host", host])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_server_answers_requests_addressed_to_the_address_it_binds():
    from nplsim.viz.server import LocalOnly

    guard = LocalOnly(None, 8765, "10.1.2.3")  # type: ignore[arg-type]
    assert guard.allowed([(b"host", b"10.1.2.3:8765")])
    assert guard.allowed([(b"host", b"127.0.0.1:8765")])
    assert not guard.allowed([(b"host", b"evil.example:8765")])
    assert not LocalOnly(None, 8765).allowed([(b"host", b"10.1.2.3:8765")])  # type: ignore


# ------------------------------------------------------------------------------ help
def test_the_subcommand_table_gives_each_command_the_help_its_module_gives():
    sub = next(a for a in build_parser()._actions if isinstance(a, cli.argparse._SubParsersAction))
    registered = {action.dest: action.help for action in sub._choices_actions}
    assert registered == {name: help_text for name, (_, _, help_text) in COMMANDS.items()}


def test_help_texts_show_no_doubled_percent_and_one_default_seed(capsys):
    for command in COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "%%" not in text, command
        for found in re.findall(r"first seed \((?:default )?(\d+)\)", text):
            assert int(found) == DEFAULT_SEED, command
    parser = build_parser("run")
    assert parser.parse_args(["run"]).seed is None  # resolved to DEFAULT_SEED by the command
    run_help = build_parser("run")._subparsers._group_actions[0].choices["run"].format_help()
    assert "docs/ODD.md" in re.sub(r"\s+", " ", run_help)


@pytest.mark.parametrize("argv", [["--help"], ["regimes", "list"]])
def test_quick_commands_import_neither_the_model_nor_pandas(argv):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nplsim", *argv],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    heavy = {"pandas", "numpy", "mesa", "nplsim.economy.model", "matplotlib", "pydantic"}
    assert not heavy & imported, sorted(heavy & imported)


# ------------------------------------------------------------------------------ docs
def test_the_documented_macro_shock_example_loads(tmp_path):
    text = (ROOT / "docs" / "scenarios.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    example = next(b for b in blocks if "[[macro.shocks]]" in b)
    path = tmp_path / "downturns.toml"
    path.write_text(example)
    config, _ = load_scenario(str(path))
    assert [(s.quarter, s.z) for s in config.macro.shocks] == [(9, -2.0), (13, -1.0)]
    assert config.start == "2016Q1" and config.events[0].regime == "strengthened"
    assert config.macro.z_persistence == load_scenario("restart_2016")[0].macro.z_persistence
    path.write_text(example.replace("z = -1.0", "z = -7.0"))
    with pytest.raises(ConfigError, match="z"):
        load_scenario(str(path))
