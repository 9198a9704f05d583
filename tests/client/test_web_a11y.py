"""Every screen of the web client for everyone (spec §13.10, issue 13 item 5): in English, Spanish and
Arabic (right to left), at phone and desktop sizes, with no axe-core WCAG 2.2 A/AA violation.

``peerfed/web/scripts/browser-a11y.mjs`` tells the story of ``browser-talk.mjs`` against a real node
process with a CLI peer, once per language, auditing and photographing each screen it reaches:
join, welcome, offer (and a refused offer), browse with results, reach out (and a refused hello), a
conversation waiting and live, the talks list, answering, ended, blocked, the support resources, and
coming back with a passphrase (and a wrong one). Screenshots go to ``build/screenshots/web_a11y/``.
``browser-keyboard.mjs`` walks the same story by keyboard alone and reports where the focus went.
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

from tests.client.test_cli_story import Cli, eventually
from tests.client.test_web_browser import CHROMIUM, CONFIG, ROOT, WEB
from tests.processes import NodeProcess, NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_a11y"
SCREENS = [
    "join",
    "welcome",
    "offer-refused",
    "browse",
    "reach-refused",
    "conversation-waiting",
    "conversation",
    "talks",
    "answer",
    "ended",
    "blocked",
    "resources",
    "unlock",
    "unlock-refused",
]


@pytest.fixture
def node(tmp_path: Path, node_processes: NodeProcesses) -> NodeProcess:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG, encoding="utf-8")
    made = node_processes(tmp_path / "node", "--config", str(config), name="A")
    asyncio.run(made.start())
    return made


def drive(script: str, node: NodeProcess, tmp_path: Path, shots: Path) -> Any:
    """Ana (CLI) offers support on ``node``; then ``script`` drives Chromium (and Ana) and reports."""
    ana = Cli(tmp_path / "ana")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    ana.json("offer", "--topic", "grief", "--summary", "Lost my father last year; happy to listen.")
    eventually(lambda: ana.json("browse")["listings"], "Ana's offer in the directory")
    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if shots.exists():
        shutil.rmtree(shots)
    shots.mkdir(parents=True)
    env = {**os.environ, "CLI_PYTHON": sys.executable, "CLI_HOME": str(ana.home)}
    out = subprocess.run(
        [runner, str(WEB / "scripts" / script), node.url, str(shots), str(tmp_path / "profile")],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.one_backend("it is about the pages, not where the node keeps its rows")
def test_every_screen_in_every_language_at_both_sizes_has_no_axe_violation(node: NodeProcess, tmp_path: Path) -> None:
    seen = drive("browser-a11y.mjs", node, tmp_path, SHOTS)
    assert seen["violations"] == []  # English also in the dark colour scheme
    assert seen["moving"] == []  # with reduced motion asked for, nothing animates or transitions
    assert seen["screens"] == [f"{lang}/{screen}" for lang in ["en", "es", "ar"] for screen in SCREENS]
    pages = seen["pages"]
    # Each language is really on screen, and Arabic lays the page out right to left.
    assert [pages[lang]["dir"] for lang in ["en", "es", "ar"]] == ["ltr", "ltr", "rtl"]
    assert pages["en"]["joinTitle"] == "Join Night Owls"
    assert pages["es"]["joinTitle"] == "Unirte a Night Owls"
    assert pages["ar"]["joinTitle"] == "الانضمام إلى Night Owls"
    assert pages["es"]["sections"] == ["Inicio", "Buscar", "Ofrecer o pedir", "Conversaciones"]
    assert pages["ar"]["sections"] == ["الرئيسية", "تصفّح", "تقديم أو طلب", "المحادثات"]
    assert pages["en"]["refused"] == "Please write at least one topic, in your own words."
    assert pages["es"]["refused"] == "Escribe al menos un tema, con tus propias palabras."
    assert pages["es"]["talks"] == ["Escribiste a Ana", "Te escribe Ana"]
    assert pages["es"]["ended"] == "Terminaste esta conversación."
    assert pages["es"]["blocked"].startswith("Bloqueado.")
    assert pages["ar"]["wrong"].startswith("عبارة المرور هذه لا تفتح")
    # New messages are announced: the conversation's log is a polite live region.
    assert {pages[lang]["messagesLive"] for lang in pages} == {"polite"}
    # A peer's words are never translated: names and the node's name stay as written.
    assert pages["ar"]["results"][0].startswith("يقدّم الدعم")
    assert seen["console"] == []
    assert seen["requests"] == [node.url]
    for lang in ["en", "es", "ar"]:
        for screen in SCREENS:
            for size in ["phone", "desktop"]:
                assert (SHOTS / f"{lang}-{screen}-{size}.png").stat().st_size > 1000


def test_the_whole_story_by_keyboard_alone_moves_the_focus_where_a_person_needs_it(
    node: NodeProcess, tmp_path: Path
) -> None:
    seen = drive("browser-keyboard.mjs", node, tmp_path, ROOT / "build" / "screenshots" / "web_a11y_keyboard")
    focus = seen["focus"]

    def at(step: str) -> tuple[str, str]:
        return focus[step]["tag"], focus[step]["id"]

    # Tab goes from field to field in the order they are read.
    assert at("afterName") == ("input", "passphrase")
    assert at("afterPassphrase")[0] == "button" and focus["afterPassphrase"]["text"] == "Join"
    # After each move to a new screen, the focus is on that screen's heading.
    assert at("joined") == ("h1", "welcome") and focus["joined"]["text"] == "You are in"
    assert at("offer") == ("h1", "screen-title") and focus["offer"]["text"] == "Offer or ask for support"
    assert at("published") == ("h1", "screen-title") and focus["published"]["text"] == "Browse"
    assert at("reach") == ("h1", "screen-title") and focus["reach"]["text"] == "Reach out"
    assert at("reached") == ("h1", "screen-title") and focus["reached"]["text"] == "Talking with Ana"
    assert at("talks") == ("h1", "screen-title") and focus["talks"]["text"] == "Talks"
    assert at("answer") == ("h1", "screen-title") and focus["answer"]["text"] == "Talking with Ana"
    # A refused form moves the focus to what it says, and Shift+Tab leads back to the field.
    assert focus["offerRefused"]["role"] == "alert"
    assert focus["offerRefused"]["text"] == "Please write at least one topic, in your own words."
    assert at("afterTopics") == ("textarea", "summary")
    assert at("reachField") == ("textarea", "hello")
    assert focus["reachRefused"]["role"] == "alert"
    assert focus["reachRefused"]["text"] == "Please write a few words first."
    assert at("backToHello") == ("textarea", "hello")
    # Sending keeps the focus in the message box; accepting moves it there; ending, to the new state.
    assert at("sent") == ("textarea", "message")
    assert focus["acceptButton"]["text"] == "Accept"
    assert at("accepted") == ("textarea", "message")
    assert focus["endButton"]["text"] == "End conversation"
    assert at("ended") == ("p", "talk-state") and focus["ended"]["text"] == "You ended this conversation."
    # The focus ring is drawn wherever the keyboard is.
    assert all(focus[step]["ring"] for step in ["afterName", "afterPassphrase", "acceptButton", "endButton", "sent"])
    # Ana, at the CLI, saw the acceptance and the end.
    assert seen["cli"]["accepted"]["reply"] == "Yes, let us talk."
    assert seen["cli"]["ended"]["state"] == "ended"
    assert seen["violations"] == []
    assert seen["console"] == []
    assert seen["requests"] == [node.url]
