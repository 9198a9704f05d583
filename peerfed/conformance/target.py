"""The node under test as the conformance cases see it (spec §13.1, §13.4): HTTP calls, refusals, signed-in peers.

Everything here is the client API of §13.5 as any client would speak it: raw signed bytes in,
JSON out, refusals as ``{"error": {"code", "message"}}``. Nothing reads the node's store.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from peerfed.protocol import (
    ERROR_CODES,
    ClientAuth,
    EncryptionSecret,
    Envelope,
    Identity,
    KeyBundle,
    Listing,
    NodeDocument,
    RemoteError,
    sign,
)
from peerfed.protocol.document import open_document
from peerfed.protocol.work import solve_work

from .suite import Failed

__all__ = ["DAY", "Answer", "Peer", "Target", "b64"]

DAY = 86_400
MAX_WORK_BITS = 24  # a node asking more than this of a sign-in is not one the suite can test


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: its status, its JSON (None if it had none) and its bytes."""

    status: int
    json: Any
    raw: bytes

    @property
    def code(self) -> str | None:
        """The refusal's code, or None when the answer is not a refusal body."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            code = self.json["error"].get("code")
            return code if isinstance(code, str) else None
        return None

    def ok(self, *statuses: int) -> Any:
        """The JSON of a successful answer; raises Failed when the status is not one of ``statuses``."""
        if self.status not in (statuses or (200,)):
            raise Failed(f"expected {'/'.join(map(str, statuses or (200,)))}, got {self.status} {self.short()}")
        return self.json

    def refused(self, code: str) -> None:
        """Raise Failed unless this is a refusal with ``code`` and the HTTP status the code has (§10, §13.8)."""
        status = ERROR_CODES.get(code)
        if self.code != code or self.status != status:
            raise Failed(f"expected {status} {code}, got {self.status} {self.short()}")

    def short(self) -> str:
        text = self.raw[:160].decode("utf-8", "replace")
        return " ".join(text.split())


class Peer:
    """A peer the suite plays: a fresh key, its encryption key, and a session once signed in."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.identity = Identity(os.urandom(32))
        self.secret = EncryptionSecret(os.urandom(32))
        self.token: str | None = None

    @property
    def text(self) -> str:
        return self.identity.peer_id.text

    def signed(self, body: Any, life: int = 7 * DAY, *, created_at: int | None = None) -> Envelope:
        now = self.target.now() if created_at is None else created_at
        return sign(self.identity, body, created_at=now, expires_at=now + life)

    def bundle(self, home: str | None = None) -> Envelope:
        body = KeyBundle(self.secret.public, home=home or self.target.url, pseudonym="conformance")
        return self.signed(body, life=30 * DAY)

    def frame(self, payload: bytes, context: str = "peerfed/v1/envelope") -> bytes:
        """A signed object over any payload bytes (spec §5.1, §5.2), so a case can sign a broken one."""
        author = bytes(self.identity.peer_id)
        signed = context.encode("ascii") + b"\x00" + bytes([1]) + author + payload
        return bytes([1]) + author + self.identity.sign(signed) + payload

    def listing(self, summary: str = "conformance listing", **fields: Any) -> Envelope:
        life = int(fields.pop("life", 2 * DAY))
        created_at = fields.pop("created_at", None)
        listing = Listing(
            kind=fields.pop("kind", "offer"),
            topics=fields.pop("topics", ("conformance",)),
            languages=fields.pop("languages", ("en",)),
            formats=fields.pop("formats", ("text",)),
            timing=fields.pop("timing", "soon"),
            summary=summary,
            **fields,
        )
        return self.signed(listing, life=life, created_at=created_at)

    async def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return await self.target.call(method, path, headers=headers, **kwargs)

    async def join(self, *, publish_bundle: bool = True) -> Peer:
        """Sign in (paying any proof of work asked) and publish a key bundle; raises Failed if refused."""
        challenge = (await self.target.call("POST", "/api/v1/challenge")).ok()
        proof = self.signed(ClientAuth(self.target.url, bytes.fromhex(challenge["challenge"])), life=300)
        answer = await self.target.post_signed("/api/v1/session", proof.raw, headers=self.target.work_header(challenge))
        self.token = answer.ok()["token"]
        if publish_bundle:
            (await self.call("PUT", "/api/v1/keys", data=self.bundle().raw, headers=OCTETS)).ok()
        return self

    async def publish(self, raw: bytes) -> Answer:
        return await self.call("POST", "/api/v1/listings", data=raw, headers=OCTETS)


OCTETS = {"Content-Type": "application/octet-stream"}


class Target:
    """The node under test at ``url``, with one HTTP session for every case."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http: aiohttp.ClientSession | None = None
        self.second: Any = None  # the second node the federation cases play, started on first use
        # Signed-in peers shared by the cases that need no fresh key: a node limits joins per
        # address (§13.2 join-per-hour), and the suite must pass under the default limits.
        self.members: list[Peer] = []

    async def __aenter__(self) -> Target:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.second is not None:
            await self.second.stop()
        if self.http is not None:
            await self.http.close()

    def now(self) -> int:
        """The suite's clock: it judges the node's time rules against real time, as any peer would."""
        return int(time.time())

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self.http is not None, "Target is used inside `async with`"
        return self.http

    async def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        async with self.session.request(method, self.url + path, allow_redirects=False, **kwargs) as response:
            raw = await response.read()
            try:
                data = await response.json(content_type=None) if raw else None
            except ValueError:
                data = None
            return Answer(response.status, data, raw)

    async def post_signed(self, path: str, raw: bytes, headers: dict[str, str] | None = None) -> Answer:
        return await self.call("POST", path, data=raw, headers={**OCTETS, **(headers or {})})

    def work_header(self, challenge: dict[str, Any]) -> dict[str, str]:
        bits = int(challenge.get("work", 0))
        if bits <= 0:
            return {}
        if bits > MAX_WORK_BITS:
            raise Failed(f"the node asks {bits} bits of work to join; the suite solves at most {MAX_WORK_BITS}")
        return {"X-Peerfed-Work": solve_work(bytes.fromhex(challenge["challenge"]), bits).hex()}

    async def peer(self) -> Peer:
        """A new peer, signed in, with its key bundle published."""
        return await Peer(self).join()

    async def member(self, index: int) -> Peer:
        """The ``index``-th shared peer (0, 1 or 2), signed in on first use."""
        while len(self.members) <= index:
            self.members.append(await self.peer())
        return self.members[index]

    async def opened_document(self) -> NodeDocument:
        """The node's document, opened and checked as §13.2 says; raises Failed if it does not open."""
        try:
            raw = base64.b64decode((await self.document())["document"], validate=True)
            return open_document(raw, self.url, self.now())[0]
        except (KeyError, TypeError, ValueError, RemoteError) as exc:
            raise Failed(f"the node document does not open: {exc}") from exc

    async def document(self) -> dict[str, Any]:
        answer = await self.call("GET", "/.well-known/peerfed")
        data = answer.ok()
        if not isinstance(data, dict):
            raise Failed("the node document answer is not a JSON object")
        return data
