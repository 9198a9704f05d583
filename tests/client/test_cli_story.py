"""The whole story through the real `peerfed` command, two peers on two node processes."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from peerfed.protocol import PeerId
from tests.backends import stored_bytes
from tests.processes import NodeProcess, NodeProcesses

HELLO = "Hola, I read your offer; the nights are hard for me lately"
HELPS = "Listening without advice on weekday evenings"
BOUNDARY = "No phone calls please"
WORDS = ["Last night I was awake until four", "I know those nights; tell me about them"]


class Cli:
    """One peer's terminal: its own PEERFED_HOME.

    Without a passphrase, ``id new`` is given ``--no-passphrase`` (new keys are encrypted by
    default, spec §12) unless ``plain`` is False, as in the tests of that default itself.
    """

    def __init__(self, home: Path, passphrase: str | None = None, *, plain: bool = True) -> None:
        self.home = home
        self.env = {**os.environ, "PEERFED_HOME": str(home)}
        self.env.pop("PEERFED_PASSPHRASE", None)
        self.plain = plain and not passphrase
        if passphrase:
            self.env["PEERFED_PASSPHRASE"] = passphrase

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        if self.plain and args[:2] == ("id", "new"):
            args = (*args[:2], "--no-passphrase", *args[2:])
        out = subprocess.run(
            [sys.executable, "-m", "peerfed", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if ok:
            assert out.returncode == 0, f"{args}: {out.stderr}"
        return out

    def json(self, *args: str) -> Any:
        out = self.run(*args, "--json")
        return json.loads(out.stdout)  # exactly one JSON document, nothing else

    def error(self, *args: str) -> str:
        out = self.run(*args, "--json", ok=False)
        assert out.returncode != 0 and out.stdout == ""
        return str(json.loads(out.stderr)["error"]["code"])


def question_then_answer(messages: list[dict[str, Any]], me: str, them: str) -> list[tuple[str, str]]:
    """A reader's two messages, ``me`` asking and ``them`` answering, as (from, text) in display order.

    The order is spec §9.5's: the earlier ``created_at`` first. An answer written within the second
    of the question ties with it, and the tie goes to the smaller peer id, not to who spoke first.
    """
    author = {"me": bytes(PeerId.from_text(me)), "them": bytes(PeerId.from_text(them))}
    mine, theirs = (next(m for m in messages if m["from"] == side) for side in ("me", "them"))
    assert mine["at"] <= theirs["at"]  # the answer was signed after the question was read
    ordered = sorted((mine, theirs), key=lambda m: (m["at"], author[m["from"]]))
    return [(m["from"], m["text"]) for m in ordered]


def eventually(check: Callable[[], Any], what: str, tries: int = 100) -> Any:
    """Poll (bounded) until the nodes' background delivery has done its work."""
    for _ in range(tries):
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def nodes(tmp_path: Path, node_processes: NodeProcesses) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    b = node_processes(tmp_path / "node-b", name="B")
    a = node_processes(tmp_path / "node-a", "--federate", b.url, name="A")
    b.spawn()
    a.spawn()
    try:
        asyncio.run(both_answering(a, b))
        eventually(lambda: _federating(a.data), "the nodes to federate")
        yield a, b
    finally:
        a.stop()
        b.stop()


async def both_answering(a: NodeProcess, b: NodeProcess) -> None:
    await asyncio.gather(a.answering(), b.answering())


def _federating(data: Path) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", "federation", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode == 0 and any(n["status"] == "active" for n in json.loads(out.stdout))


def test_the_whole_story_and_nothing_private_on_either_node(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    a, b = nodes
    ana, ben = Cli(tmp_path / "ana"), Cli(tmp_path / "ben")
    me = ana.json("id", "new", "--node", a.url, "--name", "Ana")
    assert me["peer"].startswith("pf1") and me["node"] == a.url
    ben_id = ben.json("id", "new", "--node", b.url, "--name", "Ben")["peer"]
    offer = ana.json(
        "offer",
        "--topic",
        "panic attacks",
        "--lang",
        "es",
        "--lang",
        "en",
        "--when",
        "mon-fri 18:00-21:00",
        "--tz",
        "Europe/Madrid",
        "--summary",
        "I can listen on weekday evenings.",
    )
    assert ana.json("listings")["listings"][0]["id"] == offer["id"]

    found = eventually(lambda: ben.json("browse", "--topic", "panic attacks")["listings"], "the offer on B")
    assert found[0]["id"] == offer["id"] and found[0]["name"] == "Ana" and found[0]["origin"] == a.url
    reached = ben.json("reach", offer["id"][:8], "--hello", HELLO)
    connection = reached["connection"]
    assert reached["state"] == "reached-out"
    # Before acceptance, Ben can send nothing but an end.
    assert ben.error("send", connection[:6], "are you there?") == "connection.not_allowed"

    listed = eventually(lambda: ana.json("connections")["connections"], "the reach-out on A")
    assert listed[0]["hello"] == HELLO and listed[0]["state"] == "reached-out" and listed[0]["name"] == "Ben"
    assert ana.json("accept", connection[:6], "--reply", "Of course.")["state"] == "accepted"
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "accepted", "the acceptance")
    # The text given with the acceptance reaches the one who reached out, in both views.
    assert ben.json("connections")["connections"][0]["reply"] == "Of course."
    opening = ben.json("read", connection[:6])["opening"]
    assert [(o["kind"], o["from"], o["text"]) for o in opening] == [
        ("reached-out", "me", HELLO),
        ("accepted", "them", "Of course."),
    ]
    assert "them (Ana) accepted: Of course." in ben.run("read", connection[:6]).stdout

    proposed = ana.json("agree", connection[:6], "--helps", HELPS, "--boundary", BOUNDARY)
    assert proposed["in_force"] is None and proposed["version"] == 1
    pending = eventually(lambda: ben.json("agreement", connection[:6])["pending"], "the proposal")
    assert pending["helps"] == HELPS and pending["proposed_by"] == "them"
    assert ben.json("agreement", connection[:6])["in_force"] is None  # one signature is not enough
    signed = ben.json("agree", connection[:6], "--helps", HELPS, "--boundary", BOUNDARY)  # the same terms
    assert signed["in_force"]["helps"] == HELPS and signed["state"] == "agreed"
    eventually(lambda: ana.json("agreement", connection[:6])["in_force"], "the countersignature")

    ben.json("send", connection[:6], WORDS[0])
    eventually(lambda: ana.json("read", connection[:6])["messages"], "Ben's message")
    ana.json("send", connection[:6], WORDS[1])
    messages = eventually(
        lambda: (
            [m for m in ben.json("read", connection[:6])["messages"]]
            if len(ben.json("read", connection[:6])["messages"]) == 2
            else None
        ),
        "Ana's message",
    )
    assert [(m["from"], m["text"]) for m in messages] == question_then_answer(messages, ben_id, me["peer"])
    assert {(m["from"], m["text"]) for m in messages} == {("me", WORDS[0]), ("them", WORDS[1])}
    # Two CLI peers talk on sealing scheme 2 (spec §14.7), and each side says so.
    assert ben.json("read", connection[:6])["forward_secret"] is True
    assert ana.json("read", connection[:6])["forward_secret"] is True

    assert ana.json("end", connection[:6])["state"] == "ended"
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "ended", "the end")
    assert ben.error("send", connection[:6], "one more thing") == "connection.closed"
    assert ana.error("send", connection[:6], "wait") == "connection.closed"

    for node in (a, b):
        stored = stored_bytes(node.data)
        for secret in (HELLO, HELPS, BOUNDARY, *WORDS):
            assert secret.encode() not in stored, (node.url, secret)


def test_decline_withdrawn_and_expired_listings_blocking_and_passphrases(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    a, b = nodes
    ana, ben = Cli(tmp_path / "ana", passphrase="correct horse"), Cli(tmp_path / "ben")
    ana.json("id", "new", "--node", a.url, "--passphrase")
    assert ana.json("id", "show")["encrypted"] is True
    wrong = Cli(tmp_path / "ana", passphrase="wrong horse")
    assert wrong.error("id", "show") == "local.passphrase"
    assert Cli(tmp_path / "ana").error("id", "show") == "local.passphrase"
    ben.json("id", "new", "--node", b.url)

    offer = ana.json("offer", "--topic", "grief", "--summary", "Lost my father last year; happy to listen.")
    eventually(lambda: ben.json("browse", "--topic", "grief")["listings"], "the offer on B")
    first = ben.json("reach", offer["id"][:10], "--hello", "Could we talk?")["connection"]
    eventually(lambda: ana.json("connections")["connections"], "the reach-out")
    assert ana.json("decline", first[:8])["state"] == "declined"
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "declined", "the decline")
    assert ben.error("send", first[:8], "please?") == "connection.closed"

    # Withdrawn: refused before anything is sent.
    ana.json("withdraw", offer["id"][:10])
    eventually(lambda: not ben.json("browse", "--topic", "grief")["listings"], "the withdrawal on B")
    assert ben.error("reach", offer["id"][:10], "--hello", "hello again") == "gone"

    # Blocked: Ana blocks Ben; his reach-outs never appear. Cy, also on B, writes after him: once
    # Cy's reach-out is in, Ben's (sent earlier through the same nodes) has been received and dropped.
    again = ana.json("offer", "--topic", "sleep", "--summary", "Night owl, happy to talk.")
    eventually(lambda: ben.json("browse", "--topic", "sleep")["listings"], "the new offer on B")
    ana.json("block", ben.json("id", "show")["peer"][:20])
    blocked = ben.json("reach", again["id"][:10], "--hello", "hi from a blocked peer")["connection"]
    cy = Cli(tmp_path / "cy")
    cy.json("id", "new", "--node", b.url)
    eventually(lambda: cy.json("browse", "--topic", "sleep")["listings"], "the offer for Cy")
    allowed = cy.json("reach", again["id"][:10], "--hello", "hi, I'm Cy")["connection"]
    seen = eventually(
        lambda: [c["id"] for c in ana.json("connections")["connections"] if c["id"] == allowed], "Cy's reach-out"
    )
    assert seen == [allowed]
    assert blocked not in [c["id"] for c in ana.json("connections")["connections"]]


def test_export_then_import_continues_the_same_connections(
    nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    a, b = nodes
    ana, ben = Cli(tmp_path / "ana"), Cli(tmp_path / "ben")
    ana.json("id", "new", "--node", a.url)
    ben.json("id", "new", "--node", b.url)
    offer = ana.json("offer", "--topic", "caring for a parent", "--summary", "Carer for my mother for 6 years.")
    eventually(lambda: ben.json("browse")["listings"], "the offer")
    connection = ben.json("reach", offer["id"][:8], "--hello", "I care for my dad.")["connection"]
    eventually(lambda: ana.json("connections")["connections"], "the reach-out")
    ana.json("accept", connection[:8])
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "accepted", "the acceptance")
    ben.json("send", connection[:8], "first message")
    eventually(lambda: ana.json("read", connection[:8])["messages"], "the first message")

    backup = tmp_path / "ana-backup.peerfed"
    exporter = Cli(tmp_path / "ana", passphrase="backup phrase")
    exporter.json("id", "export", str(backup))
    assert backup.stat().st_mode & 0o777 == 0o600
    assert b"first message" not in backup.read_bytes()
    assert Cli(tmp_path / "new-phone", passphrase="nope").error("id", "import", str(backup)) == "local.passphrase"
    phone = Cli(tmp_path / "new-phone", passphrase="backup phrase")
    restored = phone.json("id", "import", str(backup))
    assert restored["peer"] == ana.json("id", "show")["peer"]
    assert phone.json("read", connection[:8])["messages"][0]["text"] == "first message"
    phone.json("send", connection[:8], "writing from my new phone")
    got = eventually(
        lambda: [m["text"] for m in ben.json("read", connection[:8])["messages"] if m["from"] == "them"],
        "the message from the new device",
    )
    assert got == ["writing from my new phone"]


def test_follow_report_resources_move_and_erase(nodes: tuple[NodeProcess, NodeProcess], tmp_path: Path) -> None:
    a, b = nodes
    ana, ben = Cli(tmp_path / "ana"), Cli(tmp_path / "ben")
    ana.json("id", "new", "--node", a.url, "--name", "Ana")
    ben.json("id", "new", "--node", b.url, "--name", "Ben")
    assert ana.json("resources")["resources"] == []
    offer = ana.json("offer", "--topic", "voices", "--summary", "I hear voices too; let's talk.")
    eventually(lambda: ben.json("browse")["listings"], "the offer")
    connection = ben.json("reach", offer["id"][:8], "--hello", "Hi Ana")["connection"]
    eventually(lambda: ana.json("connections")["connections"], "the reach-out")
    ana.json("accept", connection[:8])
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "accepted", "the acceptance")

    # read --follow prints each new message as one JSON line, live over the WebSocket.
    # The with block closes the follower's pipes once it has ended.
    with subprocess.Popen(
        [sys.executable, "-m", "peerfed", "read", connection[:8], "--follow", "--json"],
        env=ana.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        try:
            ben.json("send", connection[:8], "are you following?")
            assert follower.stdout is not None
            ready, _, _ = select.select([follower.stdout], [], [], 30)  # bounded wait for the live line
            assert ready, "read --follow printed nothing"
            assert json.loads(follower.stdout.readline())["text"] == "are you following?"
        finally:
            follower.send_signal(signal.SIGINT)
            follower.wait(timeout=30)

    # A report may disclose the other peer's signed messages; the operator sees them, nothing else.
    made = ana.json(
        "report", ben.json("id", "show")["peer"], "--reason", "testing reports", "--disclose", connection[:8]
    )
    assert made["status"] == "open" and made["disclosed"] == 2  # Ben's reach-out and message

    # Ana moves to B with the same identity; Ben's messages follow her there.
    moved = ana.json("id", "move", "--node", b.url)
    assert moved["node"] == b.url and moved["previous"] == a.url
    assert ana.json("id", "show")["node"] == b.url
    ben.json("send", connection[:8], "did you move?")
    texts = eventually(
        lambda: [m["text"] for m in ana.json("read", connection[:8])["messages"] if m["text"] == "did you move?"],
        "a message after the move",
    )
    assert texts == ["did you move?"]

    ben_id = ben.json("id", "show")["peer"]
    # An output format is not consent: without --yes, and no terminal to ask at, nothing happens.
    assert ben.error("erase-me") == "local.usage"
    assert ben.json("id", "show")["peer"] == ben_id
    erased = ben.json("erase-me", "--yes")
    assert erased["status"] == "erased" and erased["device"] == "wiped"
    # The device's copy is gone (no identity, no plaintext), and a new identity can be made there.
    assert not (ben.home / "peer.sqlite3").exists()
    assert ben.error("id", "show") == "local.no_identity"
    assert ben.json("id", "new", "--node", b.url)["peer"] != ben_id
    members = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(b.data), "--json", "members", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ben_id not in [m["peer"] for m in json.loads(members.stdout)]
