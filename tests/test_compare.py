"""Paired comparisons: common random numbers, honest confidence intervals, reforms at quarter k."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nplsim.experiments import compare as compare_module
from nplsim.experiments.cli import main
from nplsim.experiments.compare import (
    DEFAULT_METRICS,
    TABLE_COLUMNS,
    compare,
    paired_difference,
    quarter_statistic,
    reform_overrides,
)
from nplsim.experiments.seeds import DEFAULT_SEED
from nplsim.market.errors import ConfigError

SMALL = {"n_loans": 3000}
MEDIUM = {"n_loans": 10_000}  # with 16 seeds, enough to resolve a ~2 pp recovery-rate effect
QUARTERS = 10


def per_seed(result, side: str, metric: str, statistic: str) -> pd.Series:
    """The statistic of one metric for each seed, recomputed from the tidy paths."""
    rows = result.paths[(result.paths["scenario"] == side) & (result.paths["metric"] == metric)]
    wide = rows.pivot(index="seed", columns="quarter", values="value").sort_index()
    return pd.Series(quarter_statistic(wide.to_numpy(), statistic), index=wide.index)


def test_identical_scenarios_give_exactly_zero_differences():
    result = compare(
        "pilot_2005", "pilot_2005", 3, quarters=QUARTERS, overrides_a=SMALL, overrides_b=SMALL,
        workers=1,
    )  # fmt: skip
    table = result.table
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 2 * len(DEFAULT_METRICS)
    assert set(table["statistic"]) == {"mean", "final"}
    defined = table[table["n_seeds"] > 0]
    assert len(defined) >= len(table) - 1  # an AMC price may be undefined in the final quarter
    for column in ("diff", "ci_low", "ci_high"):
        assert (defined[column] == 0.0).all(), column
    assert (defined["mean_a"] == defined["mean_b"]).all()
    assert defined["p_value"].isna().all()
    a = result.paths[result.paths["scenario"] == "A"].reset_index(drop=True)
    b = result.paths[result.paths["scenario"] == "B"].reset_index(drop=True)
    pd.testing.assert_series_equal(a["value"], b["value"])
    assert len(a) == 3 * (QUARTERS + 1) * len(DEFAULT_METRICS)


def test_different_law_gives_significant_differences_with_correct_intervals():
    seeds = [5, 6, 7, 8]
    result = compare(
        "pilot_2005", "strengthened", seeds, quarters=QUARTERS, overrides_a=SMALL,
        overrides_b={**SMALL, "disclosure_level": 0.6}, workers=1,
    )  # fmt: skip
    table = result.table.set_index(["metric", "statistic"])
    assert result.label_b == "strengthened disclosure_level=0.6"
    defined = table[table["n_seeds"] > 0]
    assert (defined["ci_low"] <= defined["diff"]).all()
    assert (defined["diff"] <= defined["ci_high"]).all()
    # The 2016 economy under the strengthened law has far fewer NPLs and more capital.
    assert table.loc[("npl_ratio", "mean"), "ci_high"] < 0
    assert table.loc[("car", "mean"), "ci_low"] > 0
    assert (defined["ci_high"] - defined["ci_low"] > 0).sum() >= len(defined) - 1

    # An independent computation of every interval and p-value from the paths.
    for (metric, statistic), row in table.iterrows():
        a = per_seed(result, "A", metric, statistic)
        b = per_seed(result, "B", metric, statistic)
        keep = a.notna() & b.notna()
        d = (b - a)[keep]
        assert row["n_seeds"] == len(d)
        if len(d) < 2:
            continue
        assert row["diff"] == pytest.approx(d.mean(), rel=1e-12)
        low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        assert row["ci_low"] == pytest.approx(low, rel=1e-9)
        assert row["ci_high"] == pytest.approx(high, rel=1e-9)
        assert row["p_value"] == pytest.approx(stats.ttest_rel(b[keep], a[keep]).pvalue, rel=1e-9)


@pytest.mark.slow
def test_better_enforcement_raises_recovery_on_common_seeds():
    result = compare(
        "pilot_2005", "pilot_2005", 16, quarters=QUARTERS, overrides_a=MEDIUM,
        overrides_b={**MEDIUM, "enforcement_efficiency": 3.0}, workers=1,  # the field maximum
    )  # fmt: skip
    table = result.table.set_index(["metric", "statistic"])
    assert table.loc[("bank_recovery_rate", "mean"), "ci_low"] > 0
    assert table.loc[("npl_ratio", "mean"), "ci_high"] < 0


def test_reform_at_k_shares_the_world_until_k_then_branches():
    k = 5
    overrides_b = reform_overrides("pilot_2005", SMALL, k, "strengthened", quarters=QUARTERS)
    assert overrides_b["events"][-1] == {
        "quarter": k, "regime": "strengthened", "label": "reform to strengthened",
    }  # fmt: skip
    result = compare(
        "pilot_2005", "pilot_2005", [1, 2], quarters=QUARTERS, overrides_a=SMALL,
        overrides_b=overrides_b, workers=1,
    )  # fmt: skip
    assert result.events == [(k, "reform to strengthened")]
    paths = result.paths.pivot_table(
        index=["quarter", "seed", "metric"], columns="scenario", values="value", dropna=False
    )
    before = paths.loc[paths.index.get_level_values("quarter") < k]
    after = paths.loc[paths.index.get_level_values("quarter") >= k]
    np.testing.assert_array_equal(before["A"].to_numpy(), before["B"].to_numpy())
    changed = ~np.isclose(after["A"], after["B"], equal_nan=True)
    assert changed.sum() > 0.5 * len(after)


@pytest.mark.slow
def test_process_pool_reproduces_the_in_process_comparison():
    kwargs = dict(quarters=6, overrides_a=SMALL, overrides_b={**SMALL, "car_min": 0.1})
    serial = compare("restart_2016", "restart_2016", 3, workers=1, **kwargs)
    pooled = compare("restart_2016", "restart_2016", 3, workers=2, **kwargs)
    pd.testing.assert_frame_equal(serial.table, pooled.table)
    pd.testing.assert_frame_equal(serial.paths, pooled.paths)


def test_paired_difference_edge_cases():
    one = paired_difference(np.array([1.0]), np.array([3.0]))
    assert one["diff"] == one["ci_low"] == one["ci_high"] == 2.0 and np.isnan(one["p_value"])
    constant = paired_difference(np.array([0.1, 0.2, 0.3]), np.array([0.6, 0.7, 0.8]))  # rounding
    assert constant["ci_low"] == constant["diff"] == constant["ci_high"]
    assert np.isnan(constant["p_value"])
    gaps = paired_difference(np.array([1.0, np.nan, 2.0, 4.0]), np.array([2.0, 5.0, np.nan, 6.0]))
    assert gaps["n_seeds"] == 2 and gaps["diff"] == pytest.approx(1.5)
    empty = paired_difference(np.array([np.nan]), np.array([1.0]))
    assert empty["n_seeds"] == 0 and np.isnan(empty["diff"])


@pytest.mark.slow
def test_cli_writes_tables_paths_and_figures(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "pilot_2005", "--reform-at", "4", "--reform-to", "strengthened",
                 "--seeds", "2", "--quarters", "8", "--set-a", "n_loans=2000", "--out", str(out),
                 "--workers", "1", "--quiet"])  # fmt: skip
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"comparison.csv", "comparison.parquet", "paths.parquet", "manifest.json",
            "figures"} <= names  # fmt: skip
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == TABLE_COLUMNS
    pd.testing.assert_frame_equal(table, pd.read_parquet(out / "comparison.parquet"),
                                  check_dtype=False)  # fmt: skip
    paths = pd.read_parquet(out / "paths.parquet")
    assert list(paths.columns) == ["quarter", "scenario", "seed", "metric", "value"]
    assert set(paths["seed"]) == {DEFAULT_SEED, DEFAULT_SEED + 1} and paths["quarter"].max() == 8
    for metric in DEFAULT_METRICS:
        assert (out / "figures" / f"compare_{metric}.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "pilot_2005 → strengthened at q4" in printed and "npl_ratio" in printed
    assert [p.name for p in tmp_path.iterdir()] == ["cmp"]  # no staging directory left


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["no_such", "strengthened"], "scenario: unknown scenario (allowed: amc_only_1999"),
        (["pilot_2005", "strengthened", "--set-a", "no_key=1"], "--set-a: no_key: unknown key"),
        (["pilot_2005", "strengthened", "--set-b", "car_min=2"], "--set-b: car_min"),
        (["pilot_2005", "strengthened", "--seeds", "0"], "--seeds: must be at least 1"),
        (["pilot_2005", "strengthened", "--workers", "0"], "--workers"),
        (["pilot_2005", "strengthened", "--quarters", "0"], "quarters"),
        (["pilot_2005", "--reform-at", "3", "--reform-to", "nope"], "--reform-to: nope"),
        (["pilot_2005", "--reform-at", "99", "--reform-to", "strengthened"], "--reform-at: 99"),
        (["pilot_2005", "--reform-at", "3"], "give both or neither"),
        (["pilot_2005"], "give scenario B or --reform-at"),
        (["pilot_2005", "strengthened", "--seeds", "many"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, expected):
    try:
        code = main(["compare", *args, "--out", str(tmp_path / "o"), "--quiet"])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and expected in err, err
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_directory(tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    code = main(["compare", "pilot_2005", "strengthened", "--seeds", "2", "--quarters", "4",
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 2 and "nplsim did not make it" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"]


def test_a_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(compare_module, "comparison_figure", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["compare", "pilot_2005", "strengthened", "--seeds", "2", "--quarters", "4",
              "--set-a", "n_loans=2000", "--set-b", "n_loans=2000", "--workers", "1",
              "--out", str(tmp_path / "o"), "--quiet"])  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_api_rejects_bad_seeds_metrics_and_horizons():
    with pytest.raises(ConfigError, match="seeds"):
        compare("pilot_2005", "pilot_2005", 0)
    with pytest.raises(ConfigError, match="distinct"):
        compare("pilot_2005", "pilot_2005", [1, 1])
    with pytest.raises(ConfigError, match="unknown metric 'roe'"):
        compare("pilot_2005", "pilot_2005", 1, metrics=["roe"])
    with pytest.raises(ConfigError, match="A runs 40 quarters and B 8"):
        compare("pilot_2005", "pilot_2005", 1, overrides_b={"quarters": 8})
