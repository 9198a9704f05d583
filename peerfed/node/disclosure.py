"""Reading a report's disclosed messages for the moderator, and which of their checks hold (spec §13.5, §12).

A reporter may disclose the other peer's signed inner messages (§8). Each one is checked here
with the protocol's own verification (``verify_kept``: every check of §5.5 but the clock's, since
a message still proves who wrote it after it expired), then against the report itself:

    signature         the bytes verify under ``peerfed/v1/sealed-inner`` for the author they name
    from_target       the author is the reported peer (or the reported listing's author), when known
    to_reporter       the message was addressed to the reporter (its recipient binding, §8.1)
    one_conversation  it belongs to the same connection as the first disclosed message that verifies

A message whose signature fails is still decoded, when it can be, so the moderator sees what it
claims; it is marked not verified and none of the other checks is said to hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from peerfed.protocol import (
    Agreement,
    Context,
    End,
    Envelope,
    Message,
    ReachOut,
    RemoteError,
    Response,
    unpack,
    verify_kept,
)
from peerfed.protocol.envelope import decode_verified
from peerfed.protocol.messages import Body

__all__ = ["DisclosedMessage", "read_disclosure"]


@dataclass(frozen=True)
class DisclosedMessage:
    """One disclosed message as the moderator sees it; ``error`` is the failing code when not verified."""

    verified: bool
    error: str | None
    author: str | None
    signed_at: int | None
    type: str | None
    text: str | None
    connection: str | None
    from_target: bool | None  # None: the target's key is not known here (a listing no longer held)
    to_reporter: bool | None
    one_conversation: bool | None


def _text(body: Body) -> str:
    """What the message says, in words: the part of each type a person wrote."""
    if isinstance(body, Message):
        return body.text
    if isinstance(body, ReachOut):
        return body.hello
    if isinstance(body, Response):
        if not body.accept:
            return "(declined)"
        return "(accepted)" + (f" {body.reply}" if body.reply else "")
    if isinstance(body, Agreement):
        return " / ".join([body.terms.helps, *body.terms.boundaries])
    assert isinstance(body, End)
    return "(ended, erasing)" if body.erase else "(ended)"


def _items(evidence: bytes | None) -> list[bytes]:
    """The stored list of disclosed objects; anything else in it is shown as one unreadable item."""
    if not evidence:
        return []
    try:
        value = unpack(evidence)
    except RemoteError:
        return [evidence]
    if not isinstance(value, list):
        return [evidence]
    return [v if isinstance(v, bytes) else b"" for v in value]


def read_disclosure(evidence: bytes | None, *, reporter: bytes, target: bytes | None) -> list[DisclosedMessage]:
    """Each disclosed message of a report, decoded and checked; raises nothing for bad bytes.

    ``evidence`` is the report's stored list, ``reporter`` its author's key and ``target`` the key
    of the peer the report is about (the listing's author for a listing), None when unknown.
    """
    shown: list[DisclosedMessage] = []
    conversation: bytes | None = None
    for raw in _items(evidence):
        env: Envelope | None
        try:
            env, error = verify_kept(raw, context=Context.SEALED), None
        except RemoteError as exc:
            error = exc.code
            try:
                env = decode_verified(raw, context=Context.SEALED)  # only to show what it claims
            except RemoteError:
                env = None
        if env is None:
            shown.append(DisclosedMessage(False, error, None, None, None, None, None, None, None, None))
            continue
        body = env.body
        assert isinstance(body, Message | ReachOut | Response | Agreement | End)
        verified = error is None
        if verified and conversation is None:
            conversation = body.connection
        shown.append(
            DisclosedMessage(
                verified=verified,
                error=error,
                author=env.author.text,
                signed_at=env.created_at,
                type=env.type,
                text=_text(body),
                connection=body.connection.hex(),
                from_target=(None if target is None else bytes(env.author) == target) if verified else False,
                to_reporter=bytes(body.recipient) == reporter if verified else False,
                one_conversation=body.connection == conversation if verified else False,
            )
        )
    return shown
