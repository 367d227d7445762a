"""Sweeps: spec validation, expansion, identical results on any executor, resume after SIGKILL."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nplsim.experiments.cli import main
from nplsim.experiments.sweep import (
    OUTPUTS,
    SweepSpec,
    expand,
    finished_run_ids,
    load_spec,
    load_sweep,
    run_sweep,
)
from nplsim.market.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = 'base = "restart_2016"\nquarters = 4\noverrides = { n_loans = 2000 }\n'
SMALL_SWEEP = TINY + (
    'replications = 2\noutputs = ["model", "summary", "banks", "deals", "trades"]\n'
    '[parameters.regime]\nvalues = ["pilot_2005", "restart_2016"]\n'
    "[parameters.bankruptcy_remoteness]\nvalues = [0.3, 0.9]\n"
)


def _spec_file(directory: Path, text: str, name: str = "spec.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def _partition_bytes(out_dir: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(out_dir)): path.read_bytes()
        for path in sorted((out_dir / "runs").glob("run_id=*/*.parquet"))
    }


def _assert_same_results(a: Path, b: Path) -> None:
    for table in OUTPUTS:
        pd.testing.assert_frame_equal(load_sweep(a, table), load_sweep(b, table))
    assert _partition_bytes(a) == _partition_bytes(b)


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Fail the test with TimeoutError instead of hanging (pytest-timeout is not installed)."""

    def expire(signum, frame):
        raise TimeoutError(f"gave up after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=cwd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a process and its group (Dask's nanny and worker), killing it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


# ---------------------------------------------------------------- spec validation
@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("colour = 1\n", "colour", "unknown key (allowed: base,"),
        ("[parameters.no_such_field]\nvalues = [1]\n", "parameters.no_such_field", "unknown key"),
        (
            '[parameters.n_loans]\nlow = 5000\nhigh = 1000\n[sampling]\nmethod = "lhs"\nn = 4\n',
            "parameters.n_loans",
            "low (5000) must be less than high (1000)",
        ),
        ("[parameters.n_loans]\n", "parameters.n_loans", "missing values"),
        ("[parameters.car_min]\nvalues = [0.08, 2]\n", "parameters.car_min", "value 2: Input"),
        ('[parameters.regime]\nvalues = ["nope"]\n', "parameters.regime", "unknown preset"),
        ("[parameters.x]\nstep = 1\n", "parameters.x.step", "unknown key (allowed: high, low,"),
        ('[sampling]\nmethod = "lhs"\n', "sampling.n", "required for lhs sampling"),
        ("seeds = [1]\nreplications = 2\n", "replications", "give seeds or replications"),
        ('outputs = ["model", "events"]\n', "outputs.1", "Input should be 'model'"),
        ('base = "missing.toml"\n', "base", "file not found"),
    ],
)
def test_bad_spec_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, text, key, expected):
    fixed = TINY.replace("quarters = 4\n", "").replace('base = "restart_2016"\n', "")
    spec = _spec_file(tmp_path, fixed + text)
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as info:
        run_sweep(spec, out, progress=False)
    assert info.value.source == str(spec) and info.value.key == key
    assert expected in str(info.value)
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{spec}: {key}: " in err, err
    assert not out.exists()


def test_malformed_and_missing_spec_files(tmp_path):
    bad = _spec_file(tmp_path, "parameters = [\n")
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_spec(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_spec(tmp_path / "none.toml")


# ---------------------------------------------------------------- expansion
def test_grid_is_the_cartesian_product_times_seeds():
    spec = SweepSpec(
        seeds=[3, 5],
        parameters={
            "regime": {"values": ["pilot_2005", "restart_2016", "strengthened"]},
            "bankruptcy_remoteness": {"values": [0.2, 0.5]},
            "n_loans": {"values": [2000, 3000]},
        },
    )
    runs = expand(spec)
    assert len(runs) == 3 * 2 * 2 * 2
    assert len({(tuple(r.params.items()), r.seed) for r in runs}) == len(runs)
    assert runs[0].params == {"regime": "pilot_2005", "bankruptcy_remoteness": 0.2, "n_loans": 2000}
    assert [r.seed for r in runs[:2]] == [3, 5]


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_sampling_gives_n_points_within_bounds_crossed_with_categories(method):
    spec = SweepSpec(
        replications=1,
        parameters={
            "bankruptcy_remoteness": {"low": 0.2, "high": 0.9},
            "disposal_lag_q": {"low": 0, "high": 8},
            "regime": {"values": ["pilot_2005", "strengthened"]},
        },
        sampling={"method": method, "n": 16, "seed": 4},
    )
    runs = expand(spec)
    assert len(runs) == 2 * 16
    remoteness = [r.params["bankruptcy_remoteness"] for r in runs]
    lags = [r.params["disposal_lag_q"] for r in runs]
    assert all(0.2 <= v < 0.9 for v in remoteness)
    assert all(isinstance(v, int) and 0 <= v <= 8 for v in lags)
    # each category sees the same design points: paired comparisons across the categorical factor
    assert remoteness[:16] == remoteness[16:]
    # a space-filling design: every fifth of the range is hit
    assert {math.floor((v - 0.2) / 0.7 * 5) for v in remoteness} == set(range(5))
    assert expand(spec) == runs


def test_run_ids_are_unique_stable_and_pinned(tmp_path):
    spec = load_spec(_spec_file(tmp_path, SMALL_SWEEP))
    ids = [r.run_id for r in expand(spec)]
    assert len(set(ids)) == len(ids) == 8
    assert ids == [r.run_id for r in expand(load_spec(_spec_file(tmp_path, SMALL_SWEEP, "b")))]
    # a hash of canonical JSON: if this changes, every stored sweep stops resuming
    assert ids[0] == "e8ca8cdc67e9"


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seeds=st.integers(1, 3),
)
def test_grid_size_is_the_product_of_value_counts(sizes, seeds):
    names = ["bankruptcy_remoteness", "disclosure_level", "investor_protection"]
    parameters = {
        name: {"values": [i / 10 for i in range(size)]}
        for name, size in zip(names, sizes, strict=False)
    }
    runs = expand(SweepSpec(replications=seeds, parameters=parameters))
    assert len(runs) == math.prod(sizes) * seeds
    assert len({r.run_id for r in runs}) == len(runs)


# ---------------------------------------------------------------- running and the store
@pytest.fixture(scope="module")
def small_sweeps(tmp_path_factory) -> dict[str, Path]:
    """The small sweep run with one and with two local workers."""
    root = tmp_path_factory.mktemp("sweeps")
    spec = _spec_file(root, SMALL_SWEEP)
    outs = {}
    for workers in (1, 2):
        outs[workers] = root / f"w{workers}"
        report = run_sweep(spec, outs[workers], workers=workers, progress=False)
        assert (report.total, report.done, report.failed) == (8, 8, 0)
    return {"spec": spec, **{f"w{k}": v for k, v in outs.items()}}


@pytest.mark.slow
def test_one_and_two_workers_give_identical_results(small_sweeps):
    _assert_same_results(small_sweeps["w1"], small_sweeps["w2"])


def test_store_layout_and_tables(small_sweeps):
    out = small_sweeps["w2"]
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["runs"] == 8 and manifest["status"] == {"finished": 8, "failed": 0}
    assert manifest["spec"]["parameters"]["regime"]["values"] == ["pilot_2005", "restart_2016"]
    assert manifest["versions"]["mesa"] == "3.5.1" and "distributed" in manifest["versions"]
    summary = load_sweep(out)
    assert list(summary["run_id"]) == sorted(summary["run_id"]) == finished_run_ids(out)
    assert list(summary.columns[:5]) == [
        "run_id", "seed", "regime", "bankruptcy_remoteness", "config_hash",
    ]  # fmt: skip
    assert {"final_npl_ratio", "mean_npl_ratio", "final_car", "mean_car"} <= set(summary.columns)
    model = load_sweep(out, "model")
    assert len(model) == 8 * 5  # quarters 0..4
    final = model[model["quarter"] == 4].set_index("run_id")["npl_ratio"]
    assert final.to_dict() == summary.set_index("run_id")["final_npl_ratio"].to_dict()
    assert set(load_sweep(out, "banks")["bank"]) == {"ICBC", "ABC", "BOC", "CCB"}


def test_existing_sweep_needs_resume_and_resume_skips_everything(small_sweeps, capsys):
    spec, out = str(small_sweeps["spec"]), str(small_sweeps["w1"])
    assert main(["sweep", spec, "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds earlier sweep results" in err and "--resume" in err
    report = run_sweep(spec, out, workers=1, resume=True, progress=False)
    assert (report.done, report.skipped, report.failed) == (0, 8, 0)
    changed = _spec_file(small_sweeps["spec"].parent, SMALL_SWEEP.replace("0.9]", "0.8]"), "c")
    with pytest.raises(ConfigError, match="differs from the spec"):
        run_sweep(changed, out, resume=True, progress=False)


def _tls_files(folder: Path) -> dict[str, str]:
    """A self-signed certificate and its key, as docs/sweeps.md makes them (one per cluster)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a certificate")
    cert, key = folder / "cluster.pem", folder / "cluster.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=nplsim-cluster", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return {"ca": str(cert), "cert": str(cert), "key": str(key)}


@pytest.mark.slow
def test_a_dask_cluster_over_tls_gives_the_local_pool_results(small_sweeps, tmp_path):
    """The cluster recipe of docs/sweeps.md: scheduler, workers and nplsim speak TLS with a
    cluster certificate (dask's Security, from its configuration), never open TCP."""
    import dask
    import distributed  # noqa: F401 — its defaults join dask's configuration before the edit

    tls = _tls_files(tmp_path)
    flags = ["--tls-ca-file", tls["ca"], "--tls-cert", tls["cert"], "--tls-key", tls["key"]]
    scheduler_file = tmp_path / "scheduler.json"
    python = [sys.executable, "-m"]
    processes = []
    config = {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": tls["ca"],
        "distributed.comm.tls.client.cert": tls["cert"],
        "distributed.comm.tls.client.key": tls["key"],
    }
    with _time_limit(120), dask.config.set(config):
        try:
            processes.append(
                _start(
                    [
                        *python,
                        "distributed.cli.dask_scheduler",
                        "--protocol",
                        "tls",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "0",
                        "--scheduler-file",
                        str(scheduler_file),
                        "--no-dashboard",
                        *flags,
                    ],
                    tmp_path,
                )  # fmt: skip
            )
            _wait_for(scheduler_file.exists, 30, "the scheduler file")
            for _ in range(2):
                processes.append(
                    _start(
                        [
                            *python,
                            "distributed.cli.dask_worker",
                            "--scheduler-file",
                            str(scheduler_file),
                            "--nthreads",
                            "1",
                            "--no-dashboard",
                            *flags,
                        ],
                        tmp_path,
                    )  # fmt: skip
                )
            from distributed import Client

            _wait_for(lambda: "address" in scheduler_file.read_text(), 10, "the address")
            address = json.loads(scheduler_file.read_text())["address"]
            assert address.startswith("tls://127.0.0.1:")
            with Client(address, timeout="10s") as client:
                client.wait_for_workers(2, timeout=60)
            out = tmp_path / "dask"
            report = run_sweep(small_sweeps["spec"], out, scheduler=address, progress=False)
            assert (report.done, report.failed) == (8, 0)
            _assert_same_results(out, small_sweeps["w2"])
            plain = address.replace("tls://", "tcp://")
            with pytest.raises(ConfigError, match="cannot connect"):
                run_sweep(small_sweeps["spec"], tmp_path / "plain", scheduler=plain,
                          progress=False)  # fmt: skip
        finally:
            for process in reversed(processes):
                _stop(process)


@pytest.mark.slow
def test_sigkill_then_resume_completes_without_duplicates(tmp_path):
    spec = _spec_file(
        tmp_path,
        "quarters = 12\noverrides = { n_loans = 100000 }\nreplications = 3\n"
        "[parameters.bankruptcy_remoteness]\nvalues = [0.2, 0.4, 0.6, 0.8]\n",
    )
    out, reference = tmp_path / "killed", tmp_path / "reference"
    command = [sys.executable, "-m", "nplsim", "sweep", str(spec), "--out", str(out),
               "--workers", "1", "--quiet"]  # fmt: skip
    with _time_limit(120):
        process = _start(command, ROOT)
        try:
            _wait_for(lambda: len(finished_run_ids(out)) >= 2, 60, "two finished runs")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        finally:
            _stop(process)
        assert 2 <= len(finished_run_ids(out)) < 12
        report = run_sweep(spec, out, workers=1, resume=True, progress=False)
        assert report.skipped >= 2 and report.done + report.skipped == 12
        run_sweep(spec, reference, workers=2, progress=False)
    runs = out / "runs"
    assert sorted(p.name for p in runs.iterdir()) == [
        f"run_id={rid}" for rid in sorted(r.run_id for r in expand(load_spec(spec)))
    ]
    assert not list(out.rglob(".tmp-*"))
    for table in ("summary", "model"):
        frame = load_sweep(out, table)
        pd.testing.assert_frame_equal(frame, load_sweep(reference, table))
    assert load_sweep(out)["run_id"].is_unique


def test_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    # valid inputs the model cannot start from: provisions on the opening NPLs exceed funding
    spec = _spec_file(
        tmp_path,
        'base = "restart_2016"\nquarters = 4\n'
        "overrides = { n_loans = 2000, provision_coverage_min = 3.0 }\n"
        "[parameters.initial_npl_ratio]\nvalues = [0.05, 0.95]\n",
    )
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 1
    printed = capsys.readouterr()
    assert "failed       1" in printed.out and "done         1" in printed.out
    assert (
        printed.err == f"nplsim: 1 of 2 runs failed; each is described in {out / 'failures'}"
        "; retry them with --resume\n"
    )
    (failure,) = (out / "failures").glob("*.json")
    record = json.loads(failure.read_text())
    assert record["params"] == {"initial_npl_ratio": 0.95} and record["seed"] == 0
    assert record["type"] == "ConfigError" and "Traceback" in record["traceback"]
    assert "initial_npl_ratio" in record["message"]
    assert failure.stem == record["run_id"] and record["run_id"] not in finished_run_ids(out)
    assert list(load_sweep(out)["initial_npl_ratio"]) == [0.05]
    report = run_sweep(spec, out, workers=1, resume=True, progress=False)  # retried, fails again
    assert (report.done, report.skipped, report.failed) == (0, 1, 1)


@pytest.mark.slow
def test_unreachable_scheduler_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    spec = _spec_file(tmp_path, TINY)
    out = tmp_path / "out"
    code = main(["sweep", str(spec), "--out", str(out), "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--scheduler: tcp://127.0.0.1:1: cannot connect to Dask scheduler" in err
    assert not out.exists()
