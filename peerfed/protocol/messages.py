"""Person-to-person bodies, sealed between two peers: one frozen dataclass per type (spec §8).

Validated when built, like every body (``__post_init__`` raises InvalidValue); each maps to
and from its fixed-position array in the spec's field order. ``BODY_TYPES`` names every body
a signed object may carry under the envelope context, public ones (``listings``) included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from .encoding import Value
from .errors import InvalidValue
from .fields import array, binary, boolean, enum_of, opt_text, seq, set_field, text, uint
from .identity import PeerId
from .listings import DAY, MAX_TIMESTAMP, Format, KeyBundle, Listing, Withdrawal

__all__ = [
    "BODY_TYPES",
    "MAX_BUNDLE_BYTES",
    "MAX_FORGET",
    "MAX_TIMESTAMP",
    "MIN_FORGET",
    "Agreement",
    "Body",
    "End",
    "Message",
    "ReachOut",
    "Response",
    "SealedBody",
    "Terms",
]

# --- sealed person-to-person messages (spec §8) ---------------------------------------------

# A signed key bundle is at most 487 bytes (spec §4.3: a 97-byte header, a payload of at most 390);
# the reach-out's limit leaves room and stays far below a sealed message's (spec §7.2).
MIN_BUNDLE_BYTES = 98
MAX_BUNDLE_BYTES = 1024
# How long after it was sent each device keeps a message when the terms say to forget (spec §8.3).
MIN_FORGET = 3600
MAX_FORGET = 365 * DAY


@dataclass(frozen=True)
class Terms:
    """What two peers agree would help (spec §8.3). Compared by their exact encoding.

    ``forget`` (seconds, or None to keep) is written as a seventh item only when set, so terms
    without it encode exactly as the six-item terms did before it existed.
    """

    helps: str
    formats: tuple[Format, ...] = ()
    times: str | None = None
    until: int | None = None
    boundaries: tuple[str, ...] = ()
    ending: str | None = None
    forget: int | None = None

    def __post_init__(self) -> None:
        text(self.helps, "what helps", 1000, free=True)
        formats = tuple(enum_of(Format, f, "format") for f in seq(self.formats, "formats", 0, 5))
        if len(set(formats)) != len(formats):
            raise InvalidValue("formats holds the same item twice")
        set_field(self, "formats", formats)
        opt_text(self.times, "times", 300, free=True)
        if self.until is not None:
            uint(self.until, "until", 0, MAX_TIMESTAMP)
        boundaries = seq(self.boundaries, "boundaries", 0, 10)
        set_field(self, "boundaries", tuple(text(b, "boundary", 300, free=True) for b in boundaries))
        opt_text(self.ending, "how to end", 300, free=True)
        if self.forget is not None:
            uint(self.forget, "forget", MIN_FORGET, MAX_FORGET)

    def to_wire(self) -> list[Value]:
        head: list[Value] = [
            self.helps,
            [f.value for f in self.formats],
            self.times,
            self.until,
            list(self.boundaries),
            self.ending,
        ]
        return head if self.forget is None else [*head, self.forget]

    @classmethod
    def from_wire(cls, value: Value) -> Terms:
        """Raises InvalidValue; a seventh item must be an integer, never nil (one encoding, spec §8.3)."""
        if isinstance(value, list) and len(value) == 7:
            items, forget = value[:6], uint(value[6], "forget", MIN_FORGET, MAX_FORGET)
        else:
            items, forget = array(value, "terms", 6), None
        helps, formats, times, until, boundaries, ending = items
        return cls(helps, formats, times, until, boundaries, ending, forget)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Sealed:
    """Fields every sealed message starts with: who it is for, and which connection."""

    max_lifetime: ClassVar[int] = 30 * DAY

    recipient: PeerId
    connection: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.recipient, PeerId):
            raise InvalidValue("recipient must be a PeerId")
        binary(self.connection, "connection id", 16)

    def _head(self) -> list[Value]:
        return [bytes(self.recipient), self.connection]

    @staticmethod
    def _split(value: Value, name: str, length: int) -> tuple[PeerId, bytes, list[Value]]:
        items = array(value, name, length + 2)
        recipient = PeerId(binary(items[0], "recipient", 32))
        return recipient, binary(items[1], "connection id", 16), items[2:]


@dataclass(frozen=True)
class ReachOut(_Sealed):
    """A peer reaches out about a listing; the connection id is the reacher's choice.

    ``bundle`` is the reacher's own signed key bundle (spec §4.3), carried inside the seal so the
    recipient can answer without asking anyone for it (spec §8.2); ``open_sealed`` verifies it.
    It is None only in a reach-out a device stored before bundles were carried (a five-element
    body): such history still decodes, but ``open_sealed`` refuses one that arrives (spec §7.3).
    """

    type_name: ClassVar[str] = "reach-out"

    listing: bytes
    hello: str
    terms: Terms | None = None
    bundle: bytes | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        binary(self.listing, "listing id", 32)
        text(self.hello, "hello", 1000, free=True)
        if self.terms is not None and not isinstance(self.terms, Terms):
            raise InvalidValue("terms must be Terms")
        if self.bundle is not None and (
            not isinstance(self.bundle, bytes) or not MIN_BUNDLE_BYTES <= len(self.bundle) <= MAX_BUNDLE_BYTES
        ):
            raise InvalidValue(
                f"a reach-out carries its author's signed key bundle, {MIN_BUNDLE_BYTES} to {MAX_BUNDLE_BYTES} bytes"
            )

    def to_wire(self) -> list[Value]:
        terms = None if self.terms is None else self.terms.to_wire()
        if self.bundle is None:  # history from before bundles: its own five elements
            return [*self._head(), self.listing, self.hello, terms]
        return [*self._head(), self.listing, self.hello, terms, self.bundle]

    @classmethod
    def from_wire(cls, value: Value) -> ReachOut:
        legacy = isinstance(value, list) and len(value) == 5
        recipient, connection, rest = cls._split(value, "reach-out body", 3 if legacy else 4)
        listing, hello, terms, bundle = (*rest, None) if legacy else rest
        if not legacy and not isinstance(bundle, bytes):
            raise InvalidValue("a reach-out's sixth element is its author's signed key bundle")  # one encoding
        parsed = None if terms is None else Terms.from_wire(terms)
        return cls(recipient, connection, listing, hello, parsed, bundle)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Response(_Sealed):
    """Accept (with an optional reply) or decline (with nothing: no reason is owed)."""

    type_name: ClassVar[str] = "response"

    accept: bool
    reply: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        boolean(self.accept, "accept")
        opt_text(self.reply, "reply", 1000, free=True)
        if not self.accept and self.reply is not None:
            raise InvalidValue("a decline carries no text")

    def to_wire(self) -> list[Value]:
        return [*self._head(), self.accept, self.reply]

    @classmethod
    def from_wire(cls, value: Value) -> Response:
        recipient, connection, (accept, reply) = cls._split(value, "response body", 2)
        return cls(recipient, connection, accept, reply)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Agreement(_Sealed):
    """One peer signs version ``version`` of the terms (spec §8.3, §9.3)."""

    type_name: ClassVar[str] = "agreement"

    version: int
    terms: Terms

    def __post_init__(self) -> None:
        super().__post_init__()
        uint(self.version, "agreement version", 1, 2**32 - 1)
        if not isinstance(self.terms, Terms):
            raise InvalidValue("terms must be Terms")

    def to_wire(self) -> list[Value]:
        return [*self._head(), self.version, self.terms.to_wire()]

    @classmethod
    def from_wire(cls, value: Value) -> Agreement:
        recipient, connection, (version, terms) = cls._split(value, "agreement body", 2)
        return cls(recipient, connection, version, Terms.from_wire(terms))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Message(_Sealed):
    """Conversation text; ``seq`` counts from 1 per sender, ``reply_to`` names a message id."""

    type_name: ClassVar[str] = "message"

    seq: int
    text: str
    reply_to: bytes | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        uint(self.seq, "seq", 1, 2**32 - 1)
        text(self.text, "text", 16_000, free=True)
        if self.reply_to is not None:
            binary(self.reply_to, "reply_to", 32)

    def to_wire(self) -> list[Value]:
        return [*self._head(), self.seq, self.reply_to, self.text]

    @classmethod
    def from_wire(cls, value: Value) -> Message:
        recipient, connection, (seq, reply_to, text) = cls._split(value, "message body", 3)
        return cls(recipient, connection, seq, text, reply_to)  # type: ignore[arg-type]


@dataclass(frozen=True)
class End(_Sealed):
    """Either peer ends the connection, alone and finally; ``erase`` asks the other to forget."""

    type_name: ClassVar[str] = "end"

    erase: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        boolean(self.erase, "erase")

    def to_wire(self) -> list[Value]:
        return [*self._head(), self.erase]

    @classmethod
    def from_wire(cls, value: Value) -> End:
        recipient, connection, (erase,) = cls._split(value, "end body", 1)
        return cls(recipient, connection, erase)  # type: ignore[arg-type]


SealedBody: TypeAlias = ReachOut | Response | Agreement | Message | End
Body: TypeAlias = Listing | Withdrawal | KeyBundle | ReachOut | Response | Agreement | Message | End

BODY_TYPES: dict[str, type[Body]] = {
    cls.type_name: cls for cls in (Listing, Withdrawal, KeyBundle, ReachOut, Response, Agreement, Message, End)
}
