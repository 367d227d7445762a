"""Golden runs and reproduction from a manifest.

The golden runs (``tests/golden/cases.py``) must give the pinned values and the pinned Parquet
bytes; when they change on purpose, ``python -m tests.golden.update`` re-pins them (docs/golden.md).
``nplsim run --from-manifest`` must repeat any run byte for byte, from its manifest alone, and
refuse a bad manifest with one line and exit status 2, writing nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from nplsim.experiments.cli import main
from nplsim.experiments.provenance import versions
from nplsim.experiments.run import read_manifest, rerun_from_manifest
from tests.golden.cases import (
    BYTE_PACKAGES,
    CASES,
    GOLDEN_DIR,
    PINS,
    compare,
    parquet_hashes,
    parse,
    pinned_form,
    read_outputs,
    run_case,
    run_case_in_process,
    unexercised,
)

UPDATE = "python -m tests.golden.update (see docs/golden.md)"
PINNED = json.loads(PINS.read_text())
CASE_IDS = [case.name for case in CASES]


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory):
    """Run a golden case once per test module (on first use) and return its results directory."""
    done: dict[str, Path] = {}

    def run(case):
        if case.name not in done:
            done[case.name] = run_case(case, tmp_path_factory.mktemp("golden") / case.name)
        return done[case.name]

    return run


def _value_differences(case, run_dir: Path) -> list[str]:
    forms = pinned_form(read_outputs(run_dir))
    pinned = {p.stem for p in (GOLDEN_DIR / case.name).glob("*.csv")}
    lines = [f"{stem}: table not pinned" for stem in sorted(set(forms) - pinned)]
    lines += [f"{stem}: pinned table no longer written" for stem in sorted(pinned - set(forms))]
    for stem in sorted(set(forms) & pinned):
        golden = parse((GOLDEN_DIR / case.name / f"{stem}.csv").read_text())
        lines += compare(stem, golden, parse(forms[stem]))
    return lines


def test_every_case_is_pinned_as_defined():
    assert sorted(PINNED["cases"]) == sorted(CASE_IDS), f"cases changed: re-pin with {UPDATE}"
    for case in CASES:
        recorded = {k: v for k, v in PINNED["cases"][case.name].items() if k != "sha256"}
        assert recorded == case.definition(), f"{case.name} redefined: re-pin with {UPDATE}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_golden_values(case, golden_run):
    """Every output table equals the pinned one within the stated tolerance."""
    lines = _value_differences(case, golden_run(case))
    if lines:
        pytest.fail(
            f"golden run {case.name} ({case.scenario}, seed {case.seed}) changed its outputs:\n"
            + "\n".join(lines)
            + f"\nIf the change is deliberate, re-pin with {UPDATE}.",
            pytrace=False,
        )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_golden_parquet_bytes(case, golden_run):
    """Same writer versions: the Parquet files are byte for byte the pinned ones."""
    writers = {p: PINNED["versions"].get(p) for p in BYTE_PACKAGES}
    installed = {p: versions()[p] for p in BYTE_PACKAGES}
    if writers != installed:
        pytest.skip(
            f"Parquet bytes were pinned with {writers}, installed {installed}: bytes are not "
            f"compared, values are (test_golden_values); re-pin with {UPDATE}"
        )
    run_dir = golden_run(case)
    now, pinned = parquet_hashes(run_dir), PINNED["cases"][case.name]["sha256"]
    changed = sorted(k for k in now.keys() | pinned.keys() if now.get(k) != pinned.get(k))
    if changed:
        values_same = not _value_differences(case, run_dir)
        why = (
            "The values equal the pinned ones: only the way the files are written changed "
            "(metadata, column types or order)."
            if values_same
            else "The values changed too: see test_golden_values."
        )
        pytest.fail(
            f"golden run {case.name}: Parquet bytes differ from the pinned ones in {changed}. "
            f"{why} If deliberate, re-pin with {UPDATE}.",
            pytrace=False,
        )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_golden_case_exercises_its_channels(case, golden_run):
    """A golden run that stopped exercising a channel would pin nothing about it."""
    assert unexercised(case, read_outputs(golden_run(case))) == []


def test_golden_set_covers_carveout_securitisation_guarantees_markets_and_power():
    channels = {channel for case in CASES for channel in case.exercises}
    assert {
        "policy carve-out at book value",
        "AMC auctions",
        "securitisation",
        "private guarantee",
        "state guarantee scheme",
        "primary ABS market",
        "secondary ABS market",
        "recharacterisation",
        "macro shock",
        "legal reform",
        "power plants",
        "pooled Securitization Center issue",
    } <= channels


def test_a_changed_value_is_reported_by_column_and_quarter():
    golden = parse((GOLDEN_DIR / "carveout_1999" / "model.csv").read_text())
    now = golden.copy()
    now.loc[3, "npl_ratio"] *= 1.01
    now.loc[5, "car"] += 1e-13  # within tolerance
    lines = compare("model", golden, now)
    assert lines[0].startswith("model.npl_ratio: 1 of 13 rows differ, largest |diff|")
    assert "relative 0.01" in lines[0]
    assert lines[1].strip().startswith("quarter=3: pinned ")
    assert len(lines) == 2


# ---------------------------------------------------------------- reproduction from a manifest
def _parquet_bytes(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.glob("*.parquet"))}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rerun_from_manifest_of_every_golden_case_is_byte_identical(case, tmp_path):
    # in this process both times: a run and its re-run use the same numpy kernels
    original = run_case_in_process(case, tmp_path / "original")
    rerun_from_manifest(read_manifest(original / "manifest.json"), tmp_path / "again")
    assert _parquet_bytes(tmp_path / "again") == _parquet_bytes(original)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default scenario, small, run by the command line (it has securitisation deals)."""
    out = tmp_path_factory.mktemp("default") / "run"
    cycle = ["--set", "macro.credit_factor_sd=1.0", "--set", "disposal_lag_q=4"]  # makes deals
    code = main(["run", "--seed", "3", "--quarters", "12", "--set", "n_loans=20000", *cycle,
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    return out


@pytest.mark.slow
def test_cli_from_manifest_writes_byte_identical_parquet(default_run, tmp_path, capsys):
    again = tmp_path / "again"
    assert main(["run", "--from-manifest", str(default_run / "manifest.json"),
                 "--out", str(again), "--quiet"]) == 0  # fmt: skip
    assert "results:" in capsys.readouterr().out
    original = _parquet_bytes(default_run)
    assert {"model.parquet", "deals.parquet", "trades.parquet"} <= set(original)
    assert len(pd.read_parquet(default_run / "deals.parquet")) > 0
    assert _parquet_bytes(again) == original
    assert (again / "summary.json").read_text() == (default_run / "summary.json").read_text()
    before = json.loads((default_run / "manifest.json").read_text())
    after = json.loads((again / "manifest.json").read_text())
    for key in ("scenario", "overrides", "regime", "seed", "quarters", "config_hash"):
        assert after[key] == before[key], key
    assert after["reproduces"] == str((default_run / "manifest.json").resolve())


def _edited(default_run: Path, tmp_path: Path, edit) -> Path:
    manifest = json.loads((default_run / "manifest.json").read_text())
    edit(manifest)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def _rehashed(manifest: dict) -> None:
    """Recompute the config hash after an edit, as a manifest made by that run would have it."""
    payload = {k: manifest[k] for k in ("scenario", "regime", "seed")}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    manifest["config_hash"] = hashlib.sha256(text.encode()).hexdigest()


def _preset_changed(manifest: dict) -> None:
    """The run was made when restart_2016 set disclosure_level to 0.2 (its file differed)."""
    manifest["regime"].update(disclosure_level=0.2)
    manifest["presets"]["restart_2016"] = "0" * 64
    _rehashed(manifest)


@pytest.mark.slow
def test_a_changed_preset_is_refused_and_allowed_on_request(default_run, tmp_path, capsys, caplog):
    """A manifest made under another version of a preset is refused; with
    --allow-different-code it re-runs under the recorded law (the same bytes as a run that set
    that law explicitly) and the new manifest says it is a re-run under different code."""
    path = _edited(default_run, tmp_path, _preset_changed)
    args = ["run", "--from-manifest", str(path), "--quiet"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "preset restart_2016 changed since" in err
    assert "--allow-different-code" in err and not (tmp_path / "refused").exists()
    assert main([*args, "--out", str(tmp_path / "a"), "--allow-different-code"]) == 0
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "preset restart_2016 changed since" in warning and "\n" not in warning
    cycle = ["--set", "macro.credit_factor_sd=1.0", "--set", "disposal_lag_q=4"]
    main(["run", "--seed", "3", "--quarters", "12", "--set", "n_loans=20000", *cycle,
          "--set", "disclosure_level=0.2", "--out", str(tmp_path / "b"), "--quiet"])  # fmt: skip
    assert _parquet_bytes(tmp_path / "a") == _parquet_bytes(tmp_path / "b")
    assert _parquet_bytes(tmp_path / "a") != _parquet_bytes(default_run)
    rerun = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert rerun["rerun_note"].startswith("re-run under different code: preset restart_2016")
    assert "reproduces" not in rerun and rerun["reruns"] == str(path.resolve())


@pytest.mark.slow
def test_changed_code_is_refused_and_allowed_on_request(default_run, tmp_path, capsys):
    path = _edited(default_run, tmp_path, lambda m: m["code"].update(code_sha256="0" * 64))
    args = ["run", "--from-manifest", str(path), "--quiet"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the code differs (commit " in err
    assert main([*args, "--out", str(tmp_path / "a"), "--allow-different-code"]) == 0
    rerun = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert rerun["rerun_note"].startswith("re-run under different code: the code differs")
    assert _parquet_bytes(tmp_path / "a") == _parquet_bytes(default_run)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(seed=4),
        lambda m: m["scenario"].update(n_loans=10_000),
        lambda m: m["regime"].update(disclosure_level=0.2),
        lambda m: (m.update(quarters=11), m["scenario"].update(quarters=11)),
    ],
    ids=["seed", "n_loans", "regime", "quarters"],
)
def test_a_hand_edited_manifest_is_refused(default_run, tmp_path, capsys, edit):
    # was: a tampered seed, n_loans or quarters only warned, and the run went ahead
    path = _edited(default_run, tmp_path, edit)
    assert main(["run", "--from-manifest", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config_hash: does not match" in err and "edited" in err
    assert not (tmp_path / "o").exists()


def test_a_manifest_pins_the_code_every_preset_and_the_versions(tmp_path):
    reform = 'events=[{quarter=2, regime="strengthened"}]'
    assert main(["run", "--quarters", "3", "--set", "n_loans=1000", "--set", reform,
                 "--out", str(tmp_path / "o"), "--quiet"]) == 0  # fmt: skip
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert set(manifest["presets"]) == {"restart_2016", "strengthened"}
    assert all(len(digest) == 64 for digest in manifest["presets"].values())
    assert {"git_commit", "git_dirty", "code_sha256"} <= set(manifest["code"])
    assert {"numpy", "pandas", "pyarrow", "mesa"} <= set(manifest["versions"])
    assert [e["preset"] for e in manifest["regime_schedule"]] == ["strengthened"]


def test_a_different_package_version_is_one_warning_line(default_run, tmp_path, caplog):
    path = _edited(default_run, tmp_path, lambda m: m["versions"].update(nplsim="0.0.1"))
    recorded = read_manifest(path)
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "nplsim 0.0.1 -> " in caplog.records[0].getMessage()
    assert "config hash" not in caplog.records[0].getMessage()
    rerun_from_manifest(recorded, tmp_path / "again")
    assert _parquet_bytes(tmp_path / "again") == _parquet_bytes(default_run)


def test_an_unchanged_manifest_gives_no_warning(default_run, caplog):
    read_manifest(default_run / "manifest.json")
    assert caplog.records == []


def _drop(key):
    return lambda m: m.pop(key)


def _set(key, value):
    return lambda m: m.update({key: value})


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_drop("scenario"), "manifest.json: scenario: missing"),
        (_drop("seed"), "manifest.json: seed: missing"),
        (_drop("quarters"), "manifest.json: quarters: missing"),
        (_drop("regime"), "manifest.json: regime: missing"),
        (_drop("config_hash"), "manifest.json: config_hash: missing"),
        (_drop("versions"), "manifest.json: versions: missing"),
        (_set("seed", "3"), "manifest.json: seed: expected integer, got string"),
        (_set("seed", True), "manifest.json: seed: expected integer, got boolean"),
        (_set("seed", -1), "manifest.json: seed: must not be negative"),
        (_set("scenario", []), "manifest.json: scenario: expected object, got array"),
        (_set("quarters", 0), "manifest.json: quarters: Input should be greater than or equal"),
        (_set("kind", "compare"), "manifest.json: kind: a 'compare' manifest"),
        (lambda m: m["scenario"].update(n_loanz=5), "manifest.json: scenario.n_loanz: unknown key"),
        (lambda m: m["scenario"].update(n_loans="many"), "manifest.json: scenario.n_loans: "),
        (lambda m: m["scenario"].update(regime="gone"), "scenario.regime: unknown preset 'gone'"),
        (
            lambda m: m["regime"].pop("risk_retention"),
            "manifest.json: regime.risk_retention: Field required",
        ),
        (lambda m: m["regime"].update(new_law=1), "manifest.json: regime.new_law: unknown key"),
    ],
)
def test_bad_manifest_is_one_line_exit_2_and_nothing_written(
    default_run, tmp_path, capsys, edit, expected
):
    path = _edited(default_run, tmp_path, edit)
    out = tmp_path / "out"
    assert main(["run", "--from-manifest", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert str(path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        ('{"seed": ', "<json>: malformed JSON"),
        (b"\xff\xfe", "<json>: malformed JSON"),
        ("[1, 2]", "<root>: expected a JSON object, got array"),
    ],
)
def test_missing_or_malformed_manifest_file(tmp_path, capsys, content, expected):
    path = tmp_path / "manifest.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main(["run", "--from-manifest", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: " in err and expected in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "extra",
    [["restart_2016"], ["--seed", "1"], ["--quarters", "4"], ["--set", "car_min=0.1"]],
)
def test_from_manifest_takes_no_other_run_inputs(default_run, tmp_path, capsys, extra):
    args = ["run", *extra, "--from-manifest", str(default_run / "manifest.json")]
    assert main([*args, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the manifest fixes the whole run" in err
    assert list(tmp_path.iterdir()) == []


def test_from_manifest_does_not_overwrite_the_run_it_reproduces(default_run, capsys):
    before = _parquet_bytes(default_run)
    manifest = default_run / "manifest.json"
    assert main(["run", "--from-manifest", str(manifest), "--out", str(default_run)]) == 2
    assert "is the directory of the manifest being re-run" in capsys.readouterr().err
    assert _parquet_bytes(default_run) == before
