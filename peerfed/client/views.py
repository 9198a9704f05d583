"""The client's JSON views of protocol objects, in one place (spec §6.2, §8.3, §9.3).

What ``--json`` prints and what a front end reads: listings as cards, terms, agreements,
messages and connections. Every view is built here from verified values and stored rows, so
one field has one name and one shape wherever it is shown. Ids are lowercase hex, peers their
``pf1...`` text, times Unix seconds.
"""

from __future__ import annotations

from typing import Any

from peerfed.protocol import Connection, Envelope, Listing, Message, PeerId, ReachOut, Response, Terms

from .rows import ConnectionRow, ListingRow

__all__ = [
    "connection_json",
    "display_order",
    "in_force_json",
    "listing_card_json",
    "message_json",
    "opening_json",
    "own_listing_json",
    "pending_json",
    "terms_json",
]


def terms_json(terms: Terms) -> dict[str, Any]:
    """Terms (spec §8.3)."""
    return {
        "helps": terms.helps,
        "formats": [f.value for f in terms.formats],
        "times": terms.times,
        "until": terms.until,
        "boundaries": list(terms.boundaries),
        "ending": terms.ending,
        "forget": terms.forget,
    }


def in_force_json(conn: Connection) -> dict[str, Any] | None:
    """The terms in force and their version, or None (spec §9.3)."""
    if conn.in_force is None:
        return None
    version, terms = conn.in_force
    return {"version": version, **terms_json(terms)}


def pending_json(version: int, proposed_by_me: bool, terms: Terms) -> dict[str, Any]:
    """Terms one side signed in the current round and the other has not yet (spec §9.3)."""
    return {"version": version, "proposed_by": "me" if proposed_by_me else "them", **terms_json(terms)}


def own_listing_json(row: ListingRow, listing: Listing, now: int) -> dict[str, Any]:
    """One of this peer's own listings, with whether it is live, expired or withdrawn."""
    return {
        "id": row.id.hex(),
        "kind": listing.kind.value,
        "topics": list(listing.topics),
        "summary": listing.summary,
        "expires_at": row.expires_at,
        "status": "withdrawn" if row.withdrawn else ("expired" if row.expires_at <= now else "live"),
    }


def listing_card_json(env: Envelope, listing: Listing, *, name: str | None, origin: str | None) -> dict[str, Any]:
    """A listing found in the directory: its public card (spec §6.2), author and origin node."""
    return {
        "id": env.id.hex(),
        "author": env.author.text,
        "name": name,
        "origin": origin,
        "kind": listing.kind.value,
        "topics": list(listing.topics),
        "languages": list(listing.languages),
        "formats": [f.value for f in listing.formats],
        "timing": listing.timing.value,
        "availability": [{"days": w.days, "start": w.start, "end": w.end} for w in listing.availability],
        "tz": listing.tz,
        "capacity": listing.capacity,
        "area": listing.area,
        "summary": listing.summary,
        "expires_at": env.expires_at,
    }


def display_order(messages: list[tuple[Envelope, Message]]) -> list[tuple[Envelope, Message]]:
    """A conversation's messages in the order both peers show them (spec §9.5, display order).

    Each author's messages in ``seq`` order; the authors' runs merged by taking, each time, the
    head with the earlier ``created_at``, a tie going to the smaller peer id (bytewise). Only
    signed values decide, so both devices holding the same messages show them alike.
    """
    runs: dict[bytes, list[tuple[Envelope, Message]]] = {}
    for env, body in messages:
        runs.setdefault(bytes(env.author), []).append((env, body))
    for run in runs.values():
        run.sort(key=lambda item: item[1].seq)
    out: list[tuple[Envelope, Message]] = []
    at = dict.fromkeys(runs, 0)
    for _ in range(len(messages)):
        author = min((a for a in runs if at[a] < len(runs[a])), key=lambda a: (runs[a][at[a]][0].created_at, a))
        out.append(runs[author][at[author]])
        at[author] += 1
    return out


def message_json(env: Envelope, body: Message, me: PeerId, name: str | None = None) -> dict[str, Any]:
    """One message of a conversation (spec §8.2), from ``me`` or from ``them``; ``name``: its author's."""
    return {
        "seq": body.seq,
        "from": "me" if env.author == me else "them",
        "name": name,
        "text": body.text,
        "at": env.created_at,
        "id": env.id.hex(),
        "reply_to": body.reply_to.hex() if body.reply_to else None,
    }


def opening_json(env: Envelope, me: PeerId, name: str | None = None) -> dict[str, Any]:
    """How a conversation began: the reach-out's hello, then the acceptance's reply or a decline."""
    body = env.body
    text: str | None
    if isinstance(body, ReachOut):
        kind, text = "reached-out", body.hello
    else:
        assert isinstance(body, Response)
        kind, text = ("accepted" if body.accept else "declined"), body.reply
    side = "me" if env.author == me else "them"
    return {"kind": kind, "from": side, "name": name, "text": text, "at": env.created_at}


def connection_json(
    row: ConnectionRow, conn: Connection, *, name: str | None, hello: str | None, reply: str | None, unread: int
) -> dict[str, Any]:
    """One support connection in a list: who, about which listing, its state (spec §9.1), unread count."""
    return {
        "id": row.id.hex(),
        "peer": PeerId(row.peer).text,
        "name": name,
        "listing": row.listing.hex(),
        "side": row.side.value,
        "state": conn.state.value,
        "in_force": conn.in_force[0] if conn.in_force else None,
        "hello": hello,
        "reply": reply,
        "unread": unread,
        "updated_at": row.updated_at,
    }
