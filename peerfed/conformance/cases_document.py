"""Conformance cases for the node document and the refusal conventions (spec §13.1, §13.2).

The document must open under its context, be signed by a key it lists as valid now, and name
exactly the URL it was fetched from; every refusal is a JSON error body with its code's status.
"""

from __future__ import annotations

import base64

from peerfed.protocol import Context, RemoteError, open_signed
from peerfed.protocol.document import open_document

from .suite import Failed, Level, case
from .target import OCTETS, Target

__all__: list[str] = []


@case("document.fetch", ["R-13.2-2"])
async def document_fetch(target: Target) -> None:
    data = await target.document()
    if not isinstance(data.get("document"), str):
        raise Failed('the answer has no "document" string')
    try:
        raw = base64.b64decode(data["document"], validate=True)
    except ValueError as exc:
        raise Failed("document is not standard base64") from exc
    try:
        open_document(raw, target.url, target.now())
    except RemoteError as exc:
        raise Failed(f"the document does not open for {target.url}: {exc.code}: {exc}") from exc


@case("document.signature", ["R-13.2-2", "R-5.5-1"])
async def document_signature(target: Target) -> None:
    raw = base64.b64decode((await target.document())["document"])
    try:
        env = open_signed(raw, context=Context.NODE_DOCUMENT, now=target.now())
    except RemoteError as exc:
        raise Failed(f"the signature does not verify: {exc.code}") from exc
    if env.body.type_name != "node-document":
        raise Failed(f"the document is a {env.body.type_name}")
    if not env.body.key_valid_at(bytes(env.author), target.now()):  # type: ignore[union-attr]
        raise Failed("the signing key is not listed as valid now")
    if env.expires_at - env.created_at > 7 * 86_400:
        raise Failed("the document lives longer than 7 days")


@case("document.url", ["R-13.2-1", "R-13.1-3"])
async def document_url(target: Target) -> None:
    raw = base64.b64decode((await target.document())["document"])
    env = open_signed(raw, context=Context.NODE_DOCUMENT, now=target.now())
    url = env.body.url  # type: ignore[union-attr]
    if url != target.url:
        raise Failed(f"the document names {url!r}, fetched from {target.url!r} (run the suite with the node's own URL)")


@case("document.raw", ["R-13.2-2"])
async def document_raw(target: Target) -> None:
    answer = await target.call("GET", "/.well-known/peerfed", headers={"Accept": "application/octet-stream"})
    answer.ok()
    if len(answer.raw) > 65_536:
        raise Failed("the raw document is over 65,536 bytes")
    try:
        open_document(answer.raw, target.url, target.now())
    except RemoteError as exc:
        raise Failed(f"the raw answer is not the signed document: {exc.code}") from exc


@case("document.protocols", ["§13.2"], Level.SHOULD)
async def document_protocols(target: Target) -> None:
    raw = base64.b64decode((await target.document())["document"])
    doc, _ = open_document(raw, target.url, target.now())
    if "peerfed/1" not in doc.protocols:
        raise Failed(f"protocols {list(doc.protocols)} do not list peerfed/1")


@case("refusal.shape", ["R-13.1-5"])
async def refusal_shape(target: Target) -> None:
    answer = await target.call("GET", "/api/v1/mailbox")
    answer.refused("auth.required")
    message = answer.json["error"].get("message")
    if not isinstance(message, str):
        raise Failed("the error body has no message string")


@case("refusal.unknown_path", ["R-13.1-5"])
async def refusal_unknown_path(target: Target) -> None:
    (await target.call("GET", "/api/v1/no-such-path")).refused("not_found")


@case("refusal.oversize_body", ["R-13.1-8"])
async def refusal_oversize(target: Target) -> None:
    answer = await target.call("POST", "/api/v1/session", data=b"\x00" * 200_000, headers=OCTETS)
    answer.refused("size.too_large")
