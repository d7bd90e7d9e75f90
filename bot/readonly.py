"""Reading the stores for reports without ever writing to them or creating them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["read_rows"]


def read_rows(path: Path, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Rows from a SQLite file opened read-only; none if the file or table is missing."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(query, params).fetchall()
    except sqlite3.OperationalError:
        return []  # a store that was never written to has no tables yet
    finally:
        conn.close()
