"""Schema migrations on PostgreSQL (spec §13.9, Storage back-ends): SQLite's numbered
migrations, derived for PostgreSQL and run once, one per transaction, by the first process of
a newer release to start; refused by the operator's tools, whole or not at all.

The next release's migration is played here by one more migration added for the test: this
release has no migration after the first schema a PostgreSQL database was made at.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from peerfed.node.store import StorageError, Store, dialect, schema
from peerfed.node.store.pg import connect_postgres
from tests.backends import postgres_server

pytestmark = pytest.mark.one_backend("it is about PostgreSQL's migrations, on a server started here")

# The next release's migration, as SQLite runs it: a column with an index, and a new table
# filled from existing rows by its backfill.
NEXT = """
    ALTER TABLE members ADD COLUMN note TEXT;
    CREATE INDEX members_note ON members(note);
    CREATE TABLE member_notes (peer BLOB PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID;
"""
NEXT_VERSION = schema.SCHEMA_VERSION + 1
ANA = b"\x0a" * 32


def _forget() -> None:
    """The derived schemas are cached per version: forget them when the migrations change."""
    for cached in (dialect._shape, dialect.postgres_schema, dialect.postgres_step):
        cached.cache_clear()


@pytest.fixture
def next_release(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """This software as the release after it: one more migration, whose backfill runs are counted."""
    runs: list[int] = []

    def backfill(db: sqlite3.Connection) -> None:
        runs.append(1)
        db.execute("UPDATE members SET note = ? WHERE note IS NULL", ("joined before",))
        db.execute("INSERT INTO member_notes SELECT peer, note FROM members")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, NEXT])
    monkeypatch.setitem(schema.BACKFILLS, NEXT_VERSION, backfill)
    _forget()
    yield runs
    monkeypatch.undo()
    _forget()


def test_every_migration_derives_a_step_that_makes_the_schema_a_fresh_database_has() -> None:
    """From each schema, the derived steps lead to exactly the tables, columns (in order),
    keys and indexes a database created at this software's schema has."""
    latest = schema.SCHEMA_VERSION
    fresh = _made_at(latest)
    for version in range(1, latest):
        address = _made_at(version)
        with psycopg.connect(address, autocommit=True) as pg:
            for later in range(version + 1, latest + 1):
                for statement in dialect.postgres_step(later):
                    pg.execute(statement)
        assert _catalog(address) == _catalog(fresh), f"from schema {version}"


def test_a_step_that_cannot_be_derived_is_refused_where_the_migration_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for script in (
        "ALTER TABLE members DROP COLUMN moved_to;",  # a column gone
        "ALTER TABLE erasures ADD COLUMN why TEXT;",  # after the rowid column PostgreSQL keeps last
        "ALTER TABLE nonces RENAME TO used_nonces;",  # derived, a drop and a create: the rows lost
        "CREATE INDEX open_reports ON reports(created_at) WHERE status = 'open';",  # the WHERE lost
    ):
        monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, script])
        _forget()
        with pytest.raises(ValueError, match=f"schema {NEXT_VERSION}"):
            dialect.postgres_step(NEXT_VERSION)
    monkeypatch.undo()
    _forget()


def test_a_migration_that_drops_tables_with_indexes_and_references_derives_a_step_that_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tables dropped in the order the references allow, their indexes with them."""
    gone = "DROP TABLE topic_words; DROP TABLE listing_facets; DROP TABLE listings; DROP TABLE reports;"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, gone])
    _forget()
    try:
        address, fresh = _made_at(schema.SCHEMA_VERSION), _made_at(NEXT_VERSION)
        with psycopg.connect(address, autocommit=True) as pg:
            for statement in dialect.postgres_step(NEXT_VERSION):
                pg.execute(statement)
        assert _catalog(address) == _catalog(fresh)
        assert "reports" not in {table for table, *_ in _catalog(address)[0]}
    finally:
        monkeypatch.undo()
        _forget()


def test_processes_of_a_newer_release_starting_together_migrate_once_and_keep_every_row(
    next_release: list[int],
) -> None:
    address = _node_of_this_release()

    async def together() -> None:
        opened = await asyncio.gather(*(connect_postgres(address, "FULL", NEXT_VERSION) for _ in range(3)))
        for writer, readers in opened:
            for reader in readers:
                await reader.close()
            await writer.close()

    asyncio.run(together())
    assert next_release == [1]  # the backfill ran once
    with psycopg.connect(address) as pg:
        assert pg.execute("SELECT version FROM peerfed_schema").fetchall() == [(NEXT_VERSION,)]
        assert pg.execute("SELECT peer, status, note FROM members").fetchall() == [(ANA, "active", "joined before")]
        assert pg.execute("SELECT peer, text FROM member_notes").fetchall() == [(ANA, "joined before")]
    fresh = postgres_server().fresh_database()
    asyncio.run(_open_and_close(fresh, NEXT_VERSION))
    assert _catalog(address) == _catalog(fresh)


def test_a_migration_that_fails_leaves_the_database_as_the_release_before_left_it(
    next_release: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    address = _node_of_this_release()
    before = _catalog(address)

    def failing(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO member_notes VALUES (?, ?)", (ANA, "one"))
        db.execute("INSERT INTO member_notes VALUES (?, ?)", (ANA, "two"))  # the same key twice

    def faulty(db: sqlite3.Connection) -> None:
        db.execute("UPDATE members SET note = ?", ("half done",))
        raise ValueError("a fault in the backfill")

    for backfill in (failing, faulty):  # the database refuses; the code fails
        monkeypatch.setitem(schema.BACKFILLS, NEXT_VERSION, backfill)
        with pytest.raises(StorageError, match="cannot open the PostgreSQL database"):
            asyncio.run(_open_and_close(address, NEXT_VERSION))
        assert _catalog(address) == before
    with psycopg.connect(address) as pg:
        assert pg.execute("SELECT version FROM peerfed_schema").fetchall() == [(schema.SCHEMA_VERSION,)]
    # Mended, the next start migrates.
    monkeypatch.setitem(schema.BACKFILLS, NEXT_VERSION, lambda db: None)
    asyncio.run(_open_and_close(address, NEXT_VERSION))
    with psycopg.connect(address) as pg:
        assert pg.execute("SELECT version FROM peerfed_schema").fetchall() == [(NEXT_VERSION,)]


def test_the_operators_tools_refuse_a_database_the_node_has_not_migrated_and_change_nothing(
    next_release: list[int],
) -> None:
    address = _node_of_this_release()
    before = _catalog(address)
    with pytest.raises(StorageError, match="start peerfed serve with this version once"):
        asyncio.run(_open_and_close(address, NEXT_VERSION, creating=False))
    assert _catalog(address) == before
    assert next_release == []


def test_a_database_older_than_any_postgresql_node_is_refused_not_half_migrated() -> None:
    address = _node_of_this_release()
    with psycopg.connect(address, autocommit=True) as pg:
        pg.execute("UPDATE peerfed_schema SET version = %s", (schema.POSTGRES_SINCE - 1,))
    with pytest.raises(StorageError, match="older than any PostgreSQL node's"):
        asyncio.run(_open_and_close(address, schema.SCHEMA_VERSION))


def _node_of_this_release() -> str:
    """A database a node of this release made, with one member."""
    address = postgres_server().fresh_database()

    async def made() -> None:
        store = await Store.open(address)
        await store.close()

    asyncio.run(made())
    with psycopg.connect(address, autocommit=True) as pg:
        pg.execute("INSERT INTO members (peer, status, joined_at) VALUES (%s, 'active', 1)", (ANA,))
    return address


async def _open_and_close(address: str, version: int, creating: bool = True) -> None:
    writer, readers = await connect_postgres(address, "FULL", version, creating=creating)
    for reader in readers:
        await reader.close()
    await writer.close()


def _made_at(version: int) -> str:
    """A database holding exactly the derived schema ``version`` (and nothing else)."""
    address = postgres_server().fresh_database()
    with psycopg.connect(address, autocommit=True) as pg:
        for statement in dialect.postgres_schema(version):
            pg.execute(statement)
    return address


def _catalog(address: str) -> tuple[list[Any], list[Any], list[Any]]:
    """The database's tables as PostgreSQL describes them: columns in order with their types,
    nullability, defaults and identity; constraints; indexes. The version table aside."""
    with psycopg.connect(address) as pg:
        columns = pg.execute(
            "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, column_default, is_identity"
            " FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'peerfed_schema'"
            " ORDER BY 1, 2"
        ).fetchall()
        constraints = pg.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ).fetchall()
        indexes = pg.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename <> 'peerfed_schema' ORDER BY 1, 2"
        ).fetchall()
    return columns, constraints, indexes
