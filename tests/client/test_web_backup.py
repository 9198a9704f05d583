"""A backup moves between the CLI and the web client's core both ways (spec §9.6), through the real programs.

The Python side is the real ``peerfed`` command against a real node process; the JavaScript side
is the web client's protocol core under Node (``peerfed/web/scripts/backup-tool.mjs``), with the
packages of its lockfile (``npm ci --prefix peerfed/web``, as CI runs before pytest).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.processes import NodeProcess, NodeProcesses

from .test_cli_story import Cli

WEB = Path(__file__).resolve().parents[2] / "peerfed" / "web"
PASSPHRASE = "the long way round, slowly"


def web_core(*args: str, passphrase: str) -> tuple[int, Any]:
    """Run the JS core's backup tool; its exit status and the one JSON document it printed."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the web client's tests (CI installs it)"
    assert (WEB / "node_modules" / "@noble" / "hashes").is_dir(), "run: npm ci --prefix peerfed/web"
    out = subprocess.run(
        [node, str(WEB / "scripts" / "backup-tool.mjs"), *args],
        env={"PATH": "/usr/bin:/bin", "PEERFED_PASSPHRASE": passphrase},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.stderr == "", out.stderr
    return out.returncode, json.loads(out.stdout)


@pytest.fixture
def node(tmp_path: Path, node_processes: NodeProcesses) -> NodeProcess:
    made = node_processes(tmp_path / "node", name="A")
    asyncio.run(made.start())
    return made


def test_a_cli_backup_opens_in_the_web_core(node: NodeProcess, tmp_path: Path) -> None:
    ana = Cli(tmp_path / "ana")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    ana.json("offer", "--topic", "caring for a parent", "--summary", "Carer for my mother for six years.")
    backup = tmp_path / "ana.peerfed"
    Cli(tmp_path / "ana", passphrase=PASSPHRASE).json("id", "export", str(backup))

    status, opened = web_core("open", str(backup), passphrase=PASSPHRASE)
    assert status == 0, opened
    assert opened["peer"] == ana.json("id", "show")["peer"]
    assert opened["meta"]["node"] == node.url and opened["meta"]["name"] == "Ana"
    assert opened["tables"]["listings"] == 1
    assert len(opened["keys"]) == 1
    assert opened["keys"][0]["expires_at"] > opened["keys"][0]["created_at"]

    status, refused = web_core("open", str(backup), passphrase="not it")
    assert (status, refused["error"]["code"]) == (1, "local.passphrase")


def test_a_web_core_backup_is_imported_by_the_cli_which_then_uses_its_keys(node: NodeProcess, tmp_path: Path) -> None:
    backup = tmp_path / "from-browser.peerfed"
    # The JS core joins the node as the browser does (keys made there, sign-in, key bundle), then writes the backup.
    status, made = web_core("write", str(backup), node.url, passphrase=PASSPHRASE)
    assert status == 0, made
    assert backup.read_bytes()[0] == 1  # sealed under the passphrase

    assert Cli(tmp_path / "wrong", passphrase="not it").error("id", "import", str(backup)) == "local.passphrase"
    phone = Cli(tmp_path / "phone", passphrase=PASSPHRASE)
    restored = phone.json("id", "import", str(backup))
    assert restored["peer"] == made["peer"]
    # The restored keys sign in and publish a listing under the bundle the browser published: one identity.
    offer = phone.json("offer", "--topic", "hearing voices", "--summary", "Made in a browser, used in a terminal.")
    listings = phone.json("browse")["listings"]
    assert [item["id"] for item in listings] == [offer["id"]]
    assert listings[0]["author"] == made["peer"]
