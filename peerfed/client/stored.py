"""What the device keeps of a connection, decoded: its signed messages and its state (spec §5.1, §9).

Every signed message in the device's database was verified (spec §5.5) before it was stored,
and every stored connection state is what the state machine (spec §9) returned for those
messages. Reading them back therefore decodes without verifying again: the database is the
device's own, kept beside its secret keys. A row that does not decode means the database was
damaged, and raises ClientError (``local.damaged``).

A connection state is stored as one canonical msgpack array (spec §2), version 1:

    [1, id, reacher, author, listing, reach_out_expires, state, round,
     [[side, terms bytes], ...], [version, terms bytes] or nil, ended_by or nil,
     erase_requested, [seen id, ...] sorted, [[side, seq], ...] sorted]
"""

from __future__ import annotations

from collections.abc import Sequence

from peerfed.protocol import (
    Connection,
    Context,
    Envelope,
    InvalidValue,
    PeerfedError,
    PeerId,
    Response,
    Side,
    State,
    Terms,
    pack,
    unpack,
)
from peerfed.protocol.encoding import Value
from peerfed.protocol.envelope import decode_verified

from .errors import ClientError
from .rows import EventRow

__all__ = ["accept_reply", "decode_connection", "encode_connection", "stored_envelope"]

_STATE_FORMAT = 1


def stored_envelope(raw: bytes, inner_id: bytes) -> Envelope:
    """The signed message ``raw`` that this device verified before storing it under ``inner_id``.

    Raises ClientError (``local.damaged``) if the stored bytes do not decode.
    """
    try:
        env = decode_verified(raw, context=Context.SEALED)
    except PeerfedError as exc:
        raise ClientError(f"a stored message does not decode: {exc}", "local.damaged") from exc
    if env.id != inner_id:
        raise ClientError("a stored message is not the one its row names", "local.damaged")
    return env


def encode_connection(conn: Connection) -> bytes:
    """One connection state as canonical bytes; ``decode_connection`` gives back an equal value."""
    in_force: Value = None
    seen: list[Value] = [*sorted(conn.seen)]
    seqs: list[Value] = [[side, seq] for side, seq in sorted((side.value, seq) for side, seq in conn.seqs)]
    signed: list[Value] = [[side.value, terms] for side, terms in conn.round_terms]
    if conn.in_force is not None:
        in_force = [conn.in_force[0], pack(conn.in_force[1].to_wire())]
    return pack(
        [
            _STATE_FORMAT,
            conn.id,
            bytes(conn.reacher),
            bytes(conn.author),
            conn.listing,
            conn.reach_out_expires,
            conn.state.value,
            conn.round,
            signed,
            in_force,
            conn.ended_by.value if conn.ended_by is not None else None,
            conn.erase_requested,
            seen,
            seqs,
        ]
    )


def decode_connection(data: bytes) -> Connection:
    """The connection state ``encode_connection`` stored. Raises ClientError (``local.damaged``)."""
    try:
        fmt, cid, reacher, author, listing, expires, state, rnd, signed, force, ended, erase, seen, seqs = _items(
            unpack(data), 14
        )
        if fmt != _STATE_FORMAT:
            raise InvalidValue(f"stored connection state format {fmt!r} is unknown")
        in_force = None
        if force is not None:
            version, terms = _items(force, 2)
            in_force = (_int(version), Terms.from_wire(unpack(_bytes(terms))))
        round_terms = []
        for pair in _items(signed):
            side, terms = _items(pair, 2)
            round_terms.append((Side(_str(side)), _bytes(terms)))
        used = []
        for pair in _items(seqs):
            side, seq = _items(pair, 2)
            used.append((Side(_str(side)), _int(seq)))
        return Connection(
            id=_bytes(cid),
            reacher=PeerId(_bytes(reacher)),
            author=PeerId(_bytes(author)),
            listing=_bytes(listing),
            reach_out_expires=_int(expires),
            state=State(_str(state)),
            round=_int(rnd),
            round_terms=tuple(round_terms),
            in_force=in_force,
            ended_by=None if ended is None else Side(_str(ended)),
            erase_requested=erase is True,
            seen=frozenset(_bytes(s) for s in _items(seen)),
            seqs=frozenset(used),
        )
    except (PeerfedError, ValueError) as exc:
        raise ClientError(f"a stored connection state does not decode: {exc}", "local.damaged") from exc


def _items(value: Value, count: int | None = None) -> list[Value]:
    if not isinstance(value, list) or (count is not None and len(value) != count):
        raise InvalidValue("a stored array has the wrong shape")
    return value


def _bytes(value: Value) -> bytes:
    if not isinstance(value, bytes):
        raise InvalidValue("a stored value is not bytes")
    return value


def _int(value: Value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue("a stored value is not an integer")
    return value


def _str(value: Value) -> str:
    if not isinstance(value, str):
        raise InvalidValue("a stored value is not text")
    return value


def accept_reply(events: Sequence[EventRow]) -> str | None:
    """The text the listing's author gave with their acceptance, if any (spec §8.2, response)."""
    for event in events:
        if event.type == "response":
            body = stored_envelope(event.raw, event.inner_id).body
            if isinstance(body, Response) and body.accept:
                return body.reply
    return None
