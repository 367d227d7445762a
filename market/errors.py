"""User-facing configuration errors: one line naming the file, the key and what is allowed.

Every input a researcher writes (scenario files, regime presets, overrides, sweep specs) is
validated with pydantic; the first validation problem is turned into a :class:`ConfigError`, which
the command line prints as a single line before exiting with status 2.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError


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
        return text.replace("\r", "\\r").replace("\n", "\\n")


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
    exc: ValidationError, source: str, allowed_keys: list[str] | None = None
) -> ConfigError:
    """Turn the first error of a pydantic ``ValidationError`` into a one-line :class:`ConfigError`.

    Args:
        exc: the validation error.
        source: the file path or preset name the values came from.
        allowed_keys: the valid keys at the top level, named when the error is an unknown key.
    """
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "<root>"
    if error.get("type") == "extra_forbidden":
        allowed = ", ".join(sorted(allowed_keys)) if allowed_keys else None
        return ConfigError(source, key, "unknown key", allowed)
    message = error.get("msg", "invalid value")
    return ConfigError(source, key, message, _allowed_from_context(error))


def read_toml(path: str | Path, missing_key: str = "<file>") -> dict[str, Any]:
    """Read a user's TOML file, turning every way it can be unreadable into a ConfigError.

    Args:
        path: the file.
        missing_key: what to call the key in the message when the file does not exist (e.g. the
            command-line option that named it).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), missing_key, "file not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "<toml>", f"not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "<toml>", f"malformed TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(str(path), missing_key, f"cannot read: {exc.strerror}") from None
