"""Each connection's state is stored after every step, so reading never re-verifies the history.

Signature checks are counted by wrapping the one Ed25519 verify function of the protocol core,
not by timing anything.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.client import keyring as kr
from peerfed.client.history import HistoryBox, history_key
from peerfed.client.peer import Peer
from peerfed.client.state import LocalState
from peerfed.client.stored import decode_connection, encode_connection
from peerfed.protocol import Format, Kind, Listing, State, Terms, Timing, crypto, pack
from tests.node.harness import DAY, Clock, TestNode

OFFER = Listing(
    kind=Kind.OFFER,
    topics=("sleepless nights",),
    languages=("en",),
    formats=(Format.TEXT,),
    timing=Timing.SOON,
    summary="Awake at 4 a.m. too; happy to write.",
)
MESSAGES = 30

Story = Callable[[Peer, Peer, str, Path], Awaitable[None]]


class Verifications:
    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[Verifications]:
    counter = Verifications()
    real = crypto.ed25519_verify

    def counting(public: bytes, message: bytes, signature: bytes) -> None:
        counter.count += 1
        real(public, message, signature)

    monkeypatch.setattr(crypto, "ed25519_verify", counting)
    yield counter


def run_story(tmp_path: Path, messages: int, story: Story) -> None:
    """Ana offers, Ben reaches out, Ana accepts, they agree and write ``messages`` messages; then ``story``."""

    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock).start()
        try:
            async with aiohttp.ClientSession() as http:
                ana = await Peer.create(tmp_path / "ana", http, node=node.url, clock=clock)
                ben = await Peer.create(tmp_path / "ben", http, node=node.url, clock=clock)
                try:
                    made = await ana.post_listing(OFFER, DAY)
                    await ben.browse()
                    connection = (await ben.reach(made["id"], "hello"))["connection"]
                    await ana.sync()
                    await ana.respond(connection, True)
                    await ben.sync()
                    await ana.agree(connection, Terms(helps="writing at night", boundaries=("no calls",)))
                    await ben.sync()
                    await ben.agree(connection, None)
                    await ana.sync()
                    for n in range(messages):
                        sender, reader = (ben, ana) if n % 2 == 0 else (ana, ben)
                        await sender.send(connection, f"message {n}")
                        await reader.sync()
                    await story(ana, ben, connection, tmp_path)
                finally:
                    await ana.close()
                    await ben.close()
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_reading_a_conversation_verifies_no_old_message(tmp_path: Path, verifications: Verifications) -> None:
    async def story(ana: Peer, ben: Peer, connection: str, home: Path) -> None:
        verifications.count = 0
        read = await ben.messages(connection)
        listed = await ben.connections()
        agreement = await ben.agreement(connection)
        assert len(read["messages"]) == MESSAGES and read["state"] == "agreed"
        assert listed[0]["unread"] == 0 and agreement["in_force"]["helps"] == "writing at night"
        assert verifications.count == 0
        # A new message costs one check: its own, when it is opened.
        await ana.send(connection, "one more")
        verifications.count = 0
        assert (await ben.sync()).received == 1
        assert verifications.count == 1
        verifications.count = 0
        assert len((await ben.messages(connection))["messages"]) == MESSAGES + 1
        assert verifications.count == 0

    run_story(tmp_path, MESSAGES, story)


def test_the_stored_state_equals_the_state_replayed_from_the_signed_history(tmp_path: Path) -> None:
    async def story(ana: Peer, ben: Peer, connection: str, home: Path) -> None:
        cid = bytes.fromhex(connection)
        await ana.agree(connection, Terms(helps="writing, and a call on Sundays"))  # an open round
        await ben.sync()
        for peer in (ana, ben):
            loaded = await peer.conversations.state_of(cid)
            assert loaded == await peer.conversations.replay(cid)
            assert decode_connection(encode_connection(loaded)) == loaded
            assert loaded.round == 2 and len(loaded.round_terms) == 1 and loaded.in_force is not None
        assert (await ben.agreement(connection))["pending"]["proposed_by"] == "them"
        # Ending with erase: the receiving client deletes the conversation, and the terms with it.
        await ben.end(connection, erase=True)
        await ana.sync()
        ended = await ana.conversations.state_of(cid)
        assert ended.state is State.ENDED and ended.in_force is None and ended.round_terms == ()
        # No signed message is left to replay: the state is rebuilt from the connection's row.
        assert await ana.state.events(cid) == []
        replayed = await ana.conversations.replay(cid)
        assert (replayed.id, replayed.reacher, replayed.author) == (ended.id, ended.reacher, ended.author)
        assert replayed.state is State.ENDED and replayed.in_force is None and replayed.round_terms == ()
        assert (await ana.messages(connection))["messages"] == []
        assert (await ana.agreement(connection))["in_force"] is None

    run_story(tmp_path, 6, story)


def test_a_state_missing_another_process_event_is_not_stored(tmp_path: Path) -> None:
    async def story(ana: Peer, ben: Peer, connection: str, home: Path) -> None:
        cid = bytes.fromhex(connection)
        stored = await ana.state.connection_state(cid)
        assert stored is not None
        before = stored.state
        # Another process of Ana's applies a message; this one, unaware, stores a step after it.
        await ben.send(connection, "while you were away")
        other = await Peer.load(home / "ana", ana.http, clock=ana.clock)
        try:
            await other.sync()
        finally:
            await other.close()
        stale = await ana.state.connection_state(cid)
        assert stale is not None and stale.through > stored.through
        assert not await ana.state.save_connection_state(before, through=stale.through + 1, since=stored.through)
        assert not await ana.state.save_connection_state(before, through=stored.through, since=stored.through)
        assert (await ana.state.connection_state(cid)) == stale
        assert await ana.conversations.state_of(cid) == await ana.conversations.replay(cid)

    run_story(tmp_path, 2, story)


def test_a_database_from_before_stored_states_migrates_and_replays_once(
    tmp_path: Path, verifications: Verifications
) -> None:
    async def story(ana: Peer, ben: Peer, connection: str, home: Path) -> None:
        expected = await ben.messages(connection)
        http, clock = ben.http, ben.clock
        await ben.close()
        # Schema 1 is schema 4 without the connection_states and outbox tables (and with its
        # history in plaintext: these rows are sealed already, which the meta value says).
        with sqlite3.connect(home / "ben" / "peer.sqlite3") as db:
            db.execute("DROP TABLE connection_states")
            db.execute("DROP TABLE outbox")
            db.execute("PRAGMA user_version=1")
        ben = await Peer.load(home / "ben", http, clock=clock)
        try:
            with sqlite3.connect(home / "ben" / "peer.sqlite3") as db:
                assert db.execute("PRAGMA user_version").fetchone() == (4,)
                assert db.execute("SELECT count(*) FROM connection_states").fetchone() == (0,)
            verifications.count = 0
            assert await ben.messages(connection) == expected
            assert verifications.count == 6 + 4  # reach-out, accept, two agreements, six messages: once
            verifications.count = 0
            assert await ben.messages(connection) == expected
            assert verifications.count == 0
        finally:
            await ben.close()

    run_story(tmp_path, 6, story)


def test_a_backup_keeps_the_layout_it_always_had(tmp_path: Path) -> None:
    async def story(ana: Peer, ben: Peer, connection: str, home: Path) -> None:
        answer = await ana.export_backup(home / "ana.backup", "backup phrase")
        assert answer["connections"] == 1
        payload = kr.open_blob((home / "ana.backup").read_bytes(), "backup phrase")
        with sqlite3.connect(home / "ana" / "peer.sqlite3") as db:
            rows = db.execute("SELECT key, value FROM meta")
            # Everything but the keyring (its own place), the session token and whether this device's
            # history is sealed (its own); scheme-2 secrets travel, still sealed.
            meta: list[Any] = [[k, v] for k, v in rows if k not in ("keyring", "token", "history")]
            tables: list[Any] = [
                [table, [list(r) for r in db.execute(f"SELECT {columns} FROM {table}")]]
                for table, columns in (
                    ("peers", "peer, bundle, bundle_expires, home, name, blocked"),
                    ("listings", "id, raw, author, origin, mine, expires_at, withdrawn, seen_at"),
                    ("connections", "id, listing, peer, side, created_at, updated_at, read_seq"),
                    ("events", "connection, inner_id, author, type, raw, at"),
                )
            ]
        # The device keeps each message sealed (spec §9.6); the file carries it open.
        box = HistoryBox(history_key(ana.keys.identity.seed))
        sealed = [r[4] for r in tables[3][1]]
        tables[3][1] = [[*r[:4], box.open(r[4]), r[5]] for r in tables[3][1]]
        assert sealed and not any(raw in payload for raw in sealed)
        assert payload == pack(["peerfed-export/1", ana.keys.to_bytes(), meta, tables])
        restored = await Peer.restore(home / "phone", ana.http, (home / "ana.backup").read_bytes(), "backup phrase")
        try:
            assert await restored.messages(connection) == await ana.messages(connection)
            cid = bytes.fromhex(connection)
            assert await restored.connection_state(cid) == await ana.connection_state(cid)
        finally:
            await restored.close()

    run_story(tmp_path, 2, story)


def test_local_state_opens_an_empty_home_at_the_latest_schema(tmp_path: Path) -> None:
    async def scenario() -> None:
        state = await LocalState.open(tmp_path / "home")
        try:
            assert await state.connection_state(bytes(16)) is None
            assert await state.events(bytes(16)) == []
        finally:
            await state.close()

    asyncio.run(scenario())
