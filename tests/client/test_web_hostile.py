"""Hostile input to the web client in a real headless Chromium (issue 13; spec §12, §9.5, §13.10).

Two sources of hostile text. A node: a fake one on 127.0.0.1 serves the real built client, then
answers each request the page makes (its document, the challenge, the session, the key bundle,
the directory, the live socket) with garbage, truncated JSON, wrong types, escape sequences or
an oversize body; the page must say so plainly, never crash, and keep nothing. A peer: a CLI peer
on a real node puts markup, bidirectional overrides and zero-width characters in its name,
listing, hello, messages and terms; the page must show them as text and make no element of them.
``peerfed/web/scripts/browser-hostile.mjs`` drives the browser; screenshots go to
``build/screenshots/web_hostile*/``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from peerfed.node.api.webclient import CLIENT_FILES, PAGE_HEADERS
from peerfed.protocol import Identity, NodeDocument, sign
from peerfed.protocol.node_bodies import Emergency, FederationPolicy, NodeKey, Registration, Resource
from tests.client.test_cli_story import Cli, eventually
from tests.client.test_web_browser import CHROMIUM, ROOT, WEB
from tests.node.harness import free_socket
from tests.processes import NodeProcess, NodeProcesses

SHOTS = ROOT / "build" / "screenshots" / "web_hostile"
# Markup that would run if it were ever parsed as HTML, a right-to-left override that would reverse
# what follows, a zero-width space and a zero-width joiner that would hide in a word.
MARKUP = "<img src=x onerror=globalThis.__pwned=1><script>globalThis.__pwned=2</script>"
BIDI = "\u202e"
ZERO_WIDTH = "\u200b\u200d"
ESCAPES = "\x1b[2J\x1b]0;owned\x07"
EVIL_CODE = f"{ESCAPES}{BIDI}{MARKUP}"
OVERSIZE = 12 * 1024 * 1024
PLAIN_REFUSAL = "Something went wrong."


def hostile_document(identity: Identity, url: str) -> bytes:
    """A valid signed document whose every free word is hostile: the page shows it as text."""
    now = int(time.time())
    doc = NodeDocument(
        url=url,
        name=f"<b>Night</b>{BIDI}{ZERO_WIDTH}",
        description=f"{MARKUP}{BIDI}evil",
        contact="nobody",
        registration=Registration.OPEN,
        code_of_conduct="Be kind.",
        resources=(Resource(name=f"<i>Line</i>{BIDI}", contact=MARKUP, emergency=Emergency.NEVER, note=ZERO_WIDTH),),
        mailbox_ttl=86_400,
        max_listing_lifetime=86_400,
        limits=(),
        protocols=("peerfed/1",),
        software="fake/0",
        federation=FederationPolicy.OPEN,
        keys=(NodeKey(bytes(identity.peer_id), now - 300, now + 8 * 86_400),),
    )
    return sign(identity, doc, created_at=now, expires_at=now + 7 * 86_400).raw


# Per request, a JSON body with every field the page reads given the wrong type.
WRONG_TYPES: dict[str, Any] = {
    "document": {"document": 12, "summary": "none"},
    "challenge": {"challenge": ["00"], "node": 5, "work": "lots"},
    "session": {"token": {"a": 1}, "peer": 7, "expires_at": "soon"},
    "keys": "published",
    "directory": {"listings": "none"},
}


def good_answer(target: str, url: str) -> dict[str, Any]:
    """What a well-behaved node would answer ``target`` (the fake takes any proof it is sent)."""
    if target == "challenge":
        return {"challenge": "5a" * 32, "node": url, "work": 0}
    if target == "session":
        return {"token": "t0ken", "peer": "pf1", "expires_at": int(time.time()) + 3600}
    return {"listings": []} if target == "directory" else {}


# The live socket: not JSON, JSON of every wrong shape, items that do not open, escapes, 4 MB.
LIVE_FRAMES = [
    "not json {",
    "null",
    "[1, 2]",
    json.dumps({"type": "item", "sealed": 5, "id": 1}),
    json.dumps({"type": "item", "sealed": "!!not base64!!", "id": MARKUP}),
    json.dumps({"type": "item", "sealed": "AAAA" * 64, "id": EVIL_CODE}),
    json.dumps({"type": EVIL_CODE, "text": MARKUP}),
    "x" * (4 * 1024 * 1024),
]


def hostile(target: str, kind: str) -> web.Response:
    """The answer of kind ``kind`` to the request ``target``."""
    if kind == "garbage":
        body = b"\x00\xff\xfe<html><script>globalThis.__pwned=3</script>\x1b[2J"
        return web.Response(body=body, content_type="application/json")
    if kind == "truncated":
        return web.Response(body=b'{"document": "AAAA', content_type="application/json")
    if kind == "wrong-types":
        return web.json_response(WRONG_TYPES[target])
    if kind == "escapes":  # a refusal whose code and message would draw on a terminal or the page
        return web.json_response({"error": {"code": EVIL_CODE, "message": EVIL_CODE}}, status=400)
    assert kind == "oversize"
    # 12 MB: as the document's base64 (it must be refused by size, §5.4), else one JSON string.
    huge = b"A" * OVERSIZE
    body = b'{"document": "' + huge + b'"}' if target == "document" else b'"' + huge + b'"'
    return web.Response(body=body, content_type="application/json")


class FakeNode:
    """Serves the real built client and answers as the current scenario says; 127.0.0.1 only."""

    def __init__(self) -> None:
        self.sock = free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.document = hostile_document(Identity(bytes([0x66]) * 32), self.url)
        self.scenario = ("", "")
        self.acks: list[Any] = []
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/", self.page)
        app.router.add_get("/assets/{name}", self.asset)
        app.router.add_post("/_scenario", self.choose)
        app.router.add_get("/_acks", self.seen_acks)
        app.router.add_get("/.well-known/peerfed", self.answer("document"))
        app.router.add_post("/api/v1/challenge", self.answer("challenge"))
        app.router.add_post("/api/v1/session", self.answer("session"))
        app.router.add_put("/api/v1/keys", self.answer("keys"))
        app.router.add_get("/api/v1/directory", self.answer("directory"))
        app.router.add_get("/api/v1/live", self.live)
        self.runner = web.AppRunner(app)

    async def start(self) -> None:
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def page(self, request: web.Request) -> web.Response:
        body = (CLIENT_FILES / "index.html").read_bytes()
        return web.Response(body=body, headers={**PAGE_HEADERS, "Content-Type": "text/html; charset=utf-8"})

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kinds = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        path = CLIENT_FILES / "assets" / name
        if "/" in name or ".." in name or path.suffix not in kinds or not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), headers={**PAGE_HEADERS, "Content-Type": kinds[path.suffix]})

    async def choose(self, request: web.Request) -> web.Response:
        chosen = await request.json()
        self.scenario = (chosen["target"], chosen["kind"])
        self.acks = []
        return web.json_response({})

    async def seen_acks(self, request: web.Request) -> web.Response:
        return web.json_response(self.acks)

    def answer(self, target: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            await request.read()
            if self.scenario[0] == target:
                return hostile(target, self.scenario[1])
            if target == "document":
                return web.json_response({"document": base64.b64encode(self.document).decode()})
            return web.json_response(good_answer(target, self.url))

        return handler

    async def live(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1024 * 1024)
        await ws.prepare(request)
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            if frame.get("type") == "auth" and self.scenario == ("live", "frames"):
                for text in LIVE_FRAMES:
                    await ws.send_str(text)
            elif frame.get("type") == "ack":
                self.acks.extend(frame.get("ids", []))
        return ws


async def run_script(
    mode: str, url: str, shots: Path, profile: Path, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run browser-hostile.mjs in ``mode`` against ``url``; its exit code, stdout and stderr."""
    runner = shutil.which("node")
    assert runner and CHROMIUM.is_file(), "Node.js and Chromium are needed (CI installs them)"
    if shots.exists():
        shutil.rmtree(shots)
    shots.mkdir(parents=True)
    process = await asyncio.create_subprocess_exec(
        runner,
        str(WEB / "scripts" / "browser-hostile.mjs"),
        mode,
        url,
        str(shots),
        str(profile),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 600)
    return process.returncode or 0, out, err


def assert_harmless(seen: dict[str, Any], what: str) -> None:
    """Nothing hostile became code or an element, and nothing hidden reached the screen raw."""
    assert seen["pwned"] is None, what
    assert seen["images"] == 0, what
    assert seen["scripts"] == ["assets/app.js"], what
    assert seen["handlers"] == [], what
    for hidden in (BIDI, ZERO_WIDTH[0], ZERO_WIDTH[1], "\x1b", "\x07"):
        assert hidden not in seen["text"], (what, hidden)


def test_a_node_answering_garbage_gets_a_plain_message_and_nothing_is_kept(tmp_path: Path) -> None:
    fake = FakeNode()

    async def scenario() -> Any:
        await fake.start()
        try:
            code, out, err = await run_script("node", fake.url, SHOTS, tmp_path / "profile")
        finally:
            await fake.runner.cleanup()
        assert code == 0, err.decode()
        return json.loads(out)

    seen = asyncio.run(scenario())
    assert seen["pageErrors"] == [] and seen["dialogs"] == []
    # The only console errors are the browser's own notes of the fake node's refusals (HTTP 400).
    assert all("Failed to load resource" in line for line in seen["console"]), seen["console"]
    assert seen["violations"] == []
    assert seen["requests"] == [fake.url]
    assert len(seen["scenarios"]) == 25
    for case in seen["scenarios"]:
        what = f"{case['target']} answered with {case['kind']}"
        page = case["seen"]
        assert_harmless(page, what)
        [alert] = page["alerts"]
        # A plain sentence with, at most, a well-formed code: never the node's own words.
        assert alert.startswith(PLAIN_REFUSAL), (what, alert)
        assert "<" not in alert and "owned" not in alert, (what, alert)
        if case["target"] == "document":
            assert page["h1"] == "This community could not be reached", what
        if case["target"] in ("document", "challenge", "session", "keys"):
            assert case["stored"] is None, what  # a failed join keeps no half-made account
        if case["kind"] == "escapes":
            assert alert == f"{PLAIN_REFUSAL} (node.internal)", what
    # The signed document's hostile name and resources are shown as text, escaped (§9.5).
    joined = next(c["seen"] for c in seen["scenarios"] if c["target"] == "challenge")
    assert "<b>Night</b>\\u202e\\u200b\\u200d" in joined["text"]
    assert MARKUP + "\\u202eevil" in joined["text"]
    # Live frames that do not open are dropped (and acknowledged once handled); nothing appears.
    assert sorted(map(str, seen["acks"])) == sorted([MARKUP, EVIL_CODE])
    assert_harmless(seen["live"]["seen"], "live frames")
    assert seen["live"]["talksButton"] == "Talks"
    assert seen["live"]["seen"]["alerts"] == []


@pytest.fixture
def node(tmp_path: Path, node_processes: NodeProcesses) -> NodeProcess:
    made = node_processes(tmp_path / "node", name="A")
    asyncio.run(made.start())
    return made


def test_a_peers_markup_overrides_and_invisible_characters_are_shown_as_text(node: NodeProcess, tmp_path: Path) -> None:
    evil = {
        "name": f"<img src=x onerror=globalThis.__pwned=1>{BIDI}{ZERO_WIDTH}",
        "topic": f"<svg onload=globalThis.__pwned=2>{BIDI}grief\u200b",  # 44 of 48 bytes
        "summary": f"{MARKUP}{BIDI}listen{ZERO_WIDTH}",
        "hello": f"{MARKUP}{BIDI}hello{ZERO_WIDTH}",
        "message": f"{MARKUP}{BIDI}message{ZERO_WIDTH}",
        "terms": f"{MARKUP}{BIDI}terms{ZERO_WIDTH}",
    }
    ana = Cli(tmp_path / "ana")
    ana.json("id", "new", "--node", node.url, "--name", evil["name"])
    ana.json("offer", "--topic", evil["topic"], "--summary", evil["summary"])
    eventually(lambda: ana.json("browse")["listings"], "Ana's offer in the directory")
    env = {"CLI_PYTHON": sys.executable, "CLI_HOME": str(ana.home), "HOSTILE": json.dumps(evil)}
    shots = ROOT / "build" / "screenshots" / "web_hostile_peer"
    code, out, err = asyncio.run(run_script("peer", node.url, shots, tmp_path / "profile", env))
    assert code == 0, err.decode()
    seen = json.loads(out)
    assert seen["pageErrors"] == [] and seen["console"] == [] and seen["dialogs"] == []
    assert seen["violations"] == []
    assert seen["requests"] == [node.url]
    for screen in ("browse", "talks", "reachOut", "conversation"):
        assert_harmless(seen[screen], screen)
    # Each hostile string appears as text with its invisible characters spelled out (§9.5).
    shown = {
        "topic": ("browse", "<svg onload=globalThis.__pwned=2>\\u202egrief\\u200b"),
        "summary": ("browse", MARKUP + "\\u202elisten\\u200b\\u200d"),
        "hello": ("reachOut", MARKUP + "\\u202ehello\\u200b\\u200d"),
        "name": ("reachOut", "<img src=x onerror=globalThis.__pwned=1>\\u202e\\u200b\\u200d"),
        "message": ("conversation", MARKUP + "\\u202emessage\\u200b\\u200d"),
    }
    for key, (screen, text) in shown.items():
        assert text in seen[screen]["text"], (key, seen[screen]["text"])
    # The markup is in the page only as escaped text, never as elements.
    for html in (seen["browseHtml"], seen["conversationHtml"]):
        assert "<img" not in html and "<script" not in html
        assert "&lt;img src=x" in html or "&lt;script&gt;" in html
    assert any("message" in m for m in seen["messages"])
