"""The distribution installs one namespace, ``nplsim.*``, and lives beside another ``agents``.

The wheel is built from this checkout and installed into a fresh virtual environment (its
dependencies are borrowed from the test environment through a path entry, which does not run the
editable install's import hook). In that environment nothing called ``agents`` exists until a
stand-in for another distribution that owns a top-level ``agents`` package (as OpenAI's Agents SDK
does) is installed; then both import, ``nplsim run`` works and ``mesa.batch_run`` runs the model.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a checkout holds besides the project's sources (environments, caches, results, builds).
LOCAL_ONLY = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
              ".hypothesis", "results")  # fmt: skip
pytestmark = pytest.mark.slow


def _standin_agents_wheel(directory: Path) -> Path:
    """A wheel of a distribution that owns the top-level import name ``agents``."""
    files = {
        "agents/__init__.py": 'OWNER = "the other agents distribution"\n',
        "other_agents-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: other-agents\n"
        "Version: 1.0\n",
        "other_agents-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append("other_agents-1.0.dist-info/RECORD,,")
    files["other_agents-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = directory / "other_agents-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, cwd=REPO)


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory) -> tuple[Path, Path]:
    """(python of a fresh venv holding the built nplsim wheel, its site-packages)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*LOCAL_ONLY))
    _pip("wheel", "--no-deps", "--wheel-dir", str(root / "dist"), str(source))
    wheel = next((root / "dist").glob("nplsim-*.whl"))
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # Dependencies from the test environment: a plain path entry (its .pth hooks do not run).
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))
    return python, site


def _run(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    return subprocess.run(
        [python, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_no_top_level_agents_in_an_environment_with_only_nplsim(fresh_env, tmp_path):
    python, _ = fresh_env
    done = _run(python, "import agents", tmp_path)
    assert done.returncode != 0 and "No module named 'agents'" in done.stderr
    for name in ("market", "experiments", "viz"):
        assert _run(python, f"import {name}", tmp_path).returncode != 0, name
    done = _run(
        python,
        """
        import nplsim, nplsim.agents, nplsim.market.regime
        print(nplsim.__version__, nplsim.agents.__file__)
        assert nplsim.market.regime.list_presets()  # package data ships inside the wheel
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "site-packages" in done.stdout and str(REPO) not in done.stdout


def test_nplsim_lives_beside_another_agents_package(fresh_env, tmp_path):
    python, site = fresh_env
    _pip("install", "--no-deps", "--no-index", "--target", str(site),
         str(_standin_agents_wheel(tmp_path)))  # fmt: skip
    done = _run(
        python,
        """
        import agents
        import nplsim.agents
        from nplsim.agents.bank import StateBank
        assert agents.OWNER == "the other agents distribution"
        assert StateBank.__module__ == "nplsim.agents.bank"

        import mesa
        from nplsim import NPLMarketModel
        rows = mesa.batch_run(
            NPLMarketModel, parameters={"n_loans": 2000, "quarters": 2}, rng=[1, 2],
            max_steps=2, number_processes=1, display_progress=False,
        )
        assert sorted((r["rng"], r["quarter"]) for r in rows) == [(1, 2), (2, 2)], rows
        print("ok")
        """,
        tmp_path,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr
    out = tmp_path / "run"
    done = subprocess.run(
        [python, "-m", "nplsim", "run", "restart_2016", "--seed", "3", "--quarters", "2",
         "--set", "n_loans=2000", "--out", str(out), "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "model.parquet").is_file() and (out / "manifest.json").is_file()
