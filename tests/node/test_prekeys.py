"""One-time pre-keys on the home node: upload, claim once, the stock and its limits (spec §13.5, §14.1)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.client.transport import NodeAPI
from peerfed.node.federation import parse_document
from peerfed.node.prekeys import CLAIMS_PER_HOUR, CLAIMS_PER_TARGET, LOW_STOCK, STOCK_CAP
from peerfed.protocol import EncryptionSecret, Erasure, Move, PreKeys, RemoteError

from .harness import Clock, Peer, TestNode, federate, run_node

LIFE = 300  # seconds an upload is signed for, within the 600 a prekeys object may live


async def refused(code: str, action: Awaitable[Any]) -> None:
    with pytest.raises(RemoteError) as info:
        await action
    assert info.value.code == code, str(info.value)


def fresh_keys(count: int) -> list[bytes]:
    return [bytes(EncryptionSecret(os.urandom(32)).public) for _ in range(count)]


async def upload(peer: Peer, keys: list[bytes], node: str | None = None) -> Any:
    signed = peer.signed(PreKeys(node or peer.home.url, tuple(keys)), life=LIFE)
    return await peer.api.call("POST", "/api/v1/prekeys", data=signed.raw)


async def claim(claimant: Peer, owner: Peer) -> bytes | None:
    answer = await claimant.api.call("POST", "/api/v1/prekeys/claim", json={"peer": owner.id.text})
    assert set(answer) == {"prekey"}
    return None if answer["prekey"] is None else base64.b64decode(answer["prekey"])


async def stock(peer: Peer) -> int:
    answer = await peer.api.call("GET", "/api/v1/prekeys")
    assert answer["cap"] == STOCK_CAP and answer["low"] == LOW_STOCK
    return int(answer["stock"])


def test_a_claim_hands_out_each_uploaded_key_once_then_nothing(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana, ben = await Peer("ana", node, http, 1).join(), await Peer("ben", node, http, 2).join()
        keys = fresh_keys(3)
        assert await upload(ana, keys) == {"status": "accepted", "stock": 3}
        assert await stock(ana) == 3
        handed = [await claim(ben, ana) for _ in range(3)]
        assert sorted(k for k in handed if k is not None) == sorted(keys)
        assert await claim(ben, ana) is None  # the stock is empty: the same answer as for anyone else
        assert await stock(ana) == 0
        stranger = Peer("nobody", node, http, 9)  # never joined: no stock, the same answer
        assert await claim(ben, stranger) is None
        # The node documents its limits (spec §13.2, §13.8).
        doc, _ = parse_document(await ben.api.document(), node.url, ben.now())
        limits = dict(doc.limits)
        assert limits["prekeys-per-peer"] == STOCK_CAP
        assert limits["prekey-claims-per-peer"] == CLAIMS_PER_TARGET

    run_node(tmp_path, body)


def test_an_upload_is_the_owners_signed_word_for_this_node_taken_once_and_capped(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana, ben = await Peer("ana", node, http, 1).join(), await Peer("ben", node, http, 2).join()
        foreign = ben.signed(PreKeys(node.url, tuple(fresh_keys(1))), life=LIFE)
        await refused("auth.forbidden", ana.api.call("POST", "/api/v1/prekeys", data=foreign.raw))
        await refused("auth.invalid", upload(ana, fresh_keys(1), node="https://elsewhere.example"))
        move = ana.signed(Move(node.url, "https://elsewhere.example"), life=LIFE)
        await refused("auth.invalid", ana.api.call("POST", "/api/v1/prekeys", data=move.raw))
        await refused("schema.invalid", upload(ana, [bytes(32)]))  # a low-order key
        first = ana.signed(PreKeys(node.url, tuple(fresh_keys(60))), life=LIFE)
        assert (await ana.api.call("POST", "/api/v1/prekeys", data=first.raw))["stock"] == 60
        # Replayed, an upload would put back keys already handed out.
        await claim(ben, ana)
        await refused("auth.replayed", ana.api.call("POST", "/api/v1/prekeys", data=first.raw))
        assert await stock(ana) == 59
        await refused("prekeys.full", upload(ana, fresh_keys(STOCK_CAP - 58)))
        assert await stock(ana) == 59  # nothing of a refused upload is kept
        assert (await upload(ana, fresh_keys(STOCK_CAP - 59)))["stock"] == STOCK_CAP
        await refused("auth.required", upload(Peer("nobody", node, http, 9), fresh_keys(1)))

    run_node(tmp_path, body)


def test_a_stranger_cannot_drain_a_stock_past_the_hourly_limit(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        mallory, ben = await Peer("mallory", node, http, 3).join(), await Peer("ben", node, http, 2).join()
        await upload(ana, fresh_keys(STOCK_CAP))
        got = [await claim(mallory, ana) for _ in range(CLAIMS_PER_HOUR)]
        assert len({k for k in got if k is not None}) == CLAIMS_PER_TARGET
        assert got[CLAIMS_PER_TARGET:] == [None] * (CLAIMS_PER_HOUR - CLAIMS_PER_TARGET)
        await refused("rate.limited", claim(mallory, ana))  # past the claimant's own limit
        assert await claim(ben, ana) is None  # past the target's limit, for everyone this hour
        assert await stock(ana) == STOCK_CAP - CLAIMS_PER_TARGET
        node.clock.advance(3600)
        assert await claim(ben, ana) is not None  # a new hour
        assert await stock(ana) == STOCK_CAP - CLAIMS_PER_TARGET - 1

    run_node(tmp_path, body)


def test_concurrent_claims_never_hand_out_a_key_twice(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        claimants = [await Peer(f"c{i}", node, http, 10 + i).join() for i in range(2)]
        keys = fresh_keys(CLAIMS_PER_TARGET - 5)
        await upload(ana, keys)
        handed = await asyncio.gather(*(claim(c, ana) for c in claimants for _ in range(10)))
        given = [k for k in handed if k is not None]
        assert sorted(given) == sorted(keys)  # every key once, none twice
        assert handed.count(None) == 5
        assert await stock(ana) == 0

    run_node(tmp_path, body)


TwoNodes = Callable[[TestNode, TestNode, aiohttp.ClientSession], Awaitable[None]]


def run_two(tmp: Path, body: TwoNodes) -> None:
    """Two federated nodes sharing a clock and one HTTP session; both stopped after."""

    async def scenario() -> None:
        clock = Clock()
        a, b = [await TestNode(tmp / name, clock).start() for name in "ab"]
        try:
            await federate(a, b)
            async with aiohttp.ClientSession() as http:
                await body(a, b, http)
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_erasure_and_moving_delete_the_stock(tmp_path: Path) -> None:
    async def body(a: TestNode, b: TestNode, http: aiohttp.ClientSession) -> None:
        ana, ben = await Peer("ana", a, http, 1).join(), await Peer("ben", a, http, 2).join()
        await upload(ana, fresh_keys(5))
        await upload(ben, fresh_keys(4))
        assert (await a.node.store.counts())["prekeys"] == 9
        await ana.api.erase(ana.signed(Erasure(), life=3600).raw)
        assert (await a.node.store.counts())["prekeys"] == 4
        assert await a.node.store.claim_prekey(bytes(ana.id)) is None
        # Ben moves to B: A hands out none of his keys any more; B will, once he uploads there.
        await Peer("ben", b, http, 2).join()
        await ben.api.move(b.url, ben.signed(Move(a.url, b.url), life=300).raw)
        assert (await a.node.store.counts())["prekeys"] == 0

    run_two(tmp_path, body)


def test_a_sender_on_another_node_claims_through_its_own_home(tmp_path: Path) -> None:
    async def body(a: TestNode, b: TestNode, http: aiohttp.ClientSession) -> None:
        ana, ben = await Peer("ana", a, http, 1).join(), await Peer("ben", b, http, 2).join()
        keys = fresh_keys(2)
        await upload(ana, keys)
        await ben.api.keys(ana.id.text)  # B holds Ana's bundle, naming A as her home
        handed = [await claim(ben, ana) for _ in range(3)]
        assert sorted(k for k in handed if k is not None) == sorted(keys) and handed[2] is None
        assert await stock(ana) == 0
        # A peer no node here or there answers for: the same null.
        assert await claim(ben, Peer("nobody", a, http, 9)) is None

    run_two(tmp_path, body)


def test_a_take_over_deletes_the_other_devices_stock(tmp_path: Path) -> None:
    """The secrets of uploaded one-time pre-keys are on the device that uploaded them; once another
    device takes the identity over, a claim must never hand one out (R-13.5-29)."""

    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana, ben = Peer("ana", node, http, 1), await Peer("ben", node, http, 2).join()
        await ana.api.sign_in(ana.identity, now=ana.now(), device=b"\x0a" * 16)
        await ana.api.put_keys(ana.bundle)
        await upload(ana, fresh_keys(5))
        # Signing in again from the same device keeps its stock.
        await ana.api.sign_in(ana.identity, now=ana.now(), device=b"\x0a" * 16)
        assert await stock(ana) == 5
        # Another device takes over: the first device's keys are gone, and nobody is handed one.
        ana.api = NodeAPI(node.url, http)
        await ana.api.sign_in(ana.identity, now=ana.now(), device=b"\x0b" * 16, take_over=True)
        assert await stock(ana) == 0
        assert await claim(ben, ana) is None
        # The new device's own upload is what claims hand out from then on.
        mine = fresh_keys(2)
        await upload(ana, mine)
        assert await claim(ben, ana) in mine

    run_node(tmp_path, body)
