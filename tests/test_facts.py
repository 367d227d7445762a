"""Every fact the project cites is in the repository: ``docs/facts.md``, by key."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTS = ROOT / "docs" / "facts.md"
CITATION = re.compile(r"facts: ([a-z0-9-]+)")


def _project_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.py", "*.toml", "*.md", "*.ipynb", "*.cff"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return [ROOT / name for name in listed if (ROOT / name) not in (FACTS, Path(__file__))]


def test_every_cited_fact_is_listed():
    listed = set(re.findall(r"\*\*`([a-z0-9-]+)`\*\*", FACTS.read_text()))
    cited = {
        (path.relative_to(ROOT).as_posix(), key)
        for path in _project_files()
        for key in CITATION.findall(path.read_text())
    }
    assert cited, "nothing cites docs/facts.md"
    missing = sorted((where, key) for where, key in cited if key not in listed)
    assert not missing, f"cited but not in docs/facts.md: {missing}"


def test_no_citation_points_outside_the_repository():
    # built from parts so that this line does not match itself
    outside = re.compile(
        "|".join(["shared" + "/reference", r"FACTS\.md", "FACTS" + ' "', "DESIGN" + " §"])
    )
    found = [
        f"{path.relative_to(ROOT)}:{k}"
        for path in _project_files()
        for k, line in enumerate(path.read_text().splitlines(), 1)
        if outside.search(line)
    ]
    assert not found, found
