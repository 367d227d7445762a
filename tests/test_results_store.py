"""Results directories owned by nplsim (issue 14, "data loss"): every command writes only into a
directory it made and marked, refuses anything else, replaces its own results only with
--overwrite (and never files it did not write), lets exactly one of concurrent writers win, cleans
staging a killed writer left, and turns every OSError while writing into one line."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import resource
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nplsim.experiments.cli import main
from nplsim.experiments.store import (
    MARKER,
    STAGING_EXTRA,
    claim,
    default_out,
    safe_name,
    write_directory,
)
from nplsim.market.errors import ConfigError
from tests.helpers import TINY_RUN, command_line, nplsim_process, unprivileged

COMMANDS = ["run", "sweep", "compare", "sensitivity", "validate"]


def _argv(command: str, out: Path, workdir: Path) -> list[str]:
    return [*command_line(command, workdir), "--out", str(out), "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_marks_its_results_and_refuses_to_replace_them(tmp_path, capsys, command):
    # was: run and compare replaced an earlier results directory silently
    out = tmp_path / "out"
    assert main(_argv(command, out, tmp_path)) == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["tool"] == "nplsim" and marker["kind"] == command
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    capsys.readouterr()
    assert main(_argv(command, out, tmp_path)) == 2
    err = capsys.readouterr().err
    flag = "--resume to continue them or --overwrite" if command == "sweep" else "--overwrite"
    assert err.count("\n") == 1 and f"holds earlier {command} results" in err and flag in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert main([*_argv(command, out, tmp_path), "--overwrite"]) == 0
    assert json.loads((out / MARKER).read_text())["kind"] == command
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_nplsim_did_not_make_is_never_written(tmp_path, capsys, command):
    # was: --out onto a folder holding any manifest.json replaced the whole folder
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "thesis.tex").write_text("precious")
    (proj / "src" / "model.py").write_text("x = 1")
    (proj / "manifest.json").write_text('{"kind": "run"}')
    for extra in ([], ["--overwrite"]):
        assert main([*_argv(command, proj, tmp_path), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "nplsim did not make it" in err
    assert sorted(str(p.relative_to(proj)) for p in proj.rglob("*")) == [
        "manifest.json", "src", "src/model.py", "thesis.tex",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "compare"])
def test_overwrite_never_removes_a_file_nplsim_did_not_write(tmp_path, capsys, command):
    out = tmp_path / "out"
    assert main(_argv(command, out, tmp_path)) == 0
    (out / "my-notes.txt").write_text("keep")
    assert main([*_argv(command, out, tmp_path), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "files nplsim did not write (my-notes.txt)" in err
    assert (out / "my-notes.txt").read_text() == "keep"


def test_results_of_another_kind_are_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_argv("run", out, tmp_path)) == 0
    assert main([*_argv("compare", out, tmp_path), "--overwrite"]) == 2
    assert "holds nplsim run results, not compare results" in capsys.readouterr().err


@pytest.mark.parametrize("out", [".", "$PWD", ".."])
def test_the_working_directory_is_refused(tmp_path, capsys, monkeypatch, out):
    # was: --out . raised a traceback; --out "$PWD" deleted files kept beside earlier results
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("keep")
    monkeypatch.chdir(work)
    out = str(work) if out == "$PWD" else out
    assert main([*command_line("run", work), "--out", out, "--quiet", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the working directory or holds it" in err
    assert [p.name for p in work.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("link", ["dangling", "loop", "to-a-folder"])
def test_a_symbolic_link_as_out_is_refused(tmp_path, capsys, link):
    # was: a dangling link or a link loop as --out raised a traceback
    path = tmp_path / "out"
    target = {"dangling": tmp_path / "nowhere", "loop": path, "to-a-folder": tmp_path}[link]
    path.symlink_to(target)
    assert main(_argv("run", path, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a symbolic link" in err
    assert path.is_symlink() and os.readlink(path) == str(target)


@pytest.mark.slow
def test_concurrent_writers_to_one_directory_exactly_one_wins(tmp_path):
    # was: three concurrent runs all exited 0 and printed the same path; the last one's survived
    out = tmp_path / "out"
    procs = [nplsim_process(_argv("run", out, tmp_path), tmp_path) for _ in range(3)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2, 2], results
    for code, err in results:
        if code == 2:
            assert err.count("\n") == 1 and (
                "another nplsim process is writing there" in err or "holds earlier run" in err
            ), err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _commit_many(out: str, count: int, queue) -> None:
    failures = []
    for k in range(count):
        try:
            write_directory(
                out, "run", lambda d, k=k: (d / "n.txt").write_text(str(k)), overwrite=True
            )
        except ConfigError as exc:
            if "another nplsim process" not in exc.problem:
                failures.append(str(exc))
        except OSError as exc:  # was: FileNotFoundError ... .old.*, Directory not empty
            failures.append(repr(exc))
    queue.put(failures)


@pytest.mark.slow
def test_processes_committing_at_once_never_race(tmp_path):
    # was: 41 failures in 600 commits and 35 .old.* folders left behind
    out = str(tmp_path / "out")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    procs = [context.Process(target=_commit_many, args=(out, 150, queue)) for _ in range(4)]
    for proc in procs:
        proc.start()
    failures = [f for _ in procs for f in queue.get(timeout=300)]
    for proc in procs:
        proc.join(timeout=60)
    assert failures == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in Path(out).iterdir()) == [MARKER, "n.txt"]


def test_staging_a_killed_writer_left_is_cleaned_when_the_name_is_claimed_again(tmp_path):
    # was: SIGKILL while a run wrote left .o.XXXXXXXX staging folders, never cleaned
    out = tmp_path / "o"
    stale = [tmp_path / ".o.stage-0123abcd", tmp_path / ".o.k2j4h5g6", tmp_path / ".o.old-89abcdef"]
    for folder in stale:
        folder.mkdir()
        (folder / "model.parquet").write_bytes(b"half")
    marker = {"tool": "nplsim", "kind": "run", "files": ["model.parquet"]}
    (stale[2] / MARKER).write_text(json.dumps(marker))  # earlier results, moved aside
    (tmp_path / ".dead.stage-0123abcd").mkdir()  # another name's, its writer gone
    busy = claim(tmp_path / "busy", "run")
    (tmp_path / ".busy.stage-0123abcd").mkdir()  # another name's, its writer still at work
    held = claim(out, "run", overwrite=True)
    try:
        assert not any(folder.exists() for folder in stale[:2])
        assert out.is_dir()  # the old results of an interrupted replacement are restored
        assert not (tmp_path / ".dead.stage-0123abcd").exists()
        assert (tmp_path / ".busy.stage-0123abcd").exists()
    finally:
        held.release(failed=True)
        busy.release(failed=True)


@pytest.mark.slow
def test_a_run_killed_while_writing_leaves_nothing_the_next_run_keeps(tmp_path):
    out = tmp_path / "o"
    proc = nplsim_process([*command_line("run", tmp_path, quarters=12), "--out", str(out)],
                          tmp_path)  # fmt: skip
    lock = tmp_path / ".o.lock"
    _wait(lambda: lock.exists() or proc.poll() is not None)
    proc.kill()
    proc.wait(timeout=60)
    assert main(_argv("run", out, tmp_path)) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".o.")) == []


def _wait(condition, limit: int = 6000) -> None:
    """Poll ``condition`` every 10 ms, at most ``limit`` times (no wall-clock assertion)."""
    import time

    for _ in range(limit):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met")


@pytest.mark.slow
def test_disk_full_while_writing_is_one_line_naming_the_path_and_keeps_the_work(tmp_path):
    # was: 51 lines of traceback after the whole run
    out = tmp_path / "o"
    limit = 64 * 1024  # bytes a file may have: the tables fit, the dashboard PNG does not

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "nplsim", *_argv("run", out, tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, preexec_fn=small_files, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "File too large" in proc.stderr
    assert "cannot write " in proc.stderr and "what was written is kept in" in proc.stderr
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("o.partial-")]
    assert len(kept) == 1 and (kept[0] / "model.parquet").is_file()
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_results_folder_is_one_line(tmp_path, command):
    # was: a traceback (run: after the whole simulation)
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    proc = unprivileged(_argv(command, results / "x", tmp_path), tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Permission denied" in proc.stderr and list(results.iterdir()) == []


@pytest.mark.slow
def test_a_scenario_in_a_folder_that_may_not_be_read_is_one_line(tmp_path):
    # was: a traceback from Path.exists
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "s.toml").write_text("quarters = 1\n")
    locked.chmod(0o000)
    try:
        proc = unprivileged(["run", str(locked / "s.toml"), "--out", str(tmp_path / "o")],
                            tmp_path)  # fmt: skip
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Permission denied" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["../../escape", "/tmp/absolute", "..", ".hidden", "a/b\nc"])
def test_a_name_from_a_manifest_cannot_lead_out_of_the_results_root(tmp_path, monkeypatch, name):
    # was: a manifest's scenario name made --from-manifest write outside results/
    monkeypatch.chdir(tmp_path)
    scenario = tmp_path / "s.toml"
    scenario.write_text(f"name = {json.dumps(name)}\nquarters = 1\nn_loans = 500\n")
    assert main(["run", str(scenario), "--out", "first", "--quiet"]) == 0
    assert main(["run", "--from-manifest", "first/manifest.json", "--quiet"]) == 0
    (written,) = (tmp_path / "results").iterdir()
    assert written.name == safe_name(f"{name}-seed42-rerun") and written.parent.name == "results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "results", "s.toml"]
    assert default_out(name).parent == Path("results")


def test_summary_json_is_strict_json(tmp_path, monkeypatch):
    # was: summary.json could hold Infinity, which is not JSON
    import nplsim.experiments.run as run

    def infinite(frame):
        return {"final": {"npl_ratio": float("inf"), "car": float("nan")}, "mean": {}}

    monkeypatch.setattr(run, "summarise", infinite)
    assert main(_argv("run", tmp_path / "o", tmp_path)) == 0
    text = (tmp_path / "o" / "summary.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["final"] == {"npl_ratio": None, "car": None}


@pytest.mark.slow
def test_a_name_too_long_leaves_room_for_every_derived_name(tmp_path, capsys):
    longest = os.pathconf(tmp_path, "PC_NAME_MAX") - STAGING_EXTRA
    assert main(_argv("run", tmp_path / ("z" * longest), tmp_path)) == 0
    assert main(_argv("run", tmp_path / ("y" * (longest + 1)), tmp_path)) == 2
    assert f"names of at most {longest} bytes" in capsys.readouterr().err


def test_the_model_table_of_a_run_is_complete(tmp_path):
    assert main(_argv("run", tmp_path / "o", tmp_path)) == 0
    assert len(pd.read_parquet(tmp_path / "o" / "model.parquet")) == TINY_RUN["quarters"] + 1


def test_an_os_error_while_writing_names_the_path_and_the_cause(tmp_path, capsys, monkeypatch):
    import nplsim.experiments.run as run

    real = run.write_results

    def disk_full(model, directory, manifest):
        real(model, directory, manifest)
        raise OSError(errno.ENOSPC, "No space left on device", str(directory / "summary.json"))

    monkeypatch.setattr(run, "write_results", disk_full)
    assert main(_argv("run", tmp_path / "o", tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "summary.json: No space left on device" in err
    assert "what was written is kept in" in err and not (tmp_path / "o").exists()


def test_a_sweep_with_a_summary_is_replaced_with_overwrite(tmp_path, capsys):
    # was: "holds files nplsim did not write (summary/)": the outcomes summary a sweep writes was
    # not among the entries a sweep's results directory may hold, so --overwrite refused it
    spec = tmp_path / "s.toml"
    spec.write_text('quarters = 2\noverrides = { n_loans = 500 }\nreplications = 2\n'
                    'outcomes = ["car_mean"]\n[parameters.disclosure_level]\n'
                    'values = [0.3, 0.6]\n')  # fmt: skip
    out = tmp_path / "o"
    argv = ["sweep", str(spec), "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    assert (out / "summary" / "outcomes.csv").is_file()
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    assert (out / "summary" / "outcomes.csv").is_file()
    (out / "summary" / "notes.txt").write_text("mine\n")  # a user's file inside is still foreign
    assert main([*argv, "--overwrite"]) == 2
    assert "summary/notes.txt" in capsys.readouterr().err
    assert (out / "summary" / "notes.txt").read_text() == "mine\n"
