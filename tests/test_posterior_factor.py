"""Posterior draws as a factor: ``sweep`` (``posterior``/``draws`` in the spec) and
``sensitivity --posterior DIR --draws K`` run at a calibration's parameter vectors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nplsim.experiments.calibrate import calibrate
from nplsim.experiments.calibration_spec import load_calibration
from nplsim.experiments.cli import main
from nplsim.experiments.run import config_hash
from nplsim.experiments.sensitivity import (
    DRAW_COLUMNS,
    INDEX_COLUMNS,
    SensitivitySpec,
    combine_draws,
    run_sensitivity,
)
from nplsim.experiments.sweep import finished_run_ids, load_sweep, run_sweep
from nplsim.market.scenario import load_scenario
from tests.test_calibrate import tiny_spec


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """A tiny finished calibration of restart_2016's loan_growth_annual (12 particles)."""
    root = tmp_path_factory.mktemp("cal")
    spec = tiny_spec(root / "spec.toml", generations=1)
    calibrate(load_calibration(spec), root / "cal", workers=1, progress=False)
    return root / "cal"


def _sweep_spec(path, posterior, extra="", draws=3):
    text = (
        'base = "restart_2016"\nquarters = 2\noverrides = { n_loans = 1000 }\nseeds = [1]\n'
        f'posterior = "{posterior}"\ndraws = {draws}\n{extra}'
        "[parameters.reserve_ratio]\nvalues = [0.1, 0.15]\n"
    )
    path.write_text(text)
    return path


# ====================================================================== sweep
@pytest.mark.slow
def test_a_sweep_crosses_every_point_with_the_posterior_draws(calibration, tmp_path):
    spec = _sweep_spec(tmp_path / "sweep.toml", calibration, 'outcomes = ["car_final"]\n')
    report = run_sweep(spec, tmp_path / "a", workers=1, progress=False)
    assert (report.total, report.done, report.failed) == (6, 6, 0)
    summary = load_sweep(tmp_path / "a")
    assert {"draw", "loan_growth_annual", "reserve_ratio"} <= set(summary.columns)
    manifest = json.loads((tmp_path / "a" / "sweep.json").read_text())
    drawn = manifest["posterior"]["draws"]
    assert len(drawn) == 3 and manifest["posterior"]["scenario"] == "restart_2016"
    posterior = pd.read_parquet(calibration / "results" / "posterior.parquet")
    assert {d["loan_growth_annual"] for d in drawn} <= set(posterior["loan_growth_annual"])
    assert len({d["loan_growth_annual"] for d in drawn}) >= 2  # the draws are not all one
    for row in summary.itertuples():
        assert row.loan_growth_annual == drawn[row.draw]["loan_growth_annual"]
        # the draw reaches the model: the run's config is the base with the draw's value
        config, regime = load_scenario("restart_2016", {
            "quarters": 2, "n_loans": 1000, "reserve_ratio": row.reserve_ratio,
            "loan_growth_annual": row.loan_growth_annual,
        })  # fmt: skip
        assert row.config_hash == config_hash(config, regime.as_dict(), 1)
    outcomes = (tmp_path / "a" / "summary" / "outcomes.md").read_text()
    assert "× 3 posterior draws (draws pooled with seeds" in outcomes
    by_run = pd.read_csv(tmp_path / "a" / "summary" / "outcomes_by_run.csv")
    assert sorted(by_run["draw"]) == [0, 0, 1, 1, 2, 2]
    for _, point in summary.groupby("reserve_ratio"):
        assert sorted(point["draw"]) == [0, 1, 2]
        by_value = point.groupby("loan_growth_annual")["config_hash"].nunique()
        assert (by_value == 1).all()  # one value, one simulation ...
        assert point["config_hash"].nunique() == len(by_value)  # ... and another value, another
    # the same spec and seeds again: the same bytes, run for run
    run_sweep(spec, tmp_path / "b", workers=1, progress=False)
    assert finished_run_ids(tmp_path / "a") == finished_run_ids(tmp_path / "b")
    for rid in finished_run_ids(tmp_path / "a"):
        for table in ("model", "summary"):
            name = f"runs/run_id={rid}/{table}.parquet"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "key", "words"),
    [
        ("no_draws", "draws", "required with posterior"),
        ("missing", "posterior", "holds no results/posterior.parquet"),
        ("also_varied", "posterior", "loan_growth_annual, which is also set here"),
        ("other_base", "posterior", "calibrates restart_2016, not pilot_2005"),
    ],
)  # fmt: skip
def test_a_bad_posterior_in_a_sweep_is_one_line_exit_2(calibration, tmp_path, capsys, case,
                                                       key, words):  # fmt: skip
    path = _sweep_spec(tmp_path / "sweep.toml", calibration)
    text = path.read_text()
    if case == "no_draws":
        text = text.replace("draws = 3\n", "")
    elif case == "missing":
        text = text.replace(str(calibration), str(tmp_path / "nowhere"))
    elif case == "also_varied":
        text += "[parameters.loan_growth_annual]\nvalues = [0.05]\n"
    else:
        text = text.replace('base = "restart_2016"', 'base = "pilot_2005"')
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f": {key}: " in err and words in err, err
    assert not out.exists()


# ====================================================================== sensitivity
def test_indices_over_draws_are_the_mean_with_the_spread():
    def draw(value, note=""):
        rows = [{"outcome": "a", "parameter": "x", "index": "S1", "value": value, "conf": 0.1,
                 "ci_width": 0.2, "note": ""},
                {"outcome": "b", "parameter": None, "index": "note", "value": np.nan,
                 "conf": np.nan, "ci_width": np.nan, "note": "constant"}]  # fmt: skip
        return pd.DataFrame(rows, columns=INDEX_COLUMNS)

    table = combine_draws([draw(0.2), draw(0.4), draw(0.9)])
    assert list(table.columns) == INDEX_COLUMNS + DRAW_COLUMNS
    first = table.iloc[0]
    assert first["value"] == pytest.approx(0.5) and first["conf"] == pytest.approx(0.1)
    assert first["draw_low"] == pytest.approx(np.quantile([0.2, 0.4, 0.9], 0.025))
    assert first["draw_high"] == pytest.approx(np.quantile([0.2, 0.4, 0.9], 0.975))
    assert first["draws"] == 3
    note = table.iloc[1]
    assert note["index"] == "note" and note["note"] == "not analysable in 3 of 3 draws: constant"


@pytest.mark.slow
def test_sensitivity_repeats_the_study_at_each_posterior_draw(calibration):
    spec = SensitivitySpec.model_validate({
        "base": "restart_2016", "quarters": 2, "overrides": {"n_loans": 1000}, "method": "morris",
        "n": 2, "seeds": [3], "outcomes": ["npl_ratio_final", "loan_to_deposit_final"],
        "parameters": {"enforcement_efficiency": {"low": 0.5, "high": 2.0},
                       "disclosure_level": {"low": 0.2, "high": 1.0}},
    })  # fmt: skip
    result = run_sensitivity(spec, workers=1, posterior=calibration, draws=2)
    points = 2 * (2 + 1)
    assert result.settings["n_runs"] == points * 2
    samples = result.samples
    assert sorted(samples["draw"].unique()) == [0, 1] and len(samples) == 2 * points
    drawn = result.settings["posterior"]["draws"]
    for k, part in samples.groupby("draw"):
        assert (part["loan_growth_annual"] == drawn[k]["loan_growth_annual"]).all()
    if drawn[0] != drawn[1]:  # the draw reaches the model: other loan growth, other books
        first, second = (p["loan_to_deposit_final"].to_numpy() for _, p in samples.groupby("draw"))
        assert not np.allclose(first, second)
    by_draw = result.settings["indices_by_draw"]
    values = result.indices[result.indices["index"] != "note"]
    assert len(values) and set(DRAW_COLUMNS) <= set(result.indices.columns)
    for row in values.itertuples():
        mine = by_draw[(by_draw["outcome"] == row.outcome) & (by_draw["parameter"] == row.parameter)
                       & (by_draw["index"] == row.index)]["value"]  # fmt: skip
        assert row.value == pytest.approx(mine.mean()) and row.draws == len(mine) == 2
        assert row.draw_low <= row.value <= row.draw_high


def test_sensitivity_draws_need_a_posterior(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('base = "restart_2016"\nn = 2\nmethod = "morris"\noutcomes = ["car_final"]\n'
                    "[parameters.disclosure_level]\nlow = 0.2\nhigh = 1.0\n")  # fmt: skip
    out = tmp_path / "out"
    assert main(["sensitivity", str(spec), "--draws", "3", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--draws: needs --posterior" in err
    assert not out.exists()
