"""Results directories owned by nplsim: every command that writes results goes through here.

nplsim writes only into a directory it created and marked as its own with :data:`MARKER` (a JSON
file naming the kind of result — run, sweep, compare, sensitivity, validate — and every file it
wrote). :func:`claim` refuses any other non-empty directory, the working directory, a symbolic
link, and its own earlier results unless ``overwrite`` (or, for a sweep, ``resume``) is given;
even then it refuses a results directory holding files it did not write.

A claim holds one lock per output directory (``.NAME.lock`` beside it, ``flock``): of concurrent
writers exactly one wins, the others fail at once with one line. Results are written into a
staging directory beside the output (``.NAME.stage-XXXXXXXX``), fsynced and renamed into place;
replaced results go to ``.NAME.old-XXXXXXXX`` first and are removed after the rename. Staging and
old directories a killed process left are cleaned when the next claim in that folder starts (an
interrupted replacement is rolled back to the old results). Every ``OSError`` met while writing
is a :class:`ConfigError` naming the path and the cause; what was written is kept in a visible
``NAME.partial-XXXXXXXX`` directory, named in the message.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from nplsim.experiments.interrupt import deferred
from nplsim.market.errors import ConfigError, os_reason, read_json

log = logging.getLogger(__name__)

Kind = Literal[
    "run",
    "sweep",
    "compare",
    "sensitivity",
    "validate",
    "routes",
    "levers",
    "stress",
    "calibrate",
]
MARKER = ".nplsim-results.json"
RESULTS_ROOT = Path("results")  # where commands put results unless told otherwise (--out)
WRITABLE = "a path in a directory where you can create files"
TOKEN_BYTES = 4  # random hex of staging names: 8 digits, as many as tempfile's
_STAGE, _OLD, _PARTIAL, _LOCK = "stage", "old", "partial", "lock"
# The longest name derived from an output's name (``NAME.partial-XXXXXXXX``): the name itself
# must leave room for it within the file system's limit.
STAGING_EXTRA = len(f".{_PARTIAL}-") + 2 * TOKEN_BYTES + 1
# Staging of earlier nplsim versions, cleaned like today's: ``.NAME.XXXXXXXX`` and
# ``.NAME.old.XXXXXXXX`` (a run), ``.tmp-NAME-XXXXXXXX`` (a sweep); XXXXXXXX is tempfile's.
_LEGACY = "[a-z0-9_]{8}"
MAX_SAFE_NAME = 100  # characters of a directory name derived from user input
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class Layout:
    """What a kind of results directory holds beyond the files listed in its marker: folders
    whose entries it adds one by one (a sweep's ``runs/``) with the entry names it uses, and the
    temporary files it writes at the top level while updating in place."""

    trees: Mapping[str, str] = field(default_factory=dict)  # folder -> regex of its entries
    scratch: str = r"(?!)"  # regex of top-level temporary names (none by default)


TMP_PREFIX = ".tmp-"  # temporary files and folders written inside a results directory
LAYOUTS: dict[str, Layout] = {
    "sweep": Layout(
        {
            "runs": r"run_id=[0-9a-f]+|\.tmp-.*",
            "failures": r"[0-9a-f]+\.json|\.tmp-.*",
            "summary": r"outcomes(_by_run)?\.(csv|md|tex)|figures",  # sweep_summary's
        },
        scratch=r"\.tmp-.*",
    ),
    "calibrate": Layout(
        {"history": r"abc\.db(-journal|-wal|-shm)?", "results": r".*"},
        scratch=r"\.tmp-.*",
    ),
}


def safe_name(text: object) -> str:
    """A directory name derived from user input (a scenario name in a manifest, a spec's stem):
    letters, digits and ``._+-`` only, no leading dot, at most :data:`MAX_SAFE_NAME` characters,
    so that ``../../x`` or ``/abs/path`` cannot lead out of the results root."""
    name = _NAME_CHARS.sub("_", str(text)).lstrip(".-")[:MAX_SAFE_NAME]
    return name or "unnamed"


def default_out(name: object) -> Path:
    """``results/NAME`` with NAME made safe (:func:`safe_name`)."""
    return RESULTS_ROOT / safe_name(name)


# ====================================================================== checks before work
def check_creatable(out_dir: Path, shown: str | None = None) -> None:
    """Refuse an output path that cannot become a directory, before any work is done: a file
    stands on the path above it, a name is too long for the file system (with the room the
    staging names need), or the nearest existing directory above it is one where nothing can be
    created (read-only, permission denied, ``/proc``)."""
    out_dir = Path(out_dir)
    shown = shown or str(out_dir)
    limit = _name_max(out_dir) - STAGING_EXTRA
    for part in out_dir.parts:
        if len(os.fsencode(part)) > limit:
            short = shown if len(shown) <= 80 else shown[:77] + "..."
            raise ConfigError(
                short, "--out", f"a name of {len(os.fsencode(part))} bytes",
                f"names of at most {limit} bytes",
            )  # fmt: skip
    for parent in out_dir.parents:
        try:
            info = os.stat(parent)
        except FileNotFoundError:
            continue
        except OSError as exc:  # e.g. a directory above it that may not be searched
            raise ConfigError(
                shown, "--out", f"cannot look into {parent}: {os_reason(exc)}", WRITABLE
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(shown, "--out", f"{parent} is a file", "a directory path")
        check_writable(parent, shown)
        return


def check_writable(directory: Path, shown: str) -> None:
    """Refuse unless a directory can be created in ``directory``.

    Tried for real, by creating and removing a uniquely named directory there: permission bits
    do not tell (root, ACLs, read-only mounts, ``/proc``).
    """
    try:
        probe = tempfile.mkdtemp(prefix=".nplsim-check-", dir=directory)
    except OSError as exc:
        raise ConfigError(
            shown, "--out", f"cannot create a directory in {directory}: {os_reason(exc)}",
            WRITABLE,
        ) from None  # fmt: skip
    with suppress(OSError):
        os.rmdir(probe)


def _name_max(path: Path) -> int:
    """Longest file name the file system under ``path`` allows (255 where it cannot say)."""
    for parent in (path, *path.parents):
        with suppress(OSError, ValueError):
            if parent.is_dir():
                return os.pathconf(parent, "PC_NAME_MAX")
    return 255


# ====================================================================== the claim
@dataclass
class Claim:
    """A locked output directory, ready to be written (see :func:`claim`).

    Attributes:
        path: the output directory (absolute, not resolved through symbolic links).
        shown: the path as the user gave it, for messages.
        kind: the kind of results.
        existing: the marker of the results already there (resume, overwrite), else None.
    """

    path: Path
    shown: str
    kind: str
    existing: dict[str, Any] | None
    overwrite: bool
    _lock: _Lock | None = field(default=None, repr=False)
    _made: list[Path] = field(default_factory=list, repr=False)

    def release(self, failed: bool) -> None:
        """Unlock; after a failure, also remove the parent folders this claim created."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if failed:
            for folder in reversed(self._made):
                with suppress(OSError):
                    folder.rmdir()

    def sibling(self, role: str) -> Path:
        """A new name beside the output for ``role`` (stage, old, partial)."""
        token = secrets.token_hex(TOKEN_BYTES)
        name = self.path.name
        leaf = f"{name}.{role}-{token}" if role == _PARTIAL else f".{name}.{role}-{token}"
        return self.path.parent / leaf

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh staging directory; on success :meth:`commit` it, on failure remove it — or,
        after an ``OSError``, keep what was written in a ``NAME.partial-*`` directory."""
        staging = self.sibling(_STAGE)
        try:
            staging.mkdir(mode=0o777)  # the umask applies: a results directory is not private
        except OSError as exc:
            raise self.write_error(exc, staging) from None
        try:
            yield staging
        except OSError as exc:
            raise self.write_error(exc, staging, keep=staging) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def write_error(self, exc: OSError, where: Path, keep: Path | None = None) -> ConfigError:
        """One line for an ``OSError`` met while writing: the path, the cause, and where the
        work was kept (``keep`` is renamed to a visible ``NAME.partial-*``)."""
        path = exc.filename if isinstance(exc.filename, str | bytes) and exc.filename else where
        problem = f"cannot write {os.fsdecode(path)}: {os_reason(exc)}"
        if keep is not None and keep.exists():
            kept = self.sibling(_PARTIAL)
            try:
                os.rename(keep, kept)
            except OSError:
                kept = keep
            problem += f"; what was written is kept in {kept}"
        return ConfigError(self.shown, "--out", problem)

    def commit(self, staging: Path, files: list[str] | None = None) -> None:
        """Mark ``staging`` as this kind's results, fsync it, and rename it into place; earlier
        results (checked when claimed, and again now) are replaced only once the new are whole."""
        listing = sorted(files if files is not None else _listing(staging))
        _write_marker(staging / MARKER, self.kind, listing)
        _fsync_tree(staging)
        with deferred():  # Ctrl-C waits until the old results are moved aside and the new in place
            self._swap(staging)

    def _swap(self, staging: Path) -> None:
        if os.path.lexists(self.path):
            self._check_replaceable()
            if _is_empty_dir(self.path):
                os.rename(staging, self.path)  # replaces an empty directory atomically
            else:
                old = self.sibling(_OLD)
                os.rename(self.path, old)
                os.rename(staging, self.path)
                _fsync_dir(self.path.parent)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, self.path)
        _fsync_dir(self.path.parent)

    def _check_replaceable(self) -> None:
        """The output may be replaced: empty, or this kind's results with ``overwrite`` and
        nothing in it that nplsim did not write."""
        if _is_empty_dir(self.path):
            return
        marker = _marker(self.path, self.shown)
        if marker is None or marker.get("kind") != self.kind or not self.overwrite:
            raise ConfigError(self.shown, "--out", "changed while nplsim was running",
                              "a directory no other program writes to")  # fmt: skip
        _refuse_foreign_files(self.path, marker, self.shown)


def claim(
    out_dir: str | Path,
    kind: Kind,
    *,
    overwrite: bool = False,
    resume: bool = False,
) -> Claim:
    """Check that ``out_dir`` may receive ``kind`` results and lock it; see the module docstring.

    Args:
        out_dir: the output directory.
        kind: what is written there.
        overwrite: replace earlier results of the same kind.
        resume: continue earlier results of the same kind in place (sweeps).

    Raises:
        ConfigError: a path that cannot be used, another process writing there, or results that
            may not be replaced, each as one line naming the flag that would allow it.
    """
    shown = str(out_dir)
    if "\x00" in shown:
        raise ConfigError(repr(shown), "--out", "holds a NUL character", WRITABLE)
    path = Path(os.path.abspath(out_dir))
    _refuse_special(path, shown)
    check_creatable(path, shown)
    made = _missing_parents(path)
    try:
        for folder in made:
            folder.mkdir()
        lock = _Lock.acquire(path, shown)
    except OSError as exc:
        for folder in reversed(made):
            with suppress(OSError):
                folder.rmdir()
        raise ConfigError(shown, "--out", f"cannot lock it: {os_reason(exc)}", WRITABLE) from None
    result = Claim(path, shown, kind, None, overwrite, lock, made)
    try:
        _clean_stale(path)
        clean_parent(path.parent, skip=path.name)
        result.existing = _existing(path, shown, kind, overwrite, resume)
    except BaseException:
        result.release(failed=True)
        raise
    return result


@contextmanager
def holding(out: str | Path | Claim, kind: Kind, *, overwrite: bool = False) -> Iterator[Claim]:
    """The claim of ``out``: the one given (its holder releases it), or a new one released on
    leaving (with the parents it created removed after a failure)."""
    if isinstance(out, Claim):
        yield out
        return
    held = claim(out, kind, overwrite=overwrite)
    failed = True
    try:
        yield held
        failed = False
    finally:
        held.release(failed)


def write_directory(
    out: str | Path | Claim,
    kind: Kind,
    write: Callable[[Path], None],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a whole results directory: ``write(staging)`` fills a staging directory, which is
    committed into place. Returns the output directory."""
    with holding(out, kind, overwrite=overwrite) as held, held.staging() as staging:
        write(staging)
        held.commit(staging)
    return held.path


def _refuse_special(path: Path, shown: str) -> None:
    """Refuse a symbolic link (dangling, a loop, or any), and the working directory or a
    directory holding it (its replacement would pull the ground from under the shell)."""
    if os.path.islink(path):
        raise ConfigError(shown, "--out", "is a symbolic link",
                          "a directory path that is not a symbolic link")  # fmt: skip
    cwd = Path(os.path.abspath(os.getcwd()))
    if path == cwd or path in cwd.parents:
        raise ConfigError(shown, "--out", "is the working directory or holds it",
                          "a new directory, e.g. results/NAME")  # fmt: skip


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    for parent in path.parents:
        if os.path.lexists(parent):
            break
        missing.append(parent)
    return list(reversed(missing))


def _existing(
    path: Path, shown: str, kind: str, overwrite: bool, resume: bool
) -> dict[str, Any] | None:
    """The marker of ``kind`` results already at ``path`` (with ``overwrite`` or ``resume``), or
    None where nothing (or an empty directory) is there; anything else is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(shown, "--out", f"cannot look into it: {os_reason(exc)}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(shown, "--out", "is a file", "a new or empty directory")
    if _is_empty_dir(path, shown):
        return None
    marker = _marker(path, shown)
    if marker is None:
        raise ConfigError(
            shown, "--out", "is not empty and nplsim did not make it",
            "a new or empty directory; nplsim never writes into one it did not create",
        )  # fmt: skip
    found = marker.get("kind")
    if found != kind:
        raise ConfigError(shown, "--out", f"holds nplsim {found} results, not {kind} results",
                          "a new or empty directory")  # fmt: skip
    flags = (
        "--resume to continue them or --overwrite to replace them"
        if kind in ("sweep", "calibrate")
        else ("--overwrite to replace them")
    )
    if not (overwrite or resume):
        raise ConfigError(shown, "--out", f"holds earlier {kind} results", f"pass {flags}")
    if overwrite:
        _refuse_foreign_files(path, marker, shown)
    check_writable(path, shown)  # replacing or resuming removes or adds entries inside it
    return marker


def _marker(path: Path, shown: str) -> dict[str, Any] | None:
    marker = path / MARKER
    if not os.path.lexists(marker):
        return None
    data = read_json(marker, "--out")
    if data.get("tool") != "nplsim" or not isinstance(data.get("files"), list):
        raise ConfigError(str(marker), "tool", "not a marker nplsim wrote")
    return data


def _refuse_foreign_files(path: Path, marker: Mapping[str, Any], shown: str) -> None:
    """Refuse to replace results holding anything nplsim did not write there."""
    foreign = foreign_entries(path, marker)
    if foreign:
        listed = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise ConfigError(
            shown, "--out", f"holds files nplsim did not write ({listed})",
            "move them away first: nplsim replaces only what it wrote",
        )  # fmt: skip


def foreign_entries(path: Path, marker: Mapping[str, Any]) -> list[str]:
    """Entries under ``path`` that its marker does not account for, as relative paths."""
    files = set(marker.get("files", []))
    folders = {str(Path(f).parent) for f in files} | {"."}
    folders |= {str(p) for f in files for p in Path(f).parents}
    layout = LAYOUTS.get(str(marker.get("kind")), Layout())
    trees = layout.trees
    foreign = []
    for root, dirs, names in os.walk(path):
        rel_root = Path(root).relative_to(path)
        top = rel_root.parts[0] if rel_root.parts else None
        if top in trees:
            if len(rel_root.parts) == 1:
                foreign += [
                    str(rel_root / n) for n in [*dirs, *names] if not re.fullmatch(trees[top], n)
                ]
            dirs[:] = []  # a tree's entries are its own
            continue
        for name in names:
            rel = str(rel_root / name)
            loose = not rel_root.parts and re.fullmatch(layout.scratch, name)
            if rel not in files and rel != MARKER and not loose:
                foreign.append(rel)
        for name in list(dirs):
            rel = str(rel_root / name)
            if rel in trees:
                continue
            if rel not in folders or os.path.islink(Path(root) / name):
                foreign.append(rel + "/")
                dirs.remove(name)
    return sorted(foreign)


# ====================================================================== the lock
@dataclass
class _Lock:
    """An exclusive ``flock`` on ``.NAME.lock`` beside an output directory."""

    path: Path
    fd: int

    @classmethod
    def acquire(cls, out: Path, shown: str) -> _Lock:
        """Lock ``out`` or raise a ConfigError saying another process holds it.

        The lock file is removed on release; a process that opened it just before is told by
        comparing inodes that its lock is stale, and tries again.
        """
        path = out.parent / f".{out.name}.{_LOCK}"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip()
                os.close(fd)
                who = f" (process {holder})" if holder.isdigit() else ""
                raise ConfigError(
                    shown, "--out", f"another nplsim process is writing there{who}",
                    "another directory, or wait until it has finished",
                ) from None  # fmt: skip
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(path, fd)
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file, then unlock."""
        with suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)


def _try_lock(out: Path) -> _Lock | None:
    try:
        return _Lock.acquire(out, str(out))
    except (ConfigError, OSError):
        return None


# ====================================================================== staging left behind
def _stale_patterns(name: str) -> list[re.Pattern[str]]:
    n = re.escape(name)
    return [
        re.compile(rf"\.{n}\.(?:{_STAGE}|{_OLD})-[0-9a-f]{{{2 * TOKEN_BYTES}}}"),
        re.compile(rf"\.{n}\.(?:old\.)?{_LEGACY}"),
        re.compile(rf"\.tmp-{n}-[0-9a-f]{{8}}"),
    ]


def _clean_stale(path: Path) -> None:
    """Remove what killed writers of ``path`` left beside it (the caller holds its lock): staging
    directories, and old results — restored first if their replacement never arrived."""
    parent, name = path.parent, path.name
    patterns = _stale_patterns(name)
    try:
        entries = sorted(os.listdir(parent))
    except OSError:
        return
    stale = [e for e in entries if any(p.fullmatch(e) for p in patterns)]
    old = [e for e in stale if f".{_OLD}-" in e or ".old." in e]
    if old and not os.path.lexists(path):
        restored = parent / old[0]
        source = restored / "old" if (restored / "old").is_dir() else restored
        with suppress(OSError):
            os.rename(source, path)
            log.warning("%s: restored the results an interrupted replacement had moved", path)
    for entry in stale:
        target = parent / entry
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)


def clean_parent(parent: Path, skip: str) -> None:
    """Clean what killed writers left in ``parent`` for every other output name (not ``skip``,
    the caller's own) whose lock is free."""
    pattern = re.compile(rf"\.(.+)\.(?:{_STAGE}|{_OLD})-[0-9a-f]{{{2 * TOKEN_BYTES}}}")
    with suppress(OSError):
        for entry in sorted(os.listdir(parent)):
            match = pattern.fullmatch(entry)
            if match is None or match.group(1) == skip:
                continue
            lock = _try_lock(parent / match.group(1))
            if lock is not None:
                try:
                    _clean_stale(parent / match.group(1))
                finally:
                    lock.release()


# ====================================================================== writing
def json_text(data: Any) -> str:
    """Strict JSON (RFC 8259), indented with sorted keys: a float that is not finite (NaN, ±inf)
    is written as null, never as the ``NaN``/``Infinity`` that JSON parsers reject."""
    return json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as strict JSON to ``path`` through a fsynced temporary file and a rename."""
    staging = path.with_name(f"{TMP_PREFIX}{path.name}-{secrets.token_hex(TOKEN_BYTES)}")
    try:
        with open(staging, "w", encoding="utf-8") as handle:
            handle.write(json_text(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)
    except BaseException:
        with suppress(OSError):
            staging.unlink()
        raise
    _fsync_dir(path.parent)


def publish(staging: Path, final: Path) -> None:
    """fsync everything in ``staging`` and rename it to ``final`` (atomic on POSIX)."""
    _fsync_tree(staging)
    os.rename(staging, final)
    _fsync_dir(final.parent)


def _write_marker(path: Path, kind: str, files: list[str]) -> None:
    from nplsim.experiments.provenance import versions

    marker = {
        "tool": "nplsim",
        "kind": kind,
        "files": [f for f in files if f != MARKER],
        "nplsim": versions(("nplsim",))["nplsim"],
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.write_text(json_text(marker), encoding="utf-8")


def _listing(directory: Path) -> list[str]:
    """Every file under ``directory``, relative to it."""
    return [
        str(Path(root, name).relative_to(directory))
        for root, _, names in os.walk(directory)
        for name in names
    ]


def _fsync_tree(directory: Path) -> None:
    """fsync every file and folder under ``directory``, so a rename publishes data on disk."""
    for root, _, names in os.walk(directory):
        for name in names:
            fd = os.open(Path(root, name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_empty_dir(path: Path, shown: str | None = None) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except NotADirectoryError:
        return False
    except OSError as exc:
        raise ConfigError(shown or str(path), "--out", f"cannot look into it: {os_reason(exc)}",
                          WRITABLE) from None  # fmt: skip
