"""PostgreSQL itself as a node's database (spec §13.9, Storage back-ends).

The rest of tests/node and tests/hostile runs on both back-ends (tests/conftest.py); these are
about what only PostgreSQL has: the schema derived from SQLite's, the statements rewritten for
it, a server that is not there, a schema created once by processes starting together.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import psycopg.sql
import pytest

from peerfed.node.runner import DataLock
from peerfed.node.store import SCHEMA_VERSION, StorageError, Store, windows
from peerfed.node.store.dialect import postgres_schema, to_postgres
from peerfed.node.store.pgwriter import _CURSOR_LOCK, _WriteConnection
from peerfed.node.store.schema import MIGRATIONS
from peerfed.protocol import Message
from tests.backends import postgres_server

from .harness import DAY, Clock, Peer, TestNode

pytestmark = pytest.mark.one_backend("it is about PostgreSQL itself, started here")

SERVE = [sys.executable, "-m", "peerfed", "serve", "--data"]


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        ("SELECT 1 FROM t WHERE a=? AND b LIKE 'x%'", "SELECT 1 FROM t WHERE a=%s AND b LIKE 'x%%'"),
        (
            "INSERT OR IGNORE INTO topic_words VALUES (?, ?, ?)",
            "INSERT INTO topic_words VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        ),
        ("INSERT INTO reports (reason) VALUES (?)", "INSERT INTO reports (reason) VALUES (%s) RETURNING id"),
        ("INSERT INTO prekeys VALUES (?, ?, ?)", "INSERT INTO prekeys VALUES (%s, %s, %s)"),
        ("SELECT MIN(MAX(a, COALESCE(b, 0))) FROM t", "SELECT MIN(GREATEST(a, COALESCE(b, 0))) FROM t"),
        ("SELECT MAX(seq), MIN(x) FROM t", "SELECT MAX(seq), MIN(x) FROM t"),
        ("WHERE source IS (SELECT s FROM t)", "WHERE source IS NOT DISTINCT FROM (SELECT s FROM t)"),
    ],
)
def test_each_statement_is_rewritten_for_postgresql(sqlite: str, postgres: str) -> None:
    assert to_postgres(sqlite) == postgres


def test_the_postgresql_schema_has_sqlites_tables_and_columns_in_the_same_order() -> None:
    address = postgres_server().fresh_database()
    asyncio.run(_opened_and_closed(address))
    with sqlite3.connect(":memory:") as lite:
        for script in MIGRATIONS:
            lite.executescript(script)
        tables = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        expected = {
            t: [c[1] for c in lite.execute(f"PRAGMA table_info({t})")] for t in tables if t != "sqlite_sequence"
        }
    with psycopg.connect(address) as pg:
        found: dict[str, list[str]] = {}
        for table, column in pg.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema='public'"
            " ORDER BY table_name, ordinal_position"
        ):
            found.setdefault(table, []).append(column)
        version = pg.execute("SELECT version FROM peerfed_schema").fetchall()
    assert version == [(SCHEMA_VERSION,)]
    del found["peerfed_schema"]
    # SQLite's implicit rowid is a real last column where a catch-up cursor reads it.
    assert found == {t: [*cols, "rowid"] if t in ("withdrawals", "erasures") else cols for t, cols in expected.items()}
    assert len(postgres_schema()) > len(expected)  # the indexes come too


async def _opened_and_closed(address: str) -> None:
    store = await Store.open(address)
    await store.close()


def test_nodes_starting_together_create_the_schema_once_and_a_newer_one_is_refused() -> None:
    address = postgres_server().fresh_database()

    async def together() -> None:
        stores = await asyncio.gather(*(Store.open(address) for _ in range(4)))
        for store in stores:
            await store.close()

    asyncio.run(together())
    with psycopg.connect(address, autocommit=True) as pg:
        assert pg.execute("SELECT count(*) FROM peerfed_schema").fetchone() == (1,)
        pg.execute("UPDATE peerfed_schema SET version = version + 1")
    with pytest.raises(StorageError, match="newer than this software"):
        asyncio.run(_opened_and_closed(address))


def test_an_admin_command_on_an_empty_database_creates_nothing() -> None:
    address = postgres_server().fresh_database()

    async def checking() -> None:
        await Store.open(address, migrating=False)

    with pytest.raises(StorageError, match="holds no node"):
        asyncio.run(checking())
    with psycopg.connect(address) as pg:
        assert pg.execute("SELECT to_regclass('peerfed_schema')").fetchone() == (None,)


def test_an_unreachable_server_is_one_line_and_exit_5_with_no_password_shown(tmp_path: Path) -> None:
    nowhere = f"postgresql://peerfed:hunter2secret@/nothing?host={tmp_path}"
    with socket.create_server(("127.0.0.1", 0)) as held:
        out = subprocess.run(
            [*SERVE, str(tmp_path / "n"), "--database", nowhere, "--listen-fd", str(held.fileno())],
            capture_output=True,
            text=True,
            timeout=60,
            pass_fds=(held.fileno(),),
        )
    assert out.returncode == 5, out.stderr
    last = out.stderr.splitlines()[-1]
    assert last.startswith("error: cannot open the PostgreSQL database") and "Traceback" not in out.stderr
    assert "hunter2secret" not in out.stderr + out.stdout


def test_the_admin_tool_finds_the_nodes_database_and_refuses_a_sqlite_backup(tmp_path: Path) -> None:
    address = postgres_server().fresh_database()
    data = tmp_path / "n"
    with socket.create_server(("127.0.0.1", 0)) as held:
        node = subprocess.Popen(
            [*SERVE, str(data), "--database", address, "--listen-fd", str(held.fileno())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(held.fileno(),),
        )
        try:
            assert node.stderr is not None
            for line in node.stderr:  # bounded by the node's own start: it says ready or exits
                if "ready" in line:
                    break
            admin = [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json"]
            stats = subprocess.run([*admin, "stats"], capture_output=True, text=True, timeout=60)
            assert stats.returncode == 0, stats.stderr
            assert not (data / "node.sqlite3").exists()
            assert (data / "database.url").stat().st_mode & 0o077 == 0
            refused = subprocess.run([*admin, "backup", str(tmp_path / "b.tar")], capture_output=True, text=True)
            assert refused.returncode == 2
            assert json.loads(refused.stderr)["error"]["code"] == "local.postgresql"
            assert "pg_dump" in json.loads(refused.stderr)["error"]["message"]
        finally:
            node.terminate()
            node.wait(timeout=60)
            if node.stderr is not None:
                node.stderr.close()


def test_a_sqlite_community_moves_to_postgresql_with_the_node_stopped_and_goes_on(tmp_path: Path) -> None:
    """`peerfed admin database move`: members, sessions, listings, mail and cursors all arrive."""
    address = postgres_server().fresh_database()
    data = tmp_path / "n"
    clock = Clock()
    admin = [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", "database", "move"]

    async def scenario() -> None:
        node = await TestNode(data, clock).start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", node, http, 1).join()
            ben = await Peer("ben", node, http, 2).join()
            kept = await ana.offer("Evenings, by text")
            gone = await ana.offer("Taken down before the move")
            await node.node.store.withdraw(gone.id, bytes(ana.id), ana.now() + DAY, [], clock())
            inner, sealed = ben.seal_to(ana, Message(ana.id, b"\x05" * 16, 1, "sealed before the move"))
            await ben.api.send(sealed.raw)
            store = node.node.store
            before = (await store.local_listings_after(0, ana.now(), 10), await store.withdrawals_after(0, 0, 10))
            await node.stop()

            lock = DataLock(data)  # as a serving node holds it
            lock.acquire()
            try:
                serving = subprocess.run([*admin, address], capture_output=True, text=True, timeout=120)
            finally:
                lock.release()
            assert serving.returncode == 3 and json.loads(serving.stderr)["error"]["code"] == "local.in_use"
            moved = subprocess.run([*admin, address], capture_output=True, text=True, timeout=120)
            assert moved.returncode == 0, moved.stderr
            assert json.loads(moved.stdout)["rows"]["listings"] == 1

            await node.start()  # no database setting: the folder names the one it moved to
            try:
                store = node.node.store
                assert store.path is None
                after = (await store.local_listings_after(0, ana.now(), 10), await store.withdrawals_after(0, 0, 10))
                assert after == before  # the same rows, seqs and catch-up cursors
                assert await ana.inbox() == [inner]  # the session token still signs ana in
                found = await ben.api.directory()
                assert [x["id"] for x in found["listings"]] == [kept.id.hex()]
                newer = await ben.offer("After the move")
                seqs = [r.seq for r in await store.local_listings_after(0, ana.now(), 10)]
                taken_down = before[0][-1].seq + 1  # the listing taken down had the seq after the one kept
                assert seqs[-1] > taken_down  # a number SQLite once gave is never given again
                assert newer.id.hex() in {x["id"] for x in (await ana.api.directory())["listings"]}
            finally:
                await node.stop()
        again = subprocess.run([*admin, address], capture_output=True, text=True, timeout=120)
        assert again.returncode == 2 and json.loads(again.stderr)["error"]["code"] == "local.postgresql"

    asyncio.run(scenario())


def test_rows_read_by_cursor_commit_in_the_order_of_their_numbers_across_writers() -> None:
    """Two processes' writers: the second one's mailbox row waits for the first's COMMIT, so it
    is numbered after it and a reader's cursor can never pass a row that commits later."""
    address = postgres_server().fresh_database()
    asyncio.run(_opened_and_closed(address))
    insert = "INSERT INTO mailbox (id, mailbox, raw, received_at, expires_at, source) VALUES (?, ?, ?, 1, 9, NULL)"
    first = _WriteConnection(psycopg.connect(address, autocommit=True, application_name="first"), list)
    second = _WriteConnection(psycopg.connect(address, autocommit=True, application_name="second"), list)
    watcher = psycopg.connect(address, autocommit=True)
    try:
        first.execute("BEGIN")
        one = first.execute(insert, (b"\x01" * 32, b"m" * 32, b"sealed")).lastrowid
        done: list[int | None] = []

        def write_second() -> None:
            second.execute("BEGIN")
            done.append(second.execute(insert, (b"\x02" * 32, b"m" * 32, b"sealed")).lastrowid)
            second.execute("COMMIT")

        thread = threading.Thread(target=write_second)
        thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'second' AND wait_event_type = 'Lock'"
        for _ in range(400):  # bounded: until the second writer is seen waiting on the lock
            if watcher.execute(waiting).fetchone() == (1,):
                break
            threading.Event().wait(0.05)
        assert watcher.execute(waiting).fetchone() == (1,) and not done
        first.execute("COMMIT")
        thread.join(timeout=30)
        assert one is not None and done and done[0] is not None and done[0] > one
    finally:
        for conn in (first, second):
            conn.close()
        watcher.close()


def test_two_writers_that_lock_a_row_and_add_a_cursor_row_in_either_order_never_deadlock() -> None:
    """A group takes row locks (an acknowledgement's delete) and adds rows read by cursor (a new
    item) in whatever order its writes came. Were the cursor lock taken at the first such row, a
    writer holding a row lock could wait for it while its holder waits for that row: PostgreSQL
    would break the circle after a second by failing one of them. It is taken first, at BEGIN."""
    address = postgres_server().fresh_database()
    asyncio.run(_opened_and_closed(address))
    insert = "INSERT INTO mailbox (id, mailbox, raw, received_at, expires_at, source) VALUES (?, ?, ?, 1, 9, NULL)"
    delete = "DELETE FROM mailbox WHERE id = ?"
    held = b"\x09" * 32
    first = _WriteConnection(psycopg.connect(address, autocommit=True, application_name="first"), list)
    second = _WriteConnection(psycopg.connect(address, autocommit=True, application_name="second"), list)
    watcher = psycopg.connect(address, autocommit=True)
    try:
        first.execute("BEGIN")
        first.execute(insert, (held, b"m" * 32, b"acknowledged next"))
        first.execute("COMMIT")
        first.execute("BEGIN")
        assert first.execute(delete, (held,)).rowcount == 1  # the first holds the row's lock
        outcome: list[object] = []

        def write_second() -> None:
            try:
                second.execute("BEGIN")
                second.execute(insert, (b"\x02" * 32, b"m" * 32, b"a new item"))
                outcome.append(second.execute(delete, (held,)).rowcount)  # that row, acknowledged again
                second.execute("COMMIT")
            except psycopg.Error as exc:
                outcome.append(exc)
                second.execute("ROLLBACK")

        thread = threading.Thread(target=write_second)
        thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'second' AND wait_event_type = 'Lock'"
        for _ in range(400):  # bounded: until the second writer is seen waiting
            if watcher.execute(waiting).fetchone() == (1,):
                break
            threading.Event().wait(0.05)
        assert watcher.execute(waiting).fetchone() == (1,)
        first.execute(insert, (b"\x01" * 32, b"m" * 32, b"another new item"))  # a cursor row, after the row lock
        first.execute("COMMIT")
        thread.join(timeout=30)
        assert outcome == [0]  # the second waited, then found the row gone, and committed
        rows = watcher.execute("SELECT id FROM mailbox ORDER BY seq").fetchall()
        assert [bytes(r[0]) for r in rows] == [b"\x01" * 32, b"\x02" * 32]
    finally:
        for conn in (first, second):
            conn.close()
        watcher.close()


def test_a_writer_refused_its_lock_at_begin_writes_again_once_the_lock_is_free() -> None:
    """BEGIN goes with the cursor lock; a lock that times out must not leave the writer in an
    aborted transaction that fails every write after it."""
    address = postgres_server().fresh_database()
    asyncio.run(_opened_and_closed(address))
    insert = "INSERT INTO mailbox (id, mailbox, raw, received_at, expires_at, source) VALUES (?, ?, ?, 1, 9, NULL)"
    writer = _WriteConnection(psycopg.connect(address, autocommit=True, options="-c lock_timeout=100"), list)
    holder = psycopg.connect(address, autocommit=True)
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (_CURSOR_LOCK,))
        with pytest.raises(psycopg.errors.LockNotAvailable):
            writer.execute("BEGIN")
        holder.execute("COMMIT")
        writer.execute("BEGIN")
        writer.execute(insert, (b"\x01" * 32, b"m" * 32, b"sealed"))
        writer.execute("COMMIT")
        assert holder.execute("SELECT count(*) FROM mailbox").fetchone() == (1,)
    finally:
        writer.close()
        holder.close()


def test_a_restarted_server_costs_the_requests_made_while_it_was_away_and_no_more() -> None:
    server = postgres_server()
    address = server.fresh_database()

    async def scenario() -> None:
        store = await Store.open(address)
        try:
            await store.probe(1.0)
            server.kill()
            with pytest.raises(StorageError):
                await store.probe(2.0)
            with pytest.raises(StorageError):
                await store.counts()
            server.start()
            await store.probe(3.0)  # the writer and the reader are each made again, unasked
            assert (await store.counts())["members"] == 0
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_search_walks_its_facet_from_the_newest_even_when_the_statistics_tempt_a_sort() -> None:
    """With fresh statistics, PostgreSQL would gather every English listing and sort them for the
    newest 50 (measured 5 times slower at 20,000 listings); the node's reads walk the index instead."""
    address = postgres_server().fresh_database()
    listings = 20_000
    with psycopg.connect(address, autocommit=True) as db:
        asyncio.run(_opened_and_closed(address))
        _listings(db, 1, listings)
        db.execute("ANALYZE")

    async def search() -> tuple[list[int], list[list[str]]]:
        store = await Store.open(address)
        try:
            reader = store._readers[0]
            read = reader.execute_fetchall
            asked = _recorded(reader)
            found = await store.search(
                now=100, kind=None, timing=None, facets=[("word", "grief"), ("lang", "en")], before=None, limit=50
            )
            ((sql, parameters),) = asked
            plans = [await read("EXPLAIN " + sql, parameters)]
            # And the plan the reader keeps for the statement once it is prepared (psycopg prepares
            # a statement used often): planned for no values in particular, if the reader says so.
            conn: Any = reader._conn  # type: ignore[attr-defined]
            for _ in range(6):  # past the custom plans PostgreSQL tries before a generic one
                await conn.execute(to_postgres(sql), parameters, prepare=True)
            ((name,),) = await (await conn.execute("SELECT name FROM pg_prepared_statements")).fetchall()
            values = psycopg.sql.SQL(", ").join(psycopg.sql.Literal(v) for v in parameters)
            executed = psycopg.sql.SQL("EXPLAIN EXECUTE {}({})").format(psycopg.sql.Identifier(name), values)
            plans.append(await (await conn.execute(executed)).fetchall())
            return [row.seq for row in found], [[line for (line,) in plan] for plan in plans]
        finally:
            await store.close()

    found, plans = asyncio.run(search())
    assert found == [g for g in range(listings, 0, -1) if g % 35 == 0][:50]
    for plan in plans:
        scans = [line.strip(" ->") for line in plan if " Scan " in line]
        assert scans[0].startswith("Index Only Scan Backward using facets_lookup on listing_facets f0"), plan
        assert not [line for line in plan if "Sort" in line or "Hash" in line], plan


def _recorded(reader: Any) -> list[tuple[str, Any]]:
    """The statements ``reader`` is asked from now on, with their parameters, as they come."""
    asked: list[tuple[str, Any]] = []
    read = reader.execute_fetchall

    async def recorded(sql: str, parameters: Any = ()) -> list[Any]:
        asked.append((sql, parameters))
        return list(await read(sql, parameters))

    reader.execute_fetchall = recorded
    return asked


def _listings(db: Any, first: int, last: int) -> None:
    """Listings numbered first to last: every 5th in English, every 7th on grief."""
    db.execute(
        "INSERT INTO listings (seq, id, author, kind, timing, created_at, expires_at, origin, raw, entry)"
        " SELECT g, int4send(g), '\\x00'::bytea, 'offer', 'now', 1, 2000000000, NULL, int4send(g), '{}'"
        " FROM generate_series(%s::integer, %s::integer) g",
        (first, last),
    )
    db.execute(
        "INSERT INTO listing_facets (listing, facet, value)"
        " SELECT g, 'lang', CASE WHEN g %% 5 = 0 THEN 'en' ELSE 'l' || g %% 9 END"
        " FROM generate_series(%s::integer, %s::integer) g"
        " UNION ALL SELECT g, 'word', CASE WHEN g %% 7 = 0 THEN 'grief' ELSE 'w' || g %% 31 END"
        " FROM generate_series(%s::integer, %s::integer) g"
        " UNION ALL SELECT g, 'format', 'f' || g %% 4 FROM generate_series(%s::integer, %s::integer) g",
        (first, last, first, last, first, last),
    )


def test_a_search_planned_while_the_directory_was_small_walks_the_index_once_it_is_not() -> None:
    """A reader plans a statement it has prepared once, for no values in particular, and keeps
    the plan until the statistics change. Made while the directory held ten listings, it must
    still be the walk down the facet's index, with index probes, at 20,000 before any ANALYZE."""
    address = postgres_server().fresh_database()
    with psycopg.connect(address, autocommit=True) as db:
        asyncio.run(_opened_and_closed(address))
        _listings(db, 1, 10)
        db.execute("ANALYZE")

    async def planned() -> list[str]:
        store = await Store.open(address)
        try:
            reader = store._readers[0]
            asked = _recorded(reader)
            facets = [("word", "grief"), ("lang", "en")]
            for _ in range(8):  # prepared (psycopg prepares a statement on its 5th use) and planned
                await store.search(now=100, kind=None, timing=None, facets=facets, before=None, limit=50)
            with psycopg.connect(address, autocommit=True) as db:
                _listings(db, 11, 20_000)
            found = await store.search(now=100, kind=None, timing=None, facets=facets, before=None, limit=50)
            assert [row.seq for row in found] == [g for g in range(20_000, 0, -1) if g % 35 == 0][:50]
            conn: Any = reader._conn  # type: ignore[attr-defined]
            ((name,),) = await (await conn.execute("SELECT name FROM pg_prepared_statements")).fetchall()
            _, parameters = asked[-1]
            values = psycopg.sql.SQL(", ").join(psycopg.sql.Literal(v) for v in parameters)
            executed = psycopg.sql.SQL("EXPLAIN EXECUTE {}({})").format(psycopg.sql.Identifier(name), values)
            return [line for (line,) in await (await conn.execute(executed)).fetchall()]
        finally:
            await store.close()

    plan = asyncio.run(planned())
    assert any("$1" in line or "$2" in line for line in plan), plan  # the kept plan, for no values
    scans = [line.strip(" ->") for line in plan if " Scan " in line]
    assert scans[0].startswith("Index Only Scan Backward using facets_lookup on listing_facets f0"), plan
    assert not [line for line in plan if "Seq Scan" in line or "Sort" in line or "Hash" in line], plan


def test_no_statement_of_a_node_is_compiled_to_machine_code_before_it_runs() -> None:
    # A node turns sequential scans away (enable_seqscan = off) by pricing them at ten billion,
    # above jit_above_cost: PostgreSQL built with LLVM then compiled such a statement before
    # every run. The federated nodes' look-up, queued with every listing, took 12.7 ms, not 0.1.
    address = postgres_server().fresh_database()
    statement = "EXPLAIN (ANALYZE, FORMAT JSON) SELECT url FROM nodes WHERE status = 'active'"
    active = "INSERT INTO nodes (url, status, added_at) VALUES ('https://b.example', 'active', 1)"

    async def scenario() -> None:
        store = await Store.open(address, readers=2)
        try:
            with psycopg.connect(address, autocommit=True) as plain:  # the premise: this server compiles
                plain.execute(active)
                plain.execute("SET enable_seqscan = off")
                premise = plain.execute(statement).fetchone()
                assert premise is not None and "JIT" in premise[0][0]
            plans = [await store._writer.run(lambda db: db.execute(statement).fetchone()[0])]
            for reader in store._readers:
                plans.append((await reader.execute_fetchall(statement))[0][0])
            counting = await windows.connect(address, "peerfed-test")
            try:
                await counting.execute("SET enable_seqscan = off")
                plans.append((await (await counting.execute(statement)).fetchone())[0])
            finally:
                await counting.close()
            assert len(plans) == 4
            for plan in plans:
                assert "JIT" not in plan[0], plan
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_writer_that_cannot_enter_its_pipeline_leaves_no_transaction_open_and_writes_again() -> None:
    # After BEGIN (and the cursor lock) the writer pipelines the transaction. If that fails
    # (a libpq without pipelines), the write fails and the transaction must not stay open,
    # holding the lock every other process's writer waits for.
    address = postgres_server().fresh_database()

    async def scenario() -> None:
        store = await Store.open(address)
        try:
            conn = store._writer._conn._conn

            def refused() -> Any:
                raise psycopg.NotSupportedError("this libpq has no pipeline mode")

            conn.pipeline = refused
            with pytest.raises(StorageError):
                await store._writer.run(lambda db: db.execute("INSERT INTO meta (key, value) VALUES ('a', 'v')"))
            with psycopg.connect(address, autocommit=True) as other:
                free = other.execute("SELECT pg_try_advisory_lock(%s)", (_CURSOR_LOCK,)).fetchone()
                assert free == (True,)
                other.execute("SELECT pg_advisory_unlock(%s)", (_CURSOR_LOCK,))
            del conn.pipeline
            await store._writer.run(lambda db: db.execute("INSERT INTO meta (key, value) VALUES ('b', 'v')"))
            assert await store._all("SELECT key FROM meta WHERE key IN ('a', 'b')") == [("b",)]
        finally:
            await store.close()

    asyncio.run(scenario())
