"""The ODD description (docs/ODD.md) and CITATION.cff stay in step with the code.

The generated sections of ODD.md must equal what ``nplsim.experiments.odd`` writes from the code
now, and every legal-regime field, preset, agent type, model column and random stream must be
documented in them. CITATION.cff must be valid CFF 1.2.0 and carry the package's version.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import pkgutil
import re
import tomllib
from pathlib import Path

import mesa
import pytest
import yaml

import nplsim.agents
from nplsim.economy.measurement import MODEL_COLUMNS
from nplsim.experiments import odd
from nplsim.market.prudential_rules import PrudentialRules, list_prudential_presets
from nplsim.market.regime import LegalRegime, list_presets
from nplsim.market.streams import STREAMS

ROOT = Path(__file__).resolve().parents[1]
ODD_FILE = ROOT / "docs" / "ODD.md"
CITATION_FILE = ROOT / "CITATION.cff"
HOW = f"regenerate with `{odd.REGENERATE}` (from the repository root) and review the diff"


@pytest.fixture(scope="module")
def text() -> str:
    return ODD_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return odd.generate()


@pytest.fixture(scope="module")
def held(text: str) -> dict[str, str]:
    sections = odd.current_sections(text)
    missing = [name for name, body in sections.items() if body is None]
    assert not missing, f"docs/ODD.md lacks the marker pairs of {missing}; add them and {HOW}"
    return sections


def _documented(held: dict[str, str], section: str, names, what: str) -> None:
    absent = [name for name in names if f"`{name}`" not in held[section]]
    assert not absent, f"{what} not documented in docs/ODD.md ({section}): {absent}; {HOW}"


# ------------------------------------------------------------------------------------ ODD.md
def test_generated_sections_match_the_code(text, generated):
    stale = odd.stale_sections(text, generated)
    assert not stale, f"docs/ODD.md is out of date with the code in sections {stale}; {HOW}"


def test_every_regime_field_is_documented(held):
    fields = list(LegalRegime.model_fields)
    _documented(held, "regime-fields", fields, "LegalRegime fields")
    _documented(held, "regime-presets", fields, "LegalRegime fields (preset table)")


def test_every_preset_is_documented(held):
    _documented(held, "regime-presets", list_presets(), "regime presets")


def test_every_calibration_spec_is_documented_with_its_priors_and_moments(held):
    from nplsim.experiments.calibration_spec import load_calibration
    from nplsim.experiments.odd_calibration import shipped_specs

    specs = shipped_specs()
    assert any(p.name == "calibrate_restart_2016.toml" for p in specs)  # discovery works
    for path in specs:
        loaded = load_calibration(path)
        names = [f"experiments/specs/{path.name}", *loaded.spec.parameters,
                 *(m.id for m in loaded.moments)]  # fmt: skip
        _documented(held, "calibration-specs", names, f"{path.name}'s parameters and moments")
        for m in loaded.moments:
            role = "held out" if m.held_out else "fitted"
            assert f"| `{m.id}` | {role} |" in held["calibration-specs"], (m.id, role)


def test_every_prudential_field_and_preset_is_documented(held):
    fields = list(PrudentialRules.model_fields)
    _documented(held, "prudential-fields", fields, "PrudentialRules fields")
    _documented(held, "prudential-presets", fields, "PrudentialRules fields (preset table)")
    _documented(held, "prudential-presets", list_prudential_presets(), "prudential presets")


def test_every_agent_type_is_documented(held):
    found = []
    for info in pkgutil.iter_modules(nplsim.agents.__path__):
        module = importlib.import_module(f"nplsim.agents.{info.name}")
        found += [
            cls.__name__
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, mesa.Agent) and cls.__module__ == module.__name__
        ]
    assert "StateBank" in found and "SpecialPurposeVehicle" in found  # discovery works
    _documented(held, "agent-types", found, "mesa.Agent subclasses in agents/")
    absent = [name for name in found if f"**{name}**" not in held["agent-state"]]
    assert not absent, f"agent state not documented in docs/ODD.md: {absent}; {HOW}"


def test_every_model_column_is_documented(held):
    _documented(held, "model-columns", MODEL_COLUMNS, "MODEL_COLUMNS entries")
    stale_notes = sorted(set(odd.MODEL_COLUMN_NOTES) - set(MODEL_COLUMNS))
    assert not stale_notes, f"experiments/odd.py describes columns the model lacks: {stale_notes}"
    for column in MODEL_COLUMNS:
        unit, meaning = odd.MODEL_COLUMN_NOTES[column]
        assert unit and meaning, f"model column {column!r} needs a unit and a meaning"


def test_every_random_stream_is_documented(held):
    _documented(held, "random-streams", STREAMS, "random streams")
    assert set(odd.STREAM_NOTES) == set(STREAMS), "experiments/odd_notes.py STREAM_NOTES vs STREAMS"


def test_schedule_follows_step_in_order(held):
    """Every phase of ``NPLMarketModel.step`` is listed, in the order the code runs it."""
    rows = re.findall(r"^\| \d+ \| `([^`]+)`", held["schedule"], re.MULTILINE)
    phases = [
        "apply_scheduled_reforms", "macro.draw", "money_market.open", "loan_cycle.settle",
        "loan_cycle.relend", "carveout.pay_bond_coupons", "StateBank.close_books",
        "disposal_offers", "auction_house.clear", "desk.start", "desk.close_due",
        "trustee.service", "exchange.trade", "auction_house.repay_funding", "power.run",
        "authorities.review", "collect",
    ]  # fmt: skip
    positions = [next((k for k, row in enumerate(rows) if phase in row), -1) for phase in phases]
    assert -1 not in positions, dict(zip(phases, positions, strict=True))
    assert positions == sorted(positions)


def test_odd_has_every_element_of_the_protocol(text):
    headings = [
        "# Overview", "## 1. Purpose and patterns", "## 2. Entities, state variables and scales",
        "## 3. Process overview and scheduling", "# 4. Design concepts", "# Details",
        "## 5. Initialisation", "## 6. Input data", "## 7. Submodels",
    ]  # fmt: skip
    lines = text.splitlines()
    assert [h for h in headings if h not in lines] == []
    concepts = [
        "Basic principles", "Emergence", "Adaptation", "Objectives", "Learning", "Prediction",
        "Sensing", "Interaction", "Stochasticity", "Collectives", "Observation",
    ]  # fmt: skip
    assert [c for c in concepts if f"**{c}.**" not in text] == []


def test_render_replaces_only_the_generated_sections():
    """The generator rewrites what lies between markers, keeps the prose, and flags stale text."""
    prose = "# Title\n\nHand-written prose.\n\n"
    text = prose + "".join(
        f"<!-- BEGIN {name} -->\nold table\n<!-- END {name} -->\n\n" for name in odd.SECTIONS
    )
    sections = {name: f"table of {name}" for name in odd.SECTIONS}
    assert odd.stale_sections(text, sections) == list(odd.SECTIONS)
    new = odd.render(text, sections)
    assert new.startswith(prose)
    assert odd.stale_sections(new, sections) == []
    assert odd.render(new, sections) == new
    with pytest.raises(odd.OddError, match="no <!-- BEGIN patterns -->"):
        odd.render(prose, sections)


# ------------------------------------------------------------------------------------ citation
@pytest.fixture(scope="module")
def citation() -> dict:
    data = yaml.safe_load(CITATION_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "CITATION.cff must be a YAML mapping"
    return data


def test_citation_is_valid_cff_1_2_0(citation):
    assert citation["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert citation.get(key), f"CITATION.cff: required key {key!r} missing or empty"
    assert citation["title"] == (
        "nplsim: an agent-based laboratory for asset-securitisation law and policy"
    )
    assert citation["type"] in ("software", "dataset")
    assert isinstance(citation["authors"], list)
    for author in citation["authors"]:
        # CFF: a person has family-names/given-names, an entity a name
        assert author.get("name") or author.get("family-names"), author
    assert {"name": "nplsim developers"} in citation["authors"]
    released = citation["date-released"]
    assert isinstance(released, str), "date-released must be a quoted YYYY-MM-DD string"
    assert dt.date.fromisoformat(released) == dt.date(2026, 11, 22)
    assert citation["license"] == "MIT"
    assert all(isinstance(k, str) and k for k in citation["keywords"])
    assert isinstance(citation["abstract"], str) and len(citation["abstract"]) > 100


def test_citation_version_is_the_package_version(citation):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version = pyproject["project"]["version"]
    assert str(citation["version"]) == version, (
        f"CITATION.cff version {citation['version']} != pyproject.toml version {version}"
    )
    assert pyproject["project"]["license"]["text"] == citation["license"]
