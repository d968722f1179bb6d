"""Rows for the reliability summary table printed at the end of every pytest run (see conftest.py)."""

from __future__ import annotations

import os

# Long form: CREDITDESK_RELIABILITY_LONG=1 (see README.md in this folder).
LONG = os.environ.get("CREDITDESK_RELIABILITY_LONG", "").lower() in ("1", "true", "yes")

ROWS: list[dict] = []

COLUMNS = ["test", "db", "attempted", "acknowledged", "refused", "ambiguous", "replayed", "kills", "violations",
           "seconds", "notes"]


def add(row: dict) -> None:
    ROWS.append(row)


def table() -> list[str]:
    if not ROWS:
        return []
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in ROWS)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines.append("  ".join("-" * widths[c] for c in COLUMNS))
    for r in ROWS:
        lines.append("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in COLUMNS))
    return lines
