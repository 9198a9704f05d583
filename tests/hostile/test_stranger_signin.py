"""Sign-in binds the node (issue 11; spec §13.4, §13.5 Moving, §12): each attack built on loopback.

A stranger node relays an honest node's challenge; a stolen session token tries to move an
account; a move made without the member is undone by signing in again; the token is not
kept in plain text under a passphrase. Key checks (small-order and non-canonical Ed25519) are
in ``tests/protocol/test_small_order.py`` and the vectors.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from peerfed.client.peer import Peer as Client
from peerfed.client.transport import NodeAPI
from peerfed.protocol import ClientAuth, Context, Message, Move, RemoteError, open_signed, seal
from peerfed.protocol.node_bodies import WrongNode

from ..node.harness import DAY, Clock, Peer, TestNode, federate, free_socket, standing


async def refused(code: str, action: Any) -> None:
    with pytest.raises(RemoteError) as info:
        await action
    assert info.value.code == code, str(info.value)


class RelayNode:
    """A stranger on 127.0.0.1 that hands out ``target``'s challenges as its own and relays any proof."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.proofs: list[bytes] = []
        self.sock = free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.runner: web.AppRunner | None = None

    async def _challenge(self, request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as http, http.post(self.target + "/api/v1/challenge") as answer:
            return web.json_response(await answer.json())  # "node" names the target, not us

    async def _session(self, request: web.Request) -> web.Response:
        proof = await request.read()
        self.proofs.append(proof)
        async with aiohttp.ClientSession() as http, http.post(self.target + "/api/v1/session", data=proof) as answer:
            return web.json_response(await answer.json(), status=answer.status)

    async def start(self) -> RelayNode:
        app = web.Application()
        app.router.add_post("/api/v1/challenge", self._challenge)
        app.router.add_post("/api/v1/session", self._session)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        return self

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def mail_to(client: Client, sender: Peer, text: str) -> bytes:
    """``sender`` seals a message to the client's published key and sends it; the sealed id."""
    held = await sender.api.keys(client.id.text)
    bundle = open_signed(base64.b64decode(held["key_bundle"]), context=Context.KEY_BUNDLE, now=sender.now())
    inner = sender.signed(Message(client.id, bytes(16), 1, text), life=3 * DAY)
    sealed = seal(inner, bundle.body.encryption_key)  # type: ignore[union-attr]
    await sender.api.send(sealed.raw)
    return sealed.id


async def waiting(node: TestNode, client: Client) -> list[bytes]:
    items = await node.node.store.mailbox_items(bytes(client.id), 0, 100, int(node.clock()))
    return [item.id for item in items]


def test_a_node_that_relays_another_nodes_challenge_gets_no_proof(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        relay = await RelayNode(a.url).start()
        try:
            async with aiohttp.ClientSession() as http:
                ana = await Client.create(tmp_path / "ana", http, node=a.url, clock=clock)
                ben = await Peer("ben", a, http, 2).join()
                sealed_id = await mail_to(ana, ben, "waiting for Ana")
                assert await waiting(a, ana) == [sealed_id]
                # `id move` to the stranger: the client refuses A's challenge relayed by it.
                with pytest.raises(WrongNode) as info:
                    await ana.move(relay.url)
                assert info.value.code == "local.wrong_node"
                # So does a plain sign-in there.
                with pytest.raises(WrongNode):
                    await NodeAPI(relay.url, http).sign_in(Peer("ana2", a, http, 9).identity, now=int(clock()))
                assert relay.proofs == []  # nothing was signed for it to relay
                assert await waiting(a, ana) == [sealed_id]  # A's mailbox was not drained
                assert standing(await a.node.store.member(bytes(ana.id))) == ("member", None)
                assert (await ana.show())["node"] == a.url
                await ana.close()
        finally:
            await relay.stop()
            await a.stop()

    asyncio.run(scenario())


def test_a_stolen_session_token_cannot_move_an_account(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a, b, c = [await TestNode(tmp_path / n, clock).start() for n in "abc"]
        try:
            await federate(a, b, c)
            async with aiohttp.ClientSession() as http:
                ana = await Peer("ana", a, http, 1).join()
                mallory = Peer("mallory", b, http, 66)
                thief = NodeAPI(a.url, http, ana.api.token)  # the token alone, read off a device
                await refused("request.invalid", thief.call("POST", "/api/v1/move", json={"to": b.url}))
                own = mallory.signed(Move(a.url, b.url), life=300)
                await refused("auth.forbidden", thief.move(b.url, own.raw))
                proof = ana.signed(ClientAuth(a.url, bytes(32)), life=300)
                await refused("auth.invalid", thief.move(b.url, proof.raw))
                elsewhere = ana.signed(Move(c.url, b.url), life=300)  # one she signed for another node
                await refused("auth.invalid", thief.move(b.url, elsewhere.raw))
                other_way = ana.signed(Move(a.url, c.url), life=300)
                await refused("auth.invalid", thief.move(b.url, other_way.raw))
                assert standing(await a.node.store.member(bytes(ana.id))) == ("member", None)

                # Ana moves for real; the statement is captured and she comes back to A.
                statement = ana.signed(Move(a.url, b.url), life=300)
                assert (await ana.api.move(b.url, statement.raw))["status"] == "moved"
                back = await Peer("ana", a, http, 1).join()
                assert standing(await a.node.store.member(bytes(ana.id))) == ("member", None)
                # The thief, holding her new token and the old statement, cannot replay the move.
                await refused("auth.replayed", NodeAPI(a.url, http, back.api.token).move(b.url, statement.raw))
                assert standing(await a.node.store.member(bytes(ana.id))) == ("member", None)
                clock.advance(301)  # and once it has expired it is refused as such
                await refused("time.expired", NodeAPI(a.url, http, back.api.token).move(b.url, statement.raw))
        finally:
            for node in (a, b, c):
                await node.stop()

    asyncio.run(scenario())


def test_the_session_token_is_not_kept_in_plain_text_under_a_passphrase(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        home = tmp_path / "ana"
        try:
            async with aiohttp.ClientSession() as http:
                ana = await Client.create(home, http, node=a.url, passphrase="correct horse", clock=clock)
                token = ana.api.token
                assert token
                await ana.close()
                again = await Client.load(home, http, passphrase="correct horse", clock=clock)
                assert again.api.token == token  # kept, and usable once unlocked
                clock.advance(31 * DAY)  # the session expires; signing in again keeps the new one sealed too
                await again.call(lambda: again.api.mailbox(limit=1))
                renewed = again.api.token
                assert renewed and renewed != token
                await again.close()
            files = [p for p in home.rglob("*") if p.is_file()]
            assert files
            for path in files:
                data = path.read_bytes()
                for secret in (token, renewed):
                    assert secret.encode("ascii") not in data, path
                    assert base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)) not in data, path
        finally:
            await a.stop()

    asyncio.run(scenario())


def test_signing_in_again_undoes_a_move_made_without_the_member(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a, b = [await TestNode(tmp_path / n, clock).start() for n in "ab"]
        try:
            await federate(a, b)
            async with aiohttp.ClientSession() as http:
                ana = await Client.create(tmp_path / "ana", http, node=a.url, clock=clock)
                ben = await Peer("ben", a, http, 2).join()
                # A move Ana never asked for (a stolen statement, an operator's mistake).
                await a.node.store.move_mailbox(bytes(ana.id), b.url, "sealed", int(clock()))
                lost = await mail_to(ana, ben, "forwarded while she was moved")
                assert lost not in await waiting(a, ana)
                # Her client's next call finds its session ended, signs in again, and is home again.
                await ana.call(lambda: ana.api.mailbox(limit=1))
                assert standing(await a.node.store.member(bytes(ana.id))) == ("member", None)
                later = await mail_to(ana, ben, "after she came back")
                assert await waiting(a, ana) == [later]  # delivered here, not forwarded
                page = await ana.api.mailbox()
                assert [bytes.fromhex(i["id"]) for i in page["items"]] == [later]
                await ana.close()
        finally:
            for node in (a, b):
                await node.stop()

    asyncio.run(scenario())
