"""``/healthz`` and ``/readyz`` (spec §13.1, Health): alive without the database, ready only when it can work."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.processes import NodeProcesses

from .harness import Clock, Peer, TestNode, federate

STUCK_AFTER = 600


async def probe(http: aiohttp.ClientSession, url: str, path: str) -> tuple[int, Any]:
    async with http.get(url + path) as response:
        assert response.headers["Cache-Control"] == "no-store"
        return response.status, await response.json()


def test_readyz_fails_while_the_database_refuses_writes_and_healthz_stays_alive(tmp_path: Path) -> None:
    async def scenario() -> None:
        node = await TestNode(tmp_path / "a", Clock()).start()
        try:
            async with aiohttp.ClientSession() as http:
                assert await probe(http, node.url, "/readyz") == (
                    200,
                    {"status": "ready", "checks": {"database": "ok", "outbox": "ok"}},
                )
                await node.node.store.pragma("PRAGMA query_only=ON")  # the write connection now refuses writes
                status, body = await probe(http, node.url, "/readyz")
                assert status == 503 and body["status"] == "not ready"
                assert body["checks"]["database"].startswith("not writable: ")
                assert body["checks"]["outbox"] == "ok"
                assert await probe(http, node.url, "/healthz") == (200, {"status": "alive"})
                await node.node.store.pragma("PRAGMA query_only=OFF")
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
