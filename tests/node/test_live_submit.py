"""Publishing and sending over the live WebSocket (spec §13.5): pipelined, answered by ref."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.protocol import Context, Envelope, Format, Kind, Listing, Message, Timing, open_signed
from peerfed.protocol.work import solve_work

from .harness import Peer, TestNode, run_node


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def answers(ws: aiohttp.ClientWebSocketResponse, count: int) -> dict[Any, dict[str, Any]]:
    """Read answers until ``count`` refs have been answered; mailbox items are skipped."""
    found: dict[Any, dict[str, Any]] = {}
    while len(found) < count:
        message = await asyncio.wait_for(ws.receive_json(), 10)
        if "ref" in message:
            assert message["ref"] not in found, "a ref answered twice"
            found[message["ref"]] = message
    return found


def text_of(env: Envelope) -> str:
    assert isinstance(env.body, Message)  # only messages were sent here
    return env.body.text


def listing(peer: Peer, n: int) -> bytes:
    body = Listing(
        kind=Kind.OFFER,
        topics=("grief",),
        languages=("en",),
        formats=(Format.TEXT,),
        timing=Timing.SOON,
        summary=f"I can listen, evening {n}.",
    )
    return peer.signed(body).raw


def test_many_publishes_in_flight_on_one_socket_are_each_answered_once_stored(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        raws = [listing(ana, n) for n in range(40)]
        async with http.ws_connect(node.url + "/api/v1/live") as ws:
            await ws.send_json({"type": "auth", "token": ana.api.token})
            assert (await ws.receive_json())["type"] == "ready"
            for ref, raw in enumerate(raws):  # all sent before any answer is read
                await ws.send_json({"type": "publish", "ref": ref, "object": b64(raw)})
            got = await answers(ws, len(raws))
        assert all(got[ref]["type"] == "accepted" for ref in range(len(raws)))
        ids = {got[ref]["id"] for ref in range(len(raws))}
        assert ids == {open_signed(raw, context=Context.ENVELOPE, now=ana.now()).id.hex() for raw in raws}
        found = (await ana.api.directory(topic="grief", limit=100))["listings"]
        assert {item["id"] for item in found} == ids

    run_node(tmp_path, body, listings_per_hour=1000)


def test_a_refused_publish_is_answered_by_its_ref_and_the_socket_goes_on(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        ben = await Peer("ben", node, http, 2).join()
        good = listing(ana, 1)
        async with http.ws_connect(node.url + "/api/v1/live") as ws:
            await ws.send_json({"type": "publish", "ref": 1, "object": b64(good)})
            first = await ws.receive_json()
            assert first["type"] == "error" and first["code"] == "auth.required"
            await ws.send_json({"type": "auth", "token": ana.api.token})
            assert (await ws.receive_json())["type"] == "ready"
            await ws.send_json({"type": "publish", "ref": 1, "object": "not base64!"})
            await ws.send_json({"type": "publish", "ref": 2, "object": b64(listing(ben, 1))})  # ben's, not ana's
            await ws.send_json({"type": "publish", "ref": 3, "object": b64(good[:-3])})  # truncated
            await ws.send_json({"type": "publish", "ref": "x", "object": b64(good)})
            await ws.send_json({"type": "publish", "ref": 5, "object": b64(good)})
            await ws.send_json({"type": "publish", "ref": 6, "object": b64(good)})  # the same again
            got = await answers(ws, 6)
        assert got[1]["code"] == "request.invalid"
        assert got[2]["code"] == "auth.forbidden"
        assert got[3]["type"] == "error" and got[3]["code"] != "node.internal"
        assert got["x"]["code"] == "request.invalid"
        assert got[5]["type"] == "accepted" and got[6]["type"] == "accepted" and got[5]["id"] == got[6]["id"]
        found = (await ana.api.directory(topic="grief"))["listings"]
        assert [item["id"] for item in found] == [got[5]["id"]]  # stored once, nothing else stored

    run_node(tmp_path, body)


def test_a_sealed_message_sent_on_the_socket_reaches_a_live_reader(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        ben = await Peer("ben", node, http, 2).join()
        sealed = [ana.seal_to(ben, Message(ben.id, bytes(16), n + 1, f"message {n}"))[1] for n in range(10)]
        async with (
            http.ws_connect(node.url + "/api/v1/live") as sender,
            http.ws_connect(node.url + "/api/v1/live") as reader,
        ):
            for ws, peer in ((sender, ana), (reader, ben)):
                await ws.send_json({"type": "auth", "token": peer.api.token})
                assert (await ws.receive_json())["type"] == "ready"
            # The first item into ben's mailbox carries the first contact's proof of work (§13.5);
            # once it is answered, the rest need none.
            work = solve_work(sealed[0].id, node.config.first_contact_work_bits).hex()
            await sender.send_json({"type": "send", "ref": 0, "sealed": b64(sealed[0].raw), "work": work})
            got = await answers(sender, 1)
            for ref, item in enumerate(sealed[1:], start=1):
                await sender.send_json({"type": "send", "ref": ref, "sealed": b64(item.raw)})
            await sender.send_json({"type": "send", "ref": 99, "sealed": b64(sealed[0].raw)})
            await sender.send_json(
                {"type": "send", "ref": 100, "sealed": b64(sealed[1].raw), "destination": "ftp://nowhere"}
            )
            got |= await answers(sender, 11)
            items = [await asyncio.wait_for(reader.receive_json(), 10) for _ in sealed]
        assert [got[ref]["status"] for ref in range(10)] == ["delivered"] * 10
        assert got[99]["status"] == "duplicate"
        assert got[100]["code"] == "request.invalid"
        texts = sorted(text_of(ben.open(base64.b64decode(item["sealed"]))) for item in items)
        assert texts == sorted(f"message {n}" for n in range(10))

    run_node(tmp_path, body, sends_per_minute=100)


def test_more_requests_than_the_window_are_all_answered_and_an_oversize_frame_is_refused(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        raws = [listing(ana, n) for n in range(150)]  # more than the 64 a socket may have in flight
        async with http.ws_connect(node.url + "/api/v1/live") as ws:
            await ws.send_json({"type": "auth", "token": ana.api.token})
            assert (await ws.receive_json())["type"] == "ready"
            for ref, raw in enumerate(raws):
                await ws.send_json({"type": "publish", "ref": ref, "object": b64(raw)})
            got = await answers(ws, len(raws))
            assert {a["type"] for a in got.values()} == {"accepted"}
            await ws.send_str('{"type": "publish", "ref": 1, "object": "' + "A" * 100_000 + '"}')
            closing = await asyncio.wait_for(ws.receive(), 10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        # The node is up, and kept everything it had answered.
        found = (await ana.api.directory(topic="grief", limit=100))["listings"]
        rest = (await ana.api.directory(topic="grief", limit=100, before=found[-1]["cursor"]))["listings"]
        assert len(found) + len(rest) == len(raws)

    run_node(tmp_path, body, listings_per_hour=1000)
