"""Scheme-2 sessions on this device: the scheme each message takes, and each connection's ratchet (spec §14.7).

Each session is kept in the device state as meta value ``ratchet <connection hex>``, sealed under
a key only the unlocked identity seed gives (as the pre-key secrets and the session token are). A
backup file carries them (spec §9.6), so a moved device opens what was sent before it took over.
A scheme-2 message that did not reach the node is kept as ``sealed <inner id hex>`` until it
does: a retry hands over the same bytes, so a lost delivery never spends a second message key nor
leaves the other side a gap (spec §14.6).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping

from peerfed.protocol import (
    EncryptionKey,
    Envelope,
    KeyBundle,
    PeerId,
    ReachOut,
    RemoteError,
    Response,
    Side,
    pack,
    seal,
    unpack,
)
from peerfed.protocol.errors import InvalidValue, PeerfedError
from peerfed.protocol.sealing2 import Session, initiate_session, seal2

from . import keyring as kr
from .device import Device
from .transport import NodeUnreachable

__all__ = [
    "SEALED",
    "SESSION",
    "STALE",
    "count_stale",
    "drop",
    "forget_sealed",
    "load",
    "load_all",
    "mark_stale",
    "save",
    "seal_for",
]

SESSION = "ratchet "  # meta key prefix: one sealed session per connection
SEALED = "sealed "  # meta key prefix: a scheme-2 message sealed but not yet taken by the node
STALE = "stale "  # meta key prefix: a session that may be behind another device's (spec §14.6)


async def load(device: Device, connection: bytes) -> Session | None:
    """The session held for ``connection``; None if there is none or it cannot be opened."""
    return _session(device, await device.state.get(SESSION + connection.hex()))


async def load_all(device: Device) -> Mapping[bytes, Session]:
    """Every session held, by connection id (opening a message needs its frame first, spec §14.5).

    Each is unsealed only when looked up, so opening a message unseals the one session of its
    connection however many the device holds; one that does not open counts as not held.
    """
    rows = await device.state.select(
        "SELECT key, value FROM meta WHERE key >= ? AND key < ?", (SESSION, SESSION[:-1] + "!")
    )
    return _Held(device, {bytes.fromhex(str(key)[len(SESSION) :]): value for key, value in rows})


class _Held(Mapping[bytes, Session]):
    """Sealed sessions by connection id, unsealed on first look-up."""

    def __init__(self, device: Device, sealed: dict[bytes, object]) -> None:
        self._device = device
        self._sealed = sealed
        self._open: dict[bytes, Session | None] = {}

    def __getitem__(self, connection: bytes) -> Session:
        if connection not in self._open:
            self._open[connection] = _session(self._device, self._sealed[connection])
        session = self._open[connection]
        if session is None:
            raise KeyError(connection)
        return session

    def __contains__(self, connection: object) -> bool:
        return isinstance(connection, bytes) and connection in self._sealed and self.get(connection) is not None

    def __iter__(self) -> Iterator[bytes]:
        return (c for c in list(self._sealed) if c in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _session(device: Device, stored: object) -> Session | None:
    data = kr.open_secret(device.keys, stored)
    if data is None:
        return None
    try:
        return Session.from_wire(unpack(data))
    except PeerfedError:
        return None


async def save(device: Device, session: Session) -> None:
    """Keep ``session`` as its connection's, replacing the one held."""
    sealed = kr.seal_secret(device.keys, pack(session.to_wire()))
    await device.state.set(SESSION + session.connection.hex(), sealed)


async def drop(device: Device, connection: bytes) -> None:
    """Delete the connection's session: at its end or erasure (spec §9.4, R-9.4-3), when the other
    side went back to scheme 1 (spec §14.5, R-14.5-2), or when this side does (R-9.5-6)."""
    await device.state.write(
        "DELETE FROM meta WHERE key IN (?, ?)", (SESSION + connection.hex(), STALE + connection.hex())
    )


async def mark_stale(device: Device) -> None:
    """The device took the identity back without a backup, so each of its states may be behind
    another device's (spec §14.6, R-9.5-6): each still opens what it can, but the next message of
    its connection goes with scheme 1 (``seal_for``). Scheme-2 drafts are sealed again then too."""
    await device.state.write(
        "INSERT OR REPLACE INTO meta SELECT ? || substr(key, ?), 1 FROM meta WHERE key LIKE ?",
        (STALE, len(SESSION) + 1, SESSION + "%"),
    )
    await device.state.write("DELETE FROM meta WHERE key LIKE ?", (SEALED + "%",))


async def count_stale(device: Device) -> int:
    """How many connections' next message goes with scheme 1 because of a take-over (R-9.5-6)."""
    return await device.state.count_meta(STALE)


async def forget_sealed(device: Device, inner: Envelope) -> None:
    """The node took ``inner``: its kept sealed bytes go."""
    await device.state.write("DELETE FROM meta WHERE key=?", (SEALED + inner.id.hex(),))


async def seal_for(device: Device, bundle: Envelope, inner: Envelope, side: Side | None) -> bytes:
    """The sealed bytes that carry ``inner`` to the author of ``bundle`` (its verified newest bundle).

    The scheme is the one spec §14.7 names: 2 on a connection with a session, or when this message
    may start one (a reach-out to a bundle with a signed pre-key, or the author's response to a
    reacher whose bundle has one; ``side`` is this peer's side of the connection, None before a
    reach-out); 1 otherwise. A new or moved session is stored before the bytes are returned
    (R-14.4-1), and so are the sealed bytes, until ``forget_sealed``. Raises RemoteError or
    NodeUnreachable only from claiming a one-time pre-key, which is tried once and never needed.
    """
    kept = await device.state.get(SEALED + inner.id.hex())
    if isinstance(kept, bytes):
        return kept
    key_bundle = bundle.body
    assert isinstance(key_bundle, KeyBundle)
    body = inner.body
    connection: bytes = body.connection  # type: ignore[union-attr]
    session = await load(device, connection)
    if session is not None and await device.state.get(STALE + connection.hex()) is not None:
        await drop(device, connection)  # taken back without a backup: tell the other side (R-9.5-6)
        session = None
    elif session is None and _starts(body, side, key_bundle):
        session = await _initiate(device, bundle, connection)
    if session is None:
        return seal(inner, key_bundle.encryption_key).raw
    sealed, after = seal2(inner, session, key_bundle.encryption_key)
    await save(device, after)
    await device.state.set(SEALED + inner.id.hex(), sealed.raw)
    return sealed.raw


async def _initiate(device: Device, bundle: Envelope, connection: bytes) -> Session:
    """The initiator's new session, with a one-time pre-key if a claim gives a usable one."""
    one_time = await _claim(device, bundle.author)
    try:
        return initiate_session(bundle, connection, one_time, identity=device.keys.identity, now=device.now())
    except InvalidValue:
        if one_time is None:
            raise
        # A node that hands out a key no agreement can use (low order) only costs the one-time
        # pre-key's extra secrecy: the signed pre-key alone still starts the session (spec §14.1).
        return initiate_session(bundle, connection, None, identity=device.keys.identity, now=device.now())


def _starts(body: object, side: Side | None, bundle: KeyBundle) -> bool:
    """Whether this message is one of the two that start a session (spec §14.7)."""
    if bundle.prekey is None:
        return False
    return isinstance(body, ReachOut) or (isinstance(body, Response) and side is Side.AUTHOR)


async def _claim(device: Device, peer: PeerId) -> EncryptionKey | None:
    """One of ``peer``'s one-time pre-keys, claimed through this peer's home node (spec §13.5), or
    None: an empty stock, a limit, an older node, or a node out of reach all leave the signed
    pre-key alone, which §14.1 allows."""
    try:
        answer = await device.call(lambda: device.api.call("POST", "/api/v1/prekeys/claim", json={"peer": peer.text}))
        value = answer.get("prekey") if isinstance(answer, dict) else None
        return None if not isinstance(value, str) else EncryptionKey(base64.b64decode(value, validate=True))
    except (RemoteError, NodeUnreachable, PeerfedError, ValueError, TypeError):
        return None
