"""The metric vocabulary: every name resolves in compare, sweep and sensitivity; windows, the last
defined value, refusals in one line; tables in three formats; the sensitivity convergence check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nplsim.experiments import metrics
from nplsim.experiments.cli import main
from nplsim.experiments.compare import _check_metrics, compare, write_comparison
from nplsim.experiments.sensitivity import (
    SensitivitySpec,
    analyse,
    convergence_warnings,
    load_sensitivity_spec,
    sample,
)
from nplsim.experiments.sweep_spec import _validate
from nplsim.experiments.tables import FORMATS

SMALL = {"n_loans": 2000}
SENS = {
    "base": "restart_2016", "quarters": 2, "method": "sobol", "n": 4, "outcomes": ["car_final"],
    "overrides": SMALL, "parameters": {"disclosure_level": {"low": 0.2, "high": 1.0}},
}  # fmt: skip


def one_line_exit_2(argv, capsys, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)
    return err


# ---------------------------------------------------------------------------------- vocabulary
def test_every_metric_has_one_name_a_unit_a_meaning_and_a_computable_value():
    from nplsim.experiments.run import simulate

    registry = metrics.registry()
    assert len(registry) == len({m.name for m in registry.values()})
    for metric in registry.values():
        assert metric.unit and metric.meaning and "\n" not in metric.meaning, metric.name
    model = simulate("shanxi_power", 3, {**SMALL, "quarters": 4})
    sources = list(dict.fromkeys(m.source for m in registry.values()))
    paths = metrics.source_paths(model.model_frame(), model.bank_frame, sources)
    assert paths.shape == (5, len(sources))
    for metric in registry.values():
        value = metrics.evaluate(metric, paths[:, sources.index(metric.source)], 1, 4)
        assert np.ndim(value) == 0, metric.name
    car = paths[:, sources.index("car")]
    weakest = paths[:, sources.index("bank_car_min")]
    assert (weakest[1:] <= car[1:] + 1e-12).all()  # the weakest bank is no better than the system


def test_every_metric_name_resolves_in_compare_sweep_and_sensitivity():
    names = list(metrics.registry())
    assert _check_metrics(names) == tuple(names)
    spec = _validate({"outputs": ["model", "banks"], "outcomes": names}, "sweep.toml")
    assert spec.outcomes == names
    assert load_sensitivity_spec({**SENS, "outcomes": names}).outcomes == names
    with pytest.raises(Exception, match="outputs"):  # a bank metric needs banks.parquet
        _validate({"outputs": ["model"], "outcomes": ["bank_car_min_final"]}, "sweep.toml")


def test_docs_metrics_md_is_the_registry():
    assert metrics.DOCS_FILE.read_text() == metrics.markdown()


def test_nplsim_metrics_lists_name_unit_and_meaning(capsys):
    assert main(["metrics", "--grep", "time to disposal"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out and all(line.startswith("npl_exit_age_q") for line in out)
    assert "quarters" in out[0]


# ---------------------------------------------------------------------------------- statistics
def test_final_is_the_last_defined_value_not_nan_after_an_undefined_quarter():
    paths = np.array([[np.nan, 1.0, 2.0, np.nan], [np.nan, np.nan, np.nan, np.nan]])
    final = metrics.reduce(paths, "final")
    assert final[0] == 2.0 and np.isnan(final[1])
    assert metrics.reduce(paths, "mean")[0] == 1.5 and metrics.reduce(paths, "sum")[0] == 3.0
    halving = metrics.reduce(np.array([[0.2, 0.2, 0.15, 0.1, 0.05]]), "halving")
    assert halving[0] == 2.0  # quarter 3 is two quarters after quarter 1


def test_window_post_excludes_the_quarters_before_the_reform():
    path = np.array([0.0, 100.0, 100.0, 100.0, 1.0, 1.0, 1.0])  # the law changes at quarter 4
    first, last = metrics.window_bounds("post", 6, [4])
    assert (first, last) == (4, 6)
    assert metrics.reduce(path, "mean", first, last) == 1.0
    assert metrics.reduce(path, "mean", *metrics.window_bounds("all", 6, [4])) > 50
    assert metrics.window_bounds("post", 6, []) == (1, 6)
    assert metrics.window_bounds("2:3", 6) == (2, 3)
    with pytest.raises(Exception, match="window"):
        metrics.window_bounds("3:9", 6)
    with pytest.raises(Exception, match="Q1:Q2"):
        metrics.parse_window("later")


def test_compare_window_post_and_tables_in_three_formats(tmp_path):
    result = compare(
        "pilot_2005", "pilot_2005", [1, 2], quarters=6, overrides_a=SMALL,
        overrides_b={**SMALL, "events": [{"quarter": 4, "regime": "strengthened"}]},
        metrics=["npl_ratio", "car_mean", "npl_exit_age_q_final"], workers=1,
    )  # fmt: skip
    table = result.table.set_index(["metric", "statistic"])
    assert set(table["window"]) == {"q4-q6 (post)"}
    paths = result.paths[
        (result.paths["metric"] == "npl_ratio") & (result.paths["scenario"] == "B")
    ]
    post = paths[paths["quarter"] >= 4].groupby("seed")["value"].mean().mean()
    every = paths[paths["quarter"] >= 1].groupby("seed")["value"].mean().mean()
    assert table.loc[("npl_ratio", "mean"), "mean_b"] == pytest.approx(post)
    assert post != pytest.approx(every)  # the window mattered
    row = table.loc[("car_mean", "mean")]
    assert row["diff_pct"] == pytest.approx(100 * row["diff"] / abs(row["mean_a"]))
    out = write_comparison(result, tmp_path / "cmp")
    for ext in FORMATS:
        assert (out / f"comparison.{ext}").stat().st_size > 0
    assert "\\begin{tabular}" in (out / "comparison.tex").read_text()
    assert "| metric | statistic |" in (out / "comparison.md").read_text()
    assert len(pd.read_csv(out / "comparison.csv")) == len(result.table)


# ---------------------------------------------------------------------------------- refusals
def test_unknown_metric_is_one_line_exit_2_naming_the_allowed_values(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["compare", "pilot_2005", "strengthened", "--seeds", "2", "--metrics", "npl_ratio,roe",
            "--out", str(out), "--quiet"]  # fmt: skip
    one_line_exit_2(argv, capsys, "'roe'", "npl_ratio", "NAME_final")
    spec = tmp_path / "sweep.toml"
    spec.write_text('quarters = 1\noutcomes = ["happiness"]\n')
    one_line_exit_2(["sweep", str(spec), "--out", str(out)], capsys, "outcomes.0", "NAME_mean")
    assert not out.exists()


def test_one_seed_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["compare", "pilot_2005", "strengthened", "--seeds", "1", "--out", str(out)]
    one_line_exit_2(argv, capsys, "--seeds", "2 or more")
    two = ["compare", "pilot_2005", "strengthened", "--seeds", "2", "--out", str(out)]
    one_line_exit_2([*two, "--window", "soon"], capsys, "window", "Q1:Q2")
    assert not out.exists()


# ---------------------------------------------------------------------------------- convergence
def _linear_indices(n: int) -> tuple[SensitivitySpec, pd.DataFrame]:
    """Indices of y = 4·x1 + x2 (x3 inert) on the unit ranges: S1 = ST = 16/17, 1/17, 0."""
    spec = load_sensitivity_spec({
        **SENS, "n": n, "parameters": {p: {"low": 0.2, "high": 1.0} for p in (
            "disclosure_level", "investor_protection", "bankruptcy_remoteness")},
    })  # fmt: skip
    points = sample(spec)
    unit = (points - 0.2) / 0.8
    y = 4.0 * unit[:, 0] + unit[:, 1]
    return spec, analyse(spec, points, y[:, None])


def test_sensitivity_convergence_warns_for_a_tiny_n_and_not_for_an_adequate_one():
    spec, indices = _linear_indices(4)
    warnings = convergence_warnings(spec, indices)
    assert any("too small" in w for w in warnings)
    spec, indices = _linear_indices(1024)
    assert convergence_warnings(spec, indices) == []
    st = indices[indices["index"] == "ST"].set_index("parameter")["value"]
    assert st["disclosure_level"] == pytest.approx(16 / 17, abs=0.05)
    assert (indices["ci_width"].dropna() < 0.2).all()


def test_sensitivity_warns_for_an_index_outside_0_1_beyond_its_ci():
    spec, indices = _linear_indices(1024)
    bad = indices.copy()
    bad.loc[bad.index[0], ["value", "conf"]] = [1.4, 0.1]
    assert any("outside [0, 1]" in w for w in convergence_warnings(spec, bad))


# ---------------------------------------------------------------------------------- sweep summary
@pytest.mark.slow
def test_sweep_outcomes_give_a_summary_table_and_figures(tmp_path):
    from nplsim.experiments.sweep import load_sweep, run_sweep

    spec = tmp_path / "spec.toml"
    spec.write_text(
        'base = "restart_2016"\nquarters = 3\noverrides = { n_loans = 2000 }\nreplications = 2\n'
        'outputs = ["model", "banks"]\noutcomes = ["npl_ratio", "bank_car_min_final", '
        '"abs_issued_sum"]\n[parameters.disclosure_level]\nvalues = [0.3, 0.9]\n'
        "[parameters.enforcement_efficiency]\nvalues = [0.8, 1.2]\n"
    )
    out = tmp_path / "sweep"
    run_sweep(spec, out, workers=1, progress=False)
    table = pd.read_csv(out / "summary" / "outcomes.csv")
    assert len(table) == 4 * 3 and (table["n_seeds"] == 2).all()
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    model = load_sweep(out, "model")
    point = model[(model["disclosure_level"] == 0.3) & (model["enforcement_efficiency"] == 0.8)]
    expected = point[point["quarter"] >= 1].groupby("seed")["npl_ratio"].mean().mean()
    row = table[(table["outcome"] == "npl_ratio") & (table["disclosure_level"] == 0.3)
                & (table["enforcement_efficiency"] == 0.8)].iloc[0]  # fmt: skip
    assert row["mean"] == pytest.approx(expected)
    figures = {p.name for p in (out / "summary" / "figures").iterdir()}
    for outcome in ("npl_ratio", "bank_car_min_final", "abs_issued_sum"):
        for kind in ("main_effects", "interaction"):
            assert {f"{kind}_{outcome}.png", f"{kind}_{outcome}.svg"} <= figures
    assert (out / "summary" / "outcomes.md").read_text().count("\n| ") >= 12
