"""Offer, ask and browse in a real headless Chromium against a real node (spec §6.2, §13.5, issue 13).

``peerfed/web/scripts/browser-listings.mjs`` joins the node's page, publishes an offer signed in the
page, and browses and filters the directory, where a CLI peer's listing waits too; the CLI then
finds the browser's offer. Screenshots go to ``build/screenshots/web_listings/``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.client.test_cli_story import Cli
from tests.client.test_web_browser import CHROMIUM, CONFIG, ROOT, WEB
from tests.processes import NodeProcess, NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_listings"
GRIEF = "Lost my father last year; <script>alert(1)</script> happy to listen.\u202e"


@pytest.fixture
def node(tmp_path: Path, node_processes: NodeProcesses) -> NodeProcess:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG, encoding="utf-8")
    made = node_processes(tmp_path / "node", "--config", str(config), name="A")
    asyncio.run(made.start())
    return made


def run_browser(url: str, profile: Path) -> Any:
    node = shutil.which("node")
    assert node, "Node.js is needed for the web client's tests (CI installs it)"
    assert CHROMIUM.is_file(), "Chromium is needed: apt-get install -y chromium (CI installs it)"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    out = subprocess.run(
        [node, str(WEB / "scripts" / "browser-listings.mjs"), url, str(SHOTS), str(profile)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_browser_peer_offers_and_browses_beside_a_cli_peer(node: NodeProcess, tmp_path: Path) -> None:
    ana = Cli(tmp_path / "ana")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    ana.json("offer", "--topic", "grief", "--lang", "en", "--format", "text", "--summary", GRIEF, "--timing", "now")

    seen = run_browser(node.url, tmp_path / "profile")

    # The form starts from the device's own language and time zone, and says what is missing plainly.
    assert seen["languagesDefault"] == "es"
    assert "Europe/Madrid" in seen["tzHint"]
    assert seen["missing"] == "Please write at least one topic, in your own words."
    assert seen["published"] == "Published. Others can find it now."
    # Browse: both listings, newest (the browser's) first, each verified in the page and shown as text.
    mine, theirs = seen["all"]
    assert mine["heading"] == "Offers support (yours)"
    assert mine["topics"] == "panic at night · insomnia"  # the person's words, trimmed, repeats dropped
    assert mine["summary"] == "Awake at 3 a.m. too. <b>Happy</b> to write."
    assert "&lt;b&gt;" in mine["html"]  # text, never markup
    assert "Languages: es, en" in mine["notes"]
    assert "Ways to talk: Writing, Voice call" in mine["notes"]
    assert "Usually free: Mon, Tue, Wed, Thu, Fri 21:00\u201323:30 (Europe/Madrid time)" in mine["notes"]
    assert theirs["heading"] == "Offers support"
    assert theirs["topics"] == "grief"
    assert theirs["summary"] == GRIEF.replace("\u202e", "\\u202e")  # a bidi override shown, not obeyed
    assert "<script>" not in theirs["html"]
    # Filters: topic (case-insensitive), language, way to talk, kind; the node filters, the page verifies.
    assert [r["topics"] for r in seen["byTopic"]] == ["grief"]
    assert [r["topics"] for r in seen["byLang"]] == ["panic at night · insomnia"]
    assert [r["topics"] for r in seen["byFormat"]] == ["panic at night · insomnia"]
    assert seen["requests_only"] == []
    assert len(seen["everything"]) == 2
    # The CLI peer finds the offer signed in the browser, with the browser's key as its author.
    found = {tuple(item["topics"]): item for item in ana.json("browse")["listings"]}
    offer = found[("panic at night", "insomnia")]
    assert offer["author"] == seen["peer"]
    # The request taken down in the page is gone for the page and for the CLI peer alike.
    assert seen["withdrawn"].startswith("Taken down.")
    assert [r["topics"] for r in seen["afterWithdraw"]] == ["panic at night · insomnia", "grief"]
    assert ("leaving soon",) not in found
    assert seen["console"] == []
    assert seen["requests"] == [node.url]
    for shot in ["offer-phone.png", "browse-phone.png", "browse-desktop.png", "offer-desktop.png"]:
        assert (SHOTS / shot).stat().st_size > 1000
