"""Writing TOML: plain data (tables, arrays of tables, scalars, arrays) as a TOML document.

Used wherever nplsim writes a scenario file a user can run again (a calibrated scenario, the
lab's export); the files it writes read back to the same data with ``tomllib``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_document(data: dict[str, Any]) -> str:
    """A TOML document of plain data (tables, arrays of tables, scalars, arrays of scalars)."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines).strip() + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, dict) and bool(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(lines: list[str], path: list[str], table: dict[str, Any], array: bool = False) -> None:
    scalars = {k: v for k, v in table.items() if not (_is_table(v) or _is_table_array(v))}
    if path and (scalars or array or not table):
        lines.append("")
        header = ".".join(_key(p) for p in path)
        lines.append(f"[[{header}]]" if array else f"[{header}]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        if _is_table(value):
            _table(lines, [*path, key], value)
        elif _is_table_array(value):
            for item in value:
                _table(lines, [*path, key], item, array=True)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")
