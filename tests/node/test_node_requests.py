"""Node-to-node requests: forged, replayed, stale, misaddressed or tampered ones are refused."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.node.federation import sign_request
from peerfed.protocol import Identity, pack

from .harness import Clock, TestNode, federate


async def post(http: aiohttp.ClientSession, url: str, path: str, body: bytes, auth: str | None) -> tuple[int, Any]:
    headers = {"Authorization": auth} if auth else {}
    async with http.post(url + path, data=body, headers=headers) as response:
        return response.status, await response.json()


def test_forged_replayed_stale_and_misaddressed_requests_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        await federate(a, b)
        body = pack([["key-bundle", b"not a bundle"]])
        path = "/federation/v1/batch"
        now = int(clock())

        def signed(identity: Identity = a.node.identity, **changes: Any) -> str:
            fields: dict[str, Any] = {
                "method": "POST",
                "path": path,
                "origin": a.url,
                "destination": b.url,
                "body": body,
                "now": now,
            }
            fields.update(changes)
            return sign_request(identity, **fields)

        async with aiohttp.ClientSession() as http:
            status, answer = await post(http, b.url, path, body, signed())
            assert status == 200 and answer["results"][0]["status"] == "error"  # accepted request, bad item

            cases = [
                (None, 401, "auth.required"),
                ("Peerfed-Node !!!", 401, "auth.invalid"),
                ("Bearer something", 401, "auth.required"),
                # A key A does not publish: B fetched A's document under 10 s ago, so it cannot
                # check again yet, and says so (retryable), rather than calling A an impostor.
                (signed(Identity(bytes([9]) * 32)), 503, "node.unavailable"),
                (signed(destination=a.url), 401, "auth.invalid"),  # addressed to another node
                (signed(path="/federation/v1/follow"), 401, "auth.invalid"),
                (signed(body=b"other body"), 401, "auth.invalid"),
                (signed(now=now - 400), 400, "time.expired"),  # stale
                (signed(now=now + 400), 400, "time.future"),
            ]
            for header, status_wanted, code in cases:
                status, answer = await post(http, b.url, path, body, header)
                assert (status, answer["error"]["code"]) == (status_wanted, code), header

            replay = signed()
            assert (await post(http, b.url, path, body, replay))[0] == 200
            status, answer = await post(http, b.url, path, body, replay)
            assert (status, answer["error"]["code"]) == (401, "auth.replayed")

            # A well-signed request from a node B does not federate with.
            c = await TestNode(tmp_path / "c", clock).start()
            status, answer = await post(
                http,
                b.url,
                path,
                body,
                sign_request(
                    c.node.identity, method="POST", path=path, origin=c.url, destination=b.url, body=body, now=now
                ),
            )
            assert (status, answer["error"]["code"]) == (403, "federation.refused")
            # And one claiming to come from A but signed by C's key: B fetches A's document
            # again (10 s later) and it does not list that key.
            clock.advance(11)
            status, answer = await post(
                http,
                b.url,
                path,
                body,
                sign_request(
                    c.node.identity, method="POST", path=path, origin=a.url, destination=b.url, body=body, now=now
                ),
            )
            assert (status, answer["error"]["code"]) == (401, "auth.invalid")
            await c.stop()
            # B still serves A.
            status, _ = await post(http, b.url, path, body, signed(now=now + 1))
            assert status == 200
        await a.stop()
        await b.stop()

    asyncio.run(scenario())


def test_allow_list_nodes_wait_for_the_operator_and_blocked_nodes_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock, federation="allow-list").start()
        await a.node.store.set_node_status(b.url, "requested", int(clock()))
        await a.node.maintain()
        assert (await a.node.store.node(b.url)).status == "requested"  # type: ignore[union-attr]
        assert (await b.node.store.node(a.url)).status == "pending"  # type: ignore[union-attr]
        # B's operator allows A: B asks A, and both become active.
        await b.node.store.set_node_status(a.url, "requested", int(clock()))
        await b.node.maintain()
        assert (await a.node.store.node(b.url)).status == "active"  # type: ignore[union-attr]
        assert (await b.node.store.node(a.url)).status == "active"  # type: ignore[union-attr]
        # Blocking cuts it off.
        await b.node.store.set_node_status(a.url, "blocked", int(clock()))
        body = pack([["key-bundle", b"x"]])
        async with aiohttp.ClientSession() as http:
            header = sign_request(
                a.node.identity,
                method="POST",
                path="/federation/v1/batch",
                origin=a.url,
                destination=b.url,
                body=body,
                now=int(clock()),
            )
            status, answer = await post(http, b.url, "/federation/v1/batch", body, header)
        assert (status, answer["error"]["code"]) == (403, "federation.refused")
        await a.stop()
        await b.stop()

    asyncio.run(scenario())
