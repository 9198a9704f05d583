"""One device at a time (spec §13.4): the node routes a member's mail to the device that took it over."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from peerfed.client.transport import NodeAPI
from peerfed.protocol import ClientAuth, MovedError, RemoteError, sign

from .harness import Peer, TestNode, run_node

DEVICE_A, DEVICE_B = bytes(range(16)), bytes(range(16, 32))


def test_a_device_takes_over_only_when_asked_and_the_one_it_replaced_is_refused_moved(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = Peer("ana", node, http, 1)
        first, second = NodeAPI(node.url, http), NodeAPI(node.url, http)
        await first.sign_in(ana.identity, now=ana.now(), device=DEVICE_A)
        member = await node.node.store.member(bytes(ana.id))
        assert member is not None and member.device == DEVICE_A
        async with http.ws_connect(node.url + "/api/v1/live") as ws:
            await ws.send_json({"type": "auth", "token": first.token, "after": 0})
            assert (await ws.receive_json())["type"] == "ready"

            # Another device is refused unless it asks to take over; so is a client naming none.
            with pytest.raises(MovedError) as refused:
                await second.sign_in(ana.identity, now=ana.now(), device=DEVICE_B)
            assert refused.value.code == "auth.moved" and refused.value.moved_at == member.device_at
            with pytest.raises(MovedError):
                await NodeAPI(node.url, http).sign_in(ana.identity, now=ana.now())
            assert await first.mailbox() == {"items": [], "next": None}

            node.clock.advance(60)
            await second.sign_in(ana.identity, now=ana.now(), device=DEVICE_B, take_over=True)
            moved_at = int(node.clock())
            # The replaced device's live reader is closed at once.
            assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

        # Every request of the replaced device's session is refused, with when it moved.
        for call in (first.mailbox(), first.ack(["00" * 32]), first.directory()):
            with pytest.raises(MovedError) as info:
                await call
            assert info.value.moved_at == moved_at and info.value.http_status == 403
        with pytest.raises(MovedError):
            await first.sign_in(ana.identity, now=ana.now(), device=DEVICE_A)
        async with http.ws_connect(node.url + "/api/v1/live") as ws:
            await ws.send_json({"type": "auth", "token": first.token, "after": 0})
            frame = await ws.receive_json()
            assert (frame["type"], frame["code"], frame["moved_at"]) == ("error", "auth.moved", moved_at)
        assert await second.mailbox() == {"items": [], "next": None}
        # The device that took over signs in again as itself, without asking again.
        await NodeAPI(node.url, http).sign_in(ana.identity, now=ana.now(), device=DEVICE_B)

    run_node(tmp_path, body)


@pytest.mark.parametrize(
    "headers",
    [{"X-Peerfed-Device": "zz"}, {"X-Peerfed-Device": "00" * 15}, {"X-Peerfed-Take-Over": "1"}],
)
def test_a_malformed_device_header_is_refused(tmp_path: Path, headers: dict[str, str]) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = Peer("ana", node, http, 1)
        api = NodeAPI(node.url, http)
        challenge = await api.call("POST", "/api/v1/challenge")
        proof = sign(
            ana.identity,
            ClientAuth(node.url, bytes.fromhex(challenge["challenge"])),
            created_at=ana.now(),
            expires_at=ana.now() + 300,
        )
        with pytest.raises(RemoteError) as info:
            await api.call("POST", "/api/v1/session", data=proof.raw, headers=headers)
        assert info.value.code == "request.invalid"

    run_node(tmp_path, body)
