"""Re-pin the golden runs after a deliberate change of behaviour: ``python -m tests.golden.update``.

Runs every case of ``tests/golden/cases.py`` twice — once in this process and once in a fresh
worker process — and refuses to pin anything unless the two give the same Parquet bytes and every
case still exercises the channels it is there for. Then it rewrites the CSV tables of each case
and ``golden.json`` and lists what changed, to be reviewed with ``git diff tests/golden`` and
committed with the change that caused it (see ``docs/golden.md``).
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from nplsim.experiments.provenance import versions
from tests.golden.cases import (
    CASES,
    GOLDEN_DIR,
    PINS,
    SIGNIFICANT_DIGITS,
    Case,
    compare,
    parquet_hashes,
    parse,
    pinned_form,
    read_outputs,
    run_case,
    unexercised,
)


def _hashes_in_fresh_process(name: str) -> dict[str, str]:
    case = next(c for c in CASES if c.name == name)
    with tempfile.TemporaryDirectory() as tmp:
        return parquet_hashes(run_case(case, Path(tmp) / case.name))


def _changes(case: Case, forms: dict[str, str], max_lines: int = 12) -> list[str]:
    """What re-pinning changes in one case's tables, briefly, for the console."""
    case_dir = GOLDEN_DIR / case.name
    lines = []
    for stem in sorted(set(forms) | {p.stem for p in case_dir.glob("*.csv")}):
        path = case_dir / f"{stem}.csv"
        if stem not in forms:
            lines.append(f"{stem}: no longer written")
        elif not path.is_file():
            lines.append(f"{stem}: new")
        else:
            lines += compare(stem, parse(path.read_text()), parse(forms[stem]), max_rows=2)
    return lines[:max_lines] + (
        [f"... and {len(lines) - max_lines} more"] if len(lines) > max_lines else []
    )


def main() -> int:
    """Re-pin every golden case; exit 1 (writing nothing) if a run is unstable or inert."""
    old = json.loads(PINS.read_text()) if PINS.is_file() else {"cases": {}}
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, its own hash seed
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        names = [case.name for case in CASES]
        fresh = dict(zip(names, pool.map(_hashes_in_fresh_process, names), strict=True))
    pins: dict[str, Any] = {}
    forms: dict[str, dict[str, str]] = {}
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            run_dir = run_case(case, Path(tmp) / case.name)
            hashes = parquet_hashes(run_dir)
            if hashes != fresh[case.name]:
                unstable = sorted(k for k in hashes.keys() | fresh[case.name].keys()
                                  if hashes.get(k) != fresh[case.name].get(k))  # fmt: skip
                problems.append(f"{case.name}: Parquet bytes differ between two runs: {unstable}")
            tables = read_outputs(run_dir)
            missing = unexercised(case, tables)
            if missing:
                problems.append(f"{case.name}: no longer exercises {missing}; change the case")
            pins[case.name] = {**case.definition(), "sha256": hashes}
            forms[case.name] = pinned_form(tables)
    if problems:
        print("golden runs NOT updated:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    for stale in GOLDEN_DIR.iterdir():
        if stale.is_dir() and stale.name not in forms and any(stale.glob("*.csv")):
            shutil.rmtree(stale)
            print(f"{stale.name}: removed (no longer a golden case)")
    for case in CASES:
        changes = _changes(case, forms[case.name])
        pinned_before = old["cases"].get(case.name)
        if pinned_before and pinned_before.get("sha256") != pins[case.name]["sha256"]:
            changes.append("Parquet bytes changed")
        print(f"{case.name}: " + ("unchanged" if not changes else "changed"))
        for line in changes:
            print(f"  {line}")
        case_dir = GOLDEN_DIR / case.name
        case_dir.mkdir(exist_ok=True)
        for path in case_dir.glob("*.csv"):
            path.unlink()
        for stem, text in forms[case.name].items():
            (case_dir / f"{stem}.csv").write_text(text)
    document = {
        "about": "Pinned outputs of the golden runs; written by python -m tests.golden.update, "
        "see docs/golden.md",
        "significant_digits": SIGNIFICANT_DIGITS,
        "versions": versions(),
        "cases": pins,
    }
    PINS.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"written {PINS.relative_to(GOLDEN_DIR.parent.parent)} and the tables of "
          f"{len(CASES)} cases; review with: git diff --stat tests/golden")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
