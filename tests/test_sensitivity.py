"""Sensitivity analysis: Sobol and Morris indices of outcomes to regime parameters; spec checks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nplsim.experiments.cli import main
from nplsim.experiments.sensitivity import (
    INDEX_COLUMNS,
    load_sensitivity_spec,
    run_sensitivity,
)
from nplsim.market.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "experiments" / "specs" / "sensitivity_example.toml"

# state_guarantee_fee_bp prices a scheme pilot_2005 does not have, so nothing in its runs reads it:
# an honest analysis must find that it explains none of the variance, while enforcement efficiency
# (the recovery-hazard multiplier) drives the NPL ratio.
TINY = {
    "base": "pilot_2005",
    "quarters": 3,
    "overrides": {"n_loans": 2000},
    "method": "sobol",
    "n": 16,
    "seeds": [3],
    "sample_seed": 11,
    "outcomes": ["npl_ratio_final", "bank_recovery_rate_mean", "turnover_final"],
    "parameters": {
        "enforcement_efficiency": {"low": 0.5, "high": 2.0},
        "disclosure_level": {"low": 0.2, "high": 1.0},
        "state_guarantee_fee_bp": {"low": 0.0, "high": 500.0},
    },
}


def write_spec(path: Path, spec: dict) -> Path:
    """A spec dict as a TOML file."""
    lines = []
    tables = []
    for key, value in spec.items():
        if key == "parameters":
            for name, bounds in value.items():
                tables.append(
                    f"[parameters.{name}]\nlow = {bounds['low']}\nhigh = {bounds['high']}"
                )
        elif key == "overrides":
            tables.append("[overrides]\n" + "\n".join(f"{k} = {v!r}" for k, v in value.items()))
        elif isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in value)}]")
        else:
            lines.append(f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n\n" + "\n\n".join(tables) + "\n")
    return path


@pytest.mark.slow
def test_sobol_finds_the_influential_and_the_ignored_parameter(caplog):
    spec = load_sensitivity_spec(TINY)
    with caplog.at_level(logging.WARNING, logger="nplsim.experiments.sensitivity"):
        result = run_sensitivity(spec, workers=1)
    indices = result.indices
    assert list(indices.columns) == INDEX_COLUMNS
    values = indices[indices["index"] != "note"]
    assert set(values["outcome"]) == {"npl_ratio_final", "bank_recovery_rate_mean"}
    assert set(values["index"]) == {"S1", "ST"}
    assert len(values) == 2 * 3 * 2  # outcomes x parameters x (S1, ST)
    assert np.isfinite(values["value"]).all() and np.isfinite(values["conf"]).all()
    st = values[values["index"] == "ST"].set_index(["outcome", "parameter"])["value"]
    for outcome in ("npl_ratio_final", "bank_recovery_rate_mean"):
        assert st[(outcome, "enforcement_efficiency")] > 0.3
        assert (
            abs(st[(outcome, "state_guarantee_fee_bp")])
            < 0.01 * st[(outcome, "enforcement_efficiency")]
        )
    note = indices[indices["index"] == "note"]
    assert note["outcome"].tolist() == ["turnover_final"]
    assert "NaN" in note["note"].iloc[0]
    assert "turnover_final dropped" in caplog.text
    assert len(result.samples) == 16 * (3 + 2)
    assert result.settings["n_runs"] == 16 * 5


def test_morris_runs_and_is_the_same_in_a_process_pool():
    spec = load_sensitivity_spec({**TINY, "method": "morris", "n": 4, "outcomes": ["car_final"]})
    serial = run_sensitivity(spec, workers=1)
    pooled = run_sensitivity(spec, workers=2)
    pd.testing.assert_frame_equal(serial.indices, pooled.indices)
    values = serial.indices.set_index(["parameter", "index"])["value"]
    assert set(serial.indices["index"]) == {"mu_star", "sigma", "mu"}
    assert np.isfinite(values).all()
    assert values[("state_guarantee_fee_bp", "mu_star")] == 0.0
    assert values[("enforcement_efficiency", "mu_star")] > 0
    mu_star = serial.indices[serial.indices["index"] == "mu_star"]
    assert np.isfinite(mu_star["conf"]).all()
    assert len(serial.samples) == 4 * (3 + 1)


def test_cli_writes_indices_and_figures(tmp_path, capsys):
    spec = write_spec(tmp_path / "tiny.toml", {**TINY, "n": 8})
    out = tmp_path / "sens"
    assert main(["sensitivity", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"indices.csv", "indices.parquet", "samples.parquet", "manifest.json",
            "figures"} <= names  # fmt: skip
    indices = pd.read_parquet(out / "indices.parquet")
    assert list(indices.columns) == INDEX_COLUMNS
    assert len(pd.read_csv(out / "indices.csv")) == len(indices)
    figures = sorted(p.name for p in (out / "figures").iterdir())
    stems = ["sensitivity_bank_recovery_rate_mean", "sensitivity_npl_ratio_final"]
    assert figures == sorted(f"{s}.{ext}" for s in stems for ext in ("pdf", "png", "svg"))
    assert (out / "figures" / f"{stems[0]}.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "enforcement_efficiency" in printed and "note: turnover_final not analysed" in printed


def test_example_spec_is_valid():
    spec = load_sensitivity_spec(EXAMPLE)
    assert set(spec.parameters) == {
        "enforcement_efficiency", "disclosure_level", "car_min", "npl_ratio_target",
    }  # fmt: skip
    assert spec.method == "sobol" and spec.n <= 64


def _with_parameter(name: str, low: float, high: float) -> dict:
    return {**TINY, "parameters": {**TINY["parameters"], name: {"low": low, "high": high}}}


@pytest.mark.parametrize(
    ("spec", "key", "expected"),
    [
        (
            _with_parameter("courage", 0, 1),
            "parameters.courage",
            "not a legal-regime or prudential field",
        ),
        (_with_parameter("bulk_threshold", 1, 5), "parameters.bulk_threshold", "not a float"),
        (_with_parameter("spv_form", 0, 1), "parameters.spv_form", "not a float"),
        (_with_parameter("car_min", 0.05, 0.3), "parameters.car_min.high", "0.02 to 0.25"),
        (_with_parameter("car_min", 0.01, 0.1), "parameters.car_min.low", "below the field"),
        (_with_parameter("disclosure_level", 0.8, 0.8), "parameters.disclosure_level", "low"),
        ({**TINY, "colour": "red"}, "colour", "unknown key"),
        ({**TINY, "outcomes": ["happiness"]}, "outcomes.0", "NAME_final"),
        ({**TINY, "method": "grid"}, "method", "sobol"),
        ({**TINY, "n": 12}, "n", "power of 2"),
        ({**TINY, "seeds": []}, "seeds", "at least 1"),
        ({**TINY, "base": "atlantis"}, "base", "unknown scenario"),
        ({**TINY, "overrides": {"n_loans": 5}}, "overrides.n_loans", "greater than or equal"),
        (
            {**TINY, "overrides": {"disclosure_level": 0.5}},
            "overrides.disclosure_level",
            "sampled parameter",
        ),
    ],
)
def test_spec_errors_name_the_file_and_key(tmp_path, capsys, spec, key, expected):
    path = write_spec(tmp_path / "spec.toml", spec)
    with pytest.raises(ConfigError) as info:
        load_sensitivity_spec(path)
    assert info.value.source == str(path) and info.value.key == key
    assert expected in str(info.value)
    out = tmp_path / "out"
    assert main(["sensitivity", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and key in err
    assert not out.exists()


def test_missing_and_malformed_spec_files(tmp_path, capsys):
    assert main(["sensitivity", str(tmp_path / "none.toml")]) == 2
    assert "file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("n = [\n")
    assert main(["sensitivity", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "malformed TOML" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]
