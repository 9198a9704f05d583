"""``/healthz`` and ``/readyz`` (spec §13.1, Health): alive without the database, ready only when it can work."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.backends import query
from tests.processes import NodeProcesses

from .harness import Clock, Peer, TestNode, federate

STUCK_AFTER = 600


async def probe(http: aiohttp.ClientSession, url: str, path: str) -> tuple[int, Any]:
    async with http.get(url + path) as response:
        assert response.headers["Cache-Control"] == "no-store"
        return response.status, await response.json()


async def refuse_writes(node: TestNode, refusing: bool) -> None:
    """SQLite's query_only pragma on the write connection; on PostgreSQL, a trigger that fails
    every write to the table the probe writes (the server refuses, as a full disk would)."""
    if not node.config.database:
        await node.node.store.pragma(f"PRAGMA query_only={'ON' if refusing else 'OFF'}")
    elif refusing:
        query(
            node.data,
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'this table is read-only for the test'; END $$",
        )
        query(node.data, "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON meta FOR EACH ROW EXECUTE FUNCTION refuse()")
    else:
        query(node.data, "DROP TRIGGER refuse ON meta")


def test_readyz_fails_while_the_database_refuses_writes_and_healthz_stays_alive(tmp_path: Path) -> None:
    async def scenario() -> None:
        node = await TestNode(tmp_path / "a", Clock()).start()
        try:
            async with aiohttp.ClientSession() as http:
                assert await probe(http, node.url, "/readyz") == (
                    200,
                    {"status": "ready", "checks": {"database": "ok", "outbox": "ok"}},
                )
                await refuse_writes(node, True)  # the write connection now refuses writes
                status, body = await probe(http, node.url, "/readyz")
                assert status == 503 and body["status"] == "not ready"
                assert body["checks"]["database"].startswith("not writable: ")
                assert body["checks"]["outbox"] == "ok"
                assert await probe(http, node.url, "/healthz") == (200, {"status": "alive"})
                await refuse_writes(node, False)
                assert (await probe(http, node.url, "/readyz"))[0] == 200
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_readyz_fails_once_a_federation_item_has_waited_past_the_threshold(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock, outbox_stuck_after=STUCK_AFTER).start()
        b = await TestNode(tmp_path / "b", clock).start()
        try:
            await federate(a, b)
            async with aiohttp.ClientSession() as http:
                await (await Peer("ana", a, http, 1).join()).offer("Due at once, sent by nobody.")
                assert await a.node.store.next_due() is not None
                clock.advance(STUCK_AFTER)  # due for exactly the threshold: still ready
                assert (await probe(http, a.url, "/readyz"))[0] == 200
                clock.advance(1)
                status, body = await probe(http, a.url, "/readyz")
                assert status == 503 and body["checks"]["database"] == "ok"
                assert body["checks"]["outbox"] == (
                    f"stuck: the oldest due item has waited {STUCK_AFTER + 1} s to be sent"
                    f" (more than outbox_stuck_after, {STUCK_AFTER} s)"
                )
                while await a.deliver():  # the delivery loop runs again
                    pass
                assert (await probe(http, a.url, "/readyz"))[0] == 200
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_a_serving_process_answers_both_probes(tmp_path: Path, node_processes: NodeProcesses) -> None:
    async def scenario() -> None:
        node = node_processes(tmp_path / "node")
        await node.start()
        async with aiohttp.ClientSession() as http:
            assert await probe(http, node.url, "/healthz") == (200, {"status": "alive"})
            assert (await probe(http, node.url, "/readyz"))[0] == 200
        assert node.stop() == 0

    asyncio.run(scenario())
