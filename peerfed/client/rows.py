"""Rows of the device's database as values (spec §4.3, §6, §9): what ``LocalState`` returns.

Each is frozen: a row is a reading of the database at one moment, not a handle on it. Ids and
keys stay raw bytes here; text forms (hex, ``pf1...``) are made only at the edges (views, CLI).
"""

from __future__ import annotations

from dataclasses import dataclass

from peerfed.protocol import Connection, Side

__all__ = ["ConnectionRow", "ConnectionStateRow", "EventRow", "ListingRow", "PeerRow"]


@dataclass(frozen=True)
class PeerRow:
    """Another peer as this device knows it: the latest key bundle seen, and whether it is blocked."""

    peer: bytes
    bundle: bytes | None
    bundle_expires: int
    home: str | None
    name: str | None
    blocked: bool


@dataclass(frozen=True)
class ListingRow:
    """A listing seen in the directory, or one of this peer's own (``mine``)."""

    id: bytes
    raw: bytes
    author: bytes
    origin: str | None
    mine: bool
    expires_at: int
    withdrawn: bool


@dataclass(frozen=True)
class ConnectionRow:
    """A support connection this device takes part in; ``read_seq`` is the last event number read."""

    id: bytes
    listing: bytes
    peer: bytes
    side: Side
    created_at: int
    updated_at: int
    read_seq: int


@dataclass(frozen=True)
class EventRow:
    """One signed message of a connection, sent or received, numbered ``n`` in the order applied."""

    n: int
    inner_id: bytes
    author: bytes
    type: str
    raw: bytes
    at: int


@dataclass(frozen=True)
class ConnectionStateRow:
    """A connection's state machine value after applying its events up to number ``through``."""

    connection: bytes
    through: int
    state: Connection
