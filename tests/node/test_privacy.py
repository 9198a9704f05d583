"""After a whole conversation across two nodes, their files hold none of its words."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from peerfed.protocol import Agreement, End, Message, ReachOut, Response, Terms
from peerfed.protocol.messages import SealedBody
from tests.backends import stored_bytes

from .harness import Clock, Peer, TestNode, federate

HELLO = "Hola, I saw your offer; my panic attacks come at night"
REPLY = "Of course, tell me when suits you"
HELPS = "Someone who listens without advice after midnight"
BOUNDARY = "Please never suggest medication"
WORDS = ["I had an attack on the bus today", "Breathing with you helped more than I can say"]


def files_of(data: Path) -> bytes:
    """Every byte the node keeps on disk: database, WAL, shared memory, anything else (on
    PostgreSQL, the server's whole data folder too)."""
    return stored_bytes(data)


def test_no_private_words_reach_either_nodes_files(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        await federate(a, b)
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", a, http, 1).join()
            ben = await Peer("ben", b, http, 2).join()
            offer = await ben.offer("Lived with panic for years; evenings, Spanish or English.")
            for node in (a, b):
                await node.deliver()
            conn = b"\x33" * 16
            terms = Terms(helps=HELPS, boundaries=(BOUNDARY,))
            steps: list[tuple[Peer, Peer, SealedBody]] = [
                (ana, ben, ReachOut(ben.id, conn, offer.id, HELLO, terms, ana.bundle)),
                (ben, ana, Response(ana.id, conn, True, REPLY)),
                (ana, ben, Agreement(ben.id, conn, 1, terms)),
                (ben, ana, Agreement(ana.id, conn, 1, terms)),
                (ana, ben, Message(ben.id, conn, 1, WORDS[0])),
                (ben, ana, Message(ana.id, conn, 1, WORDS[1])),
                (ana, ben, End(ben.id, conn, erase=True)),
            ]
            for sender, recipient, body in steps:
                inner, sealed = sender.seal_to(recipient, body)
                await sender.api.keys(recipient.id.text)  # as a client does before sealing
                await sender.api.send(sealed.raw)
                for node in (a, b):
                    await node.deliver()
                opened = await recipient.inbox()
                assert opened[-1] == inner  # the recipient reads it...
            secrets = [HELLO, REPLY, HELPS, BOUNDARY, *WORDS]
            for node in (a, b):
                stored = files_of(node.data)
                assert len(stored) > 10_000
                for text in secrets:  # ...the nodes never could
                    assert text.encode("utf-8") not in stored, (node.url, text)
                    assert text.encode("utf-16-le") not in stored
            # The public card, by contrast, is meant to be there.
            assert b"Lived with panic for years" in files_of(b.data)
        await a.stop()
        await b.stop()
        for node in (a, b):  # and still not after shutdown's checkpoint
            stored = files_of(node.data)
            for text in secrets:
                assert text.encode() not in stored

    asyncio.run(scenario())
