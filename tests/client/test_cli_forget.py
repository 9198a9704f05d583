"""Terms that forget (spec §8.3, §9.7), through the real CLI against a real node.

Two peers agree that each deletes every message two hours after it was sent; each device's clock
is then moved forward (``PEERFED_CLOCK_OFFSET``, read by the CLI only) and every byte of every
file in both home folders is searched for the messages' text. A proposal nobody countersigned
deletes nothing; terms in force delete the messages on both devices and keep the connection, its
hello, its reply and the terms themselves.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from peerfed.client.history import HistoryBox, history_key
from peerfed.protocol import unpack
from tests.client.pairs import Cli, eventually, one_node
from tests.processes import NodeProcesses

HELLO = "hello-Quetzal-4471 could we talk in the evenings"
REPLY = "reply-Ibex-2290 yes, gladly"
MESSAGES = {
    "before the terms": "message-Kinkajou-8812 written before any terms",
    "from the reacher": "message-Tarsier-1934 from the one who reached out",
    "from the author": "message-Capybara-5523 from the listing's author",
}
TWO_HOURS = 7200


def _held(home: Path) -> set[str]:
    """Which of the texts above the device holds: in any file under ``home`` as raw bytes (the WAL
    included), or in a stored message once opened with the device's own history key (spec §9.6:
    the rows are sealed at rest; these peers chose no passphrase, so the seed is readable)."""
    texts = {"hello": HELLO, "reply": REPLY, **MESSAGES}
    with closing(sqlite3.connect(home / "peer.sqlite3")) as db:
        (keyring,) = db.execute("SELECT value FROM meta WHERE key='keyring'").fetchone()
        assert keyring[0] == 0  # the plain form: --no-passphrase
        seed = unpack(keyring[1:])[0]  # type: ignore[index]
        assert isinstance(seed, bytes)
        box = HistoryBox(history_key(seed))
        opened = [box.open(bytes(raw)) for (raw,) in db.execute("SELECT raw FROM events")]
    found: set[str] = set()
    for data in [*(p.read_bytes() for p in home.rglob("*") if p.is_file()), *opened]:
        found |= {name for name, text in texts.items() if text.encode() in data}
    return found


def _later(cli: Cli, seconds: int) -> Cli:
    """The same peer's terminal, with its device's clock ``seconds`` ahead."""
    moved = Cli(cli.home)
    moved.env["PEERFED_CLOCK_OFFSET"] = str(seconds)
    return moved


def test_agreed_terms_forget_the_messages_on_both_devices_and_keep_the_connection(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    ana, ben = Cli(tmp_path / "ana"), Cli(tmp_path / "ben")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    ben.json("id", "new", "--node", node.url, "--name", "Ben")
    offer = ana.json("offer", "--topic", "night shifts", "--summary", "I listen after night shifts.")
    eventually(lambda: ben.json("browse")["listings"], "the offer")
    connection: str = ben.json("reach", offer["id"][:8], "--hello", HELLO)["connection"]
    cid = connection[:8]
    eventually(lambda: ana.json("connections")["connections"], "the reach-out")
    ana.json("accept", cid, "--reply", REPLY)
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "accepted", "the acceptance")
    ben.json("send", cid, MESSAGES["before the terms"])

    # Proposed, not yet countersigned: in force nowhere, so nothing is forgotten even hours later.
    assert ben.error("agree", cid, "--helps", "evenings", "--forget", "30m") == "local.usage"  # under an hour
    proposed = ben.run("agree", cid, "--helps", "evenings", "--forget", "2h")
    assert "forget is a promise" in proposed.stderr
    pending = eventually(lambda: ana.json("agreement", cid)["pending"], "the proposed terms")
    assert pending["forget"] == TWO_HOURS
    shown = ana.run("agreement", cid).stdout
    assert "forget: each of you deletes every message 2 hour(s) 0 min after it was sent" in shown
    for cli in (ana, ben):
        assert len(_later(cli, 3 * TWO_HOURS).json("read", cid)["messages"]) == 1
        assert _held(cli.home) == {"hello", "reply", "before the terms"}

    assert ana.json("agree", cid, "--accept")["state"] == "agreed"
    eventually(lambda: ben.json("agreement", cid)["in_force"], "the countersignature")
    ben.json("send", cid, MESSAGES["from the reacher"])
    ana.json("send", cid, MESSAGES["from the author"])
    eventually(lambda: len(ana.json("read", cid)["messages"]) == 3, "Ben's messages at Ana's")
    eventually(lambda: len(ben.json("read", cid)["messages"]) == 3, "Ana's message at Ben's")
    # An hour on, nothing is due yet.
    for cli in (ana, ben):
        assert len(_later(cli, 3600).json("read", cid)["messages"]) == 3
        assert _held(cli.home) == {"hello", "reply", *MESSAGES}

    # Two hours and a minute on, each device opens and forgets every message; the rest stays.
    for cli in (ana, ben):
        later = _later(cli, TWO_HOURS + 60)
        (listed,) = later.json("connections")["connections"]
        assert listed["id"] == connection and listed["state"] == "agreed"
        assert listed["hello"] == HELLO and listed["reply"] == REPLY
        assert listed["in_force"] == 1
        assert _held(cli.home) == {"hello", "reply"}, cli.home
        read = later.json("read", cid)
        assert read["state"] == "agreed" and read["messages"] == []
        in_force = cli.json("agreement", cid)["in_force"]
        assert in_force["helps"] == "evenings" and in_force["forget"] == TWO_HOURS

    # The connection goes on: a new message arrives and is shown until its own time comes.
    ben.json("send", cid, "message-Okapi-7710 still here")
    eventually(lambda: len(ana.json("read", cid)["messages"]) == 1, "the new message at Ana's")
