"""``peerfed outbox``: messages kept on this device until delivered (spec §9.5).

``list`` works from the device alone; ``retry`` delivers the drafts in the order they were
written and fails (exit 1, ``local.undelivered``) while any is still kept.
"""

from __future__ import annotations

import argparse
from typing import Any

from peerfed.protocol import Message, PeerId

from ..display import local_time
from ..errors import Undelivered
from ..outbox import Draft
from .registry import Invocation, Needs, Verb

__all__ = ["VERBS"]


def _draft_json(draft: Draft) -> dict[str, Any]:
    body = draft.envelope.body
    assert isinstance(body, Message)  # only messages are kept as drafts
    return {
        "connection": draft.connection.hex(),
        "peer": PeerId(draft.peer).text,
        "seq": body.seq,
        "text": body.text,
        "id": draft.envelope.id.hex(),
        "queued_at": draft.queued_at,
        "attempts": draft.attempts,
        "last_error": draft.last_error,
    }


async def _list(call: Invocation) -> dict[str, Any]:
    return {"drafts": [_draft_json(d) for d in await call.peer.drafts()]}


def _render_list(args: argparse.Namespace, r: dict[str, Any]) -> str:
    if not r["drafts"]:
        return "no drafts: everything you wrote was delivered"
    return "\n".join(
        f"{d['connection'][:12]}  #{d['seq']}  {local_time(d['queued_at'])}  {d['text']}"
        + (f"\n    last try: {d['last_error']}" if d["last_error"] else "")
        for d in r["drafts"]
    )


async def _retry(call: Invocation) -> dict[str, Any]:
    flushed = await call.peer.retry_drafts()
    if flushed.kept:
        raise Undelivered(
            f"{flushed.sent} delivered, {len(flushed.kept)} still kept as drafts ({flushed.error});"
            " try again later: peerfed outbox retry"
        )
    return {"sent": flushed.sent, "kept": 0}


def _render_retry(args: argparse.Namespace, r: dict[str, Any]) -> str:
    return f"{r['sent']} draft(s) delivered; none kept"


VERBS = (
    Verb(
        "outbox",
        "messages kept on this device until delivered",
        actions=(
            Verb("list", "list the drafts", _list, _render_list, needs=Needs.PEER),
            Verb("retry", "deliver the drafts now, in order", _retry, _render_retry, needs=Needs.PEER),
        ),
    ),
)
