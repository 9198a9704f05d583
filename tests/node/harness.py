"""Nodes and peers for tests: real aiohttp servers on 127.0.0.1, one shared controllable clock.

Background loops are off; a test drives federation by calling ``deliver_due``/``maintain``,
so nothing sleeps and nothing depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from peerfed.client.transport import NodeAPI
from peerfed.node.api import NODE
from peerfed.node.app import create_app
from peerfed.node.config import Config
from peerfed.node.runner import NodeRunner
from peerfed.node.service import Node
from peerfed.node.store import Member
from peerfed.protocol import (
    EncryptionSecret,
    Envelope,
    Identity,
    KeyBundle,
    Listing,
    Sealed,
    open_sealed,
    seal,
    sign,
)
from peerfed.protocol.messages import SealedBody
from peerfed.protocol.sealing2 import Session, _start, seal2
from tests.backends import database_for

DAY = 86_400


class Clock:
    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(start if start is not None else time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


Scenario = Callable[["TestNode", aiohttp.ClientSession], Awaitable[None]]


async def with_node(data: Path, clock: Clock, body: Scenario, **settings: Any) -> None:
    """Start a node on ``data``, run ``body`` against it with one HTTP session, stop it."""
    node = await TestNode(data, clock, **settings).start()
    try:
        async with aiohttp.ClientSession() as http:
            await body(node, http)
    finally:
        await node.stop()


def run_node(tmp: Path, body: Scenario, **settings: Any) -> None:
    """One node in ``tmp/n`` with its own clock, for a test that needs nothing else."""
    asyncio.run(with_node(tmp / "n", Clock(), body, **settings))


class TestNode:
    """One node on loopback. ``start`` may be called again after ``stop``: same data, same port."""

    __test__ = False

    def __init__(self, data: Path, clock: Clock, **settings: Any) -> None:
        self.data = data
        self.clock = clock
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = {"synchronous": "NORMAL", "retry_base": 10.0, "database": database_for(data), **settings}
        self.runner: web.AppRunner | None = None

    @property
    def config(self) -> Config:
        return Config(data=self.data, host="127.0.0.1", port=self.port, public_url=self.url, **self.settings)

    async def start(self) -> TestNode:
        if self.sock is None:
            self.sock = free_socket_at(self.port)
        app = create_app(self.config, clock=self.clock, background=False)
        self.runner = NodeRunner(app, handle_signals=False, keepalive_timeout=self.config.idle_timeout)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        self.node: Node = app[NODE]
        return self

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()
        self.runner = None
        self.sock = None  # type: ignore[assignment]

    async def deliver(self) -> int:
        return await self.node.deliver_due()


def free_socket_at(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def standing(member: Member | None) -> tuple[str, str | None] | None:
    """A member row as (status, moved to), or None for no member: what the tests compare."""
    return None if member is None else (member.status, member.moved_to)


async def federate(*nodes: TestNode) -> None:
    """Make every node federate with every other (open policy: follow, accept, pull)."""
    for node in nodes:
        for other in nodes:
            if other is not node:
                status = await node.node.store.node(other.url)
                if status is None or status.status != "active":
                    await node.node.store.set_node_status(other.url, "requested", int(node.clock()))
    for node in nodes:
        await node.node.maintain()


@dataclass
class Peer:
    """A peer in a test: keys, a signed-in API, and the listings and connections it made."""

    name: str
    home: TestNode
    http: aiohttp.ClientSession
    seed: int
    identity: Identity = field(init=False)
    secret: EncryptionSecret = field(init=False)
    api: NodeAPI = field(init=False)

    def __post_init__(self) -> None:
        self.identity = Identity(bytes([self.seed]) * 32)
        self.secret = EncryptionSecret(bytes([self.seed + 100]) * 32)
        self.api = NodeAPI(self.home.url, self.http)

    @property
    def id(self) -> Any:
        return self.identity.peer_id

    def now(self) -> int:
        return int(self.home.clock())

    async def join(self, invite: str | None = None) -> Peer:
        await self.api.sign_in(self.identity, now=self.now(), invite=invite)
        await self.api.put_keys(self.bundle)
        return self

    @property
    def bundle(self) -> bytes:
        """This peer's signed key bundle, as it publishes it and as its reach-outs carry it."""
        body = KeyBundle(self.secret.public, home=self.home.url, pseudonym=self.name)
        return sign(self.identity, body, created_at=self.now(), expires_at=self.now() + 30 * DAY).raw

    def signed(self, body: Any, life: int = 7 * DAY) -> Envelope:
        return sign(self.identity, body, created_at=self.now(), expires_at=self.now() + life)

    async def offer(self, summary: str, **fields: Any) -> Envelope:
        listing = Listing(
            kind=fields.pop("kind", "offer"),
            topics=fields.pop("topics", ("panic attacks",)),
            languages=fields.pop("languages", ("es", "en")),
            formats=fields.pop("formats", ("text",)),
            timing=fields.pop("timing", "soon"),
            summary=summary,
            **fields,
        )
        env = self.signed(listing)
        await self.api.publish(env.raw)
        return env

    def seal_to(self, other: Peer, body: SealedBody) -> tuple[Envelope, Sealed]:
        inner = self.signed(body, life=3 * DAY)
        return inner, seal(inner, other.secret.public)

    def seal2_to(self, other: Peer, body: SealedBody, sessions: dict[bytes, Session]) -> tuple[Envelope, Sealed]:
        """``body`` sealed with scheme 2 (spec §14), on a session with ``other`` kept in ``sessions``
        (begun from ``other``'s signed pre-key the first time): to a node, only its first byte differs."""
        inner = self.signed(body, life=3 * DAY)
        key = bytes(other.id)
        if key not in sessions:
            prekey = EncryptionSecret(bytes([other.seed + 150]) * 32).public
            sessions[key] = _start(
                other.id, body.connection, other.secret.public, prekey, None, self.identity, None, None
            )
        sealed, sessions[key] = seal2(inner, sessions[key], other.secret.public)
        return inner, sealed

    def open(self, raw: bytes) -> Envelope:
        return open_sealed(raw, recipient=self.id, secrets=[self.secret], now=self.now()).inner

    async def inbox(self) -> list[Envelope]:
        import base64

        page = await self.api.mailbox()
        return [self.open(base64.b64decode(item["sealed"])) for item in page["items"]]
