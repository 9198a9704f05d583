"""Offline first (spec §9.5): what the device holds reads without the home node, and ``read
--follow`` outlives the node going away, through the real CLI against a real node process."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tests.client.pairs import connected, eventually, one_node, take_offline
from tests.processes import NodeProcesses

LINE_WAIT = 60  # seconds: the bound on waiting for one line from the follower
LINES = 200  # the bound on lines read while looking for one


def _lines(pipe: IO[str]) -> queue.Queue[str]:
    """Each line ``pipe`` yields, as it comes (a thread: select on a buffered text pipe can miss lines)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in pipe:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], wanted: Callable[[str], bool], what: str) -> str:
    for _ in range(LINES):
        try:
            line = lines.get(timeout=LINE_WAIT)
        except queue.Empty:
            break
        if wanted(line):
            return line
    raise AssertionError(f"read --follow never printed {what}")


def test_reading_connections_and_agreements_work_with_the_home_node_down(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    ana, ben, connection = connected(node, tmp_path)
    ben.json("agree", connection[:8], "--helps", "Listening")
    ben.json("send", connection[:8], "something to read later")
    eventually(lambda: ana.json("read", connection[:8])["messages"], "the message")
    take_offline(node)

    for verb in (("read", connection[:8]), ("connections",), ("agreement", connection[:8])):
        out = ana.run(*verb, "--json")
        assert out.returncode == 0, out.stderr
        json.loads(out.stdout)
        assert "offline" in out.stderr and "last synced: 20" in out.stderr, out.stderr
    assert ana.json("outbox", "list") == {"drafts": []}  # needs only the device: nothing to say
    assert [m["text"] for m in ana.json("read", connection[:8])["messages"]] == ["something to read later"]
    assert ana.json("connections")["connections"][0]["state"] == "accepted"
    assert ana.json("agreement", connection[:8])["pending"]["helps"] == "Listening"
    text = ana.run("read", connection[:8])
    assert "them (Ben): something to read later" in text.stdout


def test_read_follow_says_the_node_went_away_and_reconnects_when_it_is_back(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    ana, ben, connection = connected(node, tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "peerfed", "read", connection[:8], "--follow", "--json"],
        env=ana.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stdout is not None and follower.stderr is not None
        out, err = _lines(follower.stdout), _lines(follower.stderr)
        try:
            ben.json("send", connection[:8], "before")
            _wait_for(out, lambda line: json.loads(line)["text"] == "before", "the first message")

            # Killed, its port kept: the follower's attempts wait in the listening socket's queue
            # until the next life, on the same socket, answers them.
            node.kill()
            _wait_for(
                err, lambda line: "lost the home node" in line and "reconnecting in" in line, "that it lost the node"
            )
            assert follower.poll() is None  # still there: it did not end, silently or otherwise

            asyncio.run(node.start())
            _wait_for(err, lambda line: "reconnected to" in line, "that it reconnected")
            ben.json("send", connection[:8], "after")
            _wait_for(out, lambda line: json.loads(line)["text"] == "after", "the message sent after the restart")
        finally:
            follower.send_signal(signal.SIGINT)
            follower.wait(timeout=30)
    assert follower.returncode != 0  # it ends only when asked, and not with "all is well"
