"""An invite link, locking and erase me in a real browser (spec §12, §13.4, §13.6, §13.10).

``peerfed/web/scripts/browser-lock.mjs`` opens the page a node that asks for invite codes serves,
through an invite link made with ``peerfed admin invites create``; joins with the code the link
filled in; lets the page lock itself after an idle time (Playwright's clock, no waiting) and at a
press; and erases the identity, first saying no to the question, then yes. Screenshots go to
``build/screenshots/web_lock/``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.client.test_web_browser import CHROMIUM, ROOT, WEB
from tests.processes import NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_lock"
CONFIG = """
name = "Quiet Hours"
description = "An invited circle."
registration = "invite"
"""


def admin(data: Path, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_an_invite_link_joins_the_page_locks_and_erase_me_asks_first(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(CONFIG, encoding="utf-8")
    node = node_processes(tmp_path / "node", "--config", str(config), name="Q")
    asyncio.run(node.start())
    code = admin(node.data, "invites", "create")["code"]

    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    out = subprocess.run(
        [runner, str(WEB / "scripts" / "browser-lock.mjs"), node.url, str(SHOTS), str(tmp_path / "profile"), code],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)

    # The link filled the form, drew its QR code with the link as text, and left the address bar.
    assert seen["inviteField"] == code
    assert seen["addressAfter"] == node.url + "/"
    assert seen["inviteLink"] == f"{node.url}/#invite={code}"
    assert seen["qrRole"] == "img" and seen["qrLabel"] == f"QR code of the invite link {node.url}/#invite={code}"
    assert not seen["codeSent"]  # in the fragment only: no request line ever carried it
    # Locked by itself after the chosen idle time, not before; the same identity opens again.
    assert seen["beforeIdle"] == 1
    assert seen["afterIdle"] == "Welcome back"
    assert seen["sectionsHidden"] is True
    assert seen["peerAgain"] == seen["peer"]
    # Erase me asks first, and "no" keeps everything.
    assert seen["asked"].startswith("Are you sure?")
    assert seen["askHidden"] is True
    # Yes: the node erased the member, and the browser keeps nothing (its database is gone).
    assert seen["erased"].startswith("The server deleted what it held for you")
    assert seen["databases"] == []
    assert seen["afterReload"].startswith("Join ")
    assert seen["peer"] not in json.dumps(admin(node.data, "members", "list"))
    assert seen["violations"] == []
    assert seen["console"] == []
    assert seen["requests"] == [node.url]
    for shot in ["invite-phone.png", "home-phone.png", "locked-phone.png", "erase-ask-phone.png", "erased-phone.png"]:
        assert (SHOTS / shot).stat().st_size > 1000
