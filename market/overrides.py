"""Overrides of a scenario: the one path every override key takes.

``--set`` on the command line, a spec file's ``overrides`` and ``parameters``, and
``NPLMarketModel(**overrides)`` all change a scenario's data here before it is validated: a
scenario field (dotted, or with ``__``, into nested tables), a legal-regime field (it goes to the
scenario's ``regime_overrides``), ``regime_overrides.FIELD``, or a whole ``regime_overrides``
table, or a prudential field (it goes to ``prudential_overrides``), ``prudential_overrides.FIELD``.
Relative preset paths are read beside the file that names them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nplsim.market.errors import ConfigError
from nplsim.market.prudential_rules import PrudentialRules
from nplsim.market.regime import LegalRegime, list_presets

REGIME_TABLE = "regime_overrides"
PRUDENTIAL_TABLE = "prudential_overrides"


def is_path(preset: object) -> bool:
    """Whether a preset name is a file path (``my_law.toml``, ``laws/x``) rather than a name."""
    return isinstance(preset, str) and (preset.endswith(".toml") or "/" in preset)


def known_preset(name: str) -> bool:
    """Whether a regime names a shipped preset or a file path (a missing file is said later)."""
    return name in list_presets() or is_path(name)


def path_beside(preset: object, base_dir: Path | None) -> object:
    """A relative preset path read from ``base_dir`` (the folder of the file that names it)."""
    if base_dir is None or not is_path(preset) or Path(str(preset)).is_absolute():
        return preset
    return str(base_dir / str(preset))


def paths_beside(data: dict[str, Any], base_dir: Path) -> None:
    """Make the preset paths a scenario file names (its regime, its events' regimes) relative to
    the file's folder, not to the working directory."""
    if "regime" in data:
        data["regime"] = path_beside(data["regime"], base_dir)
    events = data.get("events")
    if isinstance(events, list):
        for event in events:
            if isinstance(event, dict) and "regime" in event:
                event["regime"] = path_beside(event["regime"], base_dir)


@dataclass
class Applied:
    """Overrides applied to a scenario's data, and the keys the user wrote for them."""

    data: dict[str, Any]
    regime_keys: dict[str, str] = field(default_factory=dict)  # regime field -> key as given
    scenario_keys: set[str] = field(default_factory=set)  # top-level scenario fields set


def apply_overrides(
    data: dict[str, Any],
    overrides: Mapping[str, Any],
    origin: str,
    base_dir: Path | None = None,
    *,
    fields: Collection[str],
) -> Applied:
    """Apply override keys to a scenario's data: the one path every override takes (``--set``,
    a spec's ``overrides`` and ``parameters``, ``NPLMarketModel(**overrides)``).

    A key is a scenario field, dotted (or with ``__``) into nested tables; a legal-regime field,
    which goes to ``regime_overrides``; ``regime_overrides.FIELD``, the same; or
    ``regime_overrides`` with a table, which replaces the scenario's regime overrides. A key under
    ``regime_overrides`` that is not a regime field is refused. A preset path is read from
    ``base_dir`` when relative (the working directory if None). Values are validated afterwards,
    by the scenario's and the regime's schemas.

    ``fields`` are the scenario's top-level fields (a dotted key must start with one).

    Raises:
        ConfigError: an unknown key, or a key into a value that is not a table, named as given.
    """
    applied = Applied(data)
    regime_changes = dict(data.get(REGIME_TABLE) or {})
    prudential_changes = dict(data.get(PRUDENTIAL_TABLE) or {})
    for raw_key, value in overrides.items():
        key = str(raw_key).replace("__", ".")
        head, _, rest = key.partition(".")
        if key in PrudentialRules.model_fields:
            prudential_changes[key] = value
        elif head == PRUDENTIAL_TABLE and rest:
            _check_prudential_field(rest, origin, str(raw_key))
            prudential_changes[rest] = value
        elif key in LegalRegime.model_fields:
            regime_changes[key] = value
            applied.regime_keys[key] = str(raw_key)
        elif head == REGIME_TABLE and rest:
            _check_regime_field(rest, origin, str(raw_key))
            regime_changes[rest] = value
            applied.regime_keys[rest] = str(raw_key)
        elif key == REGIME_TABLE:
            regime_changes = _table(value, origin, str(raw_key), "regime", _check_regime_field)
            applied.regime_keys.update({name: f"{raw_key}.{name}" for name in regime_changes})
        elif key == PRUDENTIAL_TABLE:
            prudential_changes = _table(
                value, origin, str(raw_key), "prudential", _check_prudential_field
            )
        else:
            if key == "regime" or key == "events":
                value = _with_paths_beside(key, value, base_dir)
            _set_dotted(data, key, value, origin, fields)
            applied.scenario_keys.add(head)
    data[REGIME_TABLE] = regime_changes
    data[PRUDENTIAL_TABLE] = prudential_changes
    return applied


def _with_paths_beside(key: str, value: Any, base_dir: Path | None) -> Any:
    if key == "regime":
        return path_beside(value, base_dir)
    if not isinstance(value, list):
        return value
    return [
        {**event, "regime": path_beside(event["regime"], base_dir)}
        if isinstance(event, Mapping) and "regime" in event
        else event
        for event in value
    ]


def _table(
    value: Any, origin: str, key: str, what: str, check: Callable[[str, str, str], None]
) -> dict[str, Any]:
    """A whole ``regime_overrides`` or ``prudential_overrides`` table given as one value: it
    replaces the scenario's, each field checked."""
    if not isinstance(value, Mapping):
        raise ConfigError(origin, key, f"expected a table of {what} fields",
                          f"{{FIELD = VALUE, ...}} with {what} fields")  # fmt: skip
    for name in value:
        check(str(name), origin, f"{key}.{name}")
    return {str(name): inner for name, inner in value.items()}


def _check_prudential_field(name: str, origin: str, key: str) -> None:
    if name not in PrudentialRules.model_fields:
        raise ConfigError(
            origin, key, "not a prudential field", ", ".join(PrudentialRules.model_fields)
        )


def _check_regime_field(name: str, origin: str, key: str) -> None:
    if name not in LegalRegime.model_fields:
        raise ConfigError(
            origin, key, "not a legal-regime field", ", ".join(LegalRegime.model_fields)
        )


def _set_dotted(
    data: dict[str, Any], dotted: str, value: Any, source: str, fields: Collection[str]
) -> None:
    parts = dotted.split(".")
    node: Any = data
    for part in parts[:-1]:
        if isinstance(node, dict):
            if node.get(part) is None:  # an absent optional block, e.g. power
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(source, dotted, "cannot set inside a value that is not a table")
    if not isinstance(node, dict):
        raise ConfigError(source, dotted, "cannot set inside a value that is not a table")
    if len(parts) == 1 and parts[0] not in fields:
        allowed = sorted([*fields, *LegalRegime.model_fields, *PrudentialRules.model_fields])
        raise ConfigError(source, dotted, "unknown key", ", ".join(allowed))
    node[parts[-1]] = value
