"""What must hold for every answer (spec §10, §13.1): the oracle of the hostile-input tests.

An error is ``{"error": {"code": C, "message": M}}`` with C a known code, its HTTP status, never
``node.internal``, and one the spec allows for that input where it fixes one; a success has the
documented shape (spec §13.4, §13.5, §13.7); a refused input, or a read, stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peerfed.protocol import ERROR_CODES, PeerId

from .cases import Answer, Case

if TYPE_CHECKING:
    from .world import World


__all__ = [
    "Problem", "CATEGORIES", "HostileInputFailure", "failure_type", "Verdict", "TRACKED", "BEFORE_NONCE",
    "judge_live_reply", "live_expect", "is_int", "is_hex", "is_b64", "is_str", "SHAPES", "READ_ONLY",
    "COUNTS_TABLES", "changes", "judge", "page_answer", "judge_prekeys",
    "claimed_peer"
]  # fmt: skip


@dataclass(frozen=True)
class Problem:
    category: str
    detail: str


CATEGORIES = (
    "node.internal",
    "status/code mismatch",
    "unknown error code",
    "non-JSON answer",
    "bad error body",
    "bad success body",
    "stored on rejection",
    "stored by a read",
    "unexpected success",
    "unexpected code",
    "websocket",
    "node log error",
    "no answer",
    "honest request failed",
    "pre-key reused",
)


class HostileInputFailure(AssertionError):
    """Base of the failures raised per kind of problem, so Hypothesis tells distinct bugs apart."""


_FAILURE_TYPES: dict[str, type[HostileInputFailure]] = {}


def failure_type(key: str) -> type[HostileInputFailure]:
    name = "".join(c if c.isalnum() else "_" for c in key)[:120]
    if name not in _FAILURE_TYPES:
        _FAILURE_TYPES[name] = type(name, (HostileInputFailure,), {})
    return _FAILURE_TYPES[name]


@dataclass
class Verdict:
    case: Case
    answer: Answer
    problems: list[Problem]
    log: list[str]

    def signature(self) -> str:
        """What kind of bug: category, endpoint, and the exception (and who logged it) or the code."""
        first = self.problems[0]
        exc = next((line.split(":")[0] for t in self.log for line in t.splitlines()[::-1] if line[:1].isalpha()), "")
        logger = self.log[0].split(":")[0] if self.log else ""
        return f"{first.category}|{self.case.endpoint}|{exc or (self.answer.code or '')}" + (
            f"|{logger}" if logger else ""
        )

    def report(self) -> str:
        parts = ["hostile input:", self.case.describe(), "answer: " + self.answer.describe(), "problems:"]
        parts += [f"  - {p.category}: {p.detail}" for p in self.problems]
        for text in self.log[:2]:
            parts.append("node log:\n" + text[-3000:])
        return "\n".join(parts)

    def check(self) -> None:
        if self.problems:
            raise failure_type(self.signature())(self.report())


TRACKED = (
    "members", "sessions", "invites", "key_bundles", "listings", "listing_facets", "withdrawals", "erasures",
    "mailbox", "seen_sealed", "outbox", "reports", "nonces", "nodes", "node_keys", "prekeys",
)  # fmt: skip


# Refusals that can only happen before a node request's nonce is spent (spec §13.3 steps 1-6, and
# the body bound before them). schema.* and encoding.* are left out: a batch body or a peer id in
# the path can earn them after the request checked out.
BEFORE_NONCE = frozenset(
    {"auth.required", "auth.invalid", "auth.replayed", "signature.invalid", "time.expired", "time.future",
     "time.lifetime", "version.unsupported", "schema.unknown_type", "size.too_large", "request.timeout"}
)  # fmt: skip


def judge_live_reply(reply: Any, meta: dict[str, Any], *, authed: bool, unsure: bool) -> list[Problem]:
    kind = meta["kind"]
    what = f"live {kind} frame"
    if not isinstance(reply, dict):
        return [Problem("bad success body", f"{what}: {reply!r}"[:300])]
    if reply.get("type") == "error":
        code = reply.get("code")
        if not isinstance(code, str) or not isinstance(reply.get("message"), str):
            return [Problem("bad error body", f"{what}: {reply!r}"[:300])]
        if code == "node.internal":
            return [Problem("node.internal", f"{what}: {reply!r}"[:300])]
        if code not in ERROR_CODES:
            return [Problem("unknown error code", f"{what}: {code}")]
        if kind == "auth-good" and meta.get("after_ok") and not authed:
            return [Problem("websocket", f"{what} with a good token and after got {code}, not ready")]
        allowed = live_expect(kind, authed, unsure)
        if allowed is not None and code not in allowed:
            return [Problem("unexpected code", f"{what}: {code}, expected one of {sorted(allowed)}")]
        return []
    if reply.get("type") == "ready":
        if kind != "auth-good" or (authed and not unsure):
            return [Problem("unexpected success", f"{what} got ready")]
        return []
    if reply.get("type") == "acked":
        if kind != "ack" or not (authed or unsure):
            return [Problem("unexpected success", f"{what} got acked")]
        if not (is_int(reply.get("deleted")) and reply["deleted"] >= 0 and set(reply) == {"type", "deleted"}):
            return [Problem("bad success body", f"{what}: {reply!r}"[:300])]
        return []
    return [Problem("bad success body", f"{what}: {reply!r}"[:300])]


def live_expect(kind: str, authed: bool, unsure: bool) -> frozenset[str] | None:
    if unsure or kind == "empty":
        return None
    if kind in ("binary", "junk"):
        return frozenset({"request.invalid"})
    if authed:
        return frozenset({"request.invalid"})
    if kind in ("object", "ack"):
        return frozenset({"auth.required"})
    if kind == "auth-bad":
        return frozenset({"auth.required", "request.invalid"})
    return None


# --- what a success looks like (spec §13.4, §13.5, §13.7) ---------------------------------------------


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_hex(v: Any, size: int = 64) -> bool:
    return isinstance(v, str) and len(v) == size and all(c in "0123456789abcdef" for c in v)


def is_b64(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def is_str(v: Any) -> bool:
    return isinstance(v, str)


def _keys(p: Any, *names: str) -> bool:
    return isinstance(p, dict) and set(p) == set(names)


def _listing_result(x: Any) -> bool:
    return (
        _keys(x, "id", "author", "origin", "listing", "key_bundle", "card", "cursor")
        and is_hex(x["id"])
        and is_b64(x["listing"])
        and (x["key_bundle"] is None or is_b64(x["key_bundle"]))
        and isinstance(x["card"], dict)
        and is_int(x["cursor"])
    )


def _batch_result(r: Any) -> bool:
    if not isinstance(r, dict):
        return False
    if r.get("status") in ("ok", "duplicate"):
        return set(r) == {"status"}
    return (
        _keys(r, "status", "code", "message")
        and r["status"] == "error"
        and r["code"] in ERROR_CODES
        and r["code"] != "node.internal"
        and is_str(r["message"])
    )


SHAPES: dict[str, tuple[int, Callable[[Any], bool]]] = {
    "POST /api/v1/challenge": (
        200,
        lambda p: (
            _keys(p, "challenge", "node", "expires_at", "work")
            and is_hex(p["challenge"])
            and is_int(p["expires_at"])
            and is_int(p["work"])
        ),
    ),
    "POST /api/v1/session": (
        200,
        lambda p: _keys(p, "token", "peer", "expires_at") and is_str(p["token"]) and str(p["peer"]).startswith("pf1"),
    ),
    "PUT /api/v1/keys": (200, lambda p: _keys(p, "status", "expires_at") and p["status"] == "accepted"),
    "GET /api/v1/keys/{peer}": (200, lambda p: _keys(p, "key_bundle", "home") and is_b64(p["key_bundle"])),
    "POST /api/v1/listings": (
        201,
        lambda p: (
            _keys(p, "status", "id", "type")
            and p["status"] == "accepted"
            and is_hex(p["id"])
            and p["type"] in ("listing", "withdrawal")
        ),
    ),
    "GET /api/v1/listings/{id}": (200, lambda p: _keys(p, "listing", "origin") and is_b64(p["listing"])),
    "GET /api/v1/directory": (
        200,
        lambda p: (
            _keys(p, "listings", "next")
            and isinstance(p["listings"], list)
            and all(_listing_result(x) for x in p["listings"])
            and (p["next"] is None or is_int(p["next"]))
        ),
    ),
    "POST /api/v1/send": (
        202,
        lambda p: _keys(p, "id", "status") and is_hex(p["id"]) and p["status"] in ("delivered", "queued", "duplicate"),
    ),
    "GET /api/v1/mailbox": (
        200,
        lambda p: (
            _keys(p, "items", "next")
            and isinstance(p["items"], list)
            and all(_keys(i, "seq", "id", "sealed", "received_at") and is_b64(i["sealed"]) for i in p["items"])
            and (p["next"] is None or is_int(p["next"]))
        ),
    ),
    "POST /api/v1/mailbox/ack": (200, lambda p: _keys(p, "deleted") and is_int(p["deleted"]) and p["deleted"] >= 0),
    "POST /api/v1/move": (200, lambda p: _keys(p, "status", "forwarded") and p["status"] == "moved"),
    "POST /api/v1/erase": (200, lambda p: _keys(p, "status", "listings") and p["status"] == "erased"),
    "POST /api/v1/reports": (201, lambda p: _keys(p, "id", "status") and is_int(p["id"]) and p["status"] == "open"),
    "GET /api/v1/reports": (200, lambda p: _keys(p, "reports") and isinstance(p["reports"], list)),
    "GET /.well-known/peerfed": (200, lambda p: _keys(p, "document", "summary") and is_b64(p["document"])),
    "POST /federation/v1/follow": (200, lambda p: _keys(p, "status") and p["status"] in ("active", "pending")),
    "POST /federation/v1/batch": (
        200,
        lambda p: (
            _keys(p, "results")
            and isinstance(p["results"], list)
            and 1 <= len(p["results"]) <= 100
            and all(_batch_result(r) for r in p["results"])
        ),
    ),
    "GET /federation/v1/listings": (
        200,
        lambda p: (
            _keys(p, "items", "next", "withdrawn", "withdrawn_next", "erased", "erased_next")
            and isinstance(p["items"], list)
            and all(_keys(i, "seq", "listing", "key_bundle") and is_b64(i["listing"]) for i in p["items"])
            and is_int(p["next"])
            and isinstance(p["withdrawn"], list)
            and all(_keys(w, "listing", "author", "until") and is_hex(w["listing"]) for w in p["withdrawn"])
            and isinstance(p["erased"], list)
            and all(_keys(e, "hash", "until") and is_b64(e["hash"]) for e in p["erased"])
            and is_int(p["withdrawn_next"])
            and is_int(p["erased_next"])
        ),
    ),
    "GET /federation/v1/keys/{peer}": (200, lambda p: _keys(p, "key_bundle") and is_b64(p["key_bundle"])),
    "POST /api/v1/prekeys": (
        200,
        lambda p: _keys(p, "status", "stock") and p["status"] == "accepted" and is_int(p["stock"]) and p["stock"] > 0,
    ),
    "GET /api/v1/prekeys": (
        200,
        lambda p: _keys(p, "stock", "cap", "low") and all(is_int(p[k]) and p[k] >= 0 for k in p),
    ),
    "POST /api/v1/prekeys/claim": (200, lambda p: _keys(p, "prekey") and (p["prekey"] is None or is_b64(p["prekey"]))),
    "POST /federation/v1/prekeys/claim": (
        200,
        lambda p: _keys(p, "prekey") and (p["prekey"] is None or is_b64(p["prekey"])),
    ),
}
READ_ONLY = {
    "GET /api/v1/listings/{id}",
    "GET /api/v1/directory",
    "GET /api/v1/mailbox",
    "GET /api/v1/reports",
    "GET /.well-known/peerfed",
    "GET /federation/v1/listings",
    "GET /federation/v1/keys/{peer}",
    "GET /api/v1/prekeys",
}
COUNTS_TABLES = ("members", "listings", "mailbox", "key_bundles", "outbox", "reports", "invites", "nodes")
assert set(COUNTS_TABLES) <= set(TRACKED)


def changes(before: dict[str, int], after: dict[str, int], *, ignore: Sequence[str] = ()) -> dict[str, str]:
    return {k: f"{before[k]}->{after[k]}" for k in before if before[k] != after[k] and k not in ignore}


def page_answer(case: Case, answer: Answer) -> bool:
    """What a browser loads (spec §13.10) is the one success that is not JSON: the web client at
    ``/`` and its files under ``/assets/`` with the headers that keep a page safe, and an empty
    CORS preflight answer on the client API; besides them, the operator's ``/metrics`` text."""
    path = case.target.split("?", 1)[0]
    headers = {k.lower(): v for k, v in answer.headers.items()}
    if case.method == "OPTIONS" and answer.status == 204:  # a browser's CORS preflight, client API only
        client_api = path.startswith("/api/v1/") or path == "/.well-known/peerfed"
        return client_api and "access-control-allow-methods" in headers and not answer.body
    if case.method not in ("GET", "HEAD") or answer.status != 200:
        return False
    if path == "/metrics":  # the operator's Prometheus page, answered here because the fuzzer is on loopback
        return headers.get("content-type", "").startswith("text/plain")
    if path != "/" and not path.startswith("/assets/"):
        return False
    return (
        headers.get("x-content-type-options") == "nosniff"
        and "default-src 'self'" in headers.get("content-security-policy", "")
        and headers.get("referrer-policy") == "no-referrer"
    )


def judge(case: Case, answer: Answer, before: dict[str, int], after: dict[str, int], w: World) -> list[Problem]:
    """The properties every answer must have (see the module docstring)."""
    problems: list[Problem] = []
    federation = case.target.startswith("/federation/")
    if case.frames is not None:
        if not answer.deleted and (moved := changes(before, after)):
            problems.append(Problem("stored on rejection", f"a live conversation without acks changed {moved}"))
        return problems
    if answer.status is None:
        return [Problem("no answer", answer.error)]
    if not answer.json_ok:
        if page_answer(case, answer):
            moved = changes(before, after)
            return [Problem("stored by a read", f"a page read changed {moved}")] if moved else []
        return [Problem("non-JSON answer", f"HTTP {answer.status} {answer.headers.get('content-type')}")]
    # Spending a node request's nonce is the last step of checking it: a request refused before
    # that spends none; one refused after (federation.refused, a bad batch) rightly spends it, and
    # its origin's node document, fetched to check the key, may rightly be kept.
    ignore = ["nonces", "nodes", "node_keys"] if federation and answer.code not in BEFORE_NONCE else []
    if answer.status >= 400:
        code = answer.code
        error = answer.payload.get("error") if isinstance(answer.payload, dict) else None
        if (
            code is None
            or set(answer.payload) != {"error"}
            or not isinstance(error, dict)
            or set(error)
            != {
                "code",
                "message",
            }
            or not is_str(error.get("message"))
        ):
            problems.append(Problem("bad error body", f"HTTP {answer.status} {answer.body[:200]!r}"))
        elif code == "node.internal":
            problems.append(Problem("node.internal", f"HTTP {answer.status} {error.get('message')}"))
        elif code not in ERROR_CODES:
            problems.append(Problem("unknown error code", f"HTTP {answer.status} {code}"))
        elif ERROR_CODES[code] != answer.status:
            problems.append(Problem("status/code mismatch", f"HTTP {answer.status} for {code} ({ERROR_CODES[code]})"))
        elif (
            case.expect is not None
            and code not in case.expect
            and not (
                code == "not_found" and case.endpoint.endswith("}")  # "{", "}" or "/" in a segment: no route
            )
        ):
            problems.append(Problem("unexpected code", f"{code}, expected one of {sorted(case.expect)}"))
        if code == "prekeys.full":
            ignore.append("nonces")  # the upload's id is taken before its keys meet the cap (spec §13.5)
        if stored := changes(before, after, ignore=ignore):
            problems.append(Problem("stored on rejection", f"{code} but {stored}"))
        return problems
    if case.must_fail:
        problems.append(Problem("unexpected success", f"HTTP {answer.status}: this input must be refused"))
    status, valid = SHAPES.get(case.endpoint, (answer.status, lambda p: isinstance(p, dict)))
    if answer.status != status or not valid(answer.payload):
        problems.append(Problem("bad success body", f"HTTP {answer.status} {answer.body[:300]!r}"))
    if case.endpoint in READ_ONLY and (stored := changes(before, after, ignore=ignore)):
        problems.append(Problem("stored by a read", f"{stored}"))
    payload = answer.payload if isinstance(answer.payload, dict) else {}
    problems += judge_prekeys(case, payload, before, after, w, ignore)
    duplicate = case.endpoint == "POST /api/v1/send" and payload.get("status") == "duplicate"
    if duplicate and (stored := changes(before, after)):
        problems.append(Problem("stored on rejection", f"a duplicate sealed message changed {stored}"))
    if case.endpoint == "POST /federation/v1/batch" and isinstance(payload.get("results"), list):
        statuses = [r.get("status") for r in payload["results"] if isinstance(r, dict)]
        if case.items is not None and len(payload["results"]) != case.items:
            problems.append(Problem("bad success body", f"{len(payload['results'])} results for {case.items} items"))
        if all(s == "error" for s in statuses) and (stored := changes(before, after, ignore=ignore)):
            problems.append(Problem("stored on rejection", f"every item refused but {stored}"))
        elif "ok" not in statuses and (
            stored := changes(before, after, ignore=[t for t in TRACKED if t not in COUNTS_TABLES])
        ):
            problems.append(Problem("stored on rejection", f"no item ok but {stored}"))
    return problems


def judge_prekeys(
    case: Case, payload: dict[str, Any], before: dict[str, int], after: dict[str, int], w: World, ignore: list[str]
) -> list[Problem]:
    """A taken upload gives the stock it was built for; a claim hands out one key it was given for
    that peer, never one handed out before, takes just that key, and stores nothing (spec §13.5)."""
    if case.endpoint == "POST /api/v1/prekeys":
        if case.stock is not None and payload.get("stock") != case.stock:
            return [Problem("bad success body", f"stock {payload.get('stock')}, expected {case.stock}")]
        return []
    if not case.endpoint.endswith("/prekeys/claim"):
        return []
    value = payload.get("prekey")
    key = base64.b64decode(value) if isinstance(value, str) else None
    target = claimed_peer(case.body)
    remote = target == bytes(w.remote.id)  # B asks A for its member: B's own stock stays
    taken = before["prekeys"] - after["prekeys"]
    problems = []
    if key is not None and len(key) != 32:
        problems.append(Problem("bad success body", f"a {len(key)}-byte pre-key"))
    elif key is not None and key in w.handed:
        problems.append(Problem("pre-key reused", f"{key.hex()} was handed out before"))
    elif key is not None and key not in w.prekeys_of.get(target, ()):
        problems.append(Problem("pre-key reused", f"{key.hex()} was never given for this peer"))
    if taken != (1 if key is not None and not remote else 0):
        problems.append(Problem("stored by a read", f"a claim answering {value!r} took {taken} pre-keys"))
    if stored := changes(before, after, ignore=[*ignore, "prekeys"]):
        problems.append(Problem("stored by a read", f"a claim changed {stored}"))
    return problems


def claimed_peer(body: bytes) -> bytes:
    """The peer a claim's body names, read as the node reads it (any JSON the node takes); b"" if none."""
    try:
        value = json.loads(body)
        return bytes(PeerId.from_text(value["peer"]))
    except Exception:
        return b""
