"""``nplsim validate``: one report row per fact, honest verdicts, and bad input is exit 2."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from nplsim.experiments.cli import main
from nplsim.experiments.seeds import DEFAULT_SEED
from nplsim.experiments.validate import (
    FACTS_FILE,
    N_DEALS,
    FactSpec,
    StatisticSpec,
    amc_quarterly,
    check_facts,
    deals_value,
    load_facts,
    misses_paragraph,
    run_statistics,
    series_value,
    summarise,
)
from nplsim.market.errors import ConfigError
from nplsim.market.scenario import list_scenarios

FAST = ["--seeds", "2", "--loans", "3000", "--quiet"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One fast validation run through the command line, with a process pool."""
    out = tmp_path_factory.mktemp("validation") / "report"
    code = main(["validate", *FAST, "--workers", "2", "--out", str(out)])
    return code, out


@pytest.mark.slow
def test_writes_one_row_per_fact(report, capsys):
    code, out = report
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".nplsim-results.json",
        "manifest.json",
        "validation.csv",
        "validation.md",
    ]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left
    facts = load_facts()
    table = pd.read_csv(out / "validation.csv", keep_default_na=False)
    assert list(table["id"]) == [f.id for f in facts]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seeds"] == [DEFAULT_SEED, DEFAULT_SEED + 1] and manifest["n_loans"] == 3000

    modelled = table[table["kind"] != "not yet modelled"]
    gaps = table[table["kind"] == "not yet modelled"]
    assert len(modelled) and len(gaps)
    assert set(modelled["holds"]) <= {"True", "False"}
    assert (gaps["holds"] == "").all() and (gaps["statistic"] == "—").all()
    # a deals statistic has no value in a seed without deals (tiny runs may have none)
    deal_rows = table["seeds_with_deals"] != ""
    deal_ids = {f.id for f in facts if f.statistic is not None and f.statistic.table == "deals"}
    assert deal_ids and set(table.loc[deal_rows, "id"]) == deal_ids
    for _, row in table[deal_rows].iterrows():
        with_deals, of = row["seeds_with_deals"].split(" of ")
        assert of == "2" and int(row["n_seeds"]) <= int(with_deals)
        if with_deals == "0":
            assert row["holds"] == "False" and row["note"].startswith("No deals")
            assert row["model_median"] in ("", "nan")  # no value: an empty CSV cell
    modelled = modelled[~deal_rows[modelled.index] | (modelled["n_seeds"] > 0)]
    numbers = modelled[["model_p2_5", "model_median", "model_p97_5"]].astype(float)
    assert numbers.notna().all().all()
    assert (numbers["model_p2_5"] <= numbers["model_median"]).all()
    assert (numbers["model_median"] <= numbers["model_p97_5"]).all()
    runs = modelled[(modelled["scenario"] != "— (all)") & ~deal_rows[modelled.index]]
    assert (runs["n_seeds"] == 2).all()

    markdown = (out / "validation.md").read_text()
    assert "## Where the model misses" in markdown
    for fact in facts:
        assert f"| {fact.id} |" in markdown
    missed = modelled[modelled["holds"] == "False"]["id"]
    misses = markdown.split("## Where the model misses", 1)[1]
    assert all(f"**{fact_id}**" in misses for fact_id in missed)
    assert all(fact_id in misses for fact_id in gaps["id"])


@pytest.mark.slow
def test_in_process_run_gives_the_same_report(report, tmp_path):
    _, pooled = report
    out = tmp_path / "serial"
    assert main(["validate", *FAST, "--workers", "1", "--out", str(out)]) == 0
    for name in ("validation.csv", "validation.md"):
        assert (out / name).read_text() == (pooled / name).read_text()
    # a second run replaces an earlier report only when told to
    assert main(["validate", *FAST, "--workers", "1", "--out", str(out)]) == 2
    args = [*FAST, "--workers", "1", "--out", str(out), "--overwrite"]
    assert main(["validate", *args]) == 0
    assert (out / "validation.csv").read_text() == (pooled / "validation.csv").read_text()


def test_the_facts_file_is_complete():
    facts = load_facts(FACTS_FILE)
    kinds = {f.kind for f in facts}
    assert kinds == {"output", "initial_condition", "calibration_input", "not_modelled"}
    for fact in facts:
        assert fact.source.strip() and fact.description.strip()
        if fact.scenario:
            assert fact.scenario in list_scenarios(), fact.id
        if fact.kind != "not_modelled":
            assert fact.statistic is not None
            assert fact.target is not None or fact.target_range is not None
            assert fact.scenario or fact.statistic.table == "calibration", fact.id
    scenarios = check_facts(facts, FACTS_FILE, 3000)
    assert set(scenarios.values()) <= set(list_scenarios())


def test_band_and_statistic_rules():
    fact = FactSpec(
        id="x", kind="output", description="d", source="s", scenario="restart_2016",
        unit="cny_bn", target=1400, tolerance=0.2, tolerance_kind="relative",
        statistic=StatisticSpec(table="model", column="npl_carved_out", quarter=1),
    )  # fmt: skip
    assert fact.band() == pytest.approx((1120, 1680))
    with pytest.raises(ValueError, match="exactly one"):
        StatisticSpec(table="model", column="npl_ratio", quarter=1, quarters=(1, 2), over="mean")
    with pytest.raises(ValueError, match="column"):
        StatisticSpec(table="model", column="no_such_column", quarter=1)


DEALS = pd.DataFrame(
    {
        "issued_total": [30.0, 10.0, 5.0],
        "pool_face": [100.0, 50.0, 50.0],
        "senior_coupon": [0.04, 0.05, 0.06],
        "mezz_size": [0.0, 2.0, 1.0],
    }
)


def _deals_spec(**kwargs) -> StatisticSpec:
    return StatisticSpec(table="deals", **kwargs)


def test_deals_statistics_on_a_hand_made_frame():
    ratio = _deals_spec(column="issued_total", over="ratio_of_sums", denominator="pool_face")
    assert deals_value(DEALS, ratio) == pytest.approx(45.0 / 200.0)  # ratio of sums, not mean
    assert deals_value(DEALS, _deals_spec(column="senior_coupon", over="mean")) == pytest.approx(
        0.05
    )
    assert deals_value(DEALS, _deals_spec(column="issued_total", over="max")) == 30.0
    share = _deals_spec(column="mezz_size", over="share", greater_than=0.0)
    assert deals_value(DEALS, share) == pytest.approx(2 / 3)
    for spec in (ratio, share, _deals_spec(column="senior_coupon", over="mean")):
        assert math.isnan(deals_value(DEALS.iloc[0:0], spec))  # no deals: no value
    assert ratio.describe() == "sum(issued_total) / sum(pool_face) over all deals"
    assert share.describe() == "share of deals with mezz_size > 0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"column": "issued_total", "over": "ratio_of_sums"}, "needs `denominator`"),
        ({"column": "issued_total", "over": "mean", "denominator": "pool_face"}, "denominator"),
        ({"column": "issued_total", "over": "ratio_of_sums", "denominator": "x"}, "'x' not in"),
        ({"column": "mezz_size", "over": "share"}, "needs `greater_than`"),
        ({"column": "originator", "over": "mean"}, "column 'originator'"),
        ({"column": "senior_coupon", "over": "face_weighted"}, "over must be one of"),
        ({"column": "senior_coupon", "over": "mean", "quarter": 3}, "all deals"),
        ({"column": "senior_coupon", "over": "mean", "agent": "Huarong"}, "do not apply"),
    ],
)
def test_deals_spec_rules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _deals_spec(**kwargs)
    with pytest.raises(ValueError, match="deals table only"):
        StatisticSpec(table="model", column="abs_issued", quarter=1, denominator="x")


def _deals_fact(**kwargs) -> FactSpec:
    spec = _deals_spec(column="issued_total", over="ratio_of_sums", denominator="pool_face")
    return FactSpec(
        id="abs", kind="output", description="d", source="s", scenario="restart_2016",
        unit="percent", target=34.0, tolerance=10.0, note="n", statistic=spec, **kwargs,
    )  # fmt: skip


def test_summary_counts_seeds_with_deals_and_no_deals_does_not_hold():
    fact = _deals_fact()
    scenarios = {"abs": "restart_2016"}
    some = summarise(
        [fact], scenarios, {"abs": [0.30, math.nan, 0.40]}, {"restart_2016": [2, 0, 5]}
    )
    row = some.iloc[0]
    assert row["seeds_with_deals"] == "2 of 3" and row["n_seeds"] == 2
    assert row["model_median"] == pytest.approx(35.0) and row["holds"] == True  # noqa: E712
    assert row["note"] == "Deals in 2 of 3 seeds (seeds without deals give no value). n"
    none = summarise([fact], scenarios, {"abs": [math.nan] * 2}, {"restart_2016": [0, 0]})
    row = none.iloc[0]
    assert row["seeds_with_deals"] == "0 of 2" and row["n_seeds"] == 0
    assert math.isnan(row["model_median"]) and row["holds"] == False  # noqa: E712
    assert row["note"].startswith("No deals in any of the 2 seeds")
    assert "(no deals)" in misses_paragraph(none)


@pytest.mark.parametrize("scenario", ["restart_2016", "pilot_2005"])
def test_deals_statistics_from_a_run_with_deals(scenario):
    ratio = _deals_spec(column="issued_total", over="ratio_of_sums", denominator="pool_face")
    coupon = _deals_spec(column="senior_coupon", over="mean")
    values = run_statistics(scenario, 1, 20_000, (("ratio", ratio), ("coupon", coupon)))
    assert values[N_DEALS] >= 1  # this size produces deals
    assert 0 < values["ratio"] <= 1  # tranches never exceed the pool's face
    assert 0 < values["coupon"] < 0.5


def test_amc_recovery_per_face_disposed():
    amcs = pd.DataFrame(
        {
            "quarter": [0, 1, 2],
            "amc": ["A", "A", "A"],
            "face_bought": [0.0, 0.0, 0.0],
            "face_carved_out": [0.0, 100.0, 0.0],
            "recoveries": [0.0, 0.0, 5.0],
            "npl_face": [0.0, 100.0, 60.0],
        }
    )
    table = amc_quarterly(amcs)
    assert table.loc[2, "face_disposed"] == pytest.approx(40.0)
    assert table.loc[2, "recovery_per_face_disposed"] == pytest.approx(5.0 / 40.0)
    assert pd.isna(table.loc[1, "recovery_per_face_disposed"])  # nothing disposed yet


GOOD_FACT = """
[[fact]]
id = "npl"
kind = "output"
description = "NPL ratio"
source = "facts: bigfour-npl"
scenario = "{scenario}"
unit = "percent"
target = 1.67
tolerance = 0.3
[fact.statistic]
table = "model"
column = "{column}"
quarter = {quarter}
"""


@pytest.mark.parametrize(
    ("args", "facts", "expected"),
    [
        (["--seeds", "0"], None, "--seeds: 0: must be at least 1"),
        (["--workers", "0"], None, "--workers: 0: must be a positive integer"),
        (["--loans", "10"], None, "n_loans"),
        ([], GOOD_FACT.format(scenario="atlantis", column="npl_ratio", quarter=0),
         "scenario: unknown scenario 'atlantis' (allowed: amc_only_1999"),
        ([], GOOD_FACT.format(scenario="restart_2016", column="npl_ratio", quarter=99),
         "reads quarter 99, beyond the horizon"),
        ([], GOOD_FACT.format(scenario="restart_2016", column="nope", quarter=0), "column 'nope'"),
        ([], "[[fact]]\nid = 'x'\n[fact.statistic\n", "malformed TOML"),
        ([], GOOD_FACT.format(scenario="restart_2016", column="car", quarter=0).replace(
            "[fact.statistic]", "not_a_field = 1\n[fact.statistic]"
        ),
         "fact.0.not_a_field: unknown key"),
        ([], "fact = []\n", "fact"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, facts, expected):
    work = tmp_path / "work"
    facts_args = []
    if facts is not None:
        path = tmp_path / "facts.toml"
        path.write_text(facts)
        facts_args = ["--facts", str(path)]
    code = main(["validate", *FAST, *args, *facts_args, "--out", str(work / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and expected in err, err
    assert not work.exists()


def test_missing_facts_file_and_foreign_out_dir(tmp_path, capsys):
    assert main(["validate", *FAST, "--facts", str(tmp_path / "none.toml")]) == 2
    assert "file not found" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["validate", *FAST, "--out", str(foreign)]) == 2
    assert "nplsim did not make it" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_check_facts_rejects_unknown_scenario_directly(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text(GOOD_FACT.format(scenario="atlantis", column="npl_ratio", quarter=0))
    with pytest.raises(ConfigError, match="unknown scenario"):
        check_facts(load_facts(path), path, 3000)


def _floor_fact(**kwargs) -> FactSpec:
    return FactSpec(
        id="floor", kind="output", description="d", source="s", scenario="restart_2016",
        unit="percent", target_range=(11.5, math.inf),
        statistic=StatisticSpec(table="model", column="car", quarters=(1, 4), over="min"),
        **kwargs,
    )  # fmt: skip


def test_a_floor_holds_only_in_95_percent_of_seeds_not_at_the_median():
    fact = _floor_fact()
    assert fact.one_sided
    nine_of_ten = [0.12] * 9 + [0.11]  # the median clears the floor, one seed in ten does not
    table = summarise([fact], {"floor": "restart_2016"}, {"floor": nine_of_ten})
    row = table.iloc[0]
    assert row["model_median"] > 11.5 and row["share_in_band"] == pytest.approx(0.9)
    assert row["holds"] == False  # noqa: E712
    table = summarise([fact], {"floor": "restart_2016"}, {"floor": [0.12] * 20})
    assert table.iloc[0]["holds"] == True  # noqa: E712


def test_largest_change_over_a_lag():
    spec = StatisticSpec(
        table="model", column="npl_ratio", quarters=(4, 6), over="max_abs_change", lag=4
    )
    series = pd.Series([0.010, 0.011, 0.012, 0.013, 0.017, 0.010, 0.014], index=range(7))
    assert series_value(series, spec) == pytest.approx(0.007)  # |0.017 - 0.010| at quarter 4
    with pytest.raises(ValueError, match="lag"):
        StatisticSpec(table="model", column="npl_ratio", quarters=(4, 6), over="max_abs_change")
    with pytest.raises(ValueError, match="at least"):
        StatisticSpec(
            table="model", column="npl_ratio", quarters=(2, 6), over="max_abs_change", lag=4
        )


def test_runs_use_each_scenarios_own_loan_slots_like_compare():
    facts = [f for f in load_facts() if f.scenario == "restart_2016" and f.needs_run][:1]
    check_facts(facts, FACTS_FILE, None)  # no --loans: the scenario's own 100,000 slots
    from nplsim.experiments.cli import build_parser

    assert build_parser().parse_args(["validate"]).loans is None
