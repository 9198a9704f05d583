"""Reports followed through (issue 12 item 8), through the real `peerfed` and `peerfed admin` commands.

Before: a reporter had no way to see what became of a report, and the operator's `admin reports`
showed only how many messages were disclosed, never what they said nor whether they were real.
Now the moderator's `reports show` decodes each disclosed message and says which checks hold
(signature, from the reported peer, to the reporter, one conversation), an altered message is
shown as not verified, and the outcome given with `reports resolve` reaches `peerfed reports`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from peerfed.protocol import Identity, Message, PeerId, pack, sign, unpack
from tests.backends import query
from tests.processes import NodeProcesses

from .pairs import connected, eventually, one_node

INSULT = "you are worthless and everyone knows it"
OUTCOME = "Ben's account is suspended for a month"


def admin(data: Path, *args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
    flags = ("--json",) if json_out else ()
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), *flags, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out


def _evidence(data: Path, report: int) -> list[bytes]:
    ((raw,),) = query(data, "SELECT disclosed FROM reports WHERE id=?", (report,))
    assert isinstance(raw, bytes)
    items = unpack(raw)
    assert isinstance(items, list)
    return [bytes(i) for i in items if isinstance(i, bytes)]


def _store_evidence(data: Path, report: int, items: list[bytes]) -> None:
    query(data, "UPDATE reports SET disclosed=? WHERE id=?", (pack(list(items)), report))


def test_the_moderator_verifies_the_disclosure_and_the_reporter_sees_the_outcome(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    ana, ben, connection = connected(node, tmp_path)
    ben.json("send", connection[:8], INSULT)
    eventually(lambda: INSULT in [m["text"] for m in ana.json("read", connection[:8])["messages"]], "the message")
    ben_id = ben.json("id", "show")["peer"]
    ana_id = ana.json("id", "show")["peer"]
    assert ana.json("reports") == {"reports": []}

    made = ana.json("report", ben_id, "--reason", "insults after I accepted", "--disclose", connection[:8])
    assert made["disclosed"] == 2  # Ben's reach-out and his message

    # The moderator reads each disclosed message, decoded, with every check holding.
    shown = json.loads(admin(node.data, "reports", "show", str(made["id"])).stdout)
    assert (shown["reporter"], shown["target"], shown["reason"]) == (ana_id, ben_id, "insults after I accepted")
    assert [(d["type"], d["text"], d["author"]) for d in shown["disclosed"]] == [
        ("reach-out", "Hi", ben_id),
        ("message", INSULT, ben_id),
    ]
    for d in shown["disclosed"]:
        assert (d["verified"], d["from_target"], d["to_reporter"], d["one_conversation"]) == (True, True, True, True)
    text = admin(node.data, "reports", "show", str(made["id"]), json_out=False).stdout
    assert "reason: insults after I accepted" in text
    assert f"[signature verified; from the target: yes; to the reporter: yes; one conversation: yes] {ben_id}" in text
    assert f"message: {INSULT}" in text

    # Altered in the database (the same length, so it still decodes): the signature no longer
    # holds, and the message is shown as not verified. A message signed by someone else, to
    # someone else, in another conversation verifies but fails the other checks.
    items = _evidence(node.data, made["id"])
    stranger = Identity(bytes(range(32)))
    now = int(time.time())
    other = sign(
        stranger,
        Message(PeerId(bytes(Identity(bytes(32)).peer_id)), bytes(16), 1, "a forged threat"),
        created_at=now,
        expires_at=now + 3600,
    )
    _store_evidence(node.data, made["id"], [items[0], items[1].replace(b"worthless", b"wonderful"), other.raw])
    shown = json.loads(admin(node.data, "reports", "show", str(made["id"])).stdout)
    altered, forged = shown["disclosed"][1], shown["disclosed"][2]
    assert (altered["verified"], altered["error"], altered["text"]) == (
        False,
        "signature.invalid",
        INSULT.replace("worthless", "wonderful"),
    )
    assert (altered["from_target"], altered["to_reporter"], altered["one_conversation"]) == (False, False, False)
    assert (forged["verified"], forged["from_target"], forged["to_reporter"], forged["one_conversation"]) == (
        True,
        False,
        False,
        False,
    )
    text = admin(node.data, "reports", "show", str(made["id"]), json_out=False).stdout
    assert "signature NOT verified (signature.invalid); nothing below is proved" in text
    assert "from the target: NO; to the reporter: NO; one conversation: NO" in text

    # The moderator resolves it by id; the reporter sees the outcome, as JSON and in words.
    listed = json.loads(admin(node.data, "reports", "list").stdout)
    assert [(r["id"], r["status"], r["disclosed"]) for r in listed] == [(made["id"], "open", 3)]
    admin(node.data, "reports", "resolve", str(made["id"]), "--outcome", OUTCOME)
    assert json.loads(admin(node.data, "reports", "list").stdout) == []
    mine: list[dict[str, Any]] = ana.json("reports")["reports"]
    assert [(r["id"], r["target"], r["status"], r["outcome"]) for r in mine] == [
        (made["id"], ben_id, "resolved", OUTCOME)
    ]
    words = ana.run("reports").stdout
    assert f"report {made['id']} about peer {ben_id}" in words and f"resolved — the moderators: {OUTCOME}" in words
