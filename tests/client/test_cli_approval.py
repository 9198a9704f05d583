"""Joining a node whose operator approves members (issue 12 item 2; spec §13.4, registration).

Before: on `--registration approval`, `id new` exited without keeping the key, so an approved
member could never sign in, and every retry made a new pending key. Now the key is kept, every
verb that needs the node says the join is waiting, and once approved the same key signs in,
publishes its bundle, and can be reached.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.client.test_cli_story import Cli
from tests.processes import NodeProcesses


def admin(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_pending_key_is_kept_and_signs_in_once_approved(tmp_path: Path, node_processes: NodeProcesses) -> None:
    node = node_processes(tmp_path / "node", "--registration", "approval", name="N")
    asyncio.run(node.start())
    rae = Cli(tmp_path / "rae")
    joined = rae.json("id", "new", "--node", node.url, "--name", "Rae")
    assert joined["standing"] == "pending" and joined["node"] == node.url
    peer = joined["peer"]
    # Asking again keeps the same key and says where it stands.
    assert rae.json("id", "status") == {**joined, "standing": "pending"}
    assert rae.error("browse") == "auth.pending"
    shown = rae.run("id", "status").stdout
    assert "waiting for the node's operator to approve you" in shown
    pending = json.loads(admin(node.data, "members", "list").stdout)
    assert [m["peer"] for m in pending if m["status"] == "pending"] == [peer]

    assert admin(node.data, "members", "approve", peer).returncode == 0
    now = rae.json("id", "status")
    assert (now["peer"], now["standing"]) == (peer, "member")
    # The approved member publishes and is reachable: another member can reach out to her.
    offer = rae.json("offer", "--topic", "hearing voices", "--summary", "I hear voices too.")
    sam = Cli(tmp_path / "sam")
    assert sam.json("id", "new", "--node", node.url, "--name", "Sam")["standing"] == "pending"
    assert admin(node.data, "members", "approve", sam.json("id", "show")["peer"]).returncode == 0
    assert sam.json("id", "status")["standing"] == "member"
    assert [x["id"] for x in sam.json("browse")["listings"]] == [offer["id"]]
    assert sam.json("reach", offer["id"][:8], "--hello", "Hello Rae")["state"] == "reached-out"
    assert [c["hello"] for c in rae.json("connections")["connections"]] == ["Hello Rae"]
