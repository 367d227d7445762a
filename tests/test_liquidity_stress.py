"""``nplsim stress``: a deposit run, an interbank freeze and a bond fire sale on one bank, with
each disposal channel closed in turn and under another law, on paired seeds.

Runs have restart_2016's own loan slots (as ``nplsim compare``) and 20 quarters; the claims are
paired effects over 10 seeds with their 95% intervals.
"""

from __future__ import annotations

import json
from functools import cache

import pytest

from nplsim.experiments.cli import main
from nplsim.experiments.stress import StressDesign, run_stress
from nplsim.market.errors import ConfigError

DESIGN = StressDesign(quarters=20, at=6, regimes=())


@cache
def result():
    return run_stress(DESIGN, workers=1)


def effect(variant: str, metric: str) -> dict:
    rows = result().effects
    row = rows[(rows["variant"] == variant) & (rows["metric"] == metric)]
    assert len(row) == 1
    return row.iloc[0].to_dict()


@pytest.mark.slow
def test_the_shock_sends_the_bank_to_the_central_bank_and_it_recovers():
    """In every seed the stressed bank borrows from the central bank after the shock, its LCR
    falls below its pre-shock level, and it repays within the horizon."""
    runs = result().runs
    base = runs[runs["variant"] == "all channels"]
    assert len(base) == 10
    assert (base["cb_borrowing_peak"] > 100).all()  # CNY bn
    assert (base["lcr_trough"] < 150).all()  # %, the treasury's calm-time target
    assert (base["recovery_quarters"] <= DESIGN.quarters - DESIGN.at).all()


def test_without_the_shock_nobody_borrows_from_the_central_bank():
    """The mechanism switched off: the same runs without the shocks leave central-bank
    borrowing at zero, so the borrowing above is the stress's."""
    calm = StressDesign(quarters=16, at=6, overrides={"n_loans": 20_000}, regimes=(), outflow=0.0,
                        freeze_spike=0.0, rollover=1.0, fire_sale=0.0, seeds=(1, 2, 3))  # fmt: skip
    runs = run_stress(calm, workers=1).runs
    assert runs["cb_borrowing_peak"].max() == pytest.approx(0.0, abs=1e-6)


def test_closing_the_amc_channel_deepens_the_liquidity_trough():
    """Without AMC sales the stressed bank's LCR and liquidity-ratio troughs are lower: paired
    effect over 10 seeds with a 95% interval below zero."""
    for metric in ("lcr_trough", "liquidity_ratio_trough"):
        row = effect("no AMC sales", metric)
        assert row["ci_high"] < 0, row
    assert effect("no AMC sales", "disposal_cash")["diff"] < 0


def test_the_command_writes_its_report_and_refuses_a_bad_bank(tmp_path, capsys):
    out = tmp_path / "stress"
    args = ["--seeds", "2", "--quarters", "8", "--at", "4", "--workers", "1", "--regimes", ""]
    code = main(["stress", *args, "--set", "n_loans=5000", "--out", str(out), "--quiet"])
    assert code == 0
    for name in ("runs.csv", "effects.csv", "paths.csv", "stress.md", "stress.png"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "manifest.json").read_text())["bank"] == "ICBC"
    code = main(["stress", "--bank", "Nobody", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "--bank" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        run_stress(StressDesign(at=40, quarters=16), workers=1)
