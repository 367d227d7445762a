"""The lever decomposition: the levers partition the law the two presets differ in, and the
command writes its table and figure (and refuses bad input with one line, exit 2)."""

from __future__ import annotations

import pandas as pd

from nplsim.experiments.cli import main
from nplsim.experiments.levers import ARMS, LEVERS, METRICS, REFORMED, lever_overrides
from nplsim.market.regime import load_regime


def test_the_levers_are_exactly_the_differences_between_the_presets():
    base, reformed = load_regime("restart_2016").model_dump(), load_regime(REFORMED).model_dump()
    differ = {f for f in base if base[f] != reformed[f]}
    fields = [f for group in LEVERS.values() for f in group]
    assert len(fields) == len(set(fields))
    assert set(fields) == differ
    assert lever_overrides()["all_three"] == {f: reformed[f] for f in differ}


def test_cli_writes_the_table_and_the_figure(tmp_path, capsys):
    out = tmp_path / "levers"
    code = main(["levers", "--seeds", "2", "--n-loans", "2000", "--quarters", "6", "--out",
                 str(out), "--workers", "1"])  # fmt: skip
    assert code == 0
    table = pd.read_csv(out / "levers.csv")
    assert len(table) == len(ARMS) * len(METRICS)
    assert (table["n_seeds"] <= 2).all()
    assert (out / "levers.png").stat().st_size > 10_000
    assert "results:" in capsys.readouterr().out


def test_too_few_seeds_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["levers", "--seeds", "1", "--out", str(tmp_path / "o")])
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
