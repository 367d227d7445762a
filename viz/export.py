"""Export of a lab run: its data, its figures, its configuration, and a link to it.

:func:`export_run` writes a results directory as ``nplsim run`` does — the same Parquet tables,
summary and figures by the same writer (:func:`nplsim.experiments.run.write_results`) and a
manifest that ``nplsim run --from-manifest`` repeats — plus CSV copies of the tables, every chart
of the run as PNG (200 dpi) and SVG, and ``scenario.toml``: the run's full configuration (its
scenario with the lab's law changes, shock, size and reforms) that ``nplsim run scenario.toml
--seed SEED`` reproduces byte for byte. :func:`share_url` encodes the settings in a link.
"""

# Solara components are named like classes (Solara and Mesa convention).
# ruff: noqa: N802

from __future__ import annotations

import json
import platform
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import solara

from nplsim.experiments.provenance import pins
from nplsim.experiments.run import applied_law, config_hash, write_results
from nplsim.experiments.store import default_out, json_text, write_directory
from nplsim.market.errors import ConfigError
from nplsim.market.scenario import ScenarioConfig
from nplsim.viz.figures import chart_figure, figure_bytes, network_figure
from nplsim.viz.lab import PolicyLab, Settings, settings_query
from nplsim.viz.series import CHARTS, POWER_CHARTS

TABLES = ("model", "banks", "amcs", "deals", "trades", "events", "power")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# ====================================================================== the scenario file
def toml_document(data: dict[str, Any]) -> str:
    """A TOML document of plain data (tables, arrays of tables, scalars, arrays of scalars)."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines).strip() + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and bool(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(lines: list[str], path: list[str], table: dict[str, Any], array: bool = False) -> None:
    scalars = {k: v for k, v in table.items() if not (_is_table(v) or _is_table_array(v))}
    if path and (scalars or array or not table):
        lines.append("")
        header = ".".join(_key(p) for p in path)
        lines.append(f"[[{header}]]" if array else f"[{header}]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        if _is_table(value):
            _table(lines, [*path, key], value)
        elif _is_table_array(value):
            for item in value:
                _table(lines, [*path, key], item, array=True)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def scenario_toml(config: ScenarioConfig, seed: int, quarter: int) -> str:
    """The run's scenario as a TOML file, with the command that reproduces it."""
    header = [
        f"# {config.name}: the full configuration of a run of the nplsim policy lab (nplsim viz).",
        f"# Reproduce it:  nplsim run scenario.toml --seed {seed}",
        f"# Its Parquet files equal the exported ones byte for byte once the run has reached its"
        f" horizon, quarter {config.quarters}.",
    ]
    if quarter < config.quarters:
        header.append(
            f"# This export was taken at quarter {quarter}: it holds quarters 0-{quarter}."
        )
    body = config.model_dump(mode="json", exclude_none=True)
    return "\n".join(header) + "\n\n" + toml_document(body)


# ====================================================================== the export
def default_directory(lab: PolicyLab) -> Path:
    """``results/lab-SCENARIO-seedN-qQ``: where an export goes unless told otherwise."""
    model = lab.market
    assert model is not None
    return default_out(f"lab-{model.config.name}-seed{model.seed}-q{model.quarter}")


def manifest(lab: PolicyLab, query: str) -> dict[str, Any]:
    """The manifest of an exported run: the keys ``nplsim run`` writes, with the run so far as
    its horizon, so that ``nplsim run --from-manifest`` repeats exactly the exported quarters."""
    model = lab.market
    assert model is not None
    so_far = model.config.model_copy(update={"quarters": max(model.quarter, 1)})
    regime = model.initial_regime.as_dict()
    return {
        "kind": "run",
        "scenario": so_far.model_dump(mode="json"),
        "scenario_source": "scenario.toml",
        "overrides": {},
        **applied_law(model),
        "seed": model.seed,
        "quarters": so_far.quarters,
        "config_hash": config_hash(so_far, regime, model.seed),
        **pins(model.config),
        "platform": platform.platform(),
        "command": ["nplsim", "run", "scenario.toml", "--seed", str(model.seed)],
        "exported_from": "nplsim viz",
        "quarter_reached": model.quarter,
        "lab_query": query,
    }


def chart_names(lab: PolicyLab) -> list[str]:
    """The charts the run has (power charts only with power plants)."""
    model = lab.market
    assert model is not None
    return [name for name in CHARTS if name not in POWER_CHARTS or model.plants]


def export_run(lab: PolicyLab, out_dir: Path, query: str = "", dark: bool = False) -> Path:
    """Write the run's results directory (see the module docstring); nothing half-written.

    Raises:
        ConfigError: no run to export, or ``out_dir`` may not be written: nplsim writes only
            a new or empty directory and never replaces earlier results from the lab
            (:mod:`nplsim.experiments.store`).
    """
    model = lab.market
    if model is None:
        raise ConfigError("export", "run", "no run to export", "valid settings, then Reset")
    if model.quarter == 0:
        raise ConfigError("export", "run", "the run has not started", "Step first")
    started = time.perf_counter()
    record = manifest(lab, query)

    def write(staging: Path) -> None:
        write_results(model, staging, record)
        (staging / "scenario.toml").write_text(
            scenario_toml(model.config, model.seed, model.quarter), encoding="utf-8"
        )
        csv = staging / "csv"
        csv.mkdir()
        for name in TABLES:
            path = staging / f"{name}.parquet"
            if path.exists():
                pd.read_parquet(path).to_csv(csv / f"{name}.csv", index=False)
        charts = staging / "figures" / "lab"
        charts.mkdir(parents=True)
        for name in chart_names(lab):
            fig = chart_figure(CHARTS[name], lab, dark)
            for fmt in ("png", "svg"):
                (charts / f"{name}.{fmt}").write_bytes(figure_bytes(fig, fmt))
        network = network_figure(model, dark, dpi=200)
        for fmt in ("png", "svg"):
            (charts / f"network.{fmt}").write_bytes(figure_bytes(network, fmt, dpi=200))
        record["export_wall_time_s"] = round(time.perf_counter() - started, 3)
        (staging / "manifest.json").write_text(json_text(record))

    return write_directory(Path(out_dir), "run", write)


# ====================================================================== the tab
@solara.component
def ExportTab(lab: PolicyLab, settings: Settings, tick: int = 0) -> None:
    """Export the run (data, figures, scenario file) and copy a link to its settings."""
    model = lab.market
    assert model is not None
    target, set_target = solara.use_state(str(default_directory(lab)))
    done, set_done = solara.use_state("")
    error, set_error = solara.use_state("")

    def export() -> None:
        try:
            path = export_run(lab, Path(target), settings_query(settings, lab.hand_reforms))
        except ConfigError as exc:
            set_error(str(exc))
            set_done("")
            return
        set_error("")
        set_done(str(path.resolve()))

    with solara.Card("Export the run", margin=0, classes=["nplsim-card", "nplsim-export"]):
        solara.Text(
            f"Quarter {model.quarter} of {model.config.quarters}. Writes the same tables as "
            "nplsim run (Parquet, and CSV copies), its figures, every chart as PNG and SVG, "
            "and scenario.toml, the run's full configuration: "
            f"'nplsim run scenario.toml --seed {model.seed}' reproduces the run."
        )
        solara.InputText(
            "results directory", value=target, on_value=set_target, classes=["nplsim-export-path"]
        )
        solara.Button(
            "Export",
            color="primary",
            on_click=export,
            classes=["nplsim-export-button"],
            disabled=model.quarter == 0,
        )
        if error:
            solara.Error(error, classes=["nplsim-export-error"])
        if done:
            solara.Success(f"Written to {done}", classes=["nplsim-export-done"])
    with solara.Card("Share these settings", margin=0, classes=["nplsim-card", "nplsim-share"]):
        query = settings_query(settings, lab.hand_reforms)
        solara.Text(
            "Open this link to start the lab with the same scenario, seed, size, shock, "
            "law changes and reforms:"
        )
        solara.InputText("link", value=f"/?{query}", disabled=False, classes=["nplsim-share-url"])
