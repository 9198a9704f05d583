"""One input and its answer: the request as sent (``Case``) and what came back (``Answer``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Case", "Answer"]


@dataclass
class Case:
    endpoint: str  # the route, as in GENERATORS: "POST /api/v1/listings"
    method: str
    target: str  # path and query, ASCII, exactly as sent
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    body: bytes = b""
    note: str = ""  # how the input was made
    must_fail: bool = False  # a success would be a bug (forged, garbled after signing, no session, ...)
    expect: frozenset[str] | None = None  # the only codes the spec allows for it, where it fixes them
    frames: list[tuple[str, Any, dict[str, Any]]] | None = None  # WebSocket: (kind, payload, meta)
    member: str = ""  # the fuzz peer whose session it uses
    federation_header: str = ""  # a validly signed Peerfed-Node header (for replays)
    items: int | None = None  # batch items, when the body is a well-formed batch
    withdraws: str = ""  # the listing id a withdrawal names
    prekeys: tuple[bytes, ...] = ()  # the keys of an upload that must be taken (spec §13.5)
    stock: int | None = None  # the uploader's stock after such an upload
    prekey_for: bytes = b""  # the peer a well-formed claim names

    def describe(self, limit: int = 600) -> str:
        lines = [f"{self.endpoint} [{self.note}]", f"  {self.method} {self.target[:limit]}"]
        lines += [f"  {name}: {value[:limit]!r}" for name, value in self.headers]
        if self.body or self.method in ("POST", "PUT"):
            shown = self.body[:limit]
            lines.append(f"  body ({len(self.body)} bytes): {shown!r}{' ...' if len(self.body) > limit else ''}")
        for kind, payload, _ in self.frames or ():
            text = payload if isinstance(payload, (str, bytes)) else repr(payload)
            lines.append(f"  frame {kind} ({len(text)}): {text[:limit]!r}")
        return "\n".join(lines)


@dataclass
class Answer:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    payload: Any = None
    json_ok: bool = False
    error: str = ""  # transport trouble
    replies: list[Any] = field(default_factory=list)  # WebSocket replies
    deleted: int = 0  # mailbox items a live conversation acknowledged

    @property
    def code(self) -> str | None:
        if self.status is not None and self.status >= 400 and isinstance(self.payload, dict):
            err = self.payload.get("error")
            if isinstance(err, dict) and isinstance(err.get("code"), str):
                return str(err["code"])
        return None

    def describe(self, limit: int = 600) -> str:
        if self.status is None and not self.replies:
            return f"no answer: {self.error}" if self.error else "no reply (WebSocket)"
        if self.status is None:
            return "replies: " + "; ".join(repr(r)[:200] for r in self.replies)[:limit]
        return f"HTTP {self.status} {self.body[:limit]!r}"
