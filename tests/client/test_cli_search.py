"""`peerfed browse --topic` finds listings by words across two federated node processes (spec §6.4)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.client.test_cli_story import Cli, eventually
from tests.processes import NodeProcess, NodeProcesses


def federating(data: Path) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", "federation", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode == 0 and any(n["status"] == "active" for n in json.loads(out.stdout))


def two_nodes(node_processes: NodeProcesses, tmp_path: Path) -> tuple[NodeProcess, NodeProcess]:
    """A pushes to B; the ``node_processes`` fixture stops both however the test ends."""
    b = node_processes(tmp_path / "node-b", name="B")
    a = node_processes(tmp_path / "node-a", "--federate", b.url, name="A")

    async def start() -> None:
        await asyncio.gather(a.start(), b.start())

    asyncio.run(start())
    eventually(lambda: federating(a.data), "the nodes to federate")
    return a, b


def test_browse_by_a_word_finds_a_listing_published_on_the_other_node(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    a, b = two_nodes(node_processes, tmp_path)
    ana, ben = Cli(tmp_path / "ana"), Cli(tmp_path / "ben")
    ana.json("id", "new", "--node", a.url, "--name", "Ana")
    ben.json("id", "new", "--node", b.url, "--name", "Ben")
    attacks = ana.json("offer", "--topic", "panic attacks", "--topic", "sleepless nights", "--summary", "Nights.")
    work = ana.json("offer", "--topic", "Straße & Panik", "--summary", "Streets.")

    def ids(*args: str) -> list[str]:
        return [x["id"] for x in ben.json("browse", *args)["listings"]]

    assert eventually(lambda: ids("--topic", "panic") == [attacks["id"]], "the listing pushed to B")
    assert ids("--topic", "PANIC") == [attacks["id"]]
    assert ids("--topic", "attacks, panic") == [attacks["id"]]
    assert ids("--topic", "pan") == []
    assert ids("--topic", "panic sleepless") == []  # one query's words are in one topic
    assert ids("--topic", "panic", "--topic", "sleepless") == [attacks["id"]]
    assert eventually(lambda: ids("--topic", "STRASSE") == [work["id"]], "the second listing")
    text = ben.run("browse", "--topic", "panic").stdout
    assert "panic attacks, sleepless nights" in text and "Streets." not in text
    # A query without words is refused before the node is asked, with the spec's code.
    assert ben.error("browse", "--topic", " ... ") == "request.invalid"
