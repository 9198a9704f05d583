"""One device, then the next (spec §13.4, One device at a time), through the real CLI against a real node.

After ``id export`` on one device and ``id import`` on another, the node delivers to the new
device only: the old one is refused ``auth.moved``, says so plainly and exits non-zero, takes
nothing from the mailbox, and still shows what it already held.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.client.pairs import Cli, connected, eventually, one_node, take_offline
from tests.processes import NodeProcesses

WORDS = "a passphrase for the move"
LATER = ["one", "two", "three", "four", "five"]


def test_import_on_a_new_device_moves_the_identity_and_the_old_device_stops_receiving(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    old, ben, connection = connected(node, tmp_path)
    cid = connection[:8]
    ben.json("send", cid, "said before the move")
    eventually(lambda: old.json("read", cid)["messages"], "the first message on the old device")

    backup = tmp_path / "ana.backup"
    Cli(old.home, WORDS).json("id", "export", str(backup))
    # A live reader on the old device, running when the identity moves, is told and ends.
    with subprocess.Popen(
        [sys.executable, "-m", "peerfed", "read", cid, "--follow", "--json"],
        env=old.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stdout is not None
        assert "said before the move" in follower.stdout.readline()
        new = Cli(tmp_path / "ana-new", WORDS)
        imported = new.json("id", "import", str(backup))
        assert imported["peer"] == old.json("id", "show")["peer"]
        _, said = follower.communicate(timeout=60)
    assert follower.returncode == 1 and json.loads(said.splitlines()[-1])["error"]["code"] == "auth.moved"

    for text in LATER:
        ben.json("send", cid, text)

    # The old device asks first: before, it would have drained part of the mailbox.
    read = old.run("read", cid, "--json", ok=False)
    assert read.returncode == 1
    assert "auth.moved" in read.stderr and "this identity now lives on another device (moved at 20" in read.stderr
    assert "this device no longer receives" in read.stderr
    shown = json.loads(read.stdout)  # what the device held is still shown
    assert [m["text"] for m in shown["messages"]] == ["said before the move"]

    # The new device gets every message, once, in order.
    got = new.json("read", cid)["messages"]
    assert [m["text"] for m in got] == ["said before the move", *LATER]

    # The old device stays refused however it asks, and acknowledged nothing.
    assert old.error("send", cid, "from the old device") == "auth.moved"
    follow = old.run("read", cid, "--follow", "--json", ok=False)
    assert follow.returncode == 1 and json.loads(follow.stderr)["error"]["code"] == "auth.moved"
    listed = old.run("connections", ok=False)
    assert listed.returncode == 1 and "auth.moved" in listed.stderr and connection[:12] in listed.stdout
    assert new.json("read", cid)["messages"] == got

    # Moving back is one command on the device the person keeps; then the other one is told.
    moved_back = old.run("id", "take-over").stdout
    assert "no longer receives" in moved_back and "what reached the other device meanwhile stays there" in moved_back
    # Its session may be behind the other device's (spec §14.6): said plainly, and kept to open what it can.
    assert "1 conversation(s) may have moved on there" in moved_back
    ben.json("send", cid, "six")
    assert [m["text"] for m in old.json("read", cid)["messages"]] == ["said before the move", "six"]
    # Its next message goes with scheme 1 (R-9.5-6), numbered past the other device's (R-9.5-5).
    assert old.json("send", cid, "seven")["seq"] > 1

    def ben_heard() -> dict[str, Any] | None:
        read: dict[str, Any] = ben.json("read", cid)
        return read if "seven" in [m["text"] for m in read["messages"]] else None

    heard = eventually(ben_heard, "the returning device's message at Ben's")
    assert heard["forward_secret"] is False
    # Asked again where the identity already is, a take-over takes nothing over and marks nothing.
    assert "already comes to this device; nothing changed" in old.run("id", "take-over").stdout
    again = new.run("read", cid, "--json", ok=False)
    assert again.returncode == 1 and "auth.moved" in again.stderr
    assert [m["text"] for m in json.loads(again.stdout)["messages"]] == ["said before the move", *LATER]

    # A moved-from device's history stays readable from the device alone, the node out of reach.
    take_offline(node)
    offline = new.run("read", cid, "--json")
    assert "offline" in offline.stderr
    assert [m["text"] for m in json.loads(offline.stdout)["messages"]] == ["said before the move", *LATER]
