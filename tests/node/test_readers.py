"""Reads go to the least busy of the node's read connections (issue 17, item 3: search on more than one).

Each read connection has its own thread; two reads in flight at once run on two of them, and
every one of them sees what the writer committed before the read began.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from peerfed.node.store import Store
from tests.backends import database_for


def test_two_reads_at_once_run_on_two_connections_and_each_sees_every_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await Store.open(database_for(tmp_path) or tmp_path / "node.sqlite3", readers=2)
        try:
            served: list[int] = []
            both = asyncio.Event()
            for at, reader in enumerate(store._readers):
                real = reader.execute_fetchall

                async def spy(sql: str, params: Any = (), at: int = at, real: Any = real) -> Any:
                    served.append(at)
                    if len(served) == 2:
                        both.set()
                    await asyncio.wait_for(both.wait(), 10)  # the first waits until the second is in flight
                    return await real(sql, params)

                reader.execute_fetchall = spy  # type: ignore[method-assign]
            await asyncio.gather(store._all("SELECT 1"), store._all("SELECT 2"))
            assert sorted(served) == [0, 1]
            # A commit is seen by every connection's next read.
            await store._write("INSERT INTO challenges VALUES (?, 9999999999)", (b"\x01" * 32,))
            for reader in store._readers:
                rows = await reader.execute_fetchall("SELECT count(*) FROM challenges")
                assert next(iter(rows))[0] == 1
        finally:
            await store.close()

    asyncio.run(scenario())


def test_one_connection_serves_every_read_when_asked_for_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await Store.open(database_for(tmp_path) or tmp_path / "node.sqlite3", readers=1)
        try:
            assert len(store._readers) == 1
            rows = await asyncio.gather(*(store._all("SELECT ?", (n,)) for n in range(8)))
            assert [r[0][0] for r in rows] == list(range(8))
        finally:
            await store.close()

    asyncio.run(scenario())
