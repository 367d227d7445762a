"""Calibrated scenarios shipped in ``market/scenarios``: each says how ``nplsim calibrate`` made it,
holds the posterior medians its header names, inside the spec's priors, and differs from its base
scenario in nothing else; docs/calibration.md reports its fit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nplsim.experiments.calibration_spec import load_calibration
from nplsim.experiments.odd_calibration import MADE_BY, ROOT, calibrated_presets
from nplsim.market.scenario import list_scenarios, load_scenario
from nplsim.market.scenario_files import SCENARIOS_DIR


def _calibrated() -> list[tuple[str, Path]]:
    found = []
    for name in list_scenarios():
        for line in (SCENARIOS_DIR / f"{name}.toml").read_text(encoding="utf-8").splitlines():
            if line.startswith(MADE_BY):
                found.append((name, ROOT / line[len(MADE_BY) :].split()[0]))
    return found


CALIBRATED = _calibrated()


def test_restart_2016_ships_calibrated():
    assert ("restart_2016_calibrated", ROOT / "experiments/specs/calibrate_restart_2016.toml") in (
        CALIBRATED
    )
    spec = ROOT / "experiments/specs/calibrate_restart_2016.toml"
    assert calibrated_presets(spec) == ["restart_2016_calibrated"]


@pytest.mark.parametrize(("name", "spec"), CALIBRATED, ids=[n for n, _ in CALIBRATED])
def test_a_calibrated_scenario_holds_its_posterior_medians_and_nothing_else(name, spec):
    assert spec.is_file(), f"{name} names a spec that is not shipped: {spec}"
    loaded = load_calibration(spec)
    text = (SCENARIOS_DIR / f"{name}.toml").read_text(encoding="utf-8")
    header = re.search(r"^# Parameters: (.*)$", text, re.M)
    assert header, f"{name}: no '# Parameters:' line in the header"
    medians = {k: float(v) for k, v in re.findall(r"(\w+) = ([-0-9.e]+)", header.group(1))}
    assert re.search(r"^# Code: commit [0-9a-f]{12}\.$", text, re.M), name
    assert set(medians) == set(loaded.spec.parameters)
    config, _ = load_scenario(name)
    base, _ = load_scenario(loaded.spec.scenario)
    mine, theirs = config.model_dump(), base.model_dump()
    for key, median in medians.items():
        prior = loaded.spec.parameters[key]
        assert prior.low <= mine[key] <= prior.high, key
        assert mine[key] == pytest.approx(median, rel=1e-5), key  # the header's 6 digits
        assert mine[key] != theirs[key], f"{key}: the calibration changed nothing"
    differ = {k for k in mine if mine[k] != theirs[k]}
    assert differ == {"name", "description", *medians}, differ
    doc = (ROOT / "docs" / "calibration.md").read_text(encoding="utf-8")
    assert f"`{name}`" in doc, f"docs/calibration.md does not report the fit of {name}"
