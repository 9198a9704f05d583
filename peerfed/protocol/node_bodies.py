"""Bodies the node protocol signs (spec §13): node documents, node requests, client proofs.

A member's own statements to its node (moving, one-time pre-keys, erasure) are in
``member_bodies`` and node URLs in ``node_urls``; both are named here too, and
``NODE_BODY_TYPES`` lists every body type of this layer.

They use the same signed-object layout as everything else (spec §5); only the context and
the body differ. Like the rest of the core, nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from . import crypto
from .encoding import Value
from .errors import InvalidValue, LocalError
from .fields import LANG, VOCAB, array, binary, enum_of, opt_text, seq, set_field, text, uint
from .member_bodies import MAX_PREKEYS, Erasure, Move, PreKeys, erased_hash
from .node_urls import check_url, url_host

__all__ = [
    "MAX_PREKEYS",
    "NODE_BODY_TYPES",
    "PreKeys",
    "ClientAuth",
    "Emergency",
    "Erasure",
    "FederationPolicy",
    "Move",
    "NodeDocument",
    "NodeKey",
    "NodeRequest",
    "Registration",
    "Resource",
    "WrongNode",
    "body_hash",
    "check_url",
    "client_auth_for",
    "url_host",
    "erased_hash",
]

DAY = 86_400
_BODY_PERSON = crypto.Person.BODY
_LIMIT_NAME = VOCAB


class Registration(enum.StrEnum):
    OPEN = "open"
    INVITE = "invite"
    APPROVAL = "approval"


class FederationPolicy(enum.StrEnum):
    OPEN = "open"
    ALLOW_LIST = "allow-list"
    BLOCK_LIST = "block-list"


class Emergency(enum.StrEnum):
    """Whether contacting a support resource may involve emergency services (police, ambulance)."""

    NEVER = "never"
    ON_REQUEST = "on-request"
    MAY = "may"


def body_hash(body: bytes) -> bytes:
    """BLAKE2b-256 of an HTTP body, as node requests sign it (spec §13.3)."""
    return crypto.blake2b_256(body, _BODY_PERSON)


@dataclass(frozen=True)
class Resource:
    """A support resource the community chose to list, in its own words (spec §13.2)."""

    name: str
    contact: str
    emergency: Emergency
    hours: str | None = None
    languages: tuple[str, ...] = ()
    note: str | None = None

    def __post_init__(self) -> None:
        text(self.name, "resource name", 100)
        text(self.contact, "resource contact", 300, free=True)
        set_field(self, "emergency", enum_of(Emergency, self.emergency, "emergency"))
        opt_text(self.hours, "hours", 200, free=True)
        languages = tuple(text(t, "language", 35) for t in seq(self.languages, "languages", 0, 8))
        if any(not LANG.match(t) for t in languages):
            raise InvalidValue("languages are BCP 47 tags")
        set_field(self, "languages", languages)
        opt_text(self.note, "note", 500, free=True)

    def to_wire(self) -> list[Value]:
        return [self.name, self.contact, self.hours, list(self.languages), self.emergency.value, self.note]

    @classmethod
    def from_wire(cls, value: Value) -> Resource:
        name, contact, hours, languages, emergency, note = array(value, "resource", 6)
        return cls(name, contact, emergency, hours, languages, note)  # type: ignore[arg-type]


@dataclass(frozen=True)
class NodeKey:
    """A node signing key and the time it is valid for."""

    key: bytes
    valid_from: int
    valid_until: int

    def __post_init__(self) -> None:
        binary(self.key, "node key", 32)
        crypto.check_ed25519_key(self.key, "a node key")  # spec §4.1: no small-order or non-canonical key
        uint(self.valid_from, "valid_from", 0, 2**40 - 1)
        uint(self.valid_until, "valid_until", 0, 2**40 - 1)
        if self.valid_from >= self.valid_until:
            raise InvalidValue("a node key must become valid before it stops being valid")

    def to_wire(self) -> list[Value]:
        return [self.key, self.valid_from, self.valid_until]

    @classmethod
    def from_wire(cls, value: Value) -> NodeKey:
        key, start, end = array(value, "node key", 3)
        return cls(key, start, end)  # type: ignore[arg-type]


@dataclass(frozen=True)
class NodeDocument:
    """Who runs a node, its rules, limits, keys and the community's support resources."""

    type_name: ClassVar[str] = "node-document"
    max_lifetime: ClassVar[int] = 7 * DAY

    url: str
    name: str
    description: str
    contact: str
    registration: Registration
    code_of_conduct: str
    resources: tuple[Resource, ...]
    mailbox_ttl: int
    max_listing_lifetime: int
    limits: tuple[tuple[str, int], ...]
    protocols: tuple[str, ...]
    software: str
    federation: FederationPolicy
    keys: tuple[NodeKey, ...]
    vocabulary: tuple[str, ...] = ()
    web_client: bytes | None = None  # SHA-256 of the web client it serves (§13.10), or None

    def __post_init__(self) -> None:
        check_url(self.url, "url")
        text(self.name, "name", 64)
        text(self.description, "description", 2000, free=True)
        text(self.contact, "contact", 300, free=True)
        set_field(self, "registration", enum_of(Registration, self.registration, "registration"))
        text(self.code_of_conduct, "code of conduct", 8000, free=True)
        resources = seq(self.resources, "resources", 0, 20)
        if not all(isinstance(r, Resource) for r in resources):
            raise InvalidValue("resources must hold Resource values")
        set_field(self, "resources", resources)
        uint(self.mailbox_ttl, "mailbox_ttl", 3600, 90 * DAY)
        uint(self.max_listing_lifetime, "max_listing_lifetime", 3600, 90 * DAY)
        limits = []
        for item in seq(self.limits, "limits", 0, 32):
            pair = array(list(item) if isinstance(item, tuple) else item, "limit", 2)  # type: ignore[arg-type]
            name = text(pair[0], "limit name", 32)
            if not _LIMIT_NAME.match(name):
                raise InvalidValue("limit names are lowercase words joined by hyphens")
            limits.append((name, uint(pair[1], "limit value", 0, 2**32 - 1)))
        if len({n for n, _ in limits}) != len(limits):
            raise InvalidValue("a limit is named twice")
        set_field(self, "limits", tuple(limits))
        protocols = seq(self.protocols, "protocols", 1, 8)
        set_field(self, "protocols", tuple(text(p, "protocol", 32) for p in protocols))
        text(self.software, "software", 64)
        set_field(self, "federation", enum_of(FederationPolicy, self.federation, "federation"))
        keys = seq(self.keys, "keys", 1, 8)
        if not all(isinstance(k, NodeKey) for k in keys):
            raise InvalidValue("keys must hold NodeKey values")
        set_field(self, "keys", keys)
        vocab = tuple(text(t, "vocabulary term", 48) for t in seq(self.vocabulary, "vocabulary", 0, 200))
        if any(not VOCAB.match(t) for t in vocab):
            raise InvalidValue("vocabulary terms are lowercase letters, digits and hyphens")
        set_field(self, "vocabulary", vocab)
        if self.web_client is not None:
            binary(self.web_client, "web_client", 32)

    def limit(self, name: str, default: int | None = None) -> int | None:
        return dict(self.limits).get(name, default)

    def key_valid_at(self, key: bytes, when: int) -> bool:
        return any(k.key == key and k.valid_from <= when < k.valid_until for k in self.keys)

    def to_wire(self) -> list[Value]:
        return [
            self.url,
            self.name,
            self.description,
            self.contact,
            self.registration.value,
            self.code_of_conduct,
            [r.to_wire() for r in self.resources],
            [self.mailbox_ttl, self.max_listing_lifetime],
            [[n, v] for n, v in self.limits],
            list(self.protocols),
            self.software,
            self.federation.value,
            [k.to_wire() for k in self.keys],
            list(self.vocabulary),
            self.web_client,
        ]

    @classmethod
    def from_wire(cls, value: Value) -> NodeDocument:
        items = array(value, "node document body", 15)
        (
            url,
            name,
            description,
            contact,
            registration,
            conduct,
            resources,
            retention,
            limits,
            protocols,
            software,
            federation,
            keys,
            vocabulary,
            web_client,
        ) = items
        if not isinstance(resources, list) or not isinstance(keys, list):
            raise InvalidValue("resources and keys are arrays")
        ttl, lifetime = array(retention, "retention", 2)
        fields: list[Any] = [url, name, description, contact, registration, conduct]
        fields.append(tuple(Resource.from_wire(r) for r in resources))
        fields += [ttl, lifetime, limits, protocols, software, federation]
        fields.append(tuple(NodeKey.from_wire(k) for k in keys))
        fields += [vocabulary, web_client]
        return cls(*fields)


@dataclass(frozen=True)
class NodeRequest:
    """A node's signature over one HTTP request to another node (spec §13.3)."""

    type_name: ClassVar[str] = "node-request"
    max_lifetime: ClassVar[int] = 600

    method: str
    path: str
    origin: str
    destination: str
    nonce: bytes
    body_hash: bytes

    def __post_init__(self) -> None:
        if self.method not in ("GET", "POST", "PUT", "DELETE"):
            raise InvalidValue("method must be GET, POST, PUT or DELETE")
        path = text(self.path, "path", 1024)
        if not path.startswith("/"):
            raise InvalidValue("path must start with /")
        check_url(self.origin, "origin")
        check_url(self.destination, "destination")
        binary(self.nonce, "nonce", 16)
        binary(self.body_hash, "body hash", 32)

    def to_wire(self) -> list[Value]:
        return [self.method, self.path, self.origin, self.destination, self.nonce, self.body_hash]

    @classmethod
    def from_wire(cls, value: Value) -> NodeRequest:
        return cls(*array(value, "node request body", 6))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ClientAuth:
    """A peer proves it holds its key by signing a node's challenge (spec §13.4)."""

    type_name: ClassVar[str] = "client-auth"
    max_lifetime: ClassVar[int] = 600

    node: str
    challenge: bytes

    def __post_init__(self) -> None:
        check_url(self.node, "node")
        binary(self.challenge, "challenge", 32)

    def to_wire(self) -> list[Value]:
        return [self.node, self.challenge]

    @classmethod
    def from_wire(cls, value: Value) -> ClientAuth:
        return cls(*array(value, "client-auth body", 2))  # type: ignore[arg-type]


class WrongNode(LocalError):
    """A challenge names another node than the one the client meant to reach (spec §13.4).

    The client's own refusal: it never signs such a proof, so a node cannot relay another
    node's challenge and sign in there as the peer.
    """

    code = "local.wrong_node"


def client_auth_for(meant: str, named: object, challenge: bytes) -> ClientAuth:
    """The body a client signs to answer a challenge, once it checked the challenge is for ``meant``.

    ``meant`` is the node URL the client set out to reach (its home, or the URL the person
    typed); ``named`` is the ``node`` the challenge answer gave. They must be the same bytes.
    Raises WrongNode otherwise, InvalidValue for a malformed URL or challenge.
    """
    meant = check_url(meant, "the node meant")
    if not isinstance(named, str) or named != meant:
        raise WrongNode(f"the challenge is for {str(named)[:100]!r}, not {meant!r}: refusing to sign it")
    return ClientAuth(meant, challenge)


NODE_BODY_TYPES = {cls.type_name: cls for cls in (NodeDocument, NodeRequest, ClientAuth, Move, PreKeys, Erasure)}
