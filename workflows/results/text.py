"""Rendering result rows: CSV, markdown and LaTeX tables, one format switch for all."""

from __future__ import annotations

import csv
import io
from typing import Any


def number(value: float | None, digits: int = 1) -> str:
    return "missing" if value is None else f"{value:.{digits}f}"


def csv_table(rows: list[dict[str, Any]], columns: tuple[str, ...], **formatters: Any) -> str:
    """``columns`` of ``rows`` as CSV; None as empty, ``formatters`` per column."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: "" if row[k] is None else formatters.get(k, lambda v: v)(row[k]) for k in columns}
        )
    return out.getvalue()


def text_table(fmt: str, title: str, header: list[str], body: list[list[str]]) -> str:
    """One titled table, LaTeX when ``fmt`` is "latex", else markdown."""
    return (latex_table if fmt == "latex" else markdown_table)(title, header, body)


def markdown_table(title: str, header: list[str], body: list[list[str]]) -> str:
    """A ``###`` title, then a pipe table."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


_LATEX = {"%": r"\%", "±": r"$\pm$", "×": r"$\times$", "_": r"\_"}


def _esc(text: str) -> str:
    return "".join(_LATEX.get(c, c) for c in text)


def latex_table(title: str, header: list[str], body: list[list[str]]) -> str:
    """A captioned LaTeX table, special characters escaped."""
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_esc(title)}}}",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\hline",
             " & ".join(_esc(h) for h in header) + r" \\", r"\hline"]  # fmt: skip
    lines += [" & ".join(_esc(c) for c in row) + r" \\" for row in body]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
