"""``nplsim validate --calibration DIR``: a calibration's fit in sample and held out, apart."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from nplsim.experiments.calibrate import calibrate
from nplsim.experiments.calibration_spec import load_calibration
from nplsim.experiments.cli import main
from nplsim.experiments.fact_statistics import run_statistics
from nplsim.experiments.seeds import DEFAULT_SEED
from tests.test_calibrate import tiny_spec


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """A tiny finished calibration (one generation): ``ldr`` fitted, ``car_end`` and a fact of
    the facts file by id held out."""
    root = tmp_path_factory.mktemp("cal")
    spec = tiny_spec(root / "spec.toml", generations=1)
    spec.write_text(spec.read_text() + '\n[[moments]]\nfact = "commercial_npl_end2015"\n'
                    "held_out = true\n")  # fmt: skip
    calibrate(load_calibration(spec), root / "cal", workers=1, progress=False)
    return root


@pytest.mark.slow
def test_validate_reports_in_sample_and_held_out_apart(calibration, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["validate", "--calibration", str(calibration / "cal"), "--seeds", "2",
            "--workers", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "in sample: " in printed and "held out: " in printed
    lines = {line.split()[0]: line for line in printed.splitlines() if line.strip()}
    for fact in ("ldr", "car_end", "commercial_npl_end2015"):  # the verdict is not cut off
        assert lines[fact].split()[-1] in ("yes", "NO") and len(lines[fact]) <= 100
    table = pd.read_csv(out / "validation.csv", keep_default_na=False)
    # the calibration's moments first, fitted then held out, then the era's other facts that the
    # calibrated horizon (4 quarters) reaches: the deals statistic over the whole run and the
    # facts not modelled yet
    assert list(table["id"][:3]) == ["ldr", "car_end", "commercial_npl_end2015"]
    assert list(table["fit"]) == ["in sample", "held out", "held out"] + ["not used"] * (
        len(table) - 3
    )
    assert "car_2023" not in set(table["id"]) and "abs_2016_issued_to_pool" in set(table["id"])
    manifest = json.loads((out / "manifest.json").read_text())
    cal = manifest["calibration"]
    assert cal["in_sample"] == ["ldr"]
    assert cal["held_out"] == ["car_end", "commercial_npl_end2015"]
    assert "commercial_npl_2018_23" in cal["beyond_horizon"]
    assert manifest["n_loans"] == 1000  # the calibration's loan slots
    report = (out / "validation.md").read_text()
    assert "## In sample and held out" in report and "loan_growth_annual = " in report
    # the runs are the calibrated scenario's (posterior medians), at the calibration's slots
    calibrated = calibration / "cal" / "results" / "calibrated.toml"
    specs = tuple((f.id, f.fact.statistic) for f in load_calibration(
        calibration / "spec.toml").moments)  # fmt: skip
    expected = [100 * run_statistics(str(calibrated), s, 1000, specs)["ldr"]
                for s in (DEFAULT_SEED, DEFAULT_SEED + 1)]  # fmt: skip
    assert float(table.loc[0, "model_median"]) == pytest.approx(np.median(expected), rel=1e-9)
    default = run_statistics("restart_2016", DEFAULT_SEED, 1000, specs[:1])["ldr"]
    assert 100 * default != pytest.approx(expected[0], rel=1e-6)  # the calibration mattered


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "not_a_calibration", "unfinished", "bad_manifest"])
def test_a_bad_calibration_directory_is_one_line_exit_2(calibration, tmp_path, capsys, case):
    directory = tmp_path / "dir"
    if case == "not_a_calibration":
        directory.mkdir()
        (directory / "validation.csv").write_text("id\n")
    elif case in ("unfinished", "bad_manifest"):
        shutil.copytree(calibration / "cal", directory)
        if case == "unfinished":
            shutil.rmtree(directory / "results")
        else:
            (directory / "calibration.json").write_text("{not json")
    out = tmp_path / "report"
    code = main(["validate", "--calibration", str(directory), "--seeds", "2", "--out", str(out),
                 "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(directory) in err, err
    assert not out.exists()
