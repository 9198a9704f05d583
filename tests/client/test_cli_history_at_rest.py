"""A locked device's files hold no word of its conversations (spec §9.6, R-9.6-2), through the real
CLI against a real node.

Before: every signed message (hello, reply, terms, messages) and every connection state (which
holds the terms) was stored in plaintext in the device's database, so its files gave the whole
history to anyone without the passphrase. Now each is sealed under a key derived from the seed,
which the passphrase locks; a database from before is sealed on its first unlock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import aiohttp

from peerfed.client import keyring as kr
from peerfed.client.peer import Peer
from peerfed.client.state import LocalState
from tests.client.pairs import Cli, eventually, one_node
from tests.client.test_upgrade import CONNECTION, WRITTEN_AT, restore_home
from tests.processes import NodeProcesses

PRIVATE = {
    "hello": "hello-Wombat-5521 the evenings are long",
    "reply": "reply-Ibex-8830 I know them too",
    "helps": "helps-Lynx-1290 just listening",
    "times": "times-Heron-4417 after nine",
    "boundary": "boundary-Moose-7764 no advice please",
    "ending": "ending-Otter-3308 either may stop",
    "from the reacher": "message-Badger-6652 thank you for answering",
    "from the author": "message-Puffin-2209 glad to talk",
}


def _files(home: Path) -> dict[str, bytes]:
    """Every file of the device's database, the write-ahead log and shared memory included."""
    return {p.name: p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


def _leaks(home: Path, texts: dict[str, str]) -> dict[str, list[str]]:
    found = {name: [k for k, t in texts.items() if t.encode() in data] for name, data in _files(home).items()}
    return {name: hits for name, hits in found.items() if hits}


def test_a_locked_device_holds_no_conversation_text(node_processes: NodeProcesses, tmp_path: Path) -> None:
    node = one_node(node_processes, tmp_path)
    ana, ben = Cli(tmp_path / "ana", "Ana's long passphrase"), Cli(tmp_path / "ben", "Ben's long passphrase")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    ben.json("id", "new", "--node", node.url, "--name", "Ben")
    offer = ana.json("offer", "--topic", "night shifts", "--summary", "I listen after night shifts.")
    eventually(lambda: ben.json("browse")["listings"], "the offer")
    cid = ben.json("reach", offer["id"][:8], "--hello", PRIVATE["hello"])["connection"][:8]
    eventually(lambda: ana.json("connections")["connections"], "the reach-out")
    ana.json("accept", cid, "--reply", PRIVATE["reply"])
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "accepted", "the acceptance")
    terms = ("--helps", PRIVATE["helps"], "--times", PRIVATE["times"], "--boundary", PRIVATE["boundary"])
    ben.json("agree", cid, *terms, "--ending", PRIVATE["ending"])
    eventually(lambda: ana.json("agreement", cid)["pending"], "the proposed terms")
    assert ana.json("agree", cid, "--accept")["state"] == "agreed"
    ben.json("send", cid, PRIVATE["from the reacher"])
    ana.json("send", cid, PRIVATE["from the author"])
    eventually(lambda: len(ana.json("read", cid)["messages"]) == 2, "Ben's message at Ana's")
    eventually(lambda: len(ben.json("read", cid)["messages"]) == 2, "Ana's message at Ben's")

    for cli, other in ((ana, "Ben"), (ben, "Ana")):
        names = set(_files(cli.home))
        assert "peer.sqlite3" in names, names
        assert _leaks(cli.home, PRIVATE) == {}, cli.home
        # With the passphrase, the whole conversation still shows.
        (listed,) = cli.json("connections")["connections"]
        assert listed["hello"] == PRIVATE["hello"] and listed["reply"] == PRIVATE["reply"]
        assert listed["name"] == other
        shown = cli.json("read", cid)
        assert sorted(m["text"] for m in shown["messages"]) == sorted(
            [PRIVATE["from the reacher"], PRIVATE["from the author"]]
        )
        in_force = cli.json("agreement", cid)["in_force"]
        assert in_force["helps"] == PRIVATE["helps"] and PRIVATE["boundary"] in json.dumps(in_force)
        # Without it, nothing opens.
        assert Cli(cli.home, plain=False).error("read", cid) == "local.passphrase"


def test_a_history_kept_in_plaintext_is_sealed_on_the_first_unlock(tmp_path: Path) -> None:
    """A database of the release before (schema 3, plaintext history) whose keys have a passphrase."""
    home = tmp_path / "ben"
    restore_home(home, "ben", drop_saved_states=False)
    said = {"hello": "hello from before the upgrade", "message": "first message"}
    db = sqlite3.connect(home / "peer.sqlite3")
    (plain,) = db.execute("SELECT value FROM meta WHERE key='keyring'").fetchone()
    locked = kr.lock(kr.unlock(bytes(plain), None), "a passphrase from before")
    db.execute("UPDATE meta SET value=? WHERE key='keyring'", (locked,))
    db.commit()
    db.close()
    assert set(_leaks(home, said)["peer.sqlite3"]) == set(said)  # the fixture holds them in plaintext

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            peer = await Peer.load(home, http, passphrase="a passphrase from before", clock=lambda: WRITTEN_AT + 60)
            try:
                assert _leaks(home, said) == {}
                [connection] = await peer.connections()
                assert connection["hello"] == said["hello"]
                shown = await peer.messages(CONNECTION[:8])
                assert [m["text"] for m in shown["messages"]] == [said["message"]]
            finally:
                await peer.close()
            # Sealed once: a second unlock reads the same conversation, not a second sealing.
            again = await Peer.load(home, http, passphrase="a passphrase from before", clock=lambda: WRITTEN_AT + 60)
            try:
                assert (await again.connections())[0]["hello"] == said["hello"]
            finally:
                await again.close()
        assert _leaks(home, said) == {}
        with sqlite3.connect(home / "peer.sqlite3") as check:
            assert check.execute("PRAGMA user_version").fetchone() == (4,)

    asyncio.run(scenario())


# Every column of the device's database, as spec §12 (What a stolen device reveals) describes it
# to a thief without the passphrase: "sealed" (under the passphrase or a key only the seed gives)
# or what it shows in plaintext. A new column fails this test until the spec says what it shows.
COLUMNS = {
    "meta": {"key": "names of the values", "value": "node, name, standing, device, cursors; keys sealed"},
    "peers": {
        "peer": "peer ids",
        "bundle": "public key bundles",
        "bundle_expires": "times",
        "home": "home nodes",
        "name": "pseudonyms",
        "blocked": "who is blocked",
    },
    "listings": {
        "id": "listing ids",
        "raw": "public cards",
        "author": "peer ids",
        "origin": "node URLs",
        "mine": "which are one's own",
        "expires_at": "times",
        "withdrawn": "withdrawn or not",
        "seen_at": "times",
    },
    "connections": {
        "id": "connection ids",
        "listing": "listing ids",
        "peer": "peer ids",
        "side": "author or reacher",
        "created_at": "times",
        "updated_at": "times",
        "read_seq": "how far read",
    },
    "events": {
        "n": "counts",
        "connection": "connection ids",
        "inner_id": "message ids",
        "author": "who wrote",
        "type": "message types",
        "raw": "sealed",
        "at": "times",
    },
    "connection_states": {"connection": "connection ids", "through": "counts", "state": "sealed"},
    "outbox": {
        "n": "counts",
        "inner_id": "message ids",
        "connection": "connection ids",
        "queued_at": "times",
        "attempts": "counts",
        "last_error": "the node's error text",
    },
}


def test_every_column_a_thief_can_read_is_one_the_spec_lists(tmp_path: Path) -> None:
    async def scenario() -> None:
        state = await LocalState.open(tmp_path / "home")
        await state.close()

    asyncio.run(scenario())
    with sqlite3.connect(tmp_path / "home" / "peer.sqlite3") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        found = {
            t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in tables if not t.startswith("sqlite_")
        }
    assert found == {t: set(c) for t, c in COLUMNS.items()}
