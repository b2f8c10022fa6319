"""HTML and cell formatting shared by the report's figures and tables: escaping, numbers at fixed decimals, and
one table's HTML (or the note in its place)."""

from __future__ import annotations

import html

import pandas as pd


def esc(value: object) -> str:
    return html.escape(str(value))


def formatted(table: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """Three decimals everywhere, and a dash where a value is undefined, so cells read alike."""
    table = table.copy()
    for column in numeric:
        table[column] = [("–" if pd.isna(v) else f"{v:.3f}") for v in table[column]]
    return table


def rounded(table: pd.DataFrame, decimals: dict[str, int]) -> pd.DataFrame:
    """Given columns at their own number of decimals, with a dash where a value is missing."""
    table = table.copy()
    for column, places in decimals.items():
        table[column] = [("–" if pd.isna(v) else f"{v:.{places}f}") for v in table[column]]
    return table


def table_html(table: pd.DataFrame, empty_note: str) -> str:
    """The table, or a note in its place so that an empty table does not look like a rendering fault."""
    if table.empty:
        return f"<p class=\"note\">{esc(empty_note)}</p>"
    return table.to_html(index=False, border=0, classes="summary", escape=True)
