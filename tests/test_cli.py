"""The command line: a run writes the results directory; bad input is one line and exit 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nplsim.economy.measurement import MODEL_COLUMNS
from nplsim.experiments.cli import main


@pytest.mark.slow
def test_run_writes_the_results_directory(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "restart_2016", "--seed", "3", "--quarters", "6", "--out", str(out),
                 "--set", "n_loans=3000", "--quiet"])  # fmt: skip
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"manifest.json", "model.parquet", "banks.parquet", "deals.parquet", "trades.parquet",
            "events.parquet", "summary.json", "figures"} <= names  # fmt: skip
    model = pd.read_parquet(out / "model.parquet")
    assert list(model.columns) == list(MODEL_COLUMNS)
    assert len(model) == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["quarters"] == 6
    assert manifest["regime"]["spv_form"] == "trust"
    assert manifest["versions"]["mesa"] == "3.5.1"
    assert len(manifest["config_hash"]) == 64
    assert (out / "figures" / "dashboard.png").stat().st_size > 10_000
    assert "npl_ratio" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "no_such_key=1"], "no_such_key: unknown key (allowed:"),
        (["--set", "car_min=2"], "car_min: Input should be less than or equal to 0.25"),
        (["--set", "disclosure_level=high"], "disclosure_level"),
        (["--set", "n_loans=many"], "n_loans"),
        (["no_such_scenario"], "scenario: unknown scenario (allowed: amc_only_1999"),
        (["--set", "regime=nope"], "regime: unknown preset 'nope' (allowed:"),
        (["--set", "spv_form=llc"], "spv_form"),
        (["--set", "securitisation.remainder_sale=maybe"], "remainder_sale: Input should be a"),
        # an unknown key inside a table is named with that table's keys
        (["--set", "securitisation.remainder_sal=true"],
         "securitisation.remainder_sal: unknown key (allowed: bulk_approval_delay_q,"),
        (["--set", "macro.foo=1"], "macro.foo: unknown key (allowed: benchmark_rate,"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, expected):
    out = tmp_path / "out"
    code = main(["run", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and expected in err, err
    assert list(tmp_path.iterdir()) == []


def test_malformed_and_missing_files(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("quarters = [\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "malformed TOML" in err and err.count("\n") == 1
    assert main(["run", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "file not found" in capsys.readouterr().err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('regime = "pilot_2005"\nquartres = 4\n')
    assert main(["run", str(unknown), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{unknown}: quartres: unknown key (allowed:" in err and "quarters" in err
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text('quarters = "ten"\n')
    assert main(["run", str(wrong_type), "--out", str(tmp_path / "o")]) == 2
    assert "quarters" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--seed", "abc"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_out_dir_that_is_not_a_results_directory_is_refused(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["run", "--out", str(tmp_path), "--quiet", "--set", "n_loans=2000"]) == 2
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    assert len(list(tmp_path.iterdir())) == 1


def test_regimes_list_show_diff(capsys):
    assert main(["regimes", "list"]) == 0
    assert "strengthened" in capsys.readouterr().out
    assert main(["regimes", "show", "pilot_2005"]) == 0
    assert "bankruptcy_remoteness" in capsys.readouterr().out
    assert main(["regimes", "diff", "pilot_2005", "strengthened"]) == 0
    assert "investor_protection" in capsys.readouterr().out
    assert main(["regimes", "show", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_a_line_break_in_an_unrecognised_argument_keeps_the_error_on_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "amc_only_1999", "\n"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments" in err


# ---------------------------------------------------------------- issue 14: what was asked is run
def _tiny(tmp_path, *sets: str) -> list[str]:
    argv = ["run", "pilot_2005", "--set", "quarters=3", "--set", "n_loans=500", "--quiet"]
    for item in sets:
        argv += ["--set", item]
    return [*argv, "--out", str(tmp_path / "o")]


@pytest.mark.slow
@pytest.mark.parametrize(
    "override",
    [
        "regime_overrides.risk_retention=0.1",
        "regime_overrides={risk_retention=0.1}",
        "risk_retention=0.1",
    ],
)
def test_the_manifest_records_the_law_the_run_was_made_under(tmp_path, override):
    # was: the manifest recorded regime_overrides.car_min=0.1 while the regime kept 0.115
    from nplsim.market.scenario import ScenarioConfig, load_scenario

    reform = "events=[{quarter=2, overrides={disclosure_level=0.3}}]"
    assert main(_tiny(tmp_path, override, reform)) == 0
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    config, regime = load_scenario(ScenarioConfig.model_validate(manifest["scenario"]))
    assert regime.as_dict() == manifest["regime"] and regime.risk_retention == 0.1
    (reformed,) = manifest["regime_schedule"]
    assert reformed["regime"] == {**manifest["regime"], "disclosure_level": 0.3}
    assert reformed["quarter"] == 2 and reformed["preset"] == "pilot_2005"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("quarters=true", "--set: quarters: expected a number, got a boolean"),
        ('n_loans="500"', "--set: n_loans: expected a number, got text"),
        ("quarters=2\nquarters=5", "a key or value with a line break"),
        ("regime=nope", "--set: regime: unknown preset 'nope'"),
        ("regime_overrides={risk_retention=2}", "--set: regime_overrides.risk_retention: Input"),
        ("regime_overrides.nope=1", "--set: regime_overrides.nope: not a legal-regime field"),
        ("x=" + "[" * 2000 + "]" * 2000, "nested more than"),
    ],
)
def test_set_is_strict_and_blames_itself(tmp_path, capsys, item, expected):
    # was: quarters=true ran one quarter, a newline dropped the rest of the value silently,
    # --set regime=nope blamed the scenario file
    assert main(_tiny(tmp_path, item)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert list(tmp_path.iterdir()) == []


def test_quarters_out_of_range_blames_the_quarters_flag(tmp_path, capsys):
    assert main(["run", "--quarters", "0", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("nplsim: error: --quarters: quarters: ")


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_viz_refuses_a_port_that_is_not_one(capsys, port):
    # was: a traceback from the server for --port 99999
    with pytest.raises(SystemExit) as exc:
        main(["viz", "--port", port])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "port" in err
