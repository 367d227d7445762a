"""The shipped legal-regime presets (``market/regimes/*.toml``): their names and what each one's
header comment says of it (era, summary, the file its facts are cited from). Plain file reading,
no validation and no pydantic, so that ``nplsim regimes list`` answers at once; the presets
themselves are read and validated by :func:`nplsim.market.regime.load_regime`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

PRESETS_DIR: Path = Path(__file__).resolve().parent / "regimes"


def list_presets() -> list[str]:
    """Names of the preset regimes shipped in :data:`PRESETS_DIR`, sorted."""
    return sorted(path.stem for path in PRESETS_DIR.glob("*.toml"))


class PresetInfo(NamedTuple):
    """What a preset's header says of it: ``# era:``, ``# summary:`` and the file its facts are
    cited from (``Sources: docs/facts.md``), relative to the repository."""

    name: str
    era: str
    summary: str
    sources: str


def preset_info(name: str) -> PresetInfo:
    """The era, one-line summary and facts file of a shipped preset, read from its header
    comment (the lines before the first field), without validating the preset.

    Raises:
        ConfigError: unknown preset, or a header without ``era``, ``summary`` or ``Sources``.
    """
    if name not in list_presets():
        from nplsim.market.errors import ConfigError

        raise ConfigError(name, "preset", f"unknown preset {name!r}", ", ".join(list_presets()))
    path = PRESETS_DIR / f"{name}.toml"
    header: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            break
        header.append(line.lstrip("# ").rstrip())
    found = {"era": "", "summary": "", "sources": ""}
    for line in header:
        key, _, value = line.partition(":")
        if key in ("era", "summary") and value.strip():
            found[key] = value.strip()
    text = " ".join(header)
    if "Sources:" in text:
        found["sources"] = text.split("Sources:", 1)[1].split()[0].rstrip(",.;")
    for key, value in found.items():
        if not value:
            from nplsim.market.errors import ConfigError

            raise ConfigError(str(path), key, "missing from the preset's header comment",
                              "# era: ..., # summary: ... and Sources: FILE")  # fmt: skip
    return PresetInfo(Path(path).stem, found["era"], found["summary"], found["sources"])
