"""The privacy proof, widened: three nodes, the whole story, an erasure, and every file scanned."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp

from peerfed.protocol import Agreement, End, Erasure, Message, ReachOut, Response, Terms
from peerfed.protocol.messages import SealedBody
from tests.backends import database_for, query, stored_bytes

from ..node.harness import DAY, Clock, Peer, TestNode, federate

PRIVATE = [
    "Hola, tu oferta me llegó en una noche muy mala",
    "Gracias por escribir; claro que sí",
    "Escuchar sin consejos, por las tardes",
    "Nunca me sugieras medicación",
    "Anoche no dormí hasta las cuatro",
    "Te entiendo; cuéntame cómo son esas noches",
    "Lo siento, ahora no puedo",  # z's reach-out, declined
]


def everything_in(data: Path, log: Path) -> bytes:
    """The node's files and the log; on PostgreSQL, the server's files too (tests/backends.py)."""
    return stored_bytes(data) + log.read_bytes()


def traces_in(data: Path, log: Path) -> bytes:
    """Where a trace of an erased peer is looked for. On SQLite, every byte of the node's files
    (secure_delete zeroes deleted rows; the checkpoint empties the WAL). On PostgreSQL, every row
    of every table, and the log: its files keep a deleted row's bytes until the space is reused
    and the WAL segment recycled (spec §13.9, Storage back-ends), and one server holds every
    test's databases, so its files are no evidence either way."""
    if not database_for(data):
        return everything_in(data, log)
    tables = [r[0] for r in query(data, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    rows = b"".join(str(query(data, f"SELECT * FROM {t}")).encode() for t in tables)
    return rows + log.read_bytes()


def test_three_nodes_hold_no_private_words_and_no_trace_of_an_erased_peer(tmp_path: Path) -> None:
    log = tmp_path / "nodes.log"
    handler = logging.FileHandler(log)
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("peerfed")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    async def scenario() -> None:
        clock = Clock()
        nodes = [await TestNode(tmp_path / name, clock).start() for name in "abc"]
        a, b, c = nodes
        await federate(*nodes)

        async def deliver() -> None:
            for _ in range(3):
                for node in nodes:
                    await node.deliver()

        async with aiohttp.ClientSession() as http:
            x = await Peer("x", a, http, 1).join()
            y = await Peer("y", b, http, 2).join()
            z = await Peer("z", c, http, 3).join()
            offer = await x.offer("Public card: I can listen in the evenings.", languages=("es",))
            await deliver()
            terms = Terms(helps=PRIVATE[2], boundaries=(PRIVATE[3],))
            yc, zc = b"\x0a" * 16, b"\x0b" * 16
            steps: list[tuple[Peer, Peer, SealedBody]] = [
                (y, x, ReachOut(x.id, yc, offer.id, PRIVATE[0], terms, y.bundle)),
                (z, x, ReachOut(x.id, zc, offer.id, PRIVATE[6], bundle=z.bundle)),
                (x, y, Response(y.id, yc, True, PRIVATE[1])),
                (x, z, Response(z.id, zc, False)),
                (x, y, Agreement(y.id, yc, 1, terms)),
                (y, x, Agreement(x.id, yc, 1, terms)),
                (y, x, Message(x.id, yc, 1, PRIVATE[4])),
                (x, y, Message(y.id, yc, 1, PRIVATE[5])),
                (y, x, End(x.id, yc, erase=True)),
            ]
            for sender, recipient, body in steps:
                inner, sealed = sender.seal_to(recipient, body)
                await sender.api.keys(recipient.id.text)  # as a client does before sealing
                await sender.api.send(sealed.raw)
                await deliver()
                assert (await recipient.inbox())[-1] == inner
                page = await recipient.api.mailbox()
                await recipient.api.ack([i["id"] for i in page["items"]])
            # y asks every node to forget them.
            await y.api.erase(y.signed(Erasure(), life=30 * DAY).raw)
            await deliver()
            for node in nodes:
                await node.node.store.checkpoint()
            y_traces = [bytes(y.id), y.id.text.encode(), y.id.hex.encode(), repr(bytes(y.id)).encode()[2:-1]]
            for node in nodes:
                stored = everything_in(node.data, log)
                for text in PRIVATE:
                    assert text.encode("utf-8") not in stored, (node.url, text)
                kept = traces_in(node.data, log)
                for trace in y_traces:
                    assert trace not in kept, (node.url, "a trace of the erased peer")
            x_kept = traces_in(a.data, log)  # x, not erased, is found where y was looked for
            assert bytes(x.id) in x_kept or repr(bytes(x.id)).encode()[2:-1] in x_kept
            assert log.stat().st_size > 1000  # the nodes did log, and the log was searched too
            assert bytes(x.id) in everything_in(a.data, log)  # x, not erased, is still a member of A
            assert b"Public card: I can listen" in everything_in(c.data, log)  # public, and meant to be there
        for node in nodes:
            await node.stop()

    try:
        asyncio.run(scenario())
    finally:
        logger.removeHandler(handler)
        handler.close()
