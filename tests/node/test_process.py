"""`peerfed serve` as a real process: first run, restart, SIGTERM, SIGKILL, and `peerfed admin`."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.client.transport import NodeAPI
from peerfed.protocol import Message
from tests.backends import database_for
from tests.processes import NodeProcesses

from .harness import Peer


class Wall:
    """Peers in this test use the real clock: the node process reads it."""

    def __call__(self) -> float:
        return time.time()


class Home:
    def __init__(self, url: str) -> None:
        self.url = url
        self.clock = Wall()


def test_first_run_makes_a_private_key_and_restarts_reuse_it(tmp_path: Path, node_processes: NodeProcesses) -> None:
    async def scenario() -> None:
        data = tmp_path / "node"
        node = node_processes(data)
        await node.start()
        key = data / "node.key"
        assert key.stat().st_mode & 0o777 == 0o600
        first = key.read_text()
        async with aiohttp.ClientSession() as http:
            doc1 = await NodeAPI(node.url, http).document()
        node.stop(signal.SIGTERM)
        assert node.proc is not None and node.proc.returncode == 0
        assert "node stopped cleanly" in node.output()
        await node.start()
        assert key.read_text() == first
        async with aiohttp.ClientSession() as http:
            doc2 = await NodeAPI(node.url, http).document()
        signer1 = base64.b64decode(doc1["document"])[1:33]
        assert base64.b64decode(doc2["document"])[1:33] == signer1  # the same node key signs after a restart
        node.stop()

    asyncio.run(scenario())


def test_a_killed_node_loses_nothing_it_acknowledged(tmp_path: Path, node_processes: NodeProcesses) -> None:
    async def scenario() -> None:
        data = tmp_path / "node"
        node = node_processes(data)
        await node.start()
        async with aiohttp.ClientSession() as http:
            home = Home(node.url)
            ana = await Peer("ana", home, http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("ben", home, http, 2).join()  # type: ignore[arg-type]
            offer = await ana.offer("Still here after a crash.")
            sent = []
            for n in range(1, 4):
                inner, sealed = ana.seal_to(ben, Message(ben.id, bytes(16), n, f"message {n}"))
                assert (await ana.api.send(sealed.raw))["status"] == "delivered"
                sent.append(inner)
        node.stop(signal.SIGKILL)
        await node.start()
        async with aiohttp.ClientSession() as http:
            home = Home(node.url)
            ana = await Peer("ana", home, http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("ben", home, http, 2).join()  # type: ignore[arg-type]
            assert [x["id"] for x in (await ben.api.directory())["listings"]] == [offer.id.hex()]
            assert await ben.inbox() == sent
        node.stop()
        if not database_for(data):  # SQLite's own check of its file; PostgreSQL's rows were read back above
            with sqlite3.connect(data / "node.sqlite3") as db:
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    asyncio.run(scenario())


def admin(data: Path, *args: str) -> object:
    """What 'peerfed admin --json' prints for ``args``, parsed."""
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def admin_rows(data: Path, *args: str) -> list[dict[str, Any]]:
    """A listing command's rows: it prints a JSON array of objects."""
    rows = admin(data, *args)
    assert isinstance(rows, list)
    return rows


def admin_summary(data: Path, *args: str) -> dict[str, Any]:
    """A command that prints one JSON object."""
    summary = admin(data, *args)
    assert isinstance(summary, dict)
    return summary


def test_the_admin_command_moderates_a_live_node(tmp_path: Path, node_processes: NodeProcesses) -> None:
    async def scenario() -> None:
        data = tmp_path / "node"
        node = node_processes(data, "--registration", "invite")
        await node.start()
        invite = admin(data, "invites", "create", "--uses", "1")
        assert isinstance(invite, dict)
        async with aiohttp.ClientSession() as http:
            home = Home(node.url)
            ana = await Peer("ana", home, http, 1).join(invite=invite["code"])  # type: ignore[arg-type]
            offer = await ana.offer("An offer the operator will remove.")
            await ana.api.report(offer.id.hex(), "Testing the report flow.")
            listed = admin_rows(data, "listings", "list")
            assert [row["id"] for row in listed] == [offer.id.hex()]
            reports = admin_rows(data, "reports", "list")
            assert reports[0]["reason"] == "Testing the report flow."
            admin(data, "reports", "resolve", str(reports[0]["id"]), "--outcome", "Removed.")
            admin(data, "listings", "remove", offer.id.hex())
            assert (await ana.api.directory())["listings"] == []
            assert (await ana.api.reports())["reports"][0]["outcome"] == "Removed."
            members = admin_rows(data, "members", "list")
            assert [m["peer"] for m in members] == [ana.id.text]
            admin(data, "federation", "add", "https://other.example")
            assert admin_rows(data, "federation", "list")[0]["status"] == "requested"
            admin(data, "federation", "block", "https://other.example")
            assert admin_rows(data, "federation", "list")[0]["status"] == "blocked"
            stats = admin_summary(data, "stats")
            assert stats["counts"]["members"] == 1
        node.stop()
        missing = subprocess.run(
            [sys.executable, "-m", "peerfed", "admin", "--data", str(tmp_path / "nothing"), "stats"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert missing.returncode == 2 and "no node database" in missing.stderr and not missing.stdout

    asyncio.run(scenario())
