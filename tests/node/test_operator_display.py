"""Strings from outside reach the operator only made visible (issue 12 item 9, node side; spec §13.1).

Before: `peerfed admin` printed report reasons, member names and other nodes' error messages raw,
and the node's log wrote a remote node's error message as it came: ESC [ 2 J cleared the
operator's terminal, CR and LF forged lines, U+202E reversed what followed. Now the admin output
(text and JSON) and every log line show them through the protocol's ``visible``, one line an item.
Everything runs for real: a node process, the peer CLI, `peerfed admin`, and a hostile fake node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web

from peerfed.node.logs import FORMAT, VisibleFormatter
from peerfed.protocol import Identity
from tests.client.pairs import connected, eventually
from tests.hostile.stranger import node_document
from tests.node.harness import free_socket
from tests.processes import NodeProcesses

RLO, ZWSP = "\u202e", "\u200b"
# What a node or a report reason may carry freely: every kind of character that moves or hides.
HOSTILE = "\x1b[2J\x1b[31mcleared\r\n[admin] forged\u202eevil\u200b\x07\x9b"
ESCAPED = "\\u001b[2J\\u001b[31mcleared\\u000d\\u000a[admin] forged\\u202eevil\\u200b\\u0007\\u009b"
# What a signed message or a name may carry (spec §6.1): a line feed, bidirectional and zero-width ones.
FORGE = f"\n[admin] all clear{RLO}txet{ZWSP}"
LABEL = f"Mallory{RLO}{ZWSP}evil"
RAW = ("\x1b", "\r", "\x07", "\x9b", RLO, ZWSP, "\n[admin]")


def _clean(*outputs: str) -> None:
    for output in outputs:
        for raw in RAW:
            assert raw not in output, (raw, output)


def admin(data: Path, *args: str, json_out: bool = False) -> str:
    flags = ("--json",) if json_out else ()
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), *flags, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    _clean(out.stdout, out.stderr)
    return out.stdout


@contextmanager
def hostile_node() -> Iterator[str]:
    """A fake node on 127.0.0.1 that accepts a follow, then refuses everything with HOSTILE as the message.

    It runs its own event loop in a thread, so the test's blocking CLI calls do not stall it.
    """
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    identity = Identity(bytes([42]) * 32)

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/.well-known/peerfed":
            document = node_document(identity, url, int(time.time()))
            return web.Response(body=document, content_type="application/octet-stream")
        if request.method == "POST" and request.path == "/federation/v1/follow":
            return web.json_response({"status": "active"})
        return web.json_response({"error": {"code": "request.invalid", "message": HOSTILE}}, status=400)

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        sock.close()


def test_the_operator_sees_outside_strings_escaped_in_admin_output_and_the_log(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    with hostile_node() as evil_url:
        node = node_processes(tmp_path / "node", "--federate", evil_url, name="N")
        asyncio.run(node.start())
        ana, mal, connection = connected(node, tmp_path, ben_name=LABEL)
        mal.json("send", connection[:8], f"first{FORGE}")
        mal.json("send", connection[:8], f"second{FORGE}")
        eventually(lambda: len(ana.json("read", connection[:8])["messages"]) == 2, "Mallory's messages")
        made = ana.json("report", mal.json("id", "show")["peer"], "--reason", HOSTILE, "--disclose", connection[:8])
        report = str(made["id"])

        # The report's reason: escaped in text, intact (as JSON's own escapes) for a program.
        listed = admin(node.data, "reports", "list")
        assert ESCAPED in listed and listed.count("\n") == 1
        assert json.loads(admin(node.data, "reports", "list", json_out=True))[0]["reason"] == HOSTILE

        # The disclosed messages: one line each, the line feed inside shown as an escape.
        shown = admin(node.data, "reports", "show", report)
        assert f"reason: {ESCAPED}" in shown
        lines = [x for x in shown.split("\n") if x.startswith("  ")]
        assert len(lines) == 3  # the hello, then Mallory's two messages
        assert lines[1].endswith("message: first\\u000a[admin] all clear\\u202etxet\\u200b"), lines[1]
        as_json = json.loads(admin(node.data, "reports", "show", report, json_out=True))
        assert [d["text"] for d in as_json["disclosed"]][1:] == [f"first{FORGE}", f"second{FORGE}"]

        # A member's name, as they signed it into their key bundle.
        members = admin(node.data, "members", "list")
        assert "name=Mallory\\u202e\\u200bevil" in members
        assert LABEL in [m["name"] for m in json.loads(admin(node.data, "members", "list", json_out=True))]

        # A remote node's error message: the listing Ana published is refused by the hostile node.
        failures = eventually(
            lambda: json.loads(admin(node.data, "federation", "failures", json_out=True)), "the refused batch"
        )
        assert HOSTILE in failures[0]["error"]
        text = admin(node.data, "federation", "failures")
        assert ESCAPED in text and text.count("\n") == len(failures)

        # The node's log (its stderr) holds the same messages, escaped, one line each.
        eventually(lambda: "refused a batch" in node.output(), "the refusal in the log")
        log = node.output()
        _clean(log)
        assert ESCAPED in log
        refusals = [x for x in log.split("\n") if "refused a batch" in x]
        assert refusals and all(x.endswith(ESCAPED) for x in refusals), refusals


def test_a_log_line_and_its_traceback_are_made_visible_line_by_line() -> None:
    """The node's formatter (peerfed.node.logs): the message on one line, each traceback line escaped."""
    formatter = VisibleFormatter(FORMAT)
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        record = logging.LogRecord("peerfed.node", logging.WARNING, __file__, 1, "from %s: %s", ("x", HOSTILE), None)
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    _clean(text)
    first, *traceback = text.split("\n")
    assert first.endswith(f"from x: {ESCAPED}")
    assert traceback[0] == "Traceback (most recent call last):" and traceback[-1] == f"ValueError: {ESCAPED}"
