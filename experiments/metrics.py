"""The metric vocabulary: every outcome an experiment can report, each with one name, a unit and a
one-line meaning.

Two kinds of metric:

- **paths** — one value a quarter: every column of ``model.parquet`` (its unit and meaning from
  :data:`nplsim.experiments.odd_notes.MODEL_COLUMN_NOTES`), and a few paths derived from the run's
  tables: the weakest bank's ratios from ``banks.parquet`` and the cost gap between financing
  routes of the power sector. Where one number is needed (sensitivity, sweep summaries) a path is
  its mean over the window; ``compare`` reports both its mean and its final value.
- **statistics** — one number a run, computed over a window of quarters: ``NAME_mean`` (mean over
  the quarters where the path is defined), ``NAME_final`` (the last defined value: a quarter in
  which the path is undefined — no deal, no AMC sale, not a financing round — is skipped rather
  than giving NaN), ``NAME_sum`` (flows: the total over the window) and time-to-X statistics.

A window is ``all`` (quarters 1..T; quarter 0 is the opening balance sheet), ``post`` (from the
first reform or other regime event on, so that pre-reform quarters are excluded; ``all`` without
one) or ``Q1:Q2`` (quarters Q1 to Q2, both included). All statistics are vectorised over seeds.
``nplsim metrics`` lists the vocabulary; ``docs/metrics.md`` is generated from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nplsim.experiments.odd_notes import MODEL_COLUMN_NOTES
from nplsim.market.errors import ConfigError

WINDOWS = ("post", "all", "Q1:Q2")
STATISTICS = ("mean", "final", "sum", "halving")
# Columns that are flows (a quarter's amount) or counts: their total over a window means something.
FLOWS = (
    "new_npl", "written_off", "npl_sold_amc", "npl_carved_out", "npl_securitised",
    "capital_injected", "abs_issued", "secondary_volume", "liquidity_created_amc",
    "liquidity_created_securitisation", "liquidity_created_workout", "investor_losses",
    "enhancer_payouts", "recharacterisations", "remainder_sales", "power_npl_new",
    "power_abs_investor_losses", "power_capex_funded", "power_capex_unfunded", "power_rolled_over",
)  # fmt: skip
DOCS_FILE = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    Attributes:
        name: its one name.
        source: the path it is computed from (a ``model.parquet`` column or a derived path).
        statistic: ``"path"`` for a path, else how the path is reduced over the window.
        unit: the unit of its values.
        meaning: one line.
    """

    name: str
    source: str
    statistic: str
    unit: str
    meaning: str

    @property
    def is_path(self) -> bool:
        """Whether this is a quarterly path rather than one number a run."""
        return self.statistic == "path"

    @property
    def power(self) -> bool:
        """Whether it is defined only in scenarios with power plants."""
        return self.source.startswith("power_") or self.source == "coal_price"


# ====================================================================== derived paths
def _bank_extreme(column: str, how: str) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    def path(model: pd.DataFrame, banks: pd.DataFrame) -> np.ndarray:
        by_quarter = banks.groupby("quarter")[column].agg(how)
        return by_quarter.reindex(model["quarter"]).to_numpy(dtype=float)

    return path


def _gap(route: str, base: str) -> Callable[[pd.DataFrame, pd.DataFrame | None], np.ndarray]:
    def path(model: pd.DataFrame, banks: pd.DataFrame | None) -> np.ndarray:
        own = model[f"power_quote_{route}_bp"].to_numpy(dtype=float)
        return own - model[f"power_quote_{base}_bp"].to_numpy(dtype=float)

    return path


# name -> (unit, meaning, needs banks.parquet, function of (model frame, bank frame))
DERIVED_PATHS: dict[str, tuple[str, str, bool, Callable[..., np.ndarray]]] = {
    "bank_car_min": ("share", "Capital adequacy ratio of the weakest bank (lowest CAR).", True,
                     _bank_extreme("car", "min")),
    "bank_npl_ratio_max": ("share", "NPL ratio of the bank with the most NPLs (highest ratio).",
                           True, _bank_extreme("npl_ratio", "max")),
    "bank_liquidity_ratio_min": ("share", "Liquidity ratio of the least liquid bank.", True,
                                 _bank_extreme("liquidity_ratio", "min")),
    "bank_lcr_min": ("share", "Liquidity coverage ratio of the bank with the lowest LCR.", True,
                     _bank_extreme("lcr", "min")),
    "power_pooled_minus_loan_bp": (
        "bp a year", "All-in cost of a place in the centre's pool minus that of a bank loan, "
        "quoted to the same plants (cumulative means; NaN while either route was never open).",
        False, _gap("pooled", "loan"),
    ),
    "power_standalone_minus_loan_bp": (
        "bp a year", "All-in cost of a stand-alone receivables ABS minus that of a bank loan, "
        "quoted to the same plants (cumulative means; NaN while either route was never open).",
        False, _gap("standalone", "loan"),
    ),
}  # fmt: skip


def _lower(text: str) -> str:
    text = text.rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


@cache
def registry() -> dict[str, Metric]:
    """Every metric by name, in a stable order (paths, then their statistics)."""
    paths = {c: v for c, v in MODEL_COLUMN_NOTES.items() if c != "quarter"}
    paths.update({name: (unit, meaning) for name, (unit, meaning, _, _) in DERIVED_PATHS.items()})
    metrics: dict[str, Metric] = {}
    for name, (unit, meaning) in paths.items():
        metrics[name] = Metric(name, name, "path", unit, meaning)
    for name, (unit, meaning) in paths.items():
        what = _lower(meaning)
        metrics[f"{name}_mean"] = Metric(
            f"{name}_mean", name, "mean", unit,
            f"Mean over the window's quarters where it is defined of: {what}.",
        )  # fmt: skip
        metrics[f"{name}_final"] = Metric(
            f"{name}_final", name, "final", unit,
            f"Last defined value in the window (undefined quarters, e.g. without a deal or a "
            f"financing round, are skipped) of: {what}.",
        )  # fmt: skip
        if name in FLOWS:
            metrics[f"{name}_sum"] = Metric(
                f"{name}_sum", name, "sum", unit, f"Total over the window of: {what}."
            )
    metrics["npl_ratio_halving_q"] = Metric(
        "npl_ratio_halving_q", "npl_ratio", "halving", "quarters",
        "Quarters from the window's first quarter until the NPL ratio is at or below half its "
        "value there (NaN if it never is in the window).",
    )  # fmt: skip
    return metrics


def get(name: str, source: str = "metrics", key: str = "metrics") -> Metric:
    """The metric of that name.

    Raises:
        ConfigError: an unknown name, in one line naming the allowed values.
    """
    metrics = registry()
    if name not in metrics:
        raise ConfigError(source, key, f"unknown metric {name!r}", allowed_text())
    return metrics[name]


def allowed_text() -> str:
    """The allowed metric names, compactly: the paths, then how statistics are named."""
    paths = [m.name for m in registry().values() if m.is_path]
    return (", ".join(paths) + "; and each as NAME_mean or NAME_final (flows also NAME_sum), "
            "npl_ratio_halving_q (see `nplsim metrics`)")  # fmt: skip


def parse_names(text: str | Sequence[str], source: str = "--metrics", key: str = "metrics"):
    """Comma-separated (or listed) metric names, each checked; at least one."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    if not names:
        raise ConfigError(source, key, "need at least one metric", "a name of `nplsim metrics`")
    return tuple(get(n, source, key).name for n in names)


def scalar(name: str, source: str = "metrics", key: str = "metrics") -> Metric:
    """The one-number-a-run metric a name means: a path stands for its mean over the window."""
    metric = get(name, source, key)
    if metric.is_path:
        return Metric(metric.name, metric.source, "mean", metric.unit, metric.meaning)
    return metric


def needs_banks(names: Iterable[str]) -> bool:
    """Whether any of the metrics needs ``banks.parquet``."""
    return any(DERIVED_PATHS.get(get(n).source, ("", "", False))[2] for n in names)


# ====================================================================== windows
def parse_window(text: str, source: str = "--window") -> str:
    """``post``, ``all`` or ``Q1:Q2`` with integers 0 <= Q1 <= Q2, checked; returned as given."""
    text = str(text).strip()
    if text in ("post", "all"):
        return text
    first, sep, last = text.partition(":")
    if sep and first.strip().isdigit() and last.strip().isdigit() and int(first) <= int(last):
        return f"{int(first)}:{int(last)}"
    raise ConfigError(source, "window", f"{text!r} is not a window",
                      "post, all or Q1:Q2 (quarters, Q1 <= Q2)")  # fmt: skip


def window_bounds(
    window: str, horizon: int, event_quarters: Iterable[int] = (), source: str = "--window"
) -> tuple[int, int]:
    """First and last quarter (both included) of a window in a run of ``horizon`` quarters.

    ``post`` starts at the earliest regime event (the quarter the law changes, its first quarter
    under the new law), ``all`` at quarter 1; both end at the horizon.
    """
    window = parse_window(window, source)
    if window == "all":
        return 1, horizon
    if window == "post":
        events = [q for q in event_quarters if 1 <= q <= horizon]
        return (min(events) if events else 1), horizon
    first, last = (int(x) for x in window.split(":"))
    if last > horizon:
        raise ConfigError(source, "window", f"{window} ends after the horizon", f"0:{horizon}")
    return first, last


# ====================================================================== computing metrics
def source_paths(
    model: pd.DataFrame, banks: pd.DataFrame | Callable[[], pd.DataFrame] | None,
    sources: Sequence[str],
) -> np.ndarray:  # fmt: skip
    """The quarterly paths of ``sources`` from a run's tables: shape ``(quarters + 1, sources)``.

    ``banks`` may be a callable, called only if a source needs ``banks.parquet``.
    """
    columns = []
    bank_frame: pd.DataFrame | None = None
    for source in sources:
        if source in DERIVED_PATHS:
            _, _, with_banks, path = DERIVED_PATHS[source]
            if with_banks and bank_frame is None:
                bank_frame = banks() if callable(banks) else banks
                if bank_frame is None:
                    raise ConfigError("metrics", source, "needs banks.parquet", "outputs banks")
            columns.append(path(model, bank_frame))
        else:
            columns.append(model[source].to_numpy(dtype=float))
    if not columns:
        return np.empty((len(model), 0))
    return np.column_stack(columns)


def reduce(values: np.ndarray, statistic: str, first: int = 1, last: int | None = None):
    """Reduce paths ``(..., quarters + 1)`` to one number each over quarters ``first..last``.

    ``mean`` skips undefined (NaN) quarters; ``final`` is the last defined value; ``sum`` the
    total of the defined values; ``halving`` the quarters from ``first`` until the path is at or
    below half its value at ``first``. A window with no defined value gives NaN.
    """
    values = np.asarray(values, dtype=float)
    last = values.shape[-1] - 1 if last is None else last
    if values.shape[-1] == 1:
        first = last = 0
    body = values[..., first : last + 1]
    finite = np.isfinite(body)
    count = finite.sum(axis=-1)
    nan = np.full(count.shape, np.nan)
    if statistic in ("mean", "path"):
        total = np.where(finite, body, 0.0).sum(axis=-1)
        return np.divide(total, count, out=nan, where=count > 0)
    if statistic == "sum":
        return np.where(count > 0, np.where(finite, body, 0.0).sum(axis=-1), np.nan)
    if statistic == "final":
        position = np.where(finite, np.arange(body.shape[-1]), -1).max(axis=-1)
        taken = np.take_along_axis(body, np.maximum(position, 0)[..., None], axis=-1)[..., 0]
        return np.where(position >= 0, taken, np.nan)
    if statistic == "halving":
        hit = body <= body[..., :1] / 2.0
        reached = hit.any(axis=-1) & np.isfinite(body[..., 0])
        return np.where(reached, hit.argmax(axis=-1).astype(float), np.nan)
    raise ValueError(f"unknown statistic {statistic!r}")


def evaluate(
    metric: Metric, paths: np.ndarray, first: int = 1, last: int | None = None
) -> np.ndarray:
    """The metric's value for every path ``(..., quarters + 1)`` of its source."""
    return reduce(paths, metric.statistic, first, last)


# ====================================================================== listing
def table(names: Iterable[str] | None = None) -> pd.DataFrame:
    """The vocabulary as a table: name, unit, kind, meaning."""
    metrics = registry()
    chosen = list(metrics) if names is None else list(names)
    return pd.DataFrame(
        [{"name": n, "unit": metrics[n].unit,
          "kind": "path" if metrics[n].is_path else metrics[n].statistic,
          "meaning": metrics[n].meaning} for n in chosen],
        columns=["name", "unit", "kind", "meaning"],
    )  # fmt: skip


def markdown() -> str:
    """``docs/metrics.md``: the vocabulary as Markdown (``python -m nplsim.experiments.metrics``
    writes it; a test checks that the file matches)."""
    lines = [
        "# Metrics",
        "",
        "<!-- generated by `python -m nplsim.experiments.metrics` from experiments/metrics.py; "
        "do not edit -->",
        "",
        (__doc__ or "").split("\n\n", 1)[1].strip(),
        "",
        "`nplsim compare --metrics a,b --window post|all|Q1:Q2`, the `outcomes` of a sensitivity "
        "or sweep spec and `nplsim metrics` all use these names.",
        "",
        "| name | unit | kind | meaning |",
        "|---|---|---|---|",
    ]
    for row in table().itertuples(index=False):
        meaning = row.meaning.replace("|", "\\|")
        lines.append(f"| `{row.name}` | {row.unit} | {row.kind} | {meaning} |")
    return "\n".join(lines) + "\n"


def _cmd_metrics(args: argparse.Namespace) -> int:
    shown = table()
    if args.grep:
        word = args.grep.lower()
        keep = shown["name"].str.lower().str.contains(word, regex=False) | shown[
            "meaning"
        ].str.lower().str.contains(word, regex=False)
        shown = shown[keep]
    if args.kind:
        shown = shown[shown["kind"] == args.kind]
    width = max((len(n) for n in shown["name"]), default=4)
    unit_width = max((len(u) for u in shown["unit"]), default=4)
    for row in shown.itertuples(index=False):
        print(f"{row.name:<{width}}  {row.unit:<{unit_width}}  {row.meaning}")
    return 0


def register_cli(sub: Any) -> None:
    """Add ``nplsim metrics`` to the subcommands."""
    p = sub.add_parser("metrics", help="list metrics: name, unit, meaning")
    p.add_argument("--grep", metavar="WORD", help="only metrics whose name or meaning has WORD")
    p.add_argument("--kind", choices=("path", *STATISTICS), help="only metrics of this kind")
    p.set_defaults(handler=_cmd_metrics)


if __name__ == "__main__":
    DOCS_FILE.write_text(markdown())
