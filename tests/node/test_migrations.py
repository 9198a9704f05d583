"""A node's database from every earlier schema migrates and is served (issue 16 item 4; spec §13.9).

Each schema version has a fixture in fixtures/schemas: an SQL dump of a node's database written
by the release that had that schema (members, sessions, key bundles, local and federated
listings, a withdrawal, a waiting mailbox item, a report, an invite, a follow and an outbox item
still pending), and what that node must still hold. The test rebuilds each database at its own
version, starts a node on it, which migrates it, and checks every row through the node: the
directory, the mailbox, the store's own reads; then a real `peerfed serve` process migrates a
second copy under its lock (the admin tools refuse to before, and read it after), and the backup
taken before the upgrade restores at the old schema, for a roll-back. A new schema version needs only its
fixture (fixtures/schemas/README.md says how to make one): the first test fails until it exists.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.node.store import SCHEMA_VERSION, MemberStatus, NodeStatus, OutboxState
from peerfed.protocol import Message
from tests.processes import NodeProcesses

from .harness import Clock, Peer, TestNode

pytestmark = pytest.mark.one_backend("SQLite's schema history: its fixtures are SQLite files of each earlier version")

FIXTURES = Path(__file__).parent / "fixtures" / "schemas"


def fixture_versions() -> list[int]:
    return sorted(int(path.stem[1:]) for path in FIXTURES.glob("v*.sql"))


def build(data: Path, version: int) -> dict[str, Any]:
    """A data folder whose database is the fixture's, at its own schema version; what it must hold."""
    data.mkdir(parents=True)
    with sqlite3.connect(data / "node.sqlite3") as db:
        db.executescript((FIXTURES / f"v{version}.sql").read_text())
        assert db.execute("PRAGMA user_version").fetchone() == (version,)
    db.close()
    expected: dict[str, Any] = json.loads((FIXTURES / f"v{version}.json").read_text())
    assert expected["schema"] == version
    return expected


def schema_of(data: Path) -> int:
    with sqlite3.connect(data / "node.sqlite3") as db:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    db.close()
    return version


def admin(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_earlier_schema_version_has_a_fixture() -> None:
    found = fixture_versions()
    missing = sorted(set(range(1, SCHEMA_VERSION)) - set(found))
    assert not missing, f"no fixture for schema {missing}: make one as tests/node/fixtures/schemas/README.md says"
    assert max(found) <= SCHEMA_VERSION


@pytest.mark.parametrize("version", fixture_versions(), ids=lambda v: f"schema-{v}")
def test_a_database_from_an_earlier_schema_migrates_keeps_its_rows_and_is_served(tmp_path: Path, version: int) -> None:
    expected = build(tmp_path / "n", version)
    # The node reads the clock the rows were written by (their listings and bundles expire).
    clock = Clock(expected["written_at"] + 600)

    async def scenario() -> None:
        node = await TestNode(tmp_path / "n", clock).start()
        try:
            store = node.node.store
            assert await store.pragma("PRAGMA user_version") == [(SCHEMA_VERSION,)]
            assert await store.pragma("PRAGMA integrity_check") == [("ok",)]
            members = {m.peer: m.status for m in await store.members()}
            # Before anyone signs in again (a new key bundle is queued for the other node too).
            pending = (await store.outbox_stats()).get(expected["followed"], {}).get(OutboxState.PENDING, 0)
            assert pending == expected["outbox_pending"]
            async with aiohttp.ClientSession() as http:
                ana = await Peer("Ana", node, http, 1).join()
                ben = await Peer("Ben", node, http, 2).join()
                assert {p.id.text for p in (ana, ben)} == set(expected["members"])
                assert members == {bytes(p.id): MemberStatus.MEMBER for p in (ana, ben)}
                # Local and federated listings (built from their stored bytes where the old
                # schema kept no directory entry), and never the withdrawn one.
                page = await ben.api.directory(limit=100)
                assert sorted(item["id"] for item in page["listings"]) == expected["listings"]
                grief = await ben.api.directory(topic="grief")
                assert {item["id"] for item in grief["listings"]} < set(expected["listings"])
                assert expected["withdrawn"] not in {item["id"] for item in page["listings"]}
                # The sealed item waiting in Ana's mailbox opens with her key.
                items = (await ana.api.mailbox())["items"]
                opened = [ana.open(base64.b64decode(item["sealed"])).body for item in items]
                assert [m.text for m in opened if isinstance(m, Message)] == expected["mailbox_of_ana"]
            followed = await store.node(expected["followed"])
            assert followed is not None and followed.status == NodeStatus.ACTIVE
            assert len(await store.reports()) == expected["reports"]
            assert len(await store.invites()) == expected["invites"]
        finally:
            await node.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("version", fixture_versions(), ids=lambda v: f"schema-{v}")
def test_peerfed_serve_migrates_an_earlier_schema_once_under_its_lock(
    tmp_path: Path, version: int, node_processes: NodeProcesses
) -> None:
    data = tmp_path / "n"
    expected = build(data, version)
    (data / "node.key").write_text("11" * 32 + "\n")
    (data / "node.key").chmod(0o600)
    if version < SCHEMA_VERSION:
        # The operator's tools never migrate (an older node may still be serving): they say what to do.
        early = admin(data, "stats")
        assert early.returncode == 2 and "start peerfed serve" in json.loads(early.stderr)["error"]["message"]
        assert schema_of(data) == version
    # The backup before the upgrade works at the old schema, and copies it as it is.
    assert json.loads(admin(data, "backup", str(tmp_path / "before.backup")).stdout)["schema"] == version

    async def scenario() -> None:
        node = node_processes(data)
        await node.start()
        assert node.stop() == 0
        await node.start()  # a second start finds nothing to migrate
        assert node.stop() == 0

    asyncio.run(scenario())
    assert schema_of(data) == SCHEMA_VERSION
    # The rows no clock expires are all there for the operator's tools.
    out = admin(data, "members", "list")
    assert out.returncode == 0, out.stderr
    assert {m["peer"]: m["status"] for m in json.loads(out.stdout)} == dict.fromkeys(expected["members"], "member")
    # Rolling back: the backup from before restores into an empty folder at the old schema, unmigrated.
    restored = admin(tmp_path / "rolled-back", "restore", str(tmp_path / "before.backup"))
    assert restored.returncode == 0, restored.stderr
    assert schema_of(tmp_path / "rolled-back") == version
