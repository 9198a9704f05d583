"""Reading another node's signed document (spec §13.2): about the URL it was fetched from, and
signed by a key it lists as valid now. Pure: the caller fetches the bytes and gives the time.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .envelope import Context, Envelope, open_signed
from .errors import RequestError
from .node_bodies import NodeDocument

__all__ = ["open_document", "parse_document"]


def parse_document(payload: Any, url: str, now: int) -> tuple[NodeDocument, Envelope]:
    """Verify the JSON answer of ``url``'s ``GET /.well-known/peerfed`` (see ``open_document``)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("document"), str):
        raise RequestError(f"{url} did not answer with a node document", "federation.refused")
    try:
        raw = base64.b64decode(payload["document"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f"{url} sent a document that is not base64", "federation.refused") from exc
    return open_document(raw, url, now)


def open_document(raw: bytes, url: str, now: int) -> tuple[NodeDocument, Envelope]:
    """Verify a node document fetched from ``url``: signed by a key it lists, and about ``url``.

    Raises RemoteError (the codes of opening a signed object, or federation.refused).
    """
    env = open_signed(raw, context=Context.NODE_DOCUMENT, now=now)
    doc = env.body
    assert isinstance(doc, NodeDocument)
    if doc.url != url:
        raise RequestError(f"the document at {url} describes {doc.url}", "federation.refused")
    if not doc.key_valid_at(bytes(env.author), now):
        raise RequestError(f"the document at {url} is signed by a key it does not list", "federation.refused")
    return doc, env
