"""nplsim calibrate: spec checking, parameter recovery, determinism, resume after a kill, Dask,
and parameter uncertainty carried into a comparison."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nplsim.experiments.calibrate import _complete_generations, calibrate
from nplsim.experiments.calibration_recovery import TRUTH, recovery_table
from nplsim.experiments.calibration_recovery import recovery_spec as make_recovery_spec
from nplsim.experiments.calibration_spec import load_calibration
from nplsim.experiments.cli import main
from nplsim.experiments.posterior import combine
from nplsim.market.errors import ConfigError
from nplsim.market.scenario import load_scenario

N_LOANS, QUARTERS = 10_000, 6


def recovery_spec(path: Path, *, population: int, generations: int, min_epsilon: float) -> Path:
    """The small recovery calibration of the test suite (the full one: benchmarks/)."""
    return make_recovery_spec(
        path, population=population, generations=generations, min_epsilon=min_epsilon,
        n_loans=N_LOANS, quarters=QUARTERS,
    )  # fmt: skip


TINY = """scenario = "restart_2016"
n_loans = 1000
quarters = 4
seeds_per_particle = 1
population = 12
generations = {generations}
min_epsilon = 0
seed = 2
predictive_draws = 3

[parameters.loan_growth_annual]
low = 0.0
high = 0.25

[[moments]]
id = "ldr"
description = "loan-to-deposit ratio"
source = "synthetic"
unit = "percent"
target = 72.0
tolerance = 3.0
[moments.statistic]
table = "model"
column = "loan_to_deposit"
quarter = 4

[[moments]]
id = "car_end"
description = "final CAR"
source = "synthetic"
unit = "percent"
target = 12.0
tolerance = 2.0
held_out = true
[moments.statistic]
table = "model"
column = "car"
quarter = 4
"""


def tiny_spec(path: Path, generations: int = 2) -> Path:
    path.write_text(TINY.format(generations=generations))
    return path


# ====================================================================== the spec
@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (("[parameters.loan_growth_annual]", "[parameters.no_such_field]"),
         "parameters.no_such_field", "unknown key"),
        (("high = 0.25", "high = 7.0"), "parameters.loan_growth_annual.high", "7.0"),
        (("[parameters.loan_growth_annual]", "[parameters.disclosure_level]"),
         "parameters.disclosure_level", "legal-regime field"),
        (('id = "ldr"', 'fact = "abs_retail_pools"\n#'), "moments.0", "no statistic"),
        (('id = "ldr"', 'fact = "bigfour_npl_2006"\n#'), "moments.0", "amc_only_1999"),
        (('id = "ldr"', 'fact = "no_such_fact"\n#'), "moments.0.fact", "unknown fact"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_one_line_naming_file_and_key(tmp_path, change, key, words):
    text = TINY.format(generations=1)
    old, new = change
    if new.endswith("\n#"):  # a fact by id: drop the written-out fact's fields
        head, _, _ = text.partition("[[moments]]\n" + old)
        text = head + "[[moments]]\n" + new.removesuffix("\n#") + "\n"
    else:
        text = text.replace(old, new, 1)
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_calibration(spec)
    assert caught.value.key == key and str(spec) == caught.value.source
    assert words in str(caught.value)
    out = tmp_path / "out"
    assert main(["calibrate", str(spec), "--out", str(out), "--quiet"]) == 2
    assert not out.exists()


# ====================================================================== the search
@pytest.mark.slow
def test_calibration_recovers_known_parameters(tmp_path):
    """Targets are the model's own moments at known parameters; every parameter's 95% posterior
    interval contains its true value, and the moments pin each down (posterior sd at most 60%
    of the prior's)."""
    spec = recovery_spec(tmp_path / "spec.toml", population=30, generations=8, min_epsilon=0.7)
    calibrate(spec, tmp_path / "out", workers=1, progress=False)
    table = recovery_table(tmp_path / "out")
    assert set(table["parameter"]) == set(TRUTH) and table["covered"].all(), table
    assert (table["sd_ratio"] < 0.6).sum() >= 2, table
    fit = pd.read_csv(tmp_path / "out" / "results" / "fit.csv")
    assert fit["hit"].sum() >= 2, fit  # the posterior-predictive medians, 6 draws on fresh seeds


@pytest.mark.slow
def test_a_calibration_in_one_process_repeats_exactly(tmp_path):
    spec = tiny_spec(tmp_path / "spec.toml")
    first = calibrate(spec, tmp_path / "a", workers=1, progress=False)
    calibrate(spec, tmp_path / "b", workers=1, progress=False)
    for name in ("posterior.parquet", "fit.csv", "identification.csv"):
        a = (tmp_path / "a" / "results" / name).read_bytes()
        assert a == (tmp_path / "b" / "results" / name).read_bytes(), name
    assert first.generations == 2
    calibrated = (tmp_path / "a" / "results" / "calibrated.toml").read_text()
    assert calibrated.startswith("# restart_2016, calibrated")
    assert re.search(r"^# Code: (commit [0-9a-f]{12}|not a git checkout)", calibrated, re.M)
    calibrated_file = str(tmp_path / "a" / "results" / "calibrated.toml")
    argv = ["run", calibrated_file, "--quarters", "1", "--set", "n_loans=1000"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    fit = pd.read_csv(tmp_path / "a" / "results" / "fit.csv")
    assert list(fit["held_out"]) == [False, True]
    # the preset: the same header, restart_2016 with only the calibrated parameter changed
    preset = (tmp_path / "a" / "results" / "preset.toml").read_text()
    assert preset.splitlines()[:4] == calibrated.splitlines()[:4]
    shipped = tmp_path / "restart_2016_tuned.toml"
    shipped.write_text(preset)
    config, _ = load_scenario(str(shipped))
    mine, base = config.model_dump(), load_scenario("restart_2016")[0].model_dump()
    assert {k for k in mine if mine[k] != base[k]} == {"name", "description",
                                                       "loan_growth_annual"}  # fmt: skip
    ident = pd.read_csv(tmp_path / "a" / "results" / "identification.csv")
    assert mine["loan_growth_annual"] == ident.loc[0, "median"]


@pytest.mark.slow
def test_a_calibration_refuses_to_overwrite_and_resumes_only_its_own_spec(tmp_path):
    spec = tiny_spec(tmp_path / "spec.toml", generations=1)
    calibrate(spec, tmp_path / "out", workers=1, progress=False)
    with pytest.raises(ConfigError, match="--resume to continue them or --overwrite"):
        calibrate(spec, tmp_path / "out", workers=1, progress=False)
    other = tiny_spec(tmp_path / "other.toml", generations=2)
    with pytest.raises(ConfigError, match="differs from the spec"):
        calibrate(other, tmp_path / "out", workers=1, progress=False, resume=True)


@pytest.mark.slow
def test_a_killed_calibration_resumes_from_its_last_complete_generation(tmp_path):
    """SIGTERM mid-calibration, then --resume: the history keeps every complete generation once,
    the calibration ends with as many generations as the spec asks, and its posterior agrees
    with an uninterrupted calibration of the same spec within Monte Carlo error (each median
    inside the other's 95% interval; 48 particles, as for the Dask test)."""
    spec = tiny_spec(tmp_path / "spec.toml", generations=4)
    spec.write_text(spec.read_text().replace("population = 12", "population = 48"))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "nplsim", "calibrate",
                             str(spec), "--out", str(out), "--workers", "1", "--quiet"], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if _complete_generations(out) >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # the stack where it waits, from faulthandler
        stack = proc.communicate()[1].strip().splitlines()
        where = " | ".join(line.strip() for line in stack if line.strip().startswith("File"))[:600]
        # docs/calibration.md, known problems
        pytest.xfail(f"the calibration did not end within 120 s of SIGTERM; waiting in {where}")
    assert status == 143
    done_before = _complete_generations(out)
    assert 1 <= done_before < 4
    report = calibrate(spec, out, workers=1, progress=False, resume=True)
    assert report.generations == 4 and report.new_generations == 4 - done_before
    import pyabc

    history = pyabc.History(f"sqlite:///{out / 'history' / 'abc.db'}", _id=1)
    populations = history.get_all_populations()
    assert sorted(populations[populations.t >= 0].t) == [0, 1, 2, 3]
    assert (out / "results" / "posterior.parquet").is_file()
    calibrate(spec, tmp_path / "straight", workers=1, progress=False)
    a = pd.read_csv(out / "results" / "identification.csv").iloc[0]
    b = pd.read_csv(tmp_path / "straight" / "results" / "identification.csv").iloc[0]
    assert a.p2_5 <= b["median"] <= a.p97_5 and b.p2_5 <= a["median"] <= b.p97_5, (a, b)


@pytest.mark.slow
def test_a_calibration_on_a_local_dask_cluster_agrees_with_the_local_pool(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = tiny_spec(tmp_path / "spec.toml", generations=2)
    # 48 particles, not the tiny spec's 12: with 12 the medians themselves are too noisy for two
    # independent runs to agree reliably (one failure in three full runs)
    spec.write_text(spec.read_text().replace("population = 12", "population = 48"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
        on_dask = calibrate(spec, tmp_path / "dask", scheduler=cluster.scheduler_address,
                            progress=False)  # fmt: skip
    local = calibrate(spec, tmp_path / "pool", workers=2, progress=False)
    assert on_dask.generations == local.generations == 2
    a = pd.read_csv(tmp_path / "dask" / "results" / "identification.csv").iloc[0]
    b = pd.read_csv(tmp_path / "pool" / "results" / "identification.csv").iloc[0]
    # Monte Carlo agreement: each posterior median lies inside the other's 95% interval
    assert a.p2_5 <= b["median"] <= a.p97_5 and b.p2_5 <= a["median"] <= b.p97_5, (a, b)


# ====================================================================== uncertainty into policy
def _table(diffs, halves, n=10):
    rows = [{"metric": "car", "statistic": "mean", "diff": d, "ci_low": d - h, "ci_high": d + h,
             "n_seeds": n} for d, h in zip(diffs, halves, strict=True)]  # fmt: skip
    return [pd.DataFrame([r]) for r in rows]


def test_parameter_uncertainty_widens_the_interval_and_one_draw_does_not():
    central = _table([1.0], [0.5])[0]
    same = combine(central, _table([1.0] * 20, [0.5] * 20))
    assert same.param_ci_low[0] == pytest.approx(0.5, abs=0.03)
    assert same.param_ci_high[0] == pytest.approx(1.5, abs=0.03)
    spread = combine(central, _table(list(np.linspace(0.0, 2.0, 20)), [0.5] * 20))
    assert spread.param_ci_low[0] < 0.5 - 0.3 and spread.param_ci_high[0] > 1.5 + 0.3
    assert spread.seed_ci_low[0] == 0.5 and spread.seed_ci_high[0] == 1.5


@pytest.mark.slow
def test_compare_over_a_posterior_reports_both_intervals(tmp_path):
    spec = tiny_spec(tmp_path / "spec.toml", generations=1)
    calibrate(spec, tmp_path / "cal", workers=1, progress=False)
    out = tmp_path / "cmp"
    code = main(["compare", "restart_2016", "strengthened", "--seeds", "2", "--quarters", "2",
                 "--set-a", "n_loans=1000", "--set-b", "n_loans=1000", "--posterior",
                 str(tmp_path / "cal"), "--draws", "2", "--workers", "1", "--quiet",
                 "--metrics", "npl_ratio_mean,car_mean,liquidity_ratio_mean,npl_ratio_final",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    table = pd.read_csv(out / "comparison_posterior.csv")
    assert {"seed_ci_low", "param_ci_low", "draws"} <= set(table.columns)
    assert len(table) == 4 and (table["draws"] == 2).all()
    ok = table.dropna(subset=["param_ci_low"])
    assert len(ok) > 0 and (ok.param_ci_low <= ok.param_ci_high).all()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "words"),
    [(["pilot_2005", "strengthened"], "calibrates restart_2016, not pilot_2005"),  # another era
     (["--set-a", "loan_growth_annual=0.1"], "also set here"),  # the draw would overrule it
     (["--draws", "-1"], "--draws")],
)  # fmt: skip
def test_compare_refuses_a_posterior_it_would_apply_wrongly(tmp_path, capsys, change, words):
    # was: compare took any calibration's posterior, of another scenario too, and its draws
    # silently overruled a --set-a of the same parameter
    spec = tiny_spec(tmp_path / "spec.toml", generations=1)
    calibrate(spec, tmp_path / "cal", workers=1, progress=False)
    argv = ["compare", "restart_2016", "strengthened", "--seeds", "2", "--quarters", "2",
            "--posterior", str(tmp_path / "cal"), "--draws", "2", "--workers", "1", "--quiet",
            "--out", str(tmp_path / "cmp")]  # fmt: skip
    if change[0] == "pilot_2005":
        argv[1:3] = change
    elif change[0] == "--draws":
        argv[argv.index("--draws") + 1] = change[1]
    else:
        argv += change
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "cmp").exists()
