"""The web client in a real headless Chromium against a real node process (spec §13.10, issue 13).

``peerfed/web/scripts/browser-join.mjs`` drives Debian's ``/usr/bin/chromium`` through
playwright-core (both installed by ``.ci/run``): it opens the page the node serves at ``/``, joins
with keys made in the page, reads what IndexedDB keeps, and comes back with the passphrase. Its
screenshots are saved in ``build/screenshots/web_browser/`` for people to look at.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import NodeProcess, NodeProcesses

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "peerfed" / "web"
SHOTS = ROOT / "build" / "screenshots" / "web_browser"
CHROMIUM = Path("/usr/bin/chromium")
CONFIG = """
name = "Night Owls"
description = "People awake at night with anxiety, meeting as equals."
registration = "open"

[[resources]]
name = "Night line"
contact = "Call 0800 123 456"
hours = "22:00-06:00"
languages = ["en", "es"]
emergency = "on-request"
note = "Volunteers who have been there.\\u202eevil"
"""


@pytest.fixture
def node(tmp_path: Path, node_processes: NodeProcesses) -> NodeProcess:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG, encoding="utf-8")
    made = node_processes(tmp_path / "node", "--config", str(config), name="A")
    asyncio.run(made.start())
    return made


def browse(url: str, profile: Path) -> Any:
    node = shutil.which("node")
    assert node, "Node.js is needed for the web client's tests (CI installs it)"
    assert CHROMIUM.is_file(), "Chromium is needed: apt-get install -y chromium (CI installs it)"
    assert (WEB / "node_modules" / "playwright-core").is_dir(), "run: npm ci --prefix peerfed/web"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    out = subprocess.run(
        [node, str(WEB / "scripts" / "browser-join.mjs"), url, str(SHOTS), str(profile)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def members(node: NodeProcess) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(node.data), "--json", "members", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_person_joins_in_a_real_browser_and_comes_back_with_their_passphrase(
    node: NodeProcess, tmp_path: Path
) -> None:
    seen = browse(node.url, tmp_path / "fresh-profile")

    # The node's name and support resources, from its signed document, as text.
    assert seen["heading"] == "Join Night Owls"
    assert seen["community"] == "Night Owls"
    assert seen["resources"] == ["Night line"]
    assert "only if you ask" in seen["emergency"]
    assert seen["note"] == "Volunteers who have been there.\\u202eevil"  # a bidi override shown, not obeyed (§9.5)
    # Joined: keys made in the page, signed in, and the node counts the page's key as a member.
    assert "You joined Night Owls as Sam." in seen["joined"]
    assert re.fullmatch(r"pf1[a-z2-7]{58}", seen["peer"])
    assert seen["peer"] in json.dumps(members(node))
    # At rest: one record, the keyring sealed under the passphrase, no session token.
    stored = seen["stored"]
    assert stored["fields"] == ["fromBackup", "keyring", "name", "node"]  # fromBackup: where the keys came from
    assert stored["first"] == 1 and stored["node"] == node.url and stored["name"] == "Sam"
    assert stored["keyring"][34:50] == "0000000204000000"  # the CLI's Argon2id costs (spec §9.6)
    # Coming back: a wrong passphrase is said plainly; the right one opens the same identity.
    assert seen["wrong"].startswith("That passphrase does not open the keys")
    assert seen["peerAgain"] == seen["peer"]
    # Nothing broke the page's policy and nothing was asked of another origin.
    assert seen["console"] == []
    assert seen["requests"] == [node.url]
    for shot in ["join-phone.png", "joined-phone.png", "back-desktop.png"]:
        assert (SHOTS / shot).stat().st_size > 1000
