"""One writer per home, and drafts kept when a message cannot leave (spec §9.5), through the real CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.client.pairs import bring_back, connected, eventually, one_node, take_offline
from tests.processes import NodeProcesses

SENDERS = 8


def test_eight_concurrent_sends_on_one_home_arrive_once_each_in_order(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    ana, ben, connection = connected(one_node(node_processes, tmp_path), tmp_path)
    texts = [f"message from process {i}" for i in range(SENDERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "peerfed", "send", connection[:8], text, "--json"],
            env=ben.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for text in texts
    ]
    results = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    seq_of = {text: json.loads(out)["seq"] for text, (out, _) in zip(texts, results, strict=True)}
    assert sorted(seq_of.values()) == list(range(1, SENDERS + 1))  # each process its own number

    got = eventually(
        lambda: m if len(m := ana.json("read", connection[:8])["messages"]) >= SENDERS else None, "every message"
    )
    assert len(got) == SENDERS  # exactly once each
    assert [m["seq"] for m in got] == list(range(1, SENDERS + 1))  # in the order they were numbered
    assert {m["text"]: m["seq"] for m in got} == seq_of
    assert ben.json("outbox", "list")["drafts"] == []


def test_a_message_that_cannot_leave_is_kept_as_a_draft_and_delivered_later(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    ana, ben, connection = connected(node, tmp_path)
    ben.json("send", connection[:8], "before the outage")
    take_offline(node)

    failed = ben.run("send", connection[:8], "during the outage", ok=False)
    assert failed.returncode == 1 and failed.stdout == ""
    assert "error local.undelivered" in failed.stderr and "draft" in failed.stderr
    assert "peerfed outbox retry" in failed.stderr
    [draft] = ben.json("outbox", "list")["drafts"]
    assert (draft["text"], draft["seq"], draft["attempts"]) == ("during the outage", 2, 1)
    assert "cannot reach" in draft["last_error"]
    assert ben.run("outbox", "retry", ok=False).returncode == 1  # still down: says so, keeps it
    # The sender's own copy is there, marked as a draft, read from the device alone.
    shown = ben.json("read", connection[:8])["messages"]
    assert [(m["text"], m["draft"]) for m in shown] == [("before the outage", False), ("during the outage", True)]

    asyncio.run(bring_back(node))
    assert ben.json("outbox", "retry") == {"sent": 1, "kept": 0}
    assert ben.json("outbox", "list")["drafts"] == []

    # A draft made while the node is down also leaves on the next sync, which any verb does first.
    take_offline(node)
    assert ben.run("send", connection[:8], "second outage", ok=False).returncode == 1
    asyncio.run(bring_back(node))
    ben.json("connections")
    assert ben.json("outbox", "list")["drafts"] == []

    got = eventually(lambda: m if len(m := ana.json("read", connection[:8])["messages"]) >= 3 else None, "all three")
    assert [(m["seq"], m["text"]) for m in got] == [
        (1, "before the outage"),
        (2, "during the outage"),
        (3, "second outage"),
    ]
