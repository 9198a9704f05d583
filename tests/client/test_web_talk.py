"""Reach out, accept and talk between a browser peer and a CLI peer on one node (spec §8, §9, §13.5).

``peerfed/web/scripts/browser-talk.mjs`` drives headless Chromium and, in turn, the CLI peer: the
browser reaches out to the CLI's offer (sealed and first-contact work solved in the page), the CLI
accepts and writes, the browser sees it live over the WebSocket and answers, the CLI reads it; then
the CLI reaches out to the browser's request and the browser accepts. Screenshots go to
``build/screenshots/web_talk/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.client.test_cli_story import Cli, both_answering, eventually
from tests.client.test_web_browser import CHROMIUM, CONFIG, ROOT, WEB
from tests.processes import NodeProcess, NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_talk"
THANKS = "Thank you. Breathing slowly <b>helps</b> me."


@pytest.fixture
def node(tmp_path: Path, node_processes: NodeProcesses) -> NodeProcess:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG, encoding="utf-8")
    made = node_processes(tmp_path / "node", "--config", str(config), name="A")
    asyncio.run(made.start())
    return made


def story(browser_node: str, ana_node: str, tmp_path: Path, shots: Path, browser_data: Path) -> Any:
    """Ana (CLI, on ``ana_node``) offers; the script plays the browser (on ``browser_node``), Ana and Ben."""
    ana = Cli(tmp_path / "ana")
    ana.json("id", "new", "--node", ana_node, "--name", "Ana")
    ana.json("offer", "--topic", "grief", "--summary", "Lost my father last year; happy to listen.")
    # The offer is in the browser's node's directory before the page looks (it may travel there).
    scout = Cli(tmp_path / "scout")
    scout.json("id", "new", "--node", browser_node, "--name", "Scout")
    eventually(lambda: scout.json("browse")["listings"], "Ana's offer on the browser's node")
    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if shots.exists():
        shutil.rmtree(shots)
    shots.mkdir(parents=True)
    env = {
        **os.environ,
        "CLI_PYTHON": sys.executable,
        "CLI_HOME": str(ana.home),
        "CLI_HOME_2": str(tmp_path / "ben"),
        "NODE_DATA": str(browser_data),
    }
    out = subprocess.run(
        [runner, str(WEB / "scripts" / "browser-talk.mjs"), browser_node, str(shots), str(tmp_path / "profile")],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def federated(tmp_path: Path, node_processes: NodeProcesses) -> tuple[NodeProcess, NodeProcess]:
    """Node A follows node B; both answering (the fixture stops them)."""
    b = node_processes(tmp_path / "node-b", name="B")
    a = node_processes(tmp_path / "node-a", "--federate", b.url, name="A")
    b.spawn()
    a.spawn()
    asyncio.run(both_answering(a, b))
    return a, b


def test_a_browser_peer_and_a_cli_peer_on_two_federated_nodes_talk(
    federated: tuple[NodeProcess, NodeProcess], tmp_path: Path
) -> None:
    a, b = federated
    seen = story(a.url, b.url, tmp_path, ROOT / "build" / "screenshots" / "web_talk_federated", a.data)
    assert seen["cli"]["reached"]["hello"] == "Hello Ana, <i>nights</i> are hard."
    assert seen["seen"][2].endswith("Glad you wrote. \\u202eWhat helps at night?")
    assert sorted(m["text"] for m in seen["cli"]["read"]["messages"])[1] == THANKS
    assert seen["cli"]["accepted"]["reply"] == "Yes, let us talk."
    assert seen["cli"]["ended"]["state"] == "ended"
    assert seen["console"] == [] and seen["requests"] == [a.url]


def test_a_browser_peer_and_a_cli_peer_reach_out_accept_and_talk_both_ways(node: NodeProcess, tmp_path: Path) -> None:
    seen = story(node.url, node.url, tmp_path, SHOTS, node.data)
    # The CLI opened the browser's reach-out: its hello, and the browser's name from the bundle inside.
    assert seen["cli"]["reached"]["hello"] == "Hello Ana, <i>nights</i> are hard."
    assert seen["cli"]["reached"]["name"] == "Rio"
    # The browser saw the acceptance's reply and Ana's message, live, as text (the bidi override visible).
    assert seen["seen"][0] == "You wrote firstHello Ana, <i>nights</i> are hard."
    assert seen["seen"][1] == "Their answerOf course."
    assert seen["seen"][2].startswith("Ana · ")
    assert seen["seen"][2].endswith("Glad you wrote. \\u202eWhat helps at night?")
    assert "<i>" not in seen["seenHtml"]
    # The CLI reads the browser's message beside its own (in one second the order goes by peer id, §9.5).
    messages = sorted((m["from"], m["text"]) for m in seen["cli"]["read"]["messages"])
    assert messages == [("me", "Glad you wrote. \u202eWhat helps at night?"), ("them", THANKS)]
    # Terms: the CLI's proposal shown before agreeing (what, until when), countersigned into force
    # at both ends; the browser's own proposal is the next round, pending at the CLI (spec §9.3).
    assert "Listening at night, <u>no advice</u>." in seen["proposed"]
    assert "January 31, 2099" in seen["proposed"] and "No calls" in seen["proposed"]
    assert "Each device deletes the messages\n365 days after each was sent." in seen["proposed"]
    assert seen["cli"]["inForce"]["forget"] == 365 * 86_400
    assert seen["agreed"] == seen["proposed"]
    assert seen["cli"]["inForce"]["version"] == 1 and seen["cli"]["inForce"]["helps"].endswith("no advice</u>.")
    pending = seen["cli"]["pending"]
    assert (pending["version"], pending["proposed_by"], pending["helps"]) == (2, "them", "Company on Sunday evenings.")
    # The page proposes forgetting too (spec §9.7): its form starts from the year in force, Rio picks
    # a month, the CLI sees it pending, countersigns, and both show the month in force.
    assert seen["forgetChoices"] == [
        "Keep the messages",
        "Delete each message after 1 day",
        "Delete each message after 7 days",
        "Delete each message after 30 days",
        "Delete each message after 365 days",
    ]
    assert seen["forgetStart"] == "Delete each message after 365 days"
    assert pending["forget"] == 30 * 86_400
    assert (seen["cli"]["inForceMine"]["version"], seen["cli"]["inForceMine"]["forget"]) == (2, 30 * 86_400)
    assert "Company on Sunday evenings." in seen["agreedMine"]
    assert "Each device deletes the messages\n30 days after each was sent." in seen["agreedMine"]
    assert seen["violations"] == []
    # A report with exactly the CLI's two disclosure choices, explained before sending; the moderators
    # see what Ana sent (verified) and nothing Rio wrote; their outcome comes back as text.
    assert seen["reportChoices"] == ["Only my words above", "My words, and what Ana sent me in this conversation"]
    assert "Nothing you wrote is shown" in seen["reportExplained"]
    assert seen["reportSent"].startswith("Your report was sent with 3 messages they wrote.")
    assert "Glad you wrote." in seen["moderatorSaw"] and "no advice" in seen["moderatorSaw"]
    assert "Breathing slowly" not in seen["moderatorSaw"] and "Company on Sunday" not in seen["moderatorSaw"]
    assert seen["reports"][0].startswith("About a person\n")
    assert seen["reports"][0].endswith("The moderators answered: We spoke with them. <i>Thank you</i>.")
    # The other way: the CLI's reach-out is counted on the Talks button, and the browser accepts it.
    assert seen["talksButton"] == "Talks 1 new"
    assert any("Reach-out from Ana" in t and "1 new" in t for t in seen["talks"])
    assert seen["incomingState"] == "They are waiting for your answer. There is no rush."
    assert seen["cli"]["accepted"]["reply"] == "Yes, let us talk."
    assert seen["talksAfter"] == "Talks"
    # Ending, alone and with deletion asked: final at both ends, the words gone from the browser.
    assert seen["endedState"] == "You ended this conversation. Its words were deleted from this device."
    assert seen["endedMessages"] == 0
    assert seen["cli"]["ended"]["state"] == "ended"
    # Blocking: Ana's later message never shows; Ben's reach-out, which came after it, does.
    assert seen["blocked"] == "Blocked. Nothing more from them reaches you on this device."
    assert not any("Still there?" in text for text in seen["afterBlock"])
    assert "Reach-out from Ben" in seen["talksAfterBlock"]
    # Notices: permission asked only when Rio turned them on; each arrival off screen says only
    # "New message" (no name, no words), and the title counts it (spec §13.10).
    assert seen["notesBefore"] == {"asked": 0, "shown": []}
    assert seen["notesAfterBen"] == {"asked": 1, "shown": [{"title": "New message", "body": None}]}
    assert seen["titleAfterBen"] == "(1) Night Owls · Peer support"
    # Unblocking from the list: Ana's next message reaches Rio again, announced the same way.
    assert seen["blockedList"] == ["Ana"]
    assert seen["unblocked"] == "Unblocked. What they send from now on can reach you."
    assert seen["blockedAfter"] == ["You have not blocked anyone."]
    assert seen["titleAfterUnblock"] == "(1) Night Owls · Peer support"
    assert seen["notesAtEnd"]["shown"] == [{"title": "New message", "body": None}] * 2
    # At rest the conversations are sealed: no word any peer wrote is readable in IndexedDB.
    for words in ["Hi from Ben", "Before the page closed", "Ana", "Rio", "nights"]:
        assert words not in seen["atRest"]
    # After the page opens again: every conversation is back, and writing goes on where it stopped
    # (a repeated sequence number would be refused by Ben's device).
    assert sorted(seen["talksAfterReload"]) == ["Reach-out from Ana", "Reach-out from Ben", "You reached out to Ana"]
    assert any("Before the page closed." in text for text in seen["benAfterReload"])
    assert [m["text"] for m in seen["cli"]["benRead"]["messages"]] == [
        "Before the page closed.",
        "After it opened again.",
    ]
    assert seen["console"] == []
    assert seen["requests"] == [node.url]
    shots = [
        "conversation-phone.png",
        "talks-phone.png",
        "answer-phone.png",
        "conversation-desktop.png",
        "ended-phone.png",
    ]
    for shot in shots:
        assert (SHOTS / shot).stat().st_size > 1000
