"""User-facing configuration errors, and the reading of the files a user hands to nplsim.

Every input a researcher writes (scenario files, regime presets, overrides, sweep specs) is
validated with pydantic; the first validation problem is turned into a :class:`ConfigError`, which
the command line prints as a single line before exiting with status 2. Input files are read by
:func:`read_toml` and :func:`read_json`: regular files only, of bounded size and nesting, so that a
FIFO, a directory, ``/dev/zero`` or a deeply nested document is one line, never a hang or a
traceback. :func:`printable` escapes whatever a user typed before it is echoed to a terminal.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
import unicodedata
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

# The largest input file read: the biggest real one (a run's manifest.json) is ~10 kB, a sweep
# spec listing a million values ~10 MB; beyond this a file is a mistake (a log, a data file).
MAX_INPUT_BYTES = 32 * 1024 * 1024
# Deepest nesting of tables and arrays accepted: real inputs reach 5 levels (a manifest holding a
# power scenario's coal shocks); parsers and validators recurse, so depth must stay far below
# Python's recursion limit.
MAX_NESTING = 32
# Unicode categories escaped before user text reaches a terminal: control characters (Cc),
# format characters (Cf: bidi overrides and isolates, zero-width marks) and line and paragraph
# separators (Zl, Zp).
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What a file of each kind other than a regular file is called in a message.
_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def printable(text: object) -> str:
    """``text`` on one line with every control, format (bidi) and separator character escaped
    (``\\n``, ``\\x1b``, ``\\u202e``), so that echoing user input can neither break a message
    over lines nor reorder or recolour a terminal."""
    out = []
    for char in str(text):
        if unicodedata.category(char) not in _UNPRINTABLE:
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


class ConfigError(ValueError):
    """A problem in user input, located by source (file or preset name) and key."""

    def __init__(self, source: str, key: str, problem: str, allowed: str | None = None):
        self.source = source
        self.key = key
        self.problem = problem
        self.allowed = allowed
        super().__init__(str(self))

    def __reduce__(self):
        # picklable with all its parts, so an error raised in a worker process arrives whole
        return (ConfigError, (self.source, self.key, self.problem, self.allowed))

    def __str__(self) -> str:
        text = f"{self.source}: {self.key}: {self.problem}"
        if self.allowed:
            text += f" (allowed: {self.allowed})"
        # one line, whatever the user typed into a key, a path or a value
        return printable(text)


def _number_type(annotation: Any) -> type | None:
    """``int`` or ``float`` for a number field (optional or not), else None."""
    if get_origin(annotation) in (Union, UnionType):
        kinds = [a for a in get_args(annotation) if a is not NoneType]
        annotation = kinds[0] if len(kinds) == 1 else None
    return annotation if annotation in (int, float) else None


def _not_a_number(value: Any) -> str | None:
    if isinstance(value, bool):
        return "a boolean"
    return "text" if isinstance(value, str) else None


class StrictModel(BaseModel):
    """A pydantic model whose number fields (and lists of numbers) take numbers only.

    Pydantic would read ``true`` as 1 and ``"3"`` as 3, so ``--set quarters=true`` ran one
    quarter; here either is refused, while an integer where a float is expected still counts.
    """

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_only(cls, value: Any, info: ValidationInfo) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        kind = _number_type(annotation)
        if kind is not None and (wrong := _not_a_number(value)):
            raise ValueError(f"expected a number, got {wrong}")
        if get_origin(annotation) in (list, tuple) and isinstance(value, list | tuple):
            element = get_args(annotation)[0] if get_args(annotation) else None
            if _number_type(element) is not None:
                for item in value:
                    if wrong := _not_a_number(item):
                        raise ValueError(f"expected numbers, got {wrong}")
        return value


class StrictSpec(StrictModel):
    """A block of a scenario or a regime: numbers only where numbers are meant, no unknown keys,
    finite values, frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _allowed_from_context(error: dict[str, Any]) -> str | None:
    """Describe the allowed values of a pydantic error from its context, where it says."""
    ctx = error.get("ctx") or {}
    kind = error.get("type", "")
    if "expected" in ctx:
        return str(ctx["expected"])
    bounds = []
    for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if name in ctx:
            bounds.append(f"{symbol} {ctx[name]}")
    if bounds:
        return " and ".join(bounds)
    if kind == "extra_forbidden":
        return None
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return kind.removesuffix("_parsing").removesuffix("_type")
    return None


def config_error_from_validation(
    exc: ValidationError,
    source: str,
    allowed_keys: list[str] | None = None,
    model: type[BaseModel] | None = None,
) -> ConfigError:
    """Turn the first error of a pydantic ``ValidationError`` into a one-line :class:`ConfigError`.

    Args:
        exc: the validation error.
        source: the file path or preset name the values came from.
        allowed_keys: the valid keys at the top level, named when the error is an unknown key.
        model: the validated model; an unknown key inside one of its tables is then named with
            the keys of that table, not of the top level.
    """
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "<root>"
    if error.get("type") == "extra_forbidden":
        if model is not None and len(error["loc"]) > 1:
            allowed_keys = _keys_at(model, error["loc"][:-1])
        allowed = ", ".join(sorted(allowed_keys)) if allowed_keys else None
        return ConfigError(source, key, "unknown key", allowed)
    message = error.get("msg", "invalid value").removeprefix("Value error, ")
    field, sep, rest = message.partition(": ")
    if key == "<root>" and sep and allowed_keys and field in allowed_keys:
        key, message = field, rest  # a check across fields that names the one at fault
    return ConfigError(source, key, message, _allowed_from_context(error))


def _keys_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str] | None:
    """The keys of the table at ``path`` inside ``model`` (list indices and table keys that are
    not fields are stepped over); None where no model is found there."""
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # an index into a list, or a key of a table of models
        found = _model_in(field.annotation)
        if found is None:
            return None
        model = found
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class an annotation holds (itself, or inside an optional, a union, a list or a
    table); None if it holds none."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def read_toml(path: str | Path, missing_key: str = "<file>") -> dict[str, Any]:
    """Read a user's TOML file, turning every way it can be unreadable into a ConfigError.

    Args:
        path: the file.
        missing_key: what to call the key in the message when the file cannot be read (e.g. the
            command-line option that named it).
    """
    source = str(path)
    try:
        text = read_bytes(path, missing_key).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "<toml>", f"not UTF-8 text: {exc.reason}") from None
    return parse_toml(text, source)


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """A TOML document as a dict; malformed or too deeply nested TOML is a ConfigError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "<toml>", f"malformed TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(source, "<toml>", _too_deep()) from None
    check_nesting(data, source, "<toml>")
    return data


def read_json(path: str | Path, missing_key: str = "<file>") -> dict[str, Any]:
    """Read a JSON object from a file nplsim wrote (a manifest): strict JSON (no NaN or Infinity),
    bounded like every input; anything else is a ConfigError naming the file."""
    source = str(path)
    raw = read_bytes(path, missing_key)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        problem = f"malformed JSON: not UTF-8 text: {exc.reason}"
        raise ConfigError(source, "<json>", problem) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(source, "<json>", f"malformed JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(source, "<json>", _too_deep()) from None
    except ValueError as exc:  # NaN, Infinity
        raise ConfigError(source, "<json>", f"not strict JSON: {exc}") from None
    check_nesting(data, source, "<json>")
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
            type(data), "number"
        )
        raise ConfigError(source, "<root>", f"expected a JSON object, got {kind}")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _too_deep() -> str:
    return f"nested more than {MAX_NESTING} levels deep"


def check_nesting(data: Any, source: str, key: str) -> None:
    """Refuse tables and arrays nested more than :data:`MAX_NESTING` levels (checked without
    recursion, so any depth is refused cleanly)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_NESTING:
                raise ConfigError(source, key, _too_deep())
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def read_bytes(path: str | Path, key: str = "<file>") -> bytes:
    """The bytes of a user's input file.

    Only a regular file of at most :data:`MAX_INPUT_BYTES` is read; a directory, FIFO, device or
    socket, a dangling symbolic link or a loop of them, a file that may not be read or one under a
    directory that may not be searched are each one ConfigError saying which. A FIFO is opened
    without waiting for a writer.
    """
    path = Path(path)
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        dangling = os.path.lexists(path)
        raise ConfigError(
            source, key, "a symbolic link to a file that does not exist" if dangling
            else "file not found",
        ) from None  # fmt: skip
    except OSError as exc:
        raise ConfigError(source, key, f"cannot read: {os_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        for is_kind, kind in _FILE_KINDS:
            if is_kind(info.st_mode):
                raise ConfigError(source, key, f"is {kind}, not a regular file")
        if info.st_size > MAX_INPUT_BYTES:
            raise ConfigError(source, key, _too_big(info.st_size))
        data = _read_at_most(fd, MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, key, f"cannot read: {os_reason(exc)}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_INPUT_BYTES:  # a file whose size the file system does not tell (/proc)
        raise ConfigError(source, key, _too_big(len(data)))
    return data


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd`` (fewer at the end of the file)."""
    chunks, total = [], 0
    while total < limit:
        chunk = os.read(fd, min(1 << 20, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _too_big(size: int) -> str:
    return f"{size:,} bytes or more, above the {MAX_INPUT_BYTES:,} an input file may have"


def os_reason(exc: OSError) -> str:
    """Why an operating-system call failed, in its own words (``Permission denied``)."""
    return exc.strerror or type(exc).__name__
