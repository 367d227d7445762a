"""The ODD's calibration table (``docs/ODD.md``, section ``calibration-specs``), read from the
shipped calibration specs (``experiments/specs/calibrate*.toml``): per spec, the scenario, each
parameter with its prior, the moments fitted and held out, the search, and the calibrated scenario
shipped from it (a file of ``market/scenarios`` whose header says it was made from the spec).
"""

from __future__ import annotations

import math
from pathlib import Path

from nplsim.experiments.calibration_spec import ParameterPrior, load_calibration
from nplsim.market.scenario_files import SCENARIOS_DIR

ROOT = Path(__file__).resolve().parents[1]
SPECS_DIR = ROOT / "experiments" / "specs"
MADE_BY = "# Made by: nplsim calibrate "


def shipped_specs() -> list[Path]:
    """The calibration specs shipped with nplsim, sorted by name."""
    return sorted(SPECS_DIR.glob("calibrate*.toml"))


def calibrated_presets(spec: Path) -> list[str]:
    """The scenarios of ``market/scenarios`` made by ``nplsim calibrate`` from ``spec``."""
    found = []
    for path in sorted(SCENARIOS_DIR.glob("*.toml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            if line.startswith(MADE_BY) and Path(line[len(MADE_BY) :].split()[0]).name == spec.name:
                found.append(path.stem)
                break
    return found


def _num(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else ("∞" if x > 0 else "−∞")


def _prior(prior: ParameterPrior) -> str:
    text = f"{prior.prior} on [{_num(prior.low)}, {_num(prior.high)}]"
    if prior.prior == "normal" and prior.mean is not None and prior.sd is not None:
        text += f", mean {_num(prior.mean)}, sd {_num(prior.sd)}"
    return text


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def spec_block(spec: Path) -> str:
    """One spec: a line on the search, then its parameters and its moments as tables."""
    loaded = load_calibration(spec)
    s = loaded.spec
    shown = spec.relative_to(ROOT).as_posix()
    presets = calibrated_presets(spec)
    shipped = (
        "shipped as " + ", ".join(f"`{p}`" for p in presets)
        if presets
        else "no calibrated scenario shipped"
    )
    lines = [
        f"**`{shown}`**: scenario `{s.scenario}`, {s.n_loans:,} loan slots"
        + (f", {s.quarters} quarters" if s.quarters else "")
        + f"; {s.population} particles, at most {s.generations} generations (or until the "
        f"threshold reaches {_num(s.min_epsilon)}), {s.seeds_per_particle} seed(s) per particle; "
        f"{shipped}.",
        "",
        "| parameter | prior |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {_prior(prior)} |" for name, prior in s.parameters.items()]
    lines += ["", "| moment | role | statistic | band |", "|---|---|---|---|"]
    for moment in sorted(loaded.moments, key=lambda m: m.held_out):
        fact = moment.fact
        low, high = fact.band()
        statistic = fact.statistic.describe(fact.when) if fact.statistic else "—"
        lines.append(
            f"| `{fact.id}` | {'held out' if moment.held_out else 'fitted'} | "
            f"{_cell(statistic)} | [{_num(low)}, {_num(high)}] {fact.unit} |"
        )
    return "\n".join(lines)


def calibration_specs_section() -> str:
    """Every shipped calibration spec (``experiments/specs/calibrate*.toml``)."""
    specs = shipped_specs()
    if not specs:
        return "No calibration spec is shipped."
    return "\n\n".join(spec_block(spec) for spec in specs)
