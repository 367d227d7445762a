"""Result tables written three ways: CSV (every digit), Markdown and LaTeX (four significant digits,
for reading and for papers). Plain pandas; no optional dependencies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("csv", "md", "tex")


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "nan" if not np.isfinite(value) else f"{value:.4g}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def latex_table(frame: pd.DataFrame, caption: str = "") -> str:
    """A LaTeX ``tabular`` (booktabs rules) in a ``table`` float with ``caption``."""
    align = "".join("r" if pd.api.types.is_numeric_dtype(t) else "l" for t in frame.dtypes)
    lines = [r"\begin{table}[ht]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{_tex(caption)}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    lines.append(" & ".join(_tex(str(c)) for c in frame.columns) + r" \\")
    lines.append(r"\midrule")
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(_tex(_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_tables(frame: pd.DataFrame, folder: Path, stem: str, caption: str = "") -> list[Path]:
    """Write ``STEM.csv``, ``STEM.md`` and ``STEM.tex`` into ``folder``; their paths."""
    paths = [folder / f"{stem}.{ext}" for ext in FORMATS]
    frame.to_csv(paths[0], index=False)
    heading = f"{caption}\n\n" if caption else ""
    paths[1].write_text(heading + markdown_table(frame))
    paths[2].write_text(latex_table(frame, caption))
    return paths
