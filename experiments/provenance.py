"""What a manifest pins so that its results can be repeated, and what differs from it now.

:func:`pins` records the code (git commit and dirty flag where the package is a git checkout,
and a SHA-256 of the package's own source and data files, which says whether the code is the
same with or without git), every preset a scenario uses (its starting regime and every scheduled
reform's) with a SHA-256 of its file, and the versions of Python and the packages that determine
the results. :func:`code_differences` says, in one line each, how this installation differs from
recorded pins; ``run --from-manifest`` and ``sweep --resume`` refuse to go on when it differs
unless told to (``--allow-different-code``), and then say so in the new manifest.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from nplsim.market.regime import PRESETS_DIR, list_presets
from nplsim.market.scenario import ScenarioConfig

PACKAGES = ("nplsim", "mesa", "numpy", "numba", "pandas", "pyarrow", "scipy", "pydantic")
CLUSTER_PACKAGES = ("dask", "distributed")  # recorded by sweeps, which may run on a cluster
SOURCE_SUFFIXES = (".py", ".toml")  # the package's code and data (presets, scenarios, facts)
GIT_TIMEOUT_S = 5  # git answers in milliseconds; a hung network file system must not hang a run
ALLOW_FLAG = "--allow-different-code"
RERUN_NOTE = "re-run under different code"


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Versions of Python and of ``packages`` ("not installed" where absent)."""
    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _package_dirs() -> list[Path]:
    """The folders of nplsim and its subpackages, found without importing them (the app's
    imports alone take a second)."""
    names = ("nplsim", "nplsim.agents", "nplsim.market", "nplsim.economy", "nplsim.experiments",
             "nplsim.viz")  # fmt: skip
    return [Path(next(iter(find_spec(name).submodule_search_locations))) for name in names]


@cache
def code_sha256() -> str:
    """SHA-256 over the package's source and data files (relative name and bytes of each)."""
    digest = hashlib.sha256()
    for root in _package_dirs():
        files = sorted(p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())
        for path in files:
            digest.update(f"{root.name}/{path.relative_to(root)}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
            cwd=Path(__file__).parent,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def code_state() -> dict[str, Any]:
    """The git commit and dirty flag (None outside a git checkout) and the code's SHA-256."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "git_commit": commit.strip() if commit else None,
        "git_dirty": bool(status.strip()) if status is not None else None,
        "code_sha256": code_sha256(),
    }


def preset_file(name: str) -> Path:
    """The file of a preset name or path."""
    return PRESETS_DIR / f"{name}.toml" if name in list_presets() else Path(name)


def preset_sha256(name: str) -> str | None:
    """SHA-256 of a preset's file, or None if it cannot be read."""
    try:
        return hashlib.sha256(preset_file(name).read_bytes()).hexdigest()
    except OSError:
        return None


def presets_used(config: ScenarioConfig) -> list[str]:
    """The presets a scenario uses: its starting regime and each reform's, in order, once each."""
    names = [config.regime, *(e.regime for e in config.events if e.regime is not None)]
    return list(dict.fromkeys(names))


def pins(config: ScenarioConfig | None = None, packages: Iterable[str] = PACKAGES) -> dict:
    """Everything a manifest pins to repeat results: ``code``, ``presets`` (name → SHA-256 of
    every preset ``config`` uses) and ``versions``."""
    used = presets_used(config) if config is not None else []
    return {
        "code": code_state(),
        "presets": {name: preset_sha256(name) for name in used},
        "versions": versions(packages),
    }


def code_differences(recorded: Mapping[str, Any]) -> list[str]:
    """How this installation's code and presets differ from recorded :func:`pins` (empty if the
    same), one phrase each: changed presets by name, then the code."""
    found = []
    presets = recorded.get("presets")
    code = recorded.get("code")
    if not isinstance(presets, Mapping) or not isinstance(code, Mapping):
        return ["the manifest does not pin the code (written by an older nplsim)"]
    changed = [name for name, digest in presets.items() if preset_sha256(str(name)) != digest]
    if changed:
        found.append(f"preset {', '.join(map(str, changed))} changed since")
    if code.get("code_sha256") != code_sha256():
        now = code_state()
        then_commit, now_commit = code.get("git_commit"), now["git_commit"]
        detail = f"commit {_short(then_commit)} -> {_short(now_commit)}"
        if now["git_dirty"]:
            detail += ", uncommitted changes"
        found.append(f"the code differs ({detail})")
    return found


def version_differences(recorded: Mapping[str, Any]) -> list[str]:
    """Packages whose installed version differs from the recorded one (``numpy 1.0 -> 2.0``)."""
    now = versions([p for p in recorded if p != "python"])
    return [
        f"{package} {recorded[package]} -> {version}"
        for package, version in now.items()
        if package in recorded and recorded[package] != version
    ]


def _short(commit: object) -> str:
    return str(commit)[:12] if commit else "unknown"
