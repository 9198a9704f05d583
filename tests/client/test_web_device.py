"""One identity moves between the CLI and a real browser and its conversation goes on (spec §9.6, §13.4).

``peerfed/web/scripts/browser-device.mjs`` drives headless Chromium against a real node process:
the page continues from a backup ``peerfed id export`` wrote (file picker and passphrase), reads
the conversation the CLI had, and what Ben sealed with scheme 2 after the export (the backup carries
the session), and writes in it, still forward secret; then it downloads its own backup, which
``peerfed id import`` opens on another home and continues from. That terminal and Ben then go a
round on scheme 2, and the page moves the identity back and writes first: from its take-over's
seq floor and with scheme 1, so Ben takes it and the two go on (spec §9.5, §14.6). Screenshots go to
``build/screenshots/web_device/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.client.pairs import Cli, connected, eventually, one_node
from tests.client.test_web_browser import CHROMIUM, ROOT, WEB
from tests.processes import NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_device"
PASSPHRASE = "slowly, one night at a time"


def drive(url: str, tmp_path: Path, backup: Path, connection: str, ben: Cli) -> Any:
    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    env = {
        **os.environ,
        "CLI_PYTHON": sys.executable,
        "BEN_HOME": str(ben.home),
        "NEXT_HOME": str(tmp_path / "ana-terminal-again"),
        "PASSPHRASE": PASSPHRASE,
    }
    args = [url, str(SHOTS), str(tmp_path / "profile"), str(backup), str(tmp_path / "browser.peerfed"), connection]
    out = subprocess.run(
        [runner, str(WEB / "scripts" / "browser-device.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=400,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def ends_with(messages: list[dict[str, Any]], said: str, answer: str) -> None:
    """The conversation ends with ``said`` and then its ``answer``, from the other side, in display order.

    An answer signed within the second of what it answers ties with it, and spec §9.5 gives the tie
    to the smaller peer id: then the two may show the other way round.
    """
    first, second = messages[-2:]
    assert first["from"] != second["from"]
    if first["at"] == second["at"]:
        assert {first["text"], second["text"]} == {said, answer}
    else:
        assert (first["text"], second["text"]) == (said, answer)


def test_a_conversation_continues_from_the_cli_to_the_browser_and_back(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    ana, ben, connection = connected(node, tmp_path)
    ben.json("send", connection[:8], "Said while Ana used the terminal.")
    eventually(lambda: ana.json("read", connection[:8])["messages"], "Ben's message at Ana's CLI")
    backup = tmp_path / "ana.peerfed"
    Cli(ana.home, PASSPHRASE).json("id", "export", str(backup))
    # Written after the export, before the page writes anything: only the scheme-2 session the
    # backup carries opens it (spec §9.6), and Ana's terminal never fetches it.
    assert ben.json("read", connection[:8])["forward_secret"] is True
    ben.json("send", connection[:8], "Sealed after the backup was made.")
    peer = ana.json("id", "show")["peer"]

    seen = drive(node.url, tmp_path, backup, connection, ben)

    # A wrong passphrase is said plainly; the right one opens the CLI's identity in the page.
    assert seen["wrongPassphrase"].startswith("That passphrase does not open")
    assert seen["peer"] == peer
    # The home screen says the keys came from a backup, not that they were made here, also after a reload.
    assert seen["keysOrigin"].startswith("Your keys came from a backup")
    assert seen["keysOriginAgain"] == seen["keysOrigin"]
    # The CLI's conversation is in the browser: the hello, the acceptance, Ben's message, and it goes on.
    assert seen["imported"][0] == "They wrote firstHi"
    assert any(text.endswith("Said while Ana used the terminal.") for text in seen["imported"])
    assert seen["importedState"] == "You are talking."
    assert any(text.endswith("Sealed after the backup was made.") for text in seen["imported"])
    assert "Now from a browser." in [m["text"] for m in seen["cli"]["benRead"]["messages"]]
    # The page went on with the session the backup carried: Ben still has forward secrecy.
    assert seen["cli"]["benRead"]["forward_secret"] is True
    assert any(text.endswith("Glad you found your way back.") for text in seen["afterImport"])
    # The browser's backup (a download) opens in the CLI, which has the whole conversation and goes on.
    assert seen["downloadName"] == "peerfed-backup.peerfed"
    assert seen["cli"]["imported"]["peer"] == peer
    messages = seen["cli"]["nextRead"]["messages"]
    texts = [m["text"] for m in messages]
    assert texts[:2] == ["Said while Ana used the terminal.", "Sealed after the backup was made."]
    # The page's line, Ben's answer and the page's next line may carry the same second, and a tie
    # is ordered by peer id (§9.5): in time order, each side's lines in the order they were written.
    assert sorted(texts[2:]) == ["Glad you found your way back.", "Making a backup now.", "Now from a browser."]
    assert [m["at"] for m in messages] == sorted(m["at"] for m in messages)
    assert texts.index("Now from a browser.") < texts.index("Making a backup now.")
    assert [m["text"] for m in seen["cli"]["benReadAgain"]["messages"]][-1] == "And now from the terminal again."
    # ... and the page's backup carried its session to the terminal, which goes on with scheme 2.
    assert seen["cli"]["nextRead"]["forward_secret"] is True
    assert seen["cli"]["benReadAgain"]["forward_secret"] is True
    # Each move took the identity over: the first terminal no longer receives, and got nothing after it.
    first = ana.run("read", connection[:8], "--json", ok=False)
    assert "auth.moved" in first.stderr
    assert [m["text"] for m in json.loads(first.stdout)["messages"]] == ["Said while Ana used the terminal."]
    # The open page heard of the second move at once and says so plainly, with when.
    assert seen["movedNotice"].startswith("This identity now lives on another device.It moved there on ")
    assert "What this device already holds stays readable here." in seen["movedNotice"]
    ends_with(seen["cli"]["nextReadMoved"]["messages"], "And now from the terminal again.", "Only for the terminal.")
    assert seen["sendRefused"].startswith("This identity now lives on another device, so nothing can be sent")
    # Opened again, the page shows what it held, and nothing that reached the terminal after the move.
    assert any(text.endswith("Glad you found your way back.") for text in seen["heldAfterMove"])
    assert not any("Only for the terminal." in text for text in seen["heldAfterMove"])
    # Before the move back the terminal and Ben went a full round on scheme 2, so the ratchet the
    # page holds is behind, and the terminal numbered on from the page's own state (spec §9.5, §14.6).
    terminal = seen["cli"]["benReadTerminal"]
    assert terminal["forward_secret"] is True
    ends_with(terminal["messages"], "Only for the terminal.", "Answered from the terminal.")
    # Moved back by the person, the page writes first (this order is new: before R-9.5-5 and R-9.5-6
    # its line reused a seq and was sealed from a stale session, and Ben never saw it). Ben takes it,
    # sealed with scheme 1 from the take-over's seq floor, and follows to scheme 1 (R-14.5-2).
    assert seen["noticeAfterMoveBack"] is False
    back = seen["cli"]["benReadBack"]
    assert back["forward_secret"] is False
    from_ana = [m for m in back["messages"] if m["from"] == "them"]
    assert from_ana[-1]["text"] == "Back on the page now."
    assert from_ana[-1]["seq"] > max(m["seq"] for m in from_ana[:-1])
    # The floor is the take-over's Unix time less 1,700,000,000, taken a moment before the line was written.
    assert 0 <= from_ana[-1]["at"] - 1_700_000_000 - from_ana[-1]["seq"] < 300
    # Ben's answer reaches the page, which receives again, and only what came after the move back.
    assert any(text.endswith("Back on the page now.") for text in seen["afterMoveBack"])
    assert any(text.endswith("Back in the browser.") for text in seen["afterMoveBack"])
    for gone in ["Only for the terminal.", "Answered from the terminal.", "Is anyone there?"]:
        assert not any(gone in text for text in seen["afterMoveBack"])
    assert "auth.moved" in Cli(tmp_path / "ana-terminal-again", PASSPHRASE).run("read", connection[:8], ok=False).stderr
    assert seen["violations"] == []
    # Chromium logs each refused request; the only ones are the two auth.moved answers (send, sign-in).
    assert seen["console"] == ["Failed to load resource: the server responded with a status of 403 (Forbidden)"] * 2
    assert seen["requests"] == [node.url]
    for shot in [
        "import-phone.png",
        "conversation-phone.png",
        "backup-desktop.png",
        "moved-phone.png",
        "moved-back-phone.png",
    ]:
        assert (SHOTS / shot).stat().st_size > 1000
