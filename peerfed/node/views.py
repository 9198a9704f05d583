"""The node's JSON views of protocol objects and of its parts' answers (spec §13.5, §13.2, §13.7).

The parts return typed values; this module alone turns them, and the protocol objects they carry,
into the JSON the spec names: a listing's public card, a directory entry and page, the well-known
summary, mailbox items, reports, batch results and catch-up pages. Byte strings become standard
base64 and ids lowercase hex here (spec §13.1), nowhere else on the node side.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from peerfed.protocol import Envelope, Listing, PeerId

from .prekeys import LOW_STOCK, STOCK_CAP

if TYPE_CHECKING:  # the parts import this module; their value types are only annotations here
    from .directory import KeyBundleHeld, SearchPage
    from .document import SignedDocument
    from .federation.inbound import CatchUpPage, IngestResult
    from .mailbox import Sent
    from .moderation import OwnReport
    from .sessions import Challenge, Session
    from .store import MailboxItem

__all__ = [
    "b64",
    "batch_results",
    "catch_up_page",
    "challenge",
    "directory_entry",
    "key_bundle",
    "listing_card",
    "mailbox_item",
    "mailbox_page",
    "prekey_stock",
    "reports",
    "search_answer",
    "sent",
    "session",
    "well_known",
]


def b64(data: bytes) -> str:
    """Standard base64 with padding, as JSON carries byte strings (spec §13.1)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


# --- listings and the directory ------------------------------------------------------------------


def listing_card(env: Envelope) -> dict[str, Any]:
    """The public card as JSON, for clients that show it (they verify ``listing`` themselves)."""
    listing = env.body
    assert isinstance(listing, Listing)
    return {
        "kind": listing.kind.value,
        "topics": list(listing.topics),
        "vocab": list(listing.vocab),
        "languages": list(listing.languages),
        "formats": [f.value for f in listing.formats],
        "tz": listing.tz,
        "availability": [{"days": w.days, "start": w.start, "end": w.end} for w in listing.availability],
        "timing": listing.timing.value,
        "capacity": listing.capacity,
        "area": listing.area,
        "summary": listing.summary,
        "created_at": env.created_at,
        "expires_at": env.expires_at,
    }


def directory_entry(env: Envelope) -> str:
    """The unchanging part of a listing's directory result but its bytes, as compact JSON (an object).

    The directory stores it with the listing, so a search splices it instead of rebuilding it.
    """
    entry = {"id": env.id.hex(), "author": env.author.text, "card": listing_card(env)}
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


def search_answer(page: SearchPage, own_url: str) -> str:
    """The directory answer as JSON text: ``{"listings": [...], "next": CURSOR or null}``.

    Each result is spliced from the entry stored with the listing (verified when it was stored;
    clients verify it again themselves), its bytes, origin, current key bundle and cursor: no
    decoding or card building per result, per query. An origin or bundle repeated across the page
    is encoded once.
    """
    texts: dict[Any, str] = {None: "null", own_url: json.dumps(own_url)}
    parts = []
    for seq, raw, origin, entry, bundle in page.rows:
        if origin not in texts:
            texts[origin] = json.dumps(origin)
        if bundle not in texts:
            texts[bundle] = f'"{b64(bundle)}"'  # type: ignore[arg-type]
        parts.append(
            f'{entry[:-1]},"listing":"{b64(raw)}","origin":{texts[origin] if origin else texts[own_url]},'
            f'"key_bundle":{texts[bundle]},"cursor":{seq}}}'
        )
    return '{"listings":[' + ",".join(parts) + '],"next":' + json.dumps(page.next) + "}"


def prekey_stock(stock: int) -> dict[str, Any]:
    """A member's one-time pre-keys left here, with the cap and the mark below which to upload more (§13.5)."""
    return {"stock": stock, "cap": STOCK_CAP, "low": LOW_STOCK}


def key_bundle(held: KeyBundleHeld) -> dict[str, Any]:
    return {"key_bundle": b64(held.raw), "home": held.home}


# --- the node document and signing in ------------------------------------------------------------


def well_known(signed: SignedDocument) -> dict[str, Any]:
    """``GET /.well-known/peerfed``: the signed document and an unsigned summary of some fields."""
    doc = signed.document
    summary = {
        "url": doc.url,
        "name": doc.name,
        "registration": doc.registration.value,
        "federation": doc.federation.value,
        "resources": [
            {
                "name": r.name,
                "contact": r.contact,
                "hours": r.hours,
                "languages": list(r.languages),
                "emergency": r.emergency.value,
                "note": r.note,
            }
            for r in doc.resources
        ],
        "web_client": None if doc.web_client is None else doc.web_client.hex(),
    }
    return {"document": b64(signed.raw), "summary": summary}


def challenge(issued: Challenge) -> dict[str, Any]:
    return {"challenge": issued.value.hex(), "node": issued.node, "expires_at": issued.expires_at, "work": issued.work}


def session(opened: Session) -> dict[str, Any]:
    return {"token": opened.token, "peer": opened.peer.text, "expires_at": opened.expires_at}


# --- mailboxes --------------------------------------------------------------------------------------


def sent(outcome: Sent) -> dict[str, Any]:
    return {"id": outcome.id.hex(), "status": outcome.status.value}


def mailbox_item(item: MailboxItem) -> dict[str, Any]:
    return {"seq": item.seq, "id": item.id.hex(), "sealed": b64(item.raw), "received_at": item.received_at}


def mailbox_page(items: Sequence[MailboxItem]) -> dict[str, Any]:
    return {"items": [mailbox_item(i) for i in items], "next": items[-1].seq if items else None}


# --- moderation -------------------------------------------------------------------------------------


def _report_target(r: OwnReport) -> str | None:
    """A peer as its text id, a listing as its hex id; None once the peer it named erased itself."""
    if r.target is None:
        return None
    return PeerId(r.target).text if r.target_kind == "peer" else r.target.hex()


def reports(rows: Iterable[OwnReport]) -> dict[str, Any]:
    """A peer's own reports, with the operator's outcome; never the reason or evidence again."""
    return {
        "reports": [
            {
                "id": r.id,
                "target_kind": r.target_kind,
                "target": _report_target(r),
                "status": r.status,
                "outcome": r.outcome,
                "created_at": r.created_at,
            }
            for r in rows
        ]
    }


# --- federation -------------------------------------------------------------------------------------


def batch_results(results: Iterable[IngestResult]) -> dict[str, Any]:
    """A batch's answer: one result per item, in order (spec §13.7, Batches)."""
    out: list[dict[str, Any]] = []
    for result in results:
        if result.code is None:
            out.append({"status": result.status})
        else:
            out.append({"status": result.status, "code": result.code, "message": result.message})
            if result.bits is not None:
                out[-1]["bits"] = result.bits
    return {"results": out}


def catch_up_page(page: CatchUpPage) -> dict[str, Any]:
    """A catch-up pull's answer (spec §13.7, Catch-up): listings, then the tombstones in force."""
    items = [
        {"seq": i.seq, "listing": b64(i.listing), "key_bundle": b64(i.key_bundle) if i.key_bundle else None}
        for i in page.items
    ]
    return {
        "items": items,
        "next": page.next,
        "withdrawn": [
            {"listing": w.listing.hex(), "author": PeerId(w.author).text, "until": w.until} for w in page.withdrawn
        ],
        "withdrawn_next": page.withdrawn_next,
        "erased": [{"hash": b64(e.author_hash), "until": e.until} for e in page.erased],
        "erased_next": page.erased_next,
    }
