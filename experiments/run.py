"""Run one scenario and write its results directory.

The directory holds ``manifest.json`` (how the run was made, enough to repeat it), ``model.parquet``
(one row per quarter), ``banks.parquet`` (bank × quarter), ``amcs.parquet`` (AMC × quarter),
``deals.parquet``, ``trades.parquet``, ``events.parquet``, ``power.parquet`` (plant × year, when
the scenario has power plants), ``summary.json`` and ``figures/``. :func:`read_manifest` and
:func:`rerun_from_manifest` repeat a run from its manifest alone, byte for byte.
The output directory is claimed before the run starts and written through
:mod:`nplsim.experiments.store` (staged, fsynced and renamed into place), so a failed or
interrupted run never leaves a half-written results directory, and earlier results are replaced
only with ``overwrite``. The manifest pins the code, every preset used and the package versions
(:mod:`nplsim.experiments.provenance`); a re-run refuses to go on under different code unless
allowed, and then says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from nplsim.economy.model import NPLMarketModel
from nplsim.experiments.provenance import (
    ALLOW_FLAG,
    RERUN_NOTE,
    code_differences,
    pins,
    version_differences,
)
from nplsim.experiments.seeds import check_seed
from nplsim.experiments.store import Claim, holding, json_text
from nplsim.market.errors import ConfigError, config_error_from_validation, read_json
from nplsim.market.regime import LegalRegime
from nplsim.market.scenario import ScenarioConfig, load_scenario, regime_schedule

log = logging.getLogger(__name__)

# What every run manifest holds to repeat the run, with its JSON type.
MANIFEST_KEYS: dict[str, type] = {
    "scenario": dict,
    "overrides": dict,
    "regime": dict,
    "seed": int,
    "quarters": int,
    "config_hash": str,
    "versions": dict,
}
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "integer", float: "number",
               bool: "boolean", type(None): "null"}  # fmt: skip


@dataclass
class RunResult:
    """A finished run: the model and where its results were written (if anywhere)."""

    model: NPLMarketModel
    out_dir: Path | None
    wall_time_s: float


def config_hash(config: ScenarioConfig, regime: dict[str, Any], seed: int) -> str:
    """SHA-256 of the canonical JSON of everything that determines a run's outputs."""
    payload = {"scenario": config.model_dump(mode="json"), "regime": regime, "seed": seed}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def simulate(
    scenario: str | Path | ScenarioConfig,
    seed: int,
    overrides: Mapping[str, Any] | None = None,
    on_quarter: Callable[[NPLMarketModel], None] | None = None,
) -> NPLMarketModel:
    """Build the model and run it to the scenario's horizon."""
    model = NPLMarketModel(scenario=scenario, rng=seed, **dict(overrides or {}))
    while model.running:
        model.step()
        if on_quarter is not None:
            on_quarter(model)
    return model


def summarise(model_frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """End-of-run and time-averaged values of every model column (``summary.json``)."""
    numeric = model_frame.drop(columns=["quarter"]).astype(float)
    final = numeric.iloc[-1]
    mean = numeric.iloc[1:].mean() if len(numeric) > 1 else final

    def clean(series: pd.Series) -> dict[str, float | None]:
        return {k: (None if pd.isna(v) else float(v)) for k, v in series.items()}

    return {"final": clean(final), "mean": clean(mean)}


def write_results(model: NPLMarketModel, directory: Path, manifest: dict[str, Any]) -> None:
    """Write every output table, the summary and the figures of a finished run.

    ``summary.json`` is strict JSON: a value that is undefined or infinite is null.
    """
    from nplsim.experiments.figures import dashboard, power_figures

    frames = {
        "model": model.model_frame(),
        "banks": model.bank_frame(),
        "amcs": model.amc_frame(),
        "deals": model.deal_frame(),
        "trades": model.trade_frame(),
        "events": model.event_frame(),
        **({"power": model.power_frame()} if model.plants else {}),  # plant × year
    }
    for name, frame in frames.items():
        frame.to_parquet(directory / f"{name}.parquet", index=False)
    (directory / "summary.json").write_text(json_text(summarise(frames["model"])))
    figures = directory / "figures"
    figures.mkdir(exist_ok=True)
    title, start = figure_title(model), model.config.start
    dashboard(frames["model"], frames["banks"], model.prudential, figures / "dashboard.png",
              title=title, start=start)  # fmt: skip
    power_figures(frames["model"], frames.get("power"), figures, title=title, start=start)
    (directory / "manifest.json").write_text(json_text(manifest))


def figure_title(model: NPLMarketModel) -> str:
    """The title of a run's figures: scenario, seed and law, with every scheduled reform and
    when it takes effect (``pilot_2005, seed 42, law pilot_2005 → strengthened from 2007Q1``)."""
    from nplsim.experiments.figures import run_title
    from nplsim.market.calendar import calendar_quarter

    config = model.config
    law = config.regime + (" (with overrides)" if config.regime_overrides else "")
    for quarter, preset, _ in regime_schedule(config, model.initial_regime):
        law += f" → {preset or 'amended'} from {calendar_quarter(config.start, quarter)}"
    return run_title(config.name, model.seed, law)


def applied_law(model: NPLMarketModel) -> dict[str, Any]:
    """The law a run was made under: its starting regime and the regime after every scheduled
    reform, as the manifest records them (``regime``, ``regime_schedule``)."""
    schedule = regime_schedule(model.config, model.initial_regime)
    return {
        "regime": model.initial_regime.as_dict(),
        "regime_schedule": [
            {"quarter": quarter, "preset": preset, "regime": regime.as_dict()}
            for quarter, preset, regime in schedule
        ],
    }


def run_to_directory(
    scenario: str | Path | ScenarioConfig,
    seed: int,
    out_dir: str | Path | Claim,
    overrides: Mapping[str, Any] | None = None,
    on_quarter: Callable[[NPLMarketModel], None] | None = None,
    command: list[str] | None = None,
    record: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    origin: str = "overrides",
) -> RunResult:
    """Validate, run, and write the results directory.

    Input is validated and the output directory claimed (:func:`nplsim.experiments.store.claim`)
    before the run starts; the results are staged and renamed into place only when complete.
    ``record`` replaces manifest entries (a re-run keeps its source's overrides and scenario file).

    Raises:
        ConfigError: for invalid input or an output directory that may not be written, before
            anything is written; for an ``OSError`` while writing, naming the path and the cause.
    """
    load_scenario(scenario, overrides, origin=origin)  # fail fast, before the file system
    with holding(out_dir, "run", overwrite=overwrite) as claimed:
        started = time.perf_counter()
        model = simulate(scenario, seed, overrides, on_quarter)
        wall = time.perf_counter() - started
        regime = model.initial_regime.as_dict()
        manifest = {
            "kind": "run",
            "scenario": model.config.model_dump(mode="json"),
            "scenario_source": str(scenario) if not isinstance(scenario, ScenarioConfig) else None,
            "overrides": dict(overrides or {}),
            **applied_law(model),
            "prudential": model.world.initial_prudential.as_dict(),
            "seed": model.seed,
            "quarters": model.config.quarters,
            "config_hash": config_hash(model.config, regime, model.seed),
            **pins(model.config),
            "platform": platform.platform(),
            "command": command if command is not None else sys.argv,
            "wall_time_s": round(wall, 3),
            **dict(record or {}),
        }
        with claimed.staging() as staging:
            write_results(model, staging, manifest)
            claimed.commit(staging)
    return RunResult(model=model, out_dir=claimed.path, wall_time_s=wall)


@dataclass(frozen=True)
class RecordedRun:
    """The run a manifest describes, rebuilt from the manifest alone.

    Attributes:
        manifest_path: the ``manifest.json`` it was read from.
        config: the recorded scenario, as resolved at the time (with its starting regime pinned).
        seed: the recorded seed.
        manifest: the manifest as read.
        differences: how the code or the presets differ from the recorded ones (allowed with
            ``allow_different_code``; the re-run's manifest then says so).
        version_changes: packages whose version differs from the recorded one (a warning).
    """

    manifest_path: Path
    config: ScenarioConfig
    seed: int
    manifest: dict[str, Any]
    differences: tuple[str, ...]
    version_changes: tuple[str, ...] = ()


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _in_manifest(source: str, error: ConfigError, prefix: str = "") -> ConfigError:
    """The same error, located in the manifest file under ``prefix``."""
    key = f"{prefix}.{error.key}" if prefix else error.key
    return ConfigError(source, key, error.problem, error.allowed)


def read_manifest(path: str | Path, *, allow_different_code: bool = False) -> RecordedRun:
    """Read a run's ``manifest.json`` and rebuild the run it describes.

    The scenario is the full config stored in the manifest, not the built-in file it came from.
    A manifest whose ``config_hash`` does not match its own scenario, regime and seed (edited by
    hand) is refused. So is one made under other code or other presets, unless
    ``allow_different_code``: the starting regime is then the recorded one even where its preset
    has changed since. Different package versions are logged as one warning line.

    Raises:
        ConfigError: missing file, malformed JSON, a missing key or one of the wrong type, an
            edited manifest, different code or presets (without ``allow_different_code``), or a
            scenario or regime the installed code no longer accepts; it names the file and key.
    """
    path = Path(path)
    source = str(path)
    data = read_json(path)
    if data.get("kind", "run") != "run":
        raise ConfigError(
            source, "kind", f"a {data['kind']!r} manifest, not the manifest.json of nplsim run"
        )
    for key, kind in MANIFEST_KEYS.items():
        if key not in data:
            raise ConfigError(source, key, "missing (not a manifest written by nplsim run?)")
        if type(data[key]) is not kind:
            expected = _JSON_TYPES[kind]
            raise ConfigError(source, key, f"expected {expected}, got {_json_type(data[key])}")
    check_seed(data["seed"], source, "seed")
    try:
        recorded = ScenarioConfig.model_validate(data["scenario"])
    except ValidationError as exc:
        error = config_error_from_validation(
            exc, source, list(ScenarioConfig.model_fields), ScenarioConfig
        )
        raise _in_manifest(source, error, "scenario") from None
    try:
        recorded_regime = LegalRegime.model_validate(data["regime"]).as_dict()
    except ValidationError as exc:
        error = config_error_from_validation(exc, source, list(LegalRegime.model_fields))
        raise _in_manifest(source, error, "regime") from None
    try:
        config, regime = load_scenario(recorded)
        if data["quarters"] != config.quarters:
            load_scenario(config, {"quarters": data["quarters"]})
    except ConfigError as exc:
        raise _in_manifest(source, exc, "scenario" if exc.key != "quarters" else "") from None
    _check_unedited(data, source)
    differences = tuple(code_differences(data))
    if differences and not allow_different_code:
        raise ConfigError(
            source, "code", f"made under other code or presets: {'; '.join(differences)}",
            f"the same code, or pass {ALLOW_FLAG} to re-run anyway",
        )  # fmt: skip
    drifted = {k: v for k, v in recorded_regime.items() if regime.as_dict()[k] != v}
    if drifted:  # a preset changed since the run: keep the law the run was made under
        config, regime = load_scenario(config, drifted)
    changes = tuple(version_differences(data["versions"]))
    if differences or changes:
        log.warning("%s: the re-run may differ from the recorded run: %s", source,
                    "; ".join([*differences, *(["versions changed (" + ", ".join(changes) + ")"]
                                               if changes else [])]))  # fmt: skip
    return RecordedRun(path, config, data["seed"], data, differences, changes)


def _check_unedited(data: dict[str, Any], source: str) -> None:
    """Refuse a manifest whose config hash does not match its own scenario, regime and seed, or
    whose horizon differs from its scenario's (a hand-edited seed, n_loans or quarters)."""
    payload = {"scenario": data["scenario"], "regime": data["regime"], "seed": data["seed"]}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    if hashlib.sha256(text.encode()).hexdigest() != data["config_hash"]:
        raise ConfigError(
            source, "config_hash", "does not match the recorded scenario, regime and seed: the "
            "manifest was edited", "a manifest.json as nplsim run wrote it",
        )  # fmt: skip
    if data["quarters"] != data["scenario"].get("quarters"):
        raise ConfigError(
            source, "quarters", f"{data['quarters']} differs from scenario.quarters "
            f"({data['scenario'].get('quarters')}): the manifest was edited",
        )  # fmt: skip


def rerun_from_manifest(
    recorded: RecordedRun,
    out_dir: str | Path | Claim,
    on_quarter: Callable[[NPLMarketModel], None] | None = None,
    command: list[str] | None = None,
    *,
    overwrite: bool = False,
) -> RunResult:
    """Repeat a recorded run into ``out_dir``; its Parquet files match the original's byte for byte.

    The new manifest keeps the original's overrides and scenario file and names the manifest it
    reproduces, or — under different code — the manifest it re-runs and what differs.

    Raises:
        ConfigError: if ``out_dir`` is the directory holding the manifest, or not replaceable.
    """
    target = out_dir.path if isinstance(out_dir, Claim) else Path(os.path.abspath(out_dir))
    if target.resolve() == recorded.manifest_path.resolve().parent:
        shown = out_dir.shown if isinstance(out_dir, Claim) else str(out_dir)
        raise ConfigError(
            shown, "--out", "is the directory of the manifest being re-run", "another one"
        )
    source = str(recorded.manifest_path.resolve())
    record: dict[str, Any] = {
        "overrides": recorded.manifest["overrides"],
        "scenario_source": recorded.manifest.get("scenario_source"),
    }
    if recorded.differences:
        record["reruns"] = source
        record["rerun_note"] = f"{RERUN_NOTE}: {'; '.join(recorded.differences)}"
    else:
        record["reproduces"] = source
    return run_to_directory(
        recorded.config, recorded.seed, out_dir, on_quarter=on_quarter, command=command,
        record=record, overwrite=overwrite,
    )  # fmt: skip
