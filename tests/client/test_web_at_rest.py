"""What a browser conversation leaves on disk, read as bytes (issue 13; spec §12, §9.6, §13.9).

``peerfed/web/scripts/browser-at-rest.mjs`` holds a whole conversation with a CLI peer in
headless Chromium, with a passphrase set, and closes the browser so IndexedDB is on disk. Then
this test reads every file of the browser's profile and of the node's data folder: no word of the
conversation (hello, reply, messages, terms) and not the passphrase appears in either, in UTF-8 or
UTF-16; the topic it was about is not in the browser's IndexedDB. Positive controls show the
search works: the person's chosen name, which is public, is found in both. Screenshots go to
``build/screenshots/web_at_rest/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.backends import stored_files
from tests.client.test_cli_story import Cli
from tests.client.test_web_browser import CHROMIUM, ROOT, WEB
from tests.processes import NodeProcess, NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_at_rest"
# Each unique, so finding one anywhere can only mean it was kept there.
SECRETS = {
    "passphrase": "quiet-lantern-harbour-7391",
    "name": "Rio-publicname-5512",
    "topic": "tidal-worries-qz",
    "summary": "Public summary words 4417.",
    "hello": "Hello, I found the nights hard too 8823.",
    "reply": "Thank you for writing 1290.",
    "cliMessage": "What helps you at three am 6604?",
    "browserMessage": "Breathing slowly with the window open 3176.",
    "terms": "Someone to talk to after work 9051.",
}
PRIVATE = ["passphrase", "hello", "reply", "cliMessage", "browserMessage", "terms"]


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def holding(files: dict[str, bytes], words: str) -> list[str]:
    """The files holding ``words`` as UTF-8 or UTF-16 (V8 keeps a non-Latin-1 string as UTF-16)."""
    forms = [words.encode("utf-8"), words.encode("utf-16-le")]
    return [name for name, data in files.items() if any(form in data for form in forms)]


def test_a_browser_conversation_with_a_passphrase_leaves_no_private_word_at_rest(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    node: NodeProcess = node_processes(tmp_path / "node", name="A")
    asyncio.run(node.start())
    ana = Cli(tmp_path / "ana")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    profile = tmp_path / "profile"
    env = {**os.environ, "CLI_PYTHON": sys.executable, "CLI_HOME": str(ana.home), "SECRETS": json.dumps(SECRETS)}
    out = subprocess.run(
        [runner, str(WEB / "scripts" / "browser-at-rest.mjs"), node.url, str(SHOTS), str(profile)],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["console"] == [] and seen["violations"] == [] and seen["requests"] == [node.url]
    # The conversation happened: every word was on the page and reached the other side.
    for key in ("hello", "reply", "cliMessage", "browserMessage"):
        assert SECRETS[key] in seen["shown"], key
    assert any(m["text"] == SECRETS["browserMessage"] for m in seen["cliRead"]["messages"])

    node.stop()  # the node's database closed, its WAL checkpointed: every byte it keeps is in the files
    browser = files_under(profile)
    indexeddb = {name: data for name, data in browser.items() if "IndexedDB" in name}
    kept = stored_files(node.data)
    assert indexeddb and any(name.endswith("node.sqlite3") or name.startswith("postgresql/") for name in kept)
    # Positive controls: the chosen name is kept in plain by both (it is public, in the key bundle
    # and the device record), so a word kept in plain would be found by this search.
    assert holding(indexeddb, SECRETS["name"]) and holding(kept, SECRETS["name"])
    assert holding(kept, SECRETS["summary"])
    for key in PRIVATE:
        assert holding(browser, SECRETS[key]) == [], key
        assert holding(kept, SECRETS[key]) == [], key
    # The topic is public in the directory, but what this device talked about is sealed here.
    assert holding(indexeddb, SECRETS["topic"]) == []
    assert (SHOTS / "conversation-phone.png").stat().st_size > 1000


def test_the_search_finds_a_word_in_utf8_and_utf16() -> None:
    files = {"a": b"xx" + "mot".encode("utf-16-le"), "b": b"mot", "c": b"m\x00o"}
    assert holding(files, "mot") == ["a", "b"]
