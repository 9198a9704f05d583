"""A live browser conversation outlives its node process (spec §13.5 Live mailbox, §13.4, §12).

``peerfed/web/scripts/browser-live.mjs`` keeps a conversation open in headless Chromium while this
test stops the node process, expires every session in its database, and starts it again on the
same port: the page says calmly that the connection was lost, reconnects by itself, signs in again,
and gets what Ben wrote meanwhile once each; its key, near its end, was renewed as the CLI renews.
Screenshots go to ``build/screenshots/web_live/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.backends import query
from tests.client.pairs import Cli, bring_back, connected, eventually, one_node, take_offline
from tests.client.test_web_backup import web_core
from tests.client.test_web_browser import CHROMIUM, ROOT, WEB
from tests.processes import NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_live"
PASSPHRASE = "one breath, then the next"
DAY = 86_400


def test_a_live_page_says_the_node_went_away_reconnects_and_loses_nothing(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    # Killed, the node's side closes its connections first and they wait in TIME_WAIT on its port;
    # with SO_REUSEADDR on the listener they inherit it, so the next life can bind the port at once.
    node.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ana, ben, connection = connected(node, tmp_path)
    backup = tmp_path / "ana.peerfed"
    Cli(ana.home, PASSPHRASE).json("id", "export", str(backup))
    # The key in the backup ends in 10 days: inside the 20 days in which a client renews it.
    status, aged = web_core("age", str(backup), "10", passphrase=PASSPHRASE)
    assert status == 0, aged

    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    env = {**os.environ, "CLI_PYTHON": sys.executable, "BEN_HOME": str(ben.home), "PASSPHRASE": PASSPHRASE}
    browser_backup = tmp_path / "browser.peerfed"
    args = [node.url, str(SHOTS), str(tmp_path / "profile"), str(backup), str(browser_backup), connection]
    with subprocess.Popen(
        [runner, str(WEB / "scripts" / "browser-live.mjs"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as script:
        assert script.stdin is not None and script.stdout is not None

        def expect(step: str) -> None:
            line = script.stdout.readline() if script.stdout else ""
            assert json.loads(line or "{}") == {"step": step}, line

        def tell(word: str) -> None:
            assert script.stdin is not None
            script.stdin.write(word + "\n")
            script.stdin.flush()

        try:
            expect("listening")
            take_offline(node, signal.SIGKILL)  # killed, as a crash or a power cut would
            # While it is down, every session runs out: the page must open a new one by itself.
            query(node.data, "UPDATE sessions SET expires_at = 0")
            tell("down")
            expect("lost")
            asyncio.run(bring_back(node))
            tell("up")
            said, errors = script.communicate(timeout=300)
        finally:
            if script.poll() is None:
                script.kill()
    assert script.returncode == 0, errors
    seen = json.loads(said)

    # The page, restored from a backup, went on with the session the backup carried (spec §9.6).
    assert seen["cli"]["benFirst"]["forward_secret"] is True
    assert seen["lost"].startswith("The connection to your community was lost. Nothing is lost; trying again in ")
    assert seen["back"] == "Connected again. Anything that arrived meanwhile is here now."
    # Each message once, in order, whether it came live or from the mailbox on reconnecting.
    texts = [text for text in seen["messages"] if "Ben" in text]
    assert sum("Before the node stopped." in t for t in texts) == 1
    assert sum("While you were away, one." in t for t in texts) == 1
    assert sum("While you were away, two." in t for t in texts) == 1
    one = next(i for i, t in enumerate(seen["messages"]) if "away, one" in t)
    two = next(i for i, t in enumerate(seen["messages"]) if "away, two" in t)
    assert one < two
    # Ben reads the page's reply once. Not necessarily last: a reply sent within the same second as
    # his own message ties on time, and the total order of §9.5 breaks ties by id, not by who answered.
    assert [m["text"] for m in seen["cli"]["benRead"]["messages"]].count("Still here after the restart.") == 1
    # Every session had expired: in the node's second life both Ben's CLI and the page signed in again.
    assert node.output(2).count("session opened") >= 2
    # The key was renewed as the CLI renews it: a new one for 60 days, the old one kept for late mail.
    status, opened = web_core("open", str(browser_backup), passphrase=PASSPHRASE)
    assert status == 0, opened
    keys = opened["keys"]
    assert len(keys) == 2
    assert keys[1]["expires_at"] - keys[1]["created_at"] == 60 * DAY
    assert keys[0]["expires_at"] < keys[1]["expires_at"]
    # Ben still reaches the page's identity (his kept bundle names the old key, which the page kept).
    eventually(lambda: ben.json("read", connection[:8])["messages"], "Ben's conversation")
    assert seen["violations"] == []
    # Chromium logs each refused connection while the node was down and each refused request: the only
    # refusals are the expired session (reopened) and a send asked for first-contact work (sent again with it).
    codes = {json.loads(body)["error"]["code"] for _, _, body in seen["refused"]}
    assert codes <= {"auth.required", "auth.work"}, seen["refused"]
    expected = ("WebSocket connection to", "ERR_CONNECTION_REFUSED", "status of 401", "status of 403")
    assert [c for c in seen["console"] if not any(e in c for e in expected)] == []
    assert seen["requests"] == [node.url]
    assert (SHOTS / "lost-phone.png").stat().st_size > 1000
