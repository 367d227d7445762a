"""The sweep's worker side and its store: one run simulated into Parquet bytes, written as the
partition ``runs/run_id=RUNID`` in one rename (so a run is finished iff its partition exists), a
failed run recorded in ``failures/RUNID.json``, and the finished runs read back."""

from __future__ import annotations

import io
import secrets
import shutil
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from nplsim.experiments.store import TMP_PREFIX, publish, write_json_atomic
from nplsim.experiments.sweep_spec import (
    FAILURES_DIR,
    MANIFEST,
    OUTPUTS,
    RUNS_DIR,
    RunSpec,
    _canonical,
)
from nplsim.market.errors import ConfigError, read_json
from nplsim.market.scenario import ScenarioConfig


# ====================================================================== the worker side
def simulate_run(base: ScenarioConfig, run: RunSpec, outputs: tuple[str, ...]) -> dict[str, Any]:
    """Simulate one run and return its tables as Parquet bytes, or the error it raised.

    Runs in a worker process (local or on a Dask cluster); it writes nothing, so workers need no
    access to the results directory.
    """
    try:
        frames = _frames(_simulate(base, run), run, outputs)
        return {"tables": {name: _parquet_bytes(frame) for name, frame in frames.items()}}
    except Exception as exc:  # a failing run is data for the sweep, not the end of it
        return {"error": _error_record(exc)}


def _simulate(base: ScenarioConfig, run: RunSpec) -> Any:
    # imported here, not at the top, so that the CLI starts without loading the model
    from nplsim.experiments.run import simulate

    return simulate(base, run.seed, run.overrides)


def _frames(model: Any, run: RunSpec, outputs: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    from nplsim.experiments.run import config_hash, summarise

    frames: dict[str, pd.DataFrame] = {}
    model_frame = model.model_frame()
    for name in outputs:
        if name == "model":
            frame = model_frame
        elif name == "summary":
            summary = summarise(model_frame)
            values = {
                f"{kind}_{col}": value
                for kind in ("final", "mean")
                for col, value in summary[kind].items()
            }
            frame = pd.DataFrame([values], dtype="float64")
            regime = model.initial_regime.as_dict()
            frame.insert(0, "config_hash", config_hash(model.config, regime, model.seed))
        elif name == "banks":
            frame = model.bank_frame()
        elif name == "trades":
            frame = model.trade_frame()
        else:
            frame = model.deal_frame()
        frames[name] = _tagged(frame, run)
    return frames


def _tagged(frame: pd.DataFrame, run: RunSpec) -> pd.DataFrame:
    """Prefix the run's id, seed and parameters (non-scalar values as canonical JSON text)."""
    tags: dict[str, Any] = {"run_id": run.run_id, "seed": run.seed}
    if run.draw is not None:
        tags["draw"] = run.draw
        tags.update(run.drawn)
    for name, value in run.params.items():
        tags[name] = _canonical(value) if isinstance(value, list | dict) else value
    clash = set(tags) & set(frame.columns)
    if clash:
        raise ValueError(f"parameter names clash with output columns: {sorted(clash)}")
    columns = {name: pd.Series(value, index=frame.index) for name, value in tags.items()}
    return pd.concat([pd.DataFrame(columns, index=frame.index), frame], axis=1)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _error_record(exc: BaseException) -> dict[str, str]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


# ====================================================================== the store
def _runs_dir(out_dir: Path) -> Path:
    return out_dir / RUNS_DIR


def _partition(out_dir: Path, rid: str) -> Path:
    return _runs_dir(out_dir) / f"run_id={rid}"


def write_partition(out_dir: Path, rid: str, tables: Mapping[str, bytes]) -> Path:
    """Write one run's tables into a temporary directory, then publish it atomically (fsynced)."""
    final = _partition(out_dir, rid)
    staging = _runs_dir(out_dir) / f"{TMP_PREFIX}{rid}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        for name, data in tables.items():
            (staging / f"{name}.parquet").write_bytes(data)
        publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (out_dir / FAILURES_DIR / f"{rid}.json").unlink(missing_ok=True)
    return final


def record_failure(out_dir: Path, run: RunSpec, error: Mapping[str, str]) -> Path:
    """Write ``failures/RUNID.json``: the run, its parameters and seed, and what went wrong."""
    record = {"run_id": run.run_id, "params": run.params, "seed": run.seed, **error}
    if run.draw is not None:
        record.update(draw=run.draw, drawn=run.drawn)
    path = out_dir / FAILURES_DIR / f"{run.run_id}.json"
    write_json_atomic(path, record)
    return path


def finished_run_ids(out_dir: str | Path) -> list[str]:
    """Ids of the runs whose partition exists, sorted."""
    runs = _runs_dir(Path(out_dir))
    if not runs.is_dir():
        return []
    return sorted(p.name.removeprefix("run_id=") for p in runs.glob("run_id=*") if p.is_dir())


def load_sweep(out_dir: str | Path, table: str = "summary") -> pd.DataFrame:
    """All finished runs' rows of one table, in run-id order (deterministic).

    Raises:
        ConfigError: if ``out_dir`` holds no sweep or the table was not among its outputs.
    """
    out_dir = Path(out_dir)
    if table not in OUTPUTS:
        raise ConfigError("load_sweep", "table", f"unknown table {table!r}", ", ".join(OUTPUTS))
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        raise ConfigError(str(out_dir), "<dir>", f"not an nplsim sweep directory (no {MANIFEST})")
    outputs = _resolved_spec(read_json(manifest), str(manifest)).get("outputs", [])
    if table not in outputs:
        raise ConfigError(str(manifest), "outputs", f"{table!r} was not kept", ", ".join(outputs))
    frames = [
        pd.read_parquet(_partition(out_dir, rid) / f"{table}.parquet")
        for rid in finished_run_ids(out_dir)
    ]
    if not frames:
        return pd.DataFrame()
    non_empty = [frame for frame in frames if len(frame)] or frames[:1]
    return pd.concat(non_empty, ignore_index=True)


def _resolved_spec(existing: Mapping[str, Any], source: str) -> dict[str, Any]:
    resolved = existing.get("spec_resolved")
    if not isinstance(resolved, dict):
        raise ConfigError(source, "spec_resolved", "missing or not an object: not a sweep.json "
                          "nplsim wrote")  # fmt: skip
    return resolved
