"""The group writer on both back-ends (spec §13.9): concurrent writes share one COMMIT, and a
write that fails is rolled back alone, the others in its group committed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from peerfed.node.store import StorageError, Store
from peerfed.node.store.db import Conn
from tests.backends import database_for


def test_a_failing_write_is_rolled_back_alone_and_its_group_commits(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await Store.open(database_for(tmp_path) or tmp_path / "node.sqlite3")
        try:

            def write(n: int) -> Callable[[Conn], int]:
                def job(db: Conn) -> int:
                    db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{n}", "first"))
                    db.execute("UPDATE meta SET value = ? WHERE key = ?", (f"v{n}", f"k{n}"))
                    if n % 3 == 0:
                        raise ValueError(f"write {n} fails after two statements")
                    return n

                return job

            outcomes = await asyncio.gather(*(store._writer.run(write(n)) for n in range(60)), return_exceptions=True)
            for n, outcome in enumerate(outcomes):
                if n % 3 == 0:
                    assert isinstance(outcome, ValueError) and f"write {n} " in str(outcome)
                else:
                    assert outcome == n
            rows = dict(await store._all("SELECT key, value FROM meta WHERE key LIKE 'k%'"))
            assert rows == {f"k{n}": f"v{n}" for n in range(60) if n % 3}
            groups, writes = store.write_stats
            assert writes >= 60 and groups < writes  # they shared commits
            with pytest.raises(ValueError):
                await store._writer.run(write(0))  # a group of one failing write commits nothing
            assert await store._all("SELECT value FROM meta WHERE key = 'k0'") == []
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_write_whose_statement_fails_unread_fails_itself_and_not_the_write_after_it(tmp_path: Path) -> None:
    # On PostgreSQL a transaction's statements are pipelined: a statement whose result nobody
    # reads is not waited for, so its error could surface in whichever write reads next. Each
    # write must still fail or succeed on its own statements.
    async def scenario() -> None:
        store = await Store.open(database_for(tmp_path) or tmp_path / "node.sqlite3")
        try:
            await store._writer.run(lambda db: db.execute("INSERT INTO meta (key, value) VALUES ('taken', 'x')"))

            def write(n: int) -> Callable[[Conn], int]:
                def job(db: Conn) -> int:
                    db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{n}", "v"))
                    if n % 4 == 1:  # a key already held: the insert fails, and nothing reads it
                        db.execute("INSERT INTO meta (key, value) VALUES ('taken', ?)", (f"v{n}",))
                    return n

                return job

            outcomes = await asyncio.gather(*(store._writer.run(write(n)) for n in range(40)), return_exceptions=True)
            for n, outcome in enumerate(outcomes):
                if n % 4 == 1:
                    assert isinstance(outcome, StorageError), (n, outcome)
                else:
                    assert outcome == n, (n, outcome)
            rows = {key for (key,) in await store._all("SELECT key FROM meta WHERE key LIKE 'k%'")}
            assert rows == {f"k{n}" for n in range(40) if n % 4 != 1}
            assert await store._all("SELECT value FROM meta WHERE key = 'taken'") == [("x",)]
            groups, writes = store.write_stats
            assert groups < writes  # they shared commits
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_write_that_catches_its_own_statements_error_is_told_the_truth_and_the_next_write_is_untouched(
    tmp_path: Path, backend: str
) -> None:
    # SQLite undoes the failed statement alone, so the write goes on and commits. PostgreSQL
    # aborts the write's savepoint, so the write must fail whole: told "stored", its first row
    # would be lost, and the error would reach the next write's statements instead.
    async def scenario() -> None:
        store = await Store.open(database_for(tmp_path) or tmp_path / "node.sqlite3")
        try:
            await store._writer.run(lambda db: db.execute("INSERT INTO meta (key, value) VALUES ('taken', 'x')"))

            def catches(db: Conn) -> str:
                db.execute("INSERT INTO meta (key, value) VALUES ('c1', 'v')")
                with contextlib.suppress(Exception):  # the duplicate key, caught by the write itself
                    db.execute("INSERT INTO meta (key, value) VALUES ('taken', 'v')").fetchone()
                return "went on"

            def inserts(key: str) -> Callable[[Conn], str]:
                return lambda db: (db.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (key,)), key)[1]

            for _ in range(5):  # several groups: where the error lands must not depend on timing
                await store._writer.run(lambda db: db.execute("DELETE FROM meta WHERE key IN ('c1', 'b1', 'b2')"))
                outcomes = await asyncio.gather(
                    store._writer.run(catches),
                    store._writer.run(inserts("b1")),
                    store._writer.run(inserts("b2")),
                    return_exceptions=True,
                )
                rows = {key for (key,) in await store._all("SELECT key FROM meta WHERE key IN ('c1', 'b1', 'b2')")}
                assert list(outcomes[1:]) == ["b1", "b2"], outcomes
                if backend == "sqlite":
                    assert outcomes[0] == "went on" and rows == {"c1", "b1", "b2"}
                else:
                    assert isinstance(outcomes[0], StorageError), outcomes
                    assert rows == {"b1", "b2"}
        finally:
            await store.close()

    asyncio.run(scenario())
