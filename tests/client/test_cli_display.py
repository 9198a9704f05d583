"""Text from outside never reaches the terminal raw (spec §9.5, safe display), through the real CLI.

Every field another peer or a node writes and the CLI prints carries the characters that move the
cursor, rewrite a line, forge a ``[me]`` line, reverse text or hide it. Whatever the protocol lets
through (line feeds, bidirectional overrides, zero-width characters) is sent for real; what it
refuses in signed fields (ESC, CR) is refused with a typed error, and a fake node puts it in the one
place a node writes freely: its error messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from aiohttp import web

from tests.client.pairs import Cli, eventually, one_node
from tests.processes import NodeProcesses

RLO, ZWSP, BEL, CSI = "\u202e", "\u200b", "\x07", "\x9b"
# Allowed in free text by the protocol (spec §6.1): a line feed that would forge a line of ours.
FORGE = f"\n[me] I give up{RLO}txet desrever{ZWSP}"
# Allowed in labels (names, topics): no control characters, but bidi and zero-width ones.
LABEL = f"Mallory{RLO}{ZWSP}evil"
# What no terminal output may hold raw.
RAW = ("\x1b", "\r", RLO, ZWSP, BEL, CSI, "\n[me]")


def _clean(*outputs: str) -> None:
    for output in outputs:
        for raw in RAW:
            assert raw not in output, (raw, output)


def test_peer_written_fields_are_shown_escaped_one_line_per_message(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    node = one_node(node_processes, tmp_path)
    ana, mal = Cli(tmp_path / "ana"), Cli(tmp_path / "mallory")
    ana.json("id", "new", "--node", node.url, "--name", "Ana")
    mal.json("id", "new", "--node", node.url, "--name", LABEL)
    offer = mal.json("offer", "--topic", LABEL.lower(), "--summary", f"I listen.{FORGE}")
    eventually(lambda: ana.json("browse")["listings"], "the offer")
    connection = ana.json("reach", offer["id"][:8], "--hello", "Hi")["connection"]
    eventually(lambda: mal.json("connections")["connections"], "the reach-out")
    mal.json("accept", connection[:8], "--reply", f"Sure.{FORGE}")
    mal.json("agree", connection[:8], "--helps", f"Talking.{FORGE}", "--boundary", f"none{FORGE}")
    mal.json("send", connection[:8], f"hello{FORGE}\ttabbed")
    mal.json("send", connection[:8], f"second{FORGE}")
    eventually(lambda: len(ana.json("read", connection[:8])["messages"]) == 2, "Mallory's messages")

    # ESC and CR cannot be signed (spec §6.1): refused with a code, and the refusal echoes nothing raw.
    for text in ("\x1b[2J\x1b[31mred", "over\rwrite", f"bell{BEL}{CSI}31m"):
        refused = mal.run("send", connection[:8], text, ok=False)
        assert refused.returncode == 1 and refused.stderr.startswith("error ")
        _clean(refused.stdout, refused.stderr)
    assert [m["text"] for m in mal.json("read", connection[:8])["messages"]] == [
        f"hello{FORGE}\ttabbed",
        f"second{FORGE}",
    ]

    for verb in (("browse",), ("connections",), ("read", connection[:8]), ("agreement", connection[:8])):
        shown = ana.run(*verb)
        _clean(shown.stdout, shown.stderr)
        assert "\\u202e" in shown.stdout and "\\u200b" in shown.stdout, (verb, shown.stdout)
        as_json = ana.run(*verb, "--json")
        _clean(as_json.stdout, as_json.stderr)
        json.loads(as_json.stdout)  # still one JSON document; the escapes are JSON's own
    # The JSON view loses nothing: the escapes read back as the characters sent.
    assert [m["text"] for m in ana.json("read", connection[:8])["messages"]] == [
        f"hello{FORGE}\ttabbed",
        f"second{FORGE}",
    ]
    assert ana.json("connections")["connections"][0]["name"] == LABEL
    # One line a message: the line feed inside a message shows as an escape, never as a new line.
    # The reach-out and the reply come first, one line each, the reply escaped like a message.
    lines = ana.run("read", connection[:8]).stdout.split("\n")[:-1]
    assert len(lines) == 5 and lines[-1] == "-- accepted"
    assert re.match(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d\] them \(Mallory\\u202e\\u200bevil\) accepted: Sure\.", lines[1])
    assert "\n[me]" not in lines[1] and FORGE not in lines[1]
    messages = lines[2:4]
    assert all(re.match(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d\] them \(Mallory\\u202e\\u200bevil\): ", x) for x in messages)
    assert messages[0].endswith(": hello\\u000a[me] I give up\\u202etxet desrever\\u200b\\u0009tabbed")
    for verb in (("listings",), ("outbox", "list"), ("id", "show")):
        shown = mal.run(*verb)
        _clean(shown.stdout, shown.stderr)


HOSTILE = "\x1b[2J\x1b[31mbroken\r\n[me] forged\u202eevil\u200b\x07\x9b"


async def _against_a_hostile_node(home: Path, *args: str) -> tuple[int, str, str]:
    """Run ``peerfed ARGS`` against a node answering every request with a hostile error."""

    async def refuse(request: web.Request) -> web.Response:
        body = {"error": {"code": "schema.invalid", "message": HOSTILE}}
        return web.json_response(body, status=400)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "peerfed",
            *[a.replace("NODE", f"http://127.0.0.1:{port}") for a in args],
            env={**os.environ, "PEERFED_HOME": str(home)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()
    finally:
        await runner.cleanup()


def test_a_nodes_error_message_is_shown_escaped(tmp_path: Path) -> None:
    code, out, err = asyncio.run(
        _against_a_hostile_node(tmp_path / "a", "id", "new", "--node", "NODE", "--no-passphrase")
    )
    assert code == 1 and out == ""
    _clean(out, err)
    assert err.startswith("error schema.invalid: ") and err.count("\n") == 1
    assert "\\u001b[2J\\u001b[31mbroken\\u000d\\u000a[me] forged\\u202eevil\\u200b\\u0007\\u009b" in err

    code, out, err = asyncio.run(
        _against_a_hostile_node(tmp_path / "b", "id", "new", "--node", "NODE", "--no-passphrase", "--json")
    )
    assert code == 1 and out == ""
    _clean(out, err)
    assert json.loads(err)["error"]["message"] == HOSTILE  # escaped on the terminal, intact for a program
