"""Rendering pandas frames as rich tables."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table


def _fmt(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, float):
        if "share" in column or "rate" in column:
            return f"{value:.1%}"
        return f"{value:,.2f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def frame_table(df: pd.DataFrame, title: str | None = None, max_rows: int = 50) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        table.add_column(str(col), justify="right" if numeric else "left")
    for _, row in df.head(max_rows).iterrows():
        table.add_row(*[_fmt(row[c], str(c)) for c in df.columns])
    if len(df) > max_rows:
        table.caption = f"{len(df) - max_rows} more rows not shown"
    return table


def kv_table(data: dict, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in data.items():
        table.add_row(str(k), _fmt(v, str(k)))
    return table


def summary_for_display(summary: pd.DataFrame) -> pd.DataFrame:
    """Segment summary columns in the words of the segment table."""
    return summary.rename(columns={
        "revenue_share": "revenue share", "avg_recency_days": "recency (days)",
        "avg_frequency": "orders", "avg_monetary": "revenue",
    })
