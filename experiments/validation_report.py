"""The report of ``nplsim validate``: the summary table (one row per fact, ``validation.csv``), its
formatted form, the paragraph on where the model misses, and ``validation.md``.

A fact *holds* when the model's median over seeds lies in its band; a floor or a ceiling (a band
open on one side) holds only when at least 95% of the seeds lie in it (:data:`SEED_SHARE`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from nplsim.experiments.facts_spec import KIND_LABEL, UNIT_SCALE, UNIT_SUFFIX, FactSpec, _num

CSV_COLUMNS = (
    "id", "kind", "description", "source", "scenario", "statistic", "unit", "model_median",
    "model_p2_5", "model_p97_5", "n_seeds", "seeds_with_deals", "share_in_band", "fact_value",
    "tolerance", "band_low", "band_high", "holds", "note",
)  # fmt: skip
SEED_SHARE = 0.95  # a floor or ceiling must hold in at least this share of the seeds


def summarise(
    facts: Sequence[FactSpec],
    scenarios: dict[str, str],
    values: dict[str, list[float]],
    deal_counts: dict[str, list[int]] | None = None,
) -> pd.DataFrame:
    """One row per fact: the model's median and 95% range over seeds, the band and the verdict.

    ``deal_counts`` gives, per scenario, the number of deals each seed's run issued; a deals
    fact's row says in how many seeds there were deals (``seeds_with_deals``, "k of N").
    """
    deal_counts = deal_counts or {}
    rows = []
    for fact in facts:
        row: dict[str, object] = {
            "id": fact.id,
            "kind": KIND_LABEL[fact.kind],
            "description": fact.description,
            "source": fact.source,
            "scenario": fact.scenario,
            "statistic": "—",
            "unit": fact.unit,
            "model_median": math.nan,
            "model_p2_5": math.nan,
            "model_p97_5": math.nan,
            "n_seeds": 0,
            "seeds_with_deals": "",
            "share_in_band": math.nan,
            "fact_value": fact.fact_text(),
            "tolerance": fact.tolerance_text(),
            "band_low": math.nan,
            "band_high": math.nan,
            "holds": "",
            "note": fact.note,
        }
        if fact.statistic is not None:
            scale = UNIT_SCALE[fact.unit]
            sample = np.asarray(values[fact.id], dtype=float) * scale
            finite = sample[~np.isnan(sample)]
            low, high = fact.band()
            row.update(statistic=fact.statistic.describe(fact.when), band_low=low, band_high=high)
            row["n_seeds"] = int(finite.size)
            if finite.size:
                median = float(np.median(finite))
                row["model_median"] = median
                row["model_p2_5"] = float(np.percentile(finite, 2.5))
                row["model_p97_5"] = float(np.percentile(finite, 97.5))
                share = float(np.mean((low <= sample) & (sample <= high)))  # NaN: not in band
                row["share_in_band"] = share
                held = share >= SEED_SHARE if fact.one_sided else low <= median <= high
                row["holds"] = bool(held)
            else:
                row["holds"] = False
            if fact.statistic.table == "calibration":
                row["scenario"] = "— (all)"
            if fact.statistic.table == "deals":
                row.update(_deals_note(fact, deal_counts.get(scenarios.get(fact.id, ""), [])))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def _deals_note(fact: FactSpec, counts: Sequence[int]) -> dict[str, str]:
    """How many seeds had deals, said in the row's note (and "no deals" when none had any)."""
    with_deals = sum(1 for c in counts if c > 0)
    if with_deals == 0:
        said = (
            f"No deals in any of the {len(counts)} seeds: the statistic is undefined, so the "
            "fact does not hold."
        )
    else:
        said = f"Deals in {with_deals} of {len(counts)} seeds (seeds without deals give no value)."
    return {
        "seeds_with_deals": f"{with_deals} of {len(counts)}",
        "note": f"{said} {fact.note}".strip(),
    }


def _model_text(row: pd.Series) -> tuple[str, str]:
    if row["statistic"] == "—":
        return "—", "—"
    if row["n_seeds"] == 0:
        return "no data", "—"
    unit = row["unit"]
    suffix = UNIT_SUFFIX[unit]
    median = f"{_num(row['model_median'], unit)}{suffix}"
    span = f"{_num(row['model_p2_5'], unit)}–{_num(row['model_p97_5'], unit)}"
    return median, span


def _band_text(row: pd.Series) -> str:
    if row["statistic"] == "—":
        return "—"
    unit = row["unit"]
    return f"[{_num(row['band_low'], unit)}, {_num(row['band_high'], unit)}]"


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The summary with numbers formatted, as shown on screen and in the Markdown."""
    shown = []
    for _, row in table.iterrows():
        median, span = _model_text(row)
        fit = {"fit": row["fit"]} if "fit" in row.index else {}
        shown.append(
            {
                "id": row["id"],
                **fit,
                "kind": row["kind"],
                "description": row["description"],
                "source (docs/facts.md)": row["source"],
                "scenario": row["scenario"] or "—",
                "model statistic (per seed)": row["statistic"]
                + (
                    f"; deals in {row['seeds_with_deals']} seeds" if row["seeds_with_deals"] else ""
                ),
                "model median": median,
                "model 95% range": span,
                "seeds in band": "—"
                if math.isnan(row["share_in_band"])
                else f"{100 * row['share_in_band']:.0f}%",
                "fact": row["fact_value"],
                "tolerance": row["tolerance"],
                "band": _band_text(row),
                "holds": "—" if row["holds"] == "" else str(row["holds"]),
            }
        )
    return pd.DataFrame(shown)


def misses_paragraph(table: pd.DataFrame) -> str:
    """Plain words on every fact the model misses, and on what it does not model yet."""
    checked = table[table["holds"] != ""]
    missed = checked[checked["holds"] != True]  # noqa: E712 — column mixes bools and ""
    outputs = checked[checked["kind"] == KIND_LABEL["output"]]
    outputs_held = int((outputs["holds"] == True).sum())  # noqa: E712
    text = [
        f"{len(checked) - len(missed)} of {len(checked)} checked facts hold "
        f"({outputs_held} of {len(outputs)} model outputs; the rest check initial conditions and "
        f"calibration inputs)."
    ]
    if missed.empty:
        text.append("The model misses none of the checked facts.")
    else:
        text.append("The model misses:")
        parts = []
        for _, row in missed.iterrows():
            unit = row["unit"]
            suffix = UNIT_SUFFIX[unit]
            if row["n_seeds"] == 0:
                why = "no deals" if row["seeds_with_deals"].startswith("0 of") else "no data"
                parts.append(
                    f"**{row['id']}** ({row['description']}; {row['scenario']}): the statistic "
                    f"is undefined in every seed ({why}), fact {row['fact_value']}"
                )
                continue
            median = row["model_median"]
            gap_unit = " pp" if unit in ("percent", "pp") else suffix
            if median < row["band_low"]:
                gap = f"{_num(row['band_low'] - median, unit)}{gap_unit} below the band"
            else:
                gap = f"{_num(median - row['band_high'], unit)}{gap_unit} above the band"
            parts.append(
                f"**{row['id']}** ({row['description']}; {row['scenario']}): model median "
                f"{_num(median, unit)}{suffix} (95% range {_num(row['model_p2_5'], unit)}–"
                f"{_num(row['model_p97_5'], unit)}{suffix}) against {row['fact_value']}, "
                f"{gap} {_band_text(row)}"
            )
        text.append("; ".join(parts) + ".")
    gaps = table[table["holds"] == ""]
    if not gaps.empty:
        text.append(
            "Not yet modelled, so without a verdict: "
            + ", ".join(f"{r['id']} ({r['description']})" for _, r in gaps.iterrows())
            + "."
        )
    return " ".join(text)


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _slots_text(meta: dict) -> str:
    if meta["n_loans"] is not None:
        return f"{meta['n_loans']:,} loans"
    slots = ", ".join(f"{name} {n:,}" for name, n in meta["loan_slots"].items())
    return f"each scenario's own loan slots, as `nplsim compare` runs it ({slots})"


def markdown_report(
    table: pd.DataFrame,
    facts: Sequence[FactSpec],
    meta: dict,
    sections: Sequence[str] | None = None,
) -> str:
    """``validation.md``: how to read it, the table, (``sections``, e.g. a calibration's fit in
    sample and held out), where the model misses, and notes."""
    shown = display_table(table)
    lines = [
        "# nplsim validation against stylised facts",
        "",
        f"Scenarios {', '.join(meta['scenarios']) or '—'}, each run with seeds "
        f"{meta['seeds'][0]}–{meta['seeds'][-1]} ({len(meta['seeds'])} seeds) and "
        f"{_slots_text(meta)}; facts from `{meta['facts_file']}` (sha256 "
        f"{meta['facts_sha256'][:12]}), values from the project's reference facts (docs/facts.md).",
        "",
        "Each statistic is computed once per seed; *model median* and *95% range* are the median "
        "and the 2.5–97.5 percentiles over seeds. A fact **holds** when the model median lies in "
        "the band (the fact's value or range widened by the tolerance); a floor or a ceiling "
        f"(a band open on one side) holds only when at least {100 * SEED_SHARE:.0f}% of the seeds "
        "lie in it (*seeds in band*). *Initial condition* and "
        "*calibration input* rows check what the model is built from, not what it produces; "
        "*not yet modelled* rows have no verdict and show the gaps. Misses are reported as they "
        "are: neither the model nor the scenarios were tuned to pass.",
        "",
        "| " + " | ".join(shown.columns) + " |",
        "|" + "|".join("---" for _ in shown.columns) + "|",
    ]
    for _, row in shown.iterrows():
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    lines += ["", *(sections or [])]
    lines += ["## Where the model misses", "", misses_paragraph(table), "", "## Notes", ""]
    lines += [f"- **{r['id']}**: {r['note']}" for _, r in table.iterrows() if r["note"]]
    return "\n".join(lines) + "\n"


CONSOLE_WIDTH = 100  # characters of a line of the console table


def _clip(text: object, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def console_table(table: pd.DataFrame, width: int = CONSOLE_WIDTH) -> str:
    """The summary as printed by ``nplsim validate``: one short line per fact (the model's
    median and 95% range over seeds, the fact, the band and the verdict), at most ``width``
    characters (the description, source, statistic and notes are in the written report). With
    a calibration's ``fit`` column, the fact's value gives way to it (the band stays)."""
    rows = []
    for _, row in table.iterrows():
        median, span = _model_text(row)
        fit = "fit" in row.index
        shown = {
            "fact": _clip(row["id"], 26),
            **({"fit": row["fit"]} if fit else {}),
            "median": _clip(median, 10),
            "95% range": _clip(span, 15),
            **({} if fit else {"fact value": _clip(row["fact_value"], 18)}),
            "band": _clip(_band_text(row), 16),
            "holds": "—" if row["holds"] == "" else ("yes" if row["holds"] else "NO"),
        }
        rows.append(shown)
    columns = list(rows[0]) if rows else []
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(_clip(line.rstrip(), width) for line in lines)
