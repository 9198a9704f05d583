"""``end --erase`` erases on both devices (spec §9.4, §9.5), through the real CLI against a real node.

Every private string of a conversation (the hello, the reply, the terms, the messages) is looked
for in every byte of every file in both peers' home folders, the database's write-ahead log
included, after the ending: none may be left, and both still list the connection as ended.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.client.pairs import Cli, eventually, one_node
from tests.processes import NodeProcesses

PRIVATE = {
    "hello": "hello-Quokka-7731 I could use someone to talk to",
    "reply": "reply-Marmot-4410 glad you wrote",
    "helps": "helps-Pangolin-2291 listening at night",
    "times": "times-Axolotl-5582 after ten",
    "boundary": "boundary-Narwhal-6603 no advice",
    "ending": "ending-Okapi-9914 either of us says so",
    "from the reacher": "message-Tapir-1187 from the one who reached out",
    "from the author": "message-Dugong-3345 from the listing's author",
}


def _found(home: Path) -> dict[str, list[str]]:
    """Which private strings each file under ``home`` holds, by file name."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [name for name, text in PRIVATE.items() if text.encode() in data]
        if hits:
            found[path.name] = hits
    return found


def _events(home: Path) -> int:
    """How many signed messages of any connection the device's database holds."""
    with sqlite3.connect(f"file:{home / 'peer.sqlite3'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def test_end_with_erase_leaves_no_plaintext_on_either_device(node_processes: NodeProcesses, tmp_path: Path) -> None:
    node = one_node(node_processes, tmp_path)
    ana, ben = Cli(tmp_path / "ana"), Cli(tmp_path / "ben")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    ben.json("id", "new", "--node", node.url, "--name", "Ben")
    offer = ana.json("offer", "--topic", "night shifts", "--summary", "I listen after night shifts.")
    eventually(lambda: ben.json("browse")["listings"], "the offer")
    connection: str = ben.json("reach", offer["id"][:8], "--hello", PRIVATE["hello"])["connection"]
    cid = connection[:8]
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
    assert ben.json("agreement", cid)["in_force"]["helps"] == PRIVATE["helps"]
    # Before the ending, both devices hold the conversation: sealed at rest (spec §9.6), so the
    # scan for plaintext finds nothing already, and its rows are counted instead.
    for cli in (ana, ben):
        assert _found(cli.home) == {}, cli.home
        assert _events(cli.home) == 6  # reach-out, acceptance, proposed and countersigned terms, two messages

    ended = ana.json("end", cid, "--erase")
    assert ended["state"] == "ended" and ended["erase"] is True
    eventually(lambda: ben.json("connections")["connections"][0]["state"] == "ended", "the ending at Ben's")

    for cli in (ana, ben):
        assert _found(cli.home) == {}, cli.home
        assert _events(cli.home) == 0
        (listed,) = cli.json("connections")["connections"]
        assert listed["id"] == connection and listed["state"] == "ended"
        assert listed["hello"] is None and listed["reply"] is None and listed["in_force"] is None
        read = cli.json("read", cid)
        assert read["state"] == "ended" and read["opening"] == [] and read["messages"] == []
        assert cli.json("agreement", cid)["in_force"] is None
        assert "ended" in cli.run("connections").stdout
