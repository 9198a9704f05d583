"""New keys are encrypted by default (spec §9.6, R-9.6-1), through the real CLI against a real node.

Before: ``id new`` kept the keyring as plain msgpack unless ``--passphrase`` was given. Now it
needs a passphrase (asked twice at a terminal, or PEERFED_PASSPHRASE), or the person's explicit
``--no-passphrase``; with none of these and no terminal it refuses with
``local.passphrase_required`` before it writes or sends anything.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack

from tests.client.pairs import Cli, one_node
from tests.processes import NodeProcesses


def _keyring(home: Path) -> bytes:
    """The stored keyring blob, read from the device's database file without peerfed's code."""
    db = sqlite3.connect(f"file:{home / 'peer.sqlite3'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='keyring'").fetchone()
    finally:
        db.close()
    assert row is not None
    return bytes(row[0])


def test_new_keys_need_a_passphrase_or_an_explicit_no(node_processes: NodeProcesses, tmp_path: Path) -> None:
    node = one_node(node_processes, tmp_path)

    # No terminal (stdin is /dev/null), no PEERFED_PASSPHRASE, no flag: refused, nothing kept.
    bare = Cli(tmp_path / "bare", plain=False)
    assert bare.error("id", "new", "--node", node.url) == "local.passphrase_required"
    assert not (bare.home / "peer.sqlite3").exists()
    said = bare.run("id", "new", "--node", node.url, ok=False)
    assert said.returncode == 1 and "--no-passphrase" in said.stderr
    assert not (bare.home / "peer.sqlite3").exists()
    assert bare.error("id", "show") == "local.no_identity"

    # The explicit no: it works, and the person is told plainly what it means.
    plain = Cli(tmp_path / "plain", plain=False)
    shown = plain.run("id", "new", "--node", node.url, "--no-passphrase").stdout
    assert "NOT encrypted" in shown and "anyone who can read this folder can act as you" in shown
    assert plain.json("id", "show")["encrypted"] is False
    assert _keyring(plain.home)[0] == 0x00
    help_text = plain.run("id", "new", "--help").stdout
    assert "--no-passphrase" in help_text and "anyone who can read this folder" in help_text

    # PEERFED_PASSPHRASE, no flag: encrypted; the stored blob is the Argon2id-sealed form.
    locked = Cli(tmp_path / "locked", passphrase="a long walk home")
    assert locked.json("id", "new", "--node", node.url)["encrypted"] is True
    assert _keyring(locked.home)[0] == 0x01
    assert Cli(tmp_path / "locked").error("id", "show") == "local.passphrase"

    # The old opt-in flag still runs; asking for both is refused by the parser.
    older = Cli(tmp_path / "older", passphrase="another long walk")
    assert older.json("id", "new", "--node", node.url, "--passphrase")["encrypted"] is True
    both = older.run("id", "new", "--node", node.url, "--passphrase", "--no-passphrase", ok=False)
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_a_plain_keyring_is_given_a_passphrase_later_and_no_copy_of_the_seed_stays(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    plain = Cli(tmp_path / "plain", plain=False)
    plain.run("id", "new", "--node", node.url, "--no-passphrase")
    peer = plain.json("id", "show")["peer"]
    seed = msgpack.unpackb(_keyring(plain.home)[1:])[0]
    assert len(seed) == 32

    # No new passphrase and no terminal: refused, nothing changed.
    assert plain.error("id", "passphrase") == "local.passphrase_required"
    assert _keyring(plain.home)[0] == 0x00
    plain.env["PEERFED_NEW_PASSPHRASE"] = ""
    assert plain.error("id", "passphrase") == "local.passphrase"

    plain.env["PEERFED_NEW_PASSPHRASE"] = "the river in winter"
    assert plain.json("id", "passphrase")["encrypted"] is True
    assert _keyring(plain.home)[0] == 0x01
    # Not one copy of the seed is left in the device's files (the database, its log, its index).
    for path in plain.home.iterdir():
        if path.is_file():
            assert seed not in path.read_bytes(), path.name
    # From now on the keys open only with it.
    assert Cli(plain.home, plain=False).error("id", "show") == "local.passphrase"
    locked = Cli(plain.home, "the river in winter")
    assert locked.json("id", "show")["peer"] == peer
    assert Cli(plain.home, "not the river").error("id", "show") == "local.passphrase"

    # And back to none only when the person says so, with the current passphrase.
    assert locked.json("id", "passphrase", "--no-passphrase")["encrypted"] is False
    assert Cli(plain.home, plain=False).json("id", "show")["peer"] == peer
