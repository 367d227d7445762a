"""nplsim: an agent-based laboratory for securitisation law and policy.

The repository keeps its layout (``agents/``, ``market/``, ``experiments/``, ``viz/``); they are
installed as ``nplsim.agents``, ``nplsim.market``, ``nplsim.experiments`` and ``nplsim.viz``. This
module holds the version and the public API, imported on first use so that ``import nplsim`` (and
``nplsim --help``) stays fast::

    from nplsim import NPLMarketModel, load_scenario, compare

    model = NPLMarketModel(scenario="restart_2016", rng=42)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Public name -> module that defines it.
_API = {
    "NPLMarketModel": "nplsim.economy.model",
    "MODEL_COLUMNS": "nplsim.economy.measurement",
    "LegalRegime": "nplsim.market.regime",
    "load_regime": "nplsim.market.regime",
    "list_presets": "nplsim.market.regime",
    "diff_regimes": "nplsim.market.regime",
    "ScenarioConfig": "nplsim.market.scenario",
    "load_scenario": "nplsim.market.scenario",
    "list_scenarios": "nplsim.market.scenario",
    "ConfigError": "nplsim.market.errors",
    "simulate": "nplsim.experiments.run",
    "run_to_directory": "nplsim.experiments.run",
    "compare": "nplsim.experiments.compare",
    "run_sweep": "nplsim.experiments.sweep",
    "run_sensitivity": "nplsim.experiments.sensitivity",
    "validate": "nplsim.experiments.validate",
}

__all__ = ["__version__", *_API]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nplsim")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562); ``__version__`` is read
    from the installed metadata on first use too, so that ``import nplsim`` is instant (the
    command line sets up its signal handling first thing)."""
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'nplsim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
