"""PostgreSQL's driver, psycopg 3, imported when a node first needs it (spec §13.9, Storage back-ends).

psycopg is an optional dependency: a node on SQLite never imports it, and one given a
``postgresql://`` address without it is told how to install it.
"""

from __future__ import annotations

from typing import Any

from .db import StorageError

__all__ = ["INSTALL", "load_psycopg"]

INSTALL = "pip install 'peerfed[postgresql]'"


def load_psycopg() -> Any:
    """The psycopg module. Raises StorageError, saying how to install it, if it is missing."""
    try:
        import psycopg
    except ImportError as exc:  # an optional dependency: say how to get it
        raise StorageError(f"a PostgreSQL database needs psycopg: {INSTALL}") from exc
    return psycopg
