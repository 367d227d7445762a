"""Run one scenario and write its results directory.

The directory holds ``manifest.json`` (how the run was made, enough to repeat it), ``model.parquet``
(one row per quarter), ``banks.parquet`` (bank × quarter), ``amcs.parquet`` (AMC × quarter),
``deals.parquet``, ``trades.parquet``, ``events.parquet``, ``power.parquet`` (plant × year, when
the scenario has power plants), ``summary.json`` and ``figures/``. :func:`read_manifest` and
:func:`rerun_from_manifest` repeat a run from its manifest alone, byte for byte.
Everything is written to a temporary sibling directory first and renamed into place, so a failed or
interrupted run never leaves a half-written results directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from nplsim.economy.model import NPLMarketModel
from nplsim.market.errors import ConfigError, config_error_from_validation
from nplsim.market.regime import LegalRegime
from nplsim.market.scenario import ScenarioConfig, load_scenario

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


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("nplsim", "mesa", "numpy", "pandas", "pyarrow", "scipy", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def write_results(model: NPLMarketModel, directory: Path, manifest: dict[str, Any]) -> None:
    """Write every output table, the summary and the figures of a finished run."""
    from nplsim.experiments.figures import dashboard, power_figures

    directory.mkdir(parents=True, exist_ok=True)
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
    (directory / "summary.json").write_text(
        json.dumps(summarise(frames["model"]), indent=2, sort_keys=True) + "\n"
    )
    figures = directory / "figures"
    figures.mkdir(exist_ok=True)
    dashboard(frames["model"], frames["banks"], model.prudential, figures / "dashboard.png")
    power_figures(frames["model"], frames.get("power"), figures)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


WRITABLE = "a path in a directory where you can create files"


# Results are staged beside their directory under a longer name (``.NAME.old.XXXXXXXX`` for a
# run, ``.tmp-NAME-XXXXXXXX`` for a sweep): a path component must leave room for that.
STAGING_EXTRA = 16


def check_creatable(out_dir: Path) -> None:
    """Refuse an output path that cannot become a directory, before any work is done: a file
    stands on the path above it, a name is too long for the file system (with the room the
    staging name needs), or the nearest existing directory above it is one where nothing can be
    created (read-only, permission denied, ``/proc``)."""
    out_dir = Path(out_dir)
    for part in out_dir.parts:
        if len(os.fsencode(part)) + STAGING_EXTRA > _name_max(out_dir):
            shown = str(out_dir) if len(str(out_dir)) <= 80 else str(out_dir)[:77] + "..."
            raise ConfigError(
                shown, "--out", f"a name of {len(os.fsencode(part))} bytes",
                f"names of at most {_name_max(out_dir) - STAGING_EXTRA} bytes",
            )  # fmt: skip
    for parent in out_dir.parents:
        try:
            exists = parent.exists()
        except OSError as exc:  # e.g. a directory above it that may not be searched
            raise ConfigError(
                str(out_dir), "--out", f"cannot look into {parent}: {_reason(exc)}", WRITABLE
            ) from None
        if exists:
            if not parent.is_dir():
                raise ConfigError(str(out_dir), "--out", f"{parent} is a file", "a directory path")
            check_writable(parent, out_dir)
            return


def check_writable(directory: Path, out_dir: Path) -> None:
    """Refuse ``out_dir`` unless a directory can be created in ``directory``.

    Tried for real, by creating and removing a uniquely named directory there: permission bits
    do not tell (root, ACLs, read-only mounts, ``/proc``).
    """
    try:
        probe = tempfile.mkdtemp(prefix=".nplsim-check-", dir=directory)
    except OSError as exc:
        raise ConfigError(
            str(out_dir), "--out", f"cannot create a directory in {directory}: {_reason(exc)}",
            WRITABLE,
        ) from None  # fmt: skip
    with suppress(OSError):
        os.rmdir(probe)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _name_max(path: Path) -> int:
    """Longest file name the file system under ``path`` allows (255 where it cannot say)."""
    for parent in (path, *path.parents):
        with suppress(OSError, ValueError):
            if parent.is_dir():
                return os.pathconf(parent, "PC_NAME_MAX")
    return 255


def occupied(out_dir: Path) -> bool:
    """Whether something other than an empty directory stands at ``out_dir``."""
    try:
        return out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir()))
    except OSError as exc:  # e.g. a directory that may not be listed
        raise ConfigError(str(out_dir), "--out", f"cannot look into it: {_reason(exc)}",
                          WRITABLE) from None  # fmt: skip


def check_output_directory(out_dir: Path) -> None:
    """Refuse to replace anything but a new or empty directory or an earlier nplsim result."""
    out_dir = Path(out_dir)
    check_creatable(out_dir)
    try:
        ours = (out_dir / "manifest.json").is_file()
    except OSError as exc:
        raise ConfigError(str(out_dir), "--out", f"cannot look into it: {_reason(exc)}",
                          WRITABLE) from None  # fmt: skip
    if not ours and occupied(out_dir):
        raise ConfigError(
            str(out_dir),
            "--out",
            "exists and is not an nplsim results directory",
            "a new or empty directory, or an earlier results directory",
        )


@contextmanager
def atomic_directory(out_dir: Path) -> Iterator[Path]:
    """Yield a staging directory beside ``out_dir`` that is renamed into place on success.

    An existing ``out_dir`` is replaced only once the new one is complete; on any failure the
    staging directory is removed, so nothing half-written is left behind.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; a results directory is not
        yield staging
        if out_dir.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            out_dir.rename(trash / "old")
            staging.rename(out_dir)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def run_to_directory(
    scenario: str | Path | ScenarioConfig,
    seed: int,
    out_dir: Path,
    overrides: Mapping[str, Any] | None = None,
    on_quarter: Callable[[NPLMarketModel], None] | None = None,
    command: list[str] | None = None,
    record: Mapping[str, Any] | None = None,
) -> RunResult:
    """Validate, run, and write the results directory atomically.

    Input is validated before anything is created; results are written into a temporary
    directory beside ``out_dir`` and renamed into place only when complete. An existing
    ``out_dir`` is replaced only if it is itself an nplsim results directory. ``record`` replaces
    manifest entries (a re-run keeps its source's overrides and scenario file).

    Raises:
        ConfigError: for invalid input, before anything is written.
    """
    load_scenario(scenario, overrides)  # fail fast, before touching the file system
    out_dir = Path(out_dir)
    check_output_directory(out_dir)
    started = time.perf_counter()
    model = simulate(scenario, seed, overrides, on_quarter)
    wall = time.perf_counter() - started
    manifest = {
        "scenario": model.config.model_dump(mode="json"),
        "scenario_source": str(scenario) if not isinstance(scenario, ScenarioConfig) else None,
        "overrides": dict(overrides or {}),
        "regime": model.initial_regime.as_dict(),
        "prudential": model.world.initial_prudential.as_dict(),
        "seed": model.seed,
        "quarters": model.config.quarters,
        "config_hash": config_hash(model.config, model.initial_regime.as_dict(), model.seed),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "platform": platform.platform(),
        "command": command if command is not None else sys.argv,
        "wall_time_s": round(wall, 3),
        **dict(record or {}),
    }
    with atomic_directory(out_dir) as staging:
        write_results(model, staging, manifest)
    return RunResult(model=model, out_dir=out_dir, wall_time_s=wall)


@dataclass(frozen=True)
class RecordedRun:
    """The run a manifest describes, rebuilt from the manifest alone.

    Attributes:
        manifest_path: the ``manifest.json`` it was read from.
        config: the recorded scenario, as resolved at the time (with its starting regime pinned).
        seed: the recorded seed.
        manifest: the manifest as read.
        differences: why a re-run might not match the recorded one (versions, config hash).
    """

    manifest_path: Path
    config: ScenarioConfig
    seed: int
    manifest: dict[str, Any]
    differences: tuple[str, ...]


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _in_manifest(source: str, error: ConfigError, prefix: str = "") -> ConfigError:
    """The same error, located in the manifest file under ``prefix``."""
    key = f"{prefix}.{error.key}" if prefix else error.key
    return ConfigError(source, key, error.problem, error.allowed)


def read_manifest(path: str | Path) -> RecordedRun:
    """Read a run's ``manifest.json`` and rebuild the run it describes.

    The scenario is the full config stored in the manifest, not the built-in file it came from,
    and the starting regime is the recorded one even where its preset has changed since. Logs one
    warning line when package versions or the config hash differ from the recorded ones.

    Raises:
        ConfigError: missing file, malformed JSON, a missing key or one of the wrong type, or a
            scenario or regime the installed code no longer accepts; it names the file and key.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, "<file>", "file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(source, "<json>", f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(source, "<root>", f"expected a JSON object, got {_json_type(data)}")
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
    if data["seed"] < 0:
        raise ConfigError(source, "seed", f"must not be negative, got {data['seed']}", ">= 0")
    try:
        recorded = ScenarioConfig.model_validate(data["scenario"])
    except ValidationError as exc:
        error = config_error_from_validation(exc, source, list(ScenarioConfig.model_fields))
        raise _in_manifest(source, error, "scenario") from None
    try:
        recorded_regime = LegalRegime.model_validate(data["regime"]).as_dict()
    except ValidationError as exc:
        error = config_error_from_validation(exc, source, list(LegalRegime.model_fields))
        raise _in_manifest(source, error, "regime") from None
    try:
        config, regime = load_scenario(recorded)
    except ConfigError as exc:
        raise _in_manifest(source, exc, "scenario") from None
    if data["quarters"] != config.quarters:
        try:
            config, regime = load_scenario(config, {"quarters": data["quarters"]})
        except ConfigError as exc:
            raise _in_manifest(source, exc) from None
    drifted = {k: v for k, v in recorded_regime.items() if regime.as_dict()[k] != v}
    if drifted:  # the preset file changed since the run: keep the law the run was made under
        config, regime = load_scenario(config, drifted)
    differences = _differences(data, config, regime, drifted)
    if differences:
        log.warning("%s: the re-run may differ from the recorded run: %s", source,
                    "; ".join(differences))  # fmt: skip
    return RecordedRun(path, config, data["seed"], data, differences)


def _differences(
    data: dict[str, Any], config: ScenarioConfig, regime: LegalRegime, drifted: dict[str, Any]
) -> tuple[str, ...]:
    """What differs between the recorded run and its re-run with the installed code."""
    found = []
    recorded_versions = data["versions"]
    changed = [
        f"{package} {recorded_versions[package]} -> {version}"
        for package, version in _versions().items()
        if package in recorded_versions and recorded_versions[package] != version
    ]
    if changed:
        found.append("versions changed (" + ", ".join(changed) + ")")
    if config_hash(config, regime.as_dict(), data["seed"]) != data["config_hash"]:
        why = (
            f": preset {config.regime!r} changed since ({', '.join(drifted)}); recorded values used"
            if drifted
            else ""
        )
        found.append("config hash differs" + why)
    return tuple(found)


def rerun_from_manifest(
    recorded: RecordedRun,
    out_dir: Path,
    on_quarter: Callable[[NPLMarketModel], None] | None = None,
    command: list[str] | None = None,
) -> RunResult:
    """Repeat a recorded run into ``out_dir``; its Parquet files match the original's byte for byte.

    The new manifest keeps the original's overrides and scenario file and names the manifest it
    reproduces.

    Raises:
        ConfigError: if ``out_dir`` is the directory holding the manifest, or not replaceable.
    """
    out_dir = Path(out_dir)
    if out_dir.resolve() == recorded.manifest_path.resolve().parent:
        raise ConfigError(
            str(out_dir), "--out", "is the directory of the manifest being re-run", "another one"
        )
    record = {
        "overrides": recorded.manifest["overrides"],
        "scenario_source": recorded.manifest.get("scenario_source"),
        "reproduces": str(recorded.manifest_path.resolve()),
    }
    return run_to_directory(
        recorded.config, recorded.seed, out_dir, on_quarter=on_quarter, command=command,
        record=record,
    )  # fmt: skip
