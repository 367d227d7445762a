"""Sweeps that run what was asked, once (issue 14): one run per value however it is written,
nested regime keys that change the simulation, a resume that refuses to mix code, a broken
sweep.json or read-only runs/ as one line, and a confirmation before a very large sweep."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nplsim.experiments.cli import main
from nplsim.experiments.sweep import count_runs, expand, load_spec, load_sweep
from nplsim.market.errors import ConfigError
from nplsim.market.regime import load_regime
from tests.helpers import unprivileged

BASE = "quarters = 1\noverrides = { n_loans = 500 }\n"


def _spec(tmp_path, text: str, name: str = "spec.toml"):
    path = tmp_path / name
    path.write_text(BASE + text)
    return path


def _sweep(tmp_path, spec, *flags: str) -> int:
    return main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1",
                 "--quiet", *flags])  # fmt: skip


@pytest.mark.parametrize(
    ("values", "kept"),
    [("[1, 1.0]", [1]), ("[0.0, -0.0]", [0.0]), ("[0.5, 0.5, 1, 1.0, 0]", [0.5, 1, 0])],
)
def test_values_that_are_one_value_are_one_run(tmp_path, values, kept):
    # was: [1, 1.0] and [0.0, -0.0] became two runs of one simulation
    spec = load_spec(_spec(tmp_path, f"[parameters.disclosure_level]\nvalues = {values}\n"))
    assert spec.parameters["disclosure_level"].values == kept
    assert len(expand(spec)) == len(kept) == count_runs(spec)


def test_a_sweep_over_a_nested_regime_key_changes_the_simulation(tmp_path):
    # was: one config hash and one result for different values of regime_overrides.risk_retention
    spec = _spec(tmp_path, '[parameters."regime_overrides.risk_retention"]\nvalues = [0.08, 0.2]\n')
    assert _sweep(tmp_path, spec) == 0
    summary = load_sweep(tmp_path / "out")
    assert summary["config_hash"].nunique() == 2


def test_two_parameters_that_set_one_field_are_refused(tmp_path, capsys):
    spec = _spec(
        tmp_path,
        "[parameters.risk_retention]\nvalues = [0.1]\n"
        '[parameters."regime_overrides.risk_retention"]\nvalues = [0.12]\n',
    )
    assert _sweep(tmp_path, spec) == 2
    assert "names the same field twice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_nested_regime_value_out_of_range_is_refused(tmp_path, capsys):
    spec = _spec(tmp_path, '[parameters."regime_overrides.risk_retention"]\nvalues = [0.1, 2]\n')
    assert _sweep(tmp_path, spec) == 2
    err = capsys.readouterr().err
    assert f"{spec}: parameters.regime_overrides.risk_retention: value 2" in err


def test_a_preset_file_in_a_spec_is_read_beside_the_spec(tmp_path, monkeypatch):
    law = load_regime("pilot_2005").as_dict() | {"risk_retention": 0.2}
    lines = [f"{k} = {json.dumps(v).replace('true', 'true')}" for k, v in law.items()]
    (tmp_path / "law.toml").write_text("\n".join(lines) + "\n")
    spec = _spec(tmp_path, '[parameters.regime]\nvalues = ["law.toml", "pilot_2005"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert _sweep(tmp_path, spec) == 0
    assert load_sweep(tmp_path / "out")["config_hash"].nunique() == 2


def _resumable(tmp_path):
    spec = _spec(tmp_path, "replications = 2\n")
    assert _sweep(tmp_path, spec) == 0
    return spec, tmp_path / "out" / "sweep.json"


def test_resume_under_other_code_is_refused_unless_allowed(tmp_path, capsys):
    # was: resume after a code change mixed runs of two commits, sweep.json kept only the new one
    spec, path = _resumable(tmp_path)
    manifest = json.loads(path.read_text())
    manifest["code"]["code_sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert _sweep(tmp_path, spec, "--resume") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "begun under other code" in err
    assert "--allow-different-code" in err
    assert _sweep(tmp_path, spec, "--resume", "--allow-different-code") == 0
    after = json.loads(path.read_text())
    assert after["code"]["code_sha256"] == "0" * 64  # what the sweep began under
    assert len(after["sessions"]) == 2
    assert after["sessions"][-1]["note"].startswith("re-run under different code")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]", "expected a JSON object, got array"),
        ('{"spec": ', "malformed JSON"),
        ("{}", "spec_resolved: missing or not an object"),
        ('{"spec_resolved": []}', "spec_resolved: missing or not an object"),
        ("[" * 5000 + "]" * 5000, "nested more than"),
    ],
)
def test_a_broken_sweep_json_is_one_line(tmp_path, capsys, content, expected):
    # was: a traceback for a corrupt or non-object sweep.json
    spec, path = _resumable(tmp_path)
    path.write_text(content)
    capsys.readouterr()
    assert _sweep(tmp_path, spec, "--resume") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and str(path) in err, err


@pytest.mark.slow
def test_resume_with_read_only_runs_is_one_line(tmp_path):
    # was: a traceback
    spec, _ = _resumable(tmp_path)
    (tmp_path / "out" / "runs").chmod(0o555)
    argv = ["sweep", str(spec), "--out", str(tmp_path / "out"), "--resume", "--quiet"]
    proc = unprivileged(argv, tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "runs: Permission denied" in proc.stderr


def test_a_sweep_of_millions_of_runs_asks_first(tmp_path, capsys):
    # was: no cap or confirmation (n = 1,000,000 x 3 categories)
    spec = _spec(
        tmp_path,
        '[parameters.regime]\nvalues = ["pilot_2005", "restart_2016", "strengthened"]\n'
        '[parameters.disclosure_level]\nlow = 0.0\nhigh = 1.0\n[sampling]\nmethod = "lhs"\n'
        "n = 1000000\n",
    )
    assert _sweep(tmp_path, spec) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3,000,000 runs" in err and "--yes" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["compare", "validate"])
def test_other_large_batches_ask_first(tmp_path, capsys, command):
    argv = {
        "compare": ["compare", "pilot_2005", "restart_2016", "--seeds", "20000"],
        "validate": ["validate", "--seeds", "20000"],
    }[command]
    assert main([*argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "--yes" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_a_sweep_with_failures_says_how_many_and_where_and_exits_1(tmp_path, capsys):
    spec = _spec(
        tmp_path,
        "[parameters.initial_npl_ratio]\nvalues = [0.05, 0.95]\n"
        "[parameters.provision_coverage_min]\nvalues = [3.0]\n",
    )
    assert _sweep(tmp_path, spec) == 1
    err = capsys.readouterr().err
    assert "1 of 2 runs failed" in err and str(tmp_path / "out" / "failures") in err


def test_api_refuses_conflicting_flags(tmp_path):
    from nplsim.experiments.sweep import run_sweep

    with pytest.raises(ConfigError, match="not both"):
        run_sweep(_spec(tmp_path, ""), tmp_path / "o", resume=True, overwrite=True)


def test_load_sweep_reads_a_written_sweep(tmp_path):
    assert _sweep(tmp_path, _spec(tmp_path, "replications = 2\n")) == 0
    frame = load_sweep(tmp_path / "out")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2


def test_an_unencrypted_scheduler_of_another_machine_is_warned_about(tmp_path, monkeypatch, caplog):
    import distributed

    def unreachable(address, timeout):
        raise OSError("no route")

    monkeypatch.setattr(distributed, "Client", unreachable)
    spec = _spec(tmp_path, "")
    for address, warned in (("tcp://192.0.2.1:8786", True), ("tcp://127.0.0.1:8786", False),
                            ("tls://192.0.2.1:8786", False)):  # fmt: skip
        caplog.clear()
        with pytest.raises(ConfigError, match="cannot connect"):
            from nplsim.experiments.sweep import run_sweep

            run_sweep(spec, tmp_path / "o", scheduler=address, progress=False)
        assert ("is not encrypted" in caplog.text) is warned
