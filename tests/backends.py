"""Which database the nodes a test starts use (spec §13.9, Storage back-ends): SQLite or PostgreSQL.

``database_for(data)`` is what a test node's ``database`` setting is: empty (SQLite in the data
folder) unless the run is on PostgreSQL, when each data folder gets a database of its own on
one throwaway server (tests/pgserver.py), the same one each time that folder's node restarts.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
from pathlib import Path

from tests.pgserver import PgServer

__all__ = ["database_for", "drop_databases", "on_postgres", "postgres_server", "query", "stored_bytes", "stored_files"]

_server: PgServer | None = None
_databases: dict[Path, str] = {}


def on_postgres() -> bool:
    """Whether this run's nodes use PostgreSQL (PEERFED_TEST_BACKEND=postgresql)."""
    return os.environ.get("PEERFED_TEST_BACKEND", "sqlite") == "postgresql"


def postgres_server() -> PgServer:
    """The run's one PostgreSQL server, started on first use and stopped when the run ends."""
    global _server
    if _server is None:
        _server = PgServer().start()
        atexit.register(_server.stop)
    return _server


def database_for(data: Path) -> str:
    """The ``database`` setting for a node whose data folder is ``data``."""
    if not on_postgres():
        return ""
    key = data.resolve()
    if key not in _databases:
        _databases[key] = postgres_server().fresh_database()
    return _databases[key]


def query(data: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of one statement (SQLite's dialect) run straight on the database of the node on
    ``data``, outside the node: what a test reads or changes behind the node's back."""
    address = database_for(data)
    if not address:
        with sqlite3.connect(data / "node.sqlite3") as db:
            return [tuple(r) for r in db.execute(sql, params).fetchall()]
    import psycopg

    from peerfed.node.store.dialect import to_postgres

    with psycopg.connect(address, autocommit=True) as db:
        cursor = db.execute(to_postgres(sql), params)
        return [tuple(r) for r in cursor.fetchall()] if cursor.description is not None else []


def stored_files(data: Path, whole_server: bool = True) -> dict[str, bytes]:
    """Every file on disk that holds the node's rows, by name: its data folder, and on
    PostgreSQL, after a CHECKPOINT has written every page out, the server's whole data folder
    (under ``postgresql/``), or with ``whole_server=False`` only the node's own database's
    folder there (the server's log and shared files hold every database's rows)."""
    found = {str(p.relative_to(data)): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}
    address = database_for(data)
    if address:
        import psycopg

        server = postgres_server()
        with psycopg.connect(address, autocommit=True) as db:
            db.execute("CHECKPOINT")
            (oid,) = db.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchall()[0]
        folder = server.data if whole_server else server.data / "base" / str(oid)
        for path in sorted(folder.rglob("*")):
            with contextlib.suppress(FileNotFoundError):  # the running server's temporary files come and go
                if path.is_file():
                    found[f"postgresql/{path.relative_to(server.data)}"] = path.read_bytes()
    return found


def stored_bytes(data: Path, whole_server: bool = True) -> bytes:
    """The bytes of every file ``stored_files`` names, one after another."""
    return b"".join(stored_files(data, whole_server).values())


def drop_databases() -> None:
    """Drop every database made so far (at the end of each test: the server's disk stays small)."""
    if not _databases:
        return
    import psycopg

    with psycopg.connect(postgres_server().url("postgres"), autocommit=True) as db:
        for address in _databases.values():
            name = address.split("@/", 1)[1].split("?", 1)[0]
            db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _databases.clear()
