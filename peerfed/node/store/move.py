"""Moving a node's rows from its SQLite file to PostgreSQL (spec §13.9, Storage back-ends).

The node is stopped (the caller holds the data folder's lock). The SQLite file is copied to a
consistent snapshot first, then every table goes into an empty PostgreSQL database in one
transaction, with the schema: rows, their keys and catch-up cursors (SQLite's rowid) as they
were, and each identity column's next value past the highest copied. Row counts are compared
table by table before the COMMIT, so the move is whole or nothing.
"""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from .db import StorageError
from .dialect import IDENTITY, ROWID_TABLES, postgres_schema
from .pg import _redacted
from .pgdriver import load_psycopg as _psycopg
from .schema import SCHEMA_VERSION
from .snapshot import snapshot

__all__ = ["move_to_postgres"]


def move_to_postgres(database: Path, address: str) -> dict[str, int]:
    """Copy every row of the SQLite ``database`` into the empty PostgreSQL database at ``address``.

    Returns the rows copied per table. Raises StorageError if the file is not at this software's
    schema, the PostgreSQL database already holds tables, or anything fails (nothing is kept).
    """
    psycopg = _psycopg()
    with tempfile.TemporaryDirectory(prefix="peerfed-move-") as work:
        copy = Path(work) / "node.sqlite3"
        version = snapshot(database, copy)
        if version != SCHEMA_VERSION:
            raise StorageError(
                f"the database is schema {version} and this software's is {SCHEMA_VERSION}: start peerfed serve"
                " with this version once (it migrates the database), stop it, then move"
            )
        try:
            with closing(sqlite3.connect(copy)) as lite, psycopg.connect(address) as pg:
                return _copy(lite, pg)
        except psycopg.Error as exc:
            raise StorageError(f"cannot move to the PostgreSQL database: {_redacted(exc)}") from exc


def _copy(lite: sqlite3.Connection, pg: Any) -> dict[str, int]:
    taken = pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()[0]
    if taken:
        raise StorageError("the PostgreSQL database already holds tables: move into an empty database")
    for statement in postgres_schema():
        pg.execute(statement)
    pg.execute("CREATE TABLE peerfed_schema (version INTEGER NOT NULL)")
    pg.execute("INSERT INTO peerfed_schema VALUES (%s)", (SCHEMA_VERSION,))
    moved: dict[str, int] = {}
    # Tables in the order they were made: a table a foreign key names comes before the key's.
    tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY rowid")]
    for table in (t for t in tables if not t.startswith("sqlite_")):
        columns = [c[1] for c in lite.execute(f"PRAGMA table_info({table})")]
        if table in ROWID_TABLES:
            columns.append("rowid")
        names = ", ".join(columns)
        with pg.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copying:
            for row in lite.execute(f"SELECT {names} FROM {table}"):
                copying.write_row(row)
        counted = pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        expected = lite.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if counted != expected:
            raise StorageError(f"{table}: {expected} rows in SQLite, {counted} arrived")
        moved[table] = int(counted)
    for table, column in [*IDENTITY.items(), *((t, "rowid") for t in ROWID_TABLES)]:
        # The next number is past every one SQLite ever gave (its sqlite_sequence), not just past
        # the rows still held: a catch-up cursor or an id once handed out is never reused.
        used = pg.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {table}").fetchone()[0]
        if column != "rowid":
            row = lite.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
            used = max(int(used), int(row[0]) if row else 0)
        pg.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s, false)", (table, column, int(used) + 1))
    return moved
