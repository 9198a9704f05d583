"""A browser peer and a CLI peer seal with scheme 2 (issue 15; spec §14.1, §14.4, §14.5, §14.7, §13.5).

``peerfed/web/scripts/browser-scheme2.mjs`` drives headless Chromium against a real node and a real
CLI peer. The page's key bundle names a signed pre-key and it uploads one-time pre-keys, so the CLI
reaches out with scheme 2; the page opens it, accepts in that session and writes in it. Proof from
outside the app: the sealed bytes the node handed the page (its live frames) and the ones the page
handed the node (POST /api/v1/send) carry scheme byte 2 (``parse_sealed(raw).payload[0]``); the
CLI's ``read --json`` says ``forward_secret``; no pre-key or session secret is in the browser's
profile as bytes; ending the conversation drops the session. Screenshots go to
``build/screenshots/web_scheme2/``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from peerfed.protocol.sealing import parse_sealed
from tests.client.test_cli_story import Cli
from tests.client.test_web_at_rest import files_under
from tests.client.test_web_browser import CHROMIUM, ROOT, WEB
from tests.processes import NodeProcess, NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_scheme2"


def schemes(items: list[str]) -> list[int]:
    """The scheme byte of each sealed message (base64), read as a node reads the routing layer."""
    return [parse_sealed(base64.b64decode(item)).payload[0] for item in items]


def run_script(node: NodeProcess, ana: Cli, profile: Path) -> Any:
    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    env = {**os.environ, "CLI_PYTHON": sys.executable, "CLI_HOME": str(ana.home)}
    out = subprocess.run(
        [runner, str(WEB / "scripts" / "browser-scheme2.mjs"), node.url, str(SHOTS), str(profile)],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_browser_peer_and_a_cli_peer_talk_with_scheme_2(tmp_path: Path, node_processes: NodeProcesses) -> None:
    node: NodeProcess = node_processes(tmp_path / "node", name="A")
    asyncio.run(node.start())
    ana = Cli(tmp_path / "ana")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    ana.json("offer", "--topic", "grief", "--summary", "Lost my father last year; happy to listen.")
    profile = tmp_path / "profile"
    seen = run_script(node, ana, profile)
    assert seen["console"] == [] and seen["violations"] == [] and seen["requests"] == [node.url]
    assert "I know those nights too." in seen["hello"]

    # The browser as responder: Ana's reach-out and message came to the page sealed with scheme 2
    # (the page's bundle names a signed pre-key), and the page's answer and message went with it.
    assert len(seen["received"]) >= 2 and set(schemes(seen["received"])) == {2}
    assert len(seen["sent"]) >= 2 and set(schemes(seen["sent"])) == {2}
    assert any(m["text"] == "And back from the browser." for m in seen["cliRead"]["messages"])
    assert seen["cliRead"]["forward_secret"] is True

    # The page keeps a signed pre-key and one-time pre-keys it uploaded, and the session while the
    # conversation lasts; ending it deletes the session (spec §9.4, §14.4).
    held = seen["responder"]
    assert held["signedPublic"] == seen["joined"]["signedPublic"]
    # Ana's CLI claimed one of the page's one-time pre-keys (so the signed upload was taken), and
    # the page deleted its secret once the reach-out was taken (spec §14.5 step 9).
    assert held["oneTimeCount"] == seen["joined"]["oneTimeCount"] - 1 > 0
    assert held["sessions"] == [seen["cliRead"]["connection"]]
    assert seen["afterEnd"]["sessions"] == []
    assert ana.json("read", seen["cliRead"]["connection"])["forward_secret"] is False

    # The browser as initiator: its reach-out to Ana's offer (whose bundle names a signed pre-key)
    # started a session, so it and everything after it went with scheme 2 both ways (spec §14.7).
    start = seen["initiatorFrom"]
    assert len(seen["sent"]) - start["sent"] >= 2 and set(schemes(seen["sent"][start["sent"] :])) == {2}
    assert len(seen["received"]) - start["received"] >= 2 and set(schemes(seen["received"][start["received"] :])) == {2}
    assert seen["initiatorRead"]["forward_secret"] is True
    assert seen["initiator"]["sessions"] == [seen["initiatorRead"]["connection"]]

    # None of those secrets is in the browser's files as bytes: they are kept sealed (spec §12).
    browser = files_under(profile)
    secrets = {bytes.fromhex(s) for s in held["secrets"] + seen["afterEnd"]["secrets"] + seen["initiator"]["secrets"]}
    assert len(secrets) > 5
    assert not [name for name, data in browser.items() if any(s in data for s in secrets)]
