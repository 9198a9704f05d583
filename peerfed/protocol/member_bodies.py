"""Statements a member signs for its home node (spec §13.5 moving and one-time pre-keys, §13.6 erasure).

Each is a signed object of its own type (spec §5) under the client-auth or erasure context;
``node_bodies.NODE_BODY_TYPES`` lists them with the node's own bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from . import crypto
from .encoding import Value
from .errors import InvalidValue
from .fields import array, binary, seq, set_field
from .node_urls import check_url

__all__ = ["MAX_PREKEYS", "Erasure", "Move", "PreKeys", "erased_hash"]

DAY = 86_400
MAX_PREKEYS = 100  # one-time pre-keys in one upload, and a peer's stock on its node (spec §13.5)


def erased_hash(peer: bytes) -> bytes:
    """What an erasure tombstone keeps instead of the erased peer's id (spec §13.6)."""
    return crypto.blake2b_256(peer, crypto.Person.ERASED)


@dataclass(frozen=True)
class Move:
    """A peer's own word that it moves from one node to another (spec §13.5, Moving).

    Signed under the client-auth context, short-lived and taken once: a session token alone
    cannot move an account.
    """

    type_name: ClassVar[str] = "move"
    max_lifetime: ClassVar[int] = 600

    from_node: str
    to_node: str

    def __post_init__(self) -> None:
        check_url(self.from_node, "from_node")
        check_url(self.to_node, "to_node")
        if self.from_node == self.to_node:
            raise InvalidValue("a move goes to another node")

    def to_wire(self) -> list[Value]:
        return [self.from_node, self.to_node]

    @classmethod
    def from_wire(cls, value: Value) -> Move:
        return cls(*array(value, "move body", 2))  # type: ignore[arg-type]


@dataclass(frozen=True)
class PreKeys:
    """One-time pre-keys a peer gives its home node to hand out (spec §13.5, One-time pre-keys; §14.1).

    Signed under the client-auth context and short-lived like a move, so a session token alone
    cannot fill a peer's stock with keys the peer does not hold; the node takes each once.
    """

    type_name: ClassVar[str] = "prekeys"
    max_lifetime: ClassVar[int] = 600

    node: str
    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        check_url(self.node, "node")
        keys = seq(self.keys, "keys", 1, MAX_PREKEYS)
        set_field(self, "keys", tuple(binary(k, "a one-time pre-key", 32) for k in keys))

    def to_wire(self) -> list[Value]:
        return [self.node, list(self.keys)]

    @classmethod
    def from_wire(cls, value: Value) -> PreKeys:
        node, keys = array(value, "prekeys body", 2)
        if not isinstance(keys, list):
            raise InvalidValue("keys must be an array")
        return cls(node, tuple(keys))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Erasure:
    """ "Erase me": every node deletes all it holds for the author (spec §13.6)."""

    type_name: ClassVar[str] = "erasure"
    max_lifetime: ClassVar[int] = 90 * DAY

    def to_wire(self) -> list[Value]:
        return []

    @classmethod
    def from_wire(cls, value: Value) -> Erasure:
        array(value, "erasure body", 0)
        return cls()
