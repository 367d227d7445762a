"""Scenario files: where the built-in ones are, which file a name means, and inheritance (a file
that names a ``base`` scenario changes only the keys it sets)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nplsim.market.errors import ConfigError, read_toml

SCENARIOS_DIR = Path(__file__).with_name("scenarios")


def list_scenarios() -> list[str]:
    """Names of the built-in scenarios."""
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml"))


def scenario_source(name_or_path: str | Path) -> Path:
    """The file behind a scenario name or path; a ConfigError names the choices if unknown."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or os.path.lexists(path) or "/" in str(name_or_path):
        return path
    if str(name_or_path) not in list_scenarios():
        raise ConfigError(
            str(name_or_path), "scenario", "unknown scenario", ", ".join(list_scenarios())
        )
    return SCENARIOS_DIR / f"{name_or_path}.toml"


def scenario_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A scenario file's table with its ``base`` resolved: the base scenario (a built-in name,
    or a path relative to the file) with this file's keys laid over it. Tables merge key by key;
    any other value (a number, a list such as ``banks`` or ``events``) replaces the base's.

    Raises:
        ConfigError: an unknown base, a base that is not a string, or a cycle of bases.
    """
    data = read_toml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(str(path), "base", "must be a scenario name or a path",
                          ", ".join(list_scenarios()) + " or a TOML file")  # fmt: skip
    base_path = Path(base)
    if base in list_scenarios():
        base_path = SCENARIOS_DIR / f"{base}.toml"
    elif not base_path.is_absolute():
        base_path = path.parent / base_path
    if not base_path.is_file():
        raise ConfigError(str(path), "base", f"unknown scenario {base!r}",
                          ", ".join(list_scenarios()) + " or a TOML file")  # fmt: skip
    chain = (*seen, path.resolve())
    if base_path.resolve() in chain:
        raise ConfigError(str(path), "base", f"{base!r} leads back to this file (a cycle)")
    inherited = scenario_data(base_path, chain)
    inherited.pop("name", None)  # a scenario is named after its own file, and says what it is
    inherited.pop("description", None)
    return _merged(inherited, data)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
