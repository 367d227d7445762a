"""``nplsim validate --calibration DIR``: the fit of a calibration, in sample and held out apart.

A calibration (``nplsim calibrate``) fits some moments and holds others out. Validating it runs the
calibrated scenario — ``DIR/results/calibrated.toml``, every parameter at its posterior median — at
the calibration's loan slots (unless ``--loans`` says otherwise) over validate's own seeds, which
are not the seeds the fit used, and reports each fact with its role: *in sample* (a moment the
calibration fitted), *held out* (a moment it kept out of the fit) or *not used* (another fact of
the scenario's era in the facts file). Only the calibrated scenario's facts are validated; a fact
of that era reading a quarter beyond the calibrated horizon is left out and named in the report.

The calibration's moments are read from its spec as the calibration resolved it
(``calibration.json``), so moments written out in the spec are validated too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nplsim.experiments.calibrate import MANIFEST, RESULTS_DIR
from nplsim.experiments.calibration_spec import CalibrationSpec, resolve_calibration
from nplsim.experiments.facts_spec import FactSpec
from nplsim.market.errors import ConfigError, read_json
from nplsim.market.scenario import load_scenario

IN_SAMPLE, HELD_OUT, NOT_USED = "in sample", "held out", "not used"
ROLES = (IN_SAMPLE, HELD_OUT, NOT_USED)
CALIBRATED_FILE = "calibrated.toml"
FLAG = "--calibration"
ALLOWED = "the directory of a finished nplsim calibrate"


@dataclass(frozen=True)
class CalibrationFacts:
    """What validating a calibration needs: the facts with their roles and the scenario to run."""

    directory: str
    spec_file: str
    scenario_name: str
    scenario_file: str  # DIR/results/calibrated.toml
    n_loans: int
    chosen: tuple[FactSpec, ...]  # in sample, then held out, then the era's other facts
    roles: dict[str, str]  # fact id -> in sample | held out | not used
    beyond_horizon: tuple[str, ...]  # the era's facts the calibrated horizon does not reach
    parameters: dict[str, Any]
    code: dict[str, Any]


def load_calibration_dir(directory: str | Path, known: list[FactSpec]) -> CalibrationFacts:
    """Read a calibration directory and choose the facts to validate it against.

    Raises:
        ConfigError: not a calibration nplsim wrote, not finished, or its spec no longer resolves.
    """
    path = Path(directory)
    shown = str(directory)
    if not (path / MANIFEST).is_file():
        raise ConfigError(shown, FLAG, f"holds no {MANIFEST} nplsim wrote", ALLOWED)
    manifest = read_json(path / MANIFEST, FLAG)
    if manifest.get("kind") != "calibrate":
        raise ConfigError(str(path / MANIFEST), "kind", f"{manifest.get('kind')!r} is not a "
                          "calibration", ALLOWED)  # fmt: skip
    scenario_file = path / RESULTS_DIR / CALIBRATED_FILE
    if not scenario_file.is_file():
        problem = f"has no {RESULTS_DIR}/{CALIBRATED_FILE}: the calibration has not finished"
        raise ConfigError(shown, FLAG, problem, f"{ALLOWED} (or continue it with --resume)")
    spec_file = str(manifest.get("spec_file", ""))
    try:
        spec = CalibrationSpec.model_validate(_given(manifest.get("spec_resolved")))
    except ValidationError:
        raise ConfigError(str(path / MANIFEST), "spec_resolved", "not a calibration spec",
                          ALLOWED) from None  # fmt: skip
    loaded = resolve_calibration(
        spec, spec_file, str(manifest.get("scenario", spec.scenario)), Path(spec_file).parent
    )
    config, _ = load_scenario(str(scenario_file), {"n_loans": spec.n_loans})
    roles = {m.id: HELD_OUT if m.held_out else IN_SAMPLE for m in loaded.moments}
    chosen = [m.fact for m in loaded.moments if not m.held_out]
    chosen += [m.fact for m in loaded.moments if m.held_out]
    beyond = []
    for fact in known:
        if fact.scenario != config.name or fact.id in roles:
            continue
        statistic = fact.statistic
        if fact.needs_run and statistic is not None and statistic.last_quarter > config.quarters:
            beyond.append(fact.id)
            continue
        chosen.append(fact)
        roles[fact.id] = NOT_USED
    parameters = {key: config_value(config, key) for key in spec.parameters}
    return CalibrationFacts(
        directory=shown, spec_file=spec_file, scenario_name=config.name,
        scenario_file=str(scenario_file), n_loans=spec.n_loans, chosen=tuple(chosen),
        roles=roles, beyond_horizon=tuple(beyond), parameters=parameters,
        code=dict(manifest.get("code") or {}),
    )  # fmt: skip


def _given(spec: Any) -> Any:
    """A resolved spec as written: a moment's fields that were not given are dropped (the
    resolved spec lists them as null, and a moment by ``fact`` may have no others)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("moments"), list):
        return spec
    moments = [
        {k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m
        for m in spec["moments"]
    ]
    return {**spec, "moments": moments}


def config_value(config: Any, key: str) -> Any:
    """A (dotted) field of a scenario config."""
    value = config
    for part in key.replace("__", ".").split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def meta(cal: CalibrationFacts) -> dict[str, Any]:
    """The calibration as ``manifest.json`` of the validation records it."""
    return {
        "directory": cal.directory,
        "spec_file": cal.spec_file,
        "scenario": cal.scenario_name,
        "calibrated_scenario": f"{RESULTS_DIR}/{CALIBRATED_FILE}",
        "parameters": cal.parameters,
        "git_commit": cal.code.get("git_commit"),
        "in_sample": [i for i, r in cal.roles.items() if r == IN_SAMPLE],
        "held_out": [i for i, r in cal.roles.items() if r == HELD_OUT],
        "beyond_horizon": list(cal.beyond_horizon),
    }


def fit_counts(table: Any) -> dict[str, tuple[int, int]]:
    """(facts that hold, facts with a verdict) by role."""
    found = {}
    for role in ROLES:
        part = table[(table["fit"] == role) & (table["holds"] != "")]
        if len(part):
            found[role] = (int((part["holds"] == True).sum()), len(part))  # noqa: E712
    return found


def fit_sentence(table: Any) -> str:
    """In sample and held out, said in one sentence."""
    counts = fit_counts(table)
    return "; ".join(f"{role}: {held} of {n} hold" for role, (held, n) in counts.items())


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def markdown_section(table: Any, info: dict[str, Any]) -> list[str]:
    """The report's section on the calibration: its parameters and the fit by role."""
    values = ", ".join(f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
                       for k, v in info["parameters"].items())  # fmt: skip
    lines = [
        "## In sample and held out",
        "",
        f"The scenario is {info['scenario']} calibrated by `{info['spec_file']}` "
        f"(`{info['directory']}`, code {str(info['git_commit'] or 'unknown')[:12]}), run at its "
        f"posterior medians ({values}) from `{info['calibrated_scenario']}`, on validate's seeds "
        "rather than the fit's. *In sample*: a moment the calibration fitted; *held out*: a "
        "moment it kept out of the fit, an out-of-sample test; *not used*: another fact of the "
        f"scenario's era. {_first_upper(fit_sentence(table))}.",
    ]
    if info["beyond_horizon"]:
        lines.append("")
        lines.append("Left out, beyond the calibrated horizon: "
                     + ", ".join(info["beyond_horizon"]) + ".")  # fmt: skip
    return lines + [""]
