"""The tutorial never goes stale: the notebook runs end to end, the Markdown's commands parse.

``examples/tutorial.ipynb`` is executed with nbclient in a fresh kernel of this environment, in an
empty temporary working directory, with its outputs under another temporary directory.
``docs/tutorial.md``'s ``nplsim`` commands are parsed by the real argument parser (nothing is run
but ``regimes``), the built-in scenarios, presets and spec files they name must exist, and its
Python examples must import only names that exist.
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from nplsim.experiments.cli import build_parser, main
from nplsim.market.regime import list_presets
from nplsim.market.scenario import list_scenarios

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"
TUTORIAL = ROOT / "docs" / "tutorial.md"
CELL_TIMEOUT_S = 600  # a bound on a hung cell, not a speed target
SUBCOMMANDS = {"run", "regimes", "compare", "routes", "sweep", "sensitivity", "validate", "viz"}


# ====================================================================== the notebook
def execute_notebook(cwd: Path, work: Path):
    """The notebook after running every cell in ``cwd``, its results written to ``work``."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",  # jupyter_client starts it with this interpreter (sys.executable)
        resources={"metadata": {"path": str(cwd)}},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NPLSIM_TUTORIAL_DIR", str(work))
        patch.setenv("MPLBACKEND", "Agg")
        client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    return notebook


def _outputs(notebook) -> list[dict]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def _text(notebook) -> str:
    parts = []
    for out in _outputs(notebook):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        parts.extend(str(out.get("data", {}).get(kind, "")) for kind in ("text/plain", "text/html"))
    return "\n".join(parts)


@pytest.mark.slow
def test_notebook_runs_end_to_end(tmp_path: Path):
    """One test, so that the notebook runs once however pytest-xdist distributes the tests."""
    cwd, work = tmp_path / "cwd", tmp_path / "work"
    cwd.mkdir()
    notebook = execute_notebook(cwd, work)

    # every cell ran, none raised
    assert not [out for out in _outputs(notebook) if out.get("output_type") == "error"]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), "a code cell did not run"
    assert not any(cwd.iterdir()), "the notebook wrote into its working directory"

    # the policy comparison: a table with 95% confidence intervals, and the reform branch
    text = _text(notebook)
    for column in ("ci_low", "ci_high", "p_value", "n_seeds"):
        assert column in text
    policy_dir = work / "compare-restart_2016-vs-strengthened"
    table = pd.read_csv(policy_dir / "comparison.csv")
    assert {"metric", "statistic", "diff", "ci_low", "ci_high"} <= set(table.columns)
    rows = table.dropna(subset=["diff"])
    assert len(rows)
    assert (rows["ci_low"] <= rows["diff"]).all() and (rows["diff"] <= rows["ci_high"]).all()
    assert any((policy_dir / "figures").glob("compare_*.png"))
    reform = pd.read_csv(work / "compare-pilot_2005-reform-q12" / "comparison.csv")
    assert (reform["n_seeds"] > 0).any()
    assert "largest |B − A| before quarter 12: 0.0" in text

    # the run, the sweep, the sensitivity study, the validation report, the re-run
    assert (work / "restart_2016-seed42" / "manifest.json").is_file()
    assert (work / "sweep" / "sweep.json").is_file()
    assert len(list((work / "sweep" / "runs").glob("run_id=*"))) == 24
    indices = pd.read_csv(work / "sobol" / "indices.csv")
    assert {"S1", "ST"} <= set(indices["index"])
    assert (work / "validation" / "validation.md").is_file()
    # the calibration: its fit table (in sample and held out), and the comparison it carries
    fit = pd.read_csv(work / "calibration" / "results" / "fit.csv")
    assert set(fit["held_out"]) == {True, False} and fit["hit"].dtype == bool
    assert (work / "calibration" / "results" / "preset.toml").is_file()
    for column in ("seed_ci_low", "param_ci_low", "param_ci_high"):
        assert column in text
    original = (work / "restart_2016-seed42" / "model.parquet").read_bytes()
    assert (work / "rerun" / "model.parquet").read_bytes() == original
    images = [out for out in _outputs(notebook) if "image/png" in out.get("data", {})]
    assert len(images) >= 4  # dashboard, two comparison figures, a sensitivity figure


def test_notebook_is_stored_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


# ====================================================================== the Markdown
def _blocks(language: str) -> list[str]:
    text = TUTORIAL.read_text(encoding="utf-8")
    return re.findall(rf"^[ \t]*```{language}[ \t]*\n(.*?)^[ \t]*```", text, re.M | re.S)


def nplsim_commands() -> list[list[str]]:
    """Every command line in a ```bash block that starts with ``nplsim``, split like a shell."""
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "nplsim":
                commands.append(words[1:])
    return commands


COMMANDS = nplsim_commands()


def test_tutorial_covers_every_subcommand():
    assert {argv[0] for argv in COMMANDS if argv and not argv[0].startswith("-")} >= SUBCOMMANDS


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(argv) or "nplsim" for argv in COMMANDS])
def test_tutorial_command_parses(argv: list[str], capsys: pytest.CaptureFixture[str]):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help exits 0 after printing; a usage error exits 2
        assert exc.code == 0, capsys.readouterr().err
        return
    if args.command == "run" and args.scenario and not args.scenario.endswith(".toml"):
        assert args.scenario in list_scenarios()
    if args.command == "compare":
        for name in (args.a, args.b):
            assert name is None or name.endswith(".toml") or name in list_scenarios()
        assert args.reform_to is None or args.reform_to in list_presets()
    if args.command in ("sweep", "sensitivity") and args.spec.startswith("experiments/"):
        assert (ROOT / args.spec).is_file(), args.spec
    if args.command == "regimes":
        assert all(name in list_presets() for name in args.names)
        assert main(argv) == 0  # cheap and writes nothing: run it
    # nplsim viz is parsed only: running it would replace this process by a server


def test_tutorial_python_examples_import_existing_names():
    blocks = _blocks("python")
    assert blocks
    for block in blocks:
        tree = ast.parse(block)  # a syntax error fails here
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)
