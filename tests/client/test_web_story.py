"""Two browser peers on two federated node processes walk the whole story (issue 13; spec §8, §9, §13.5, §13.10).

``peerfed/web/scripts/browser-story.mjs`` drives two headless Chromium profiles: Noa joins node B and
offers; Rio joins node A, browses (the offer travelled from B), reaches out; Noa accepts; Rio proposes
terms, Noa sees them and agrees; both talk live; Rio reports Noa to node A showing what Noa sent, an
operator resolves it, and Rio sees the outcome; Rio ends and asks for deletion. Each screen is audited
with axe-core. Afterwards neither node's files hold a private word of the story, except what Rio
chose to disclose to node A (§12). Screenshots go to ``build/screenshots/web_story/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.backends import stored_bytes
from tests.client.test_web_browser import CHROMIUM, ROOT, WEB
from tests.client.test_web_talk import federated  # noqa: F401  (the two-node fixture)
from tests.processes import NodeProcess

SHOTS = ROOT / "build" / "screenshots" / "web_story"


def walk(a: NodeProcess, b: NodeProcess, tmp_path: Path) -> Any:
    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    env = {**os.environ, "CLI_PYTHON": sys.executable, "NODE_A_DATA": str(a.data)}
    out = subprocess.run(
        [runner, str(WEB / "scripts" / "browser-story.mjs"), a.url, b.url, str(SHOTS), str(tmp_path / "profiles")],
        capture_output=True,
        text=True,
        timeout=420,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_two_browser_peers_on_two_federated_nodes_walk_the_whole_story(
    federated: tuple[NodeProcess, NodeProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    a, b = federated
    seen = walk(a, b, tmp_path)
    words = seen["words"]
    noa, rio = seen["noa"], seen["rio"]
    # Noa's page: the reach-out counted and answered, the hello shown as Rio wrote it.
    assert any("Reach-out from Rio" in t for t in noa["talks"])
    assert noa["pending"].startswith("1 reach-outs are waiting") and "at most 20" in noa["pending"]
    assert noa["hello"].endswith(words["hello"])
    assert rio["reply"].endswith(words["reply"])
    # Terms: what, until when and the boundary, seen by Noa before agreeing; the same in force at both.
    for shown in (noa["proposed"], noa["agreed"], rio["agreed"]):
        assert words["helps"] in shown and words["boundary"] in shown and "March 1, 2099" in shown
        assert "Writing" in shown
    # Live both ways, each message on both pages, in the same order on both (within one second the
    # order goes by peer id, spec §9.5).
    texts = [[m.splitlines()[-1] for m in messages] for messages in (noa["messages"], rio["messages"])]
    assert texts[0] == texts[1] and sorted(texts[0]) == sorted([words["noaSays"], words["rioSays"]])
    # The report went with what Noa sent (reply, agreement, message), and the outcome came back.
    assert rio["reportSent"].startswith("Your report was sent with 3 messages they wrote.")
    assert words["noaSays"] in seen["moderatorSaw"] and words["rioSays"] not in seen["moderatorSaw"]
    assert words["hello"] not in seen["moderatorSaw"]
    assert rio["reports"][0].startswith("About a person\n")
    assert rio["reports"][0].endswith("The moderators answered: Thank you, nothing to do.")
    # Ended with deletion: final at both ends, and neither page keeps a word of it.
    assert rio["ended"] == "You ended this conversation. Its words were deleted from this device."
    assert noa["ended"] == (
        "They ended this conversation. That is their choice, and it is final. Its words were deleted from this device."
    )
    assert rio["endedMessages"] == 0 and noa["endedMessages"] == 0 and noa["endedTerms"] == 0
    # The nodes' files: node B holds no private word; node A holds only what Rio chose to disclose
    # (Noa's words and the terms Noa signed) and the reason, as spec §12 says a report does. (On
    # PostgreSQL the two share one server, whose log holds both: B's own database is read alone,
    # and A's words are looked for in every file of both.)
    at_b, anywhere = stored_bytes(b.data, whole_server=False), stored_bytes(a.data) + stored_bytes(b.data)
    for word in words.values():
        assert word.encode() not in at_b, word
    for word in (words["hello"], words["rioSays"]):
        assert word.encode() not in anywhere, word
    # Every screen each peer reached was audited, with no violation.
    assert len(seen["audited"]) >= 18
    assert seen["violations"] == [], json.dumps(seen["violations"], indent=1)
    assert seen["console"] == []
    assert seen["requests"] == [f"noa {b.url}", f"rio {a.url}"]
