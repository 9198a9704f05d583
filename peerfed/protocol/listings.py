"""Public bodies: listings, withdrawals and key bundles, one frozen dataclass each (spec §4.3, §6).

An instance cannot hold a value the spec forbids: ``__post_init__`` raises InvalidValue,
which the envelope layer turns into SchemaError when the bytes came from outside. Each
class maps to and from its fixed-position array (``to_wire`` / ``from_wire``); the field
order is the spec's. There is no role, rating or clinical field anywhere: a listing is an
offer or a request, and that is the only asymmetry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from .encoding import Value
from .errors import InvalidValue
from .fields import LANG, TZ, VOCAB, array, binary, enum_of, opt_text, seq, set_field, text, uint
from .identity import EncryptionKey

__all__ = [
    "DAY",
    "MAX_TIMESTAMP",
    "PREKEY_BUNDLE_LIFETIME",
    "Format",
    "KeyBundle",
    "Kind",
    "Listing",
    "Timing",
    "Window",
    "Withdrawal",
]

DAY = 86_400
MAX_TIMESTAMP = 2**40 - 1


class Kind(enum.StrEnum):
    OFFER = "offer"
    REQUEST = "request"


class Format(enum.StrEnum):
    TEXT = "text"
    VOICE = "voice"
    VIDEO = "video"
    IN_PERSON = "in-person"
    SIGN = "sign"


class Timing(enum.StrEnum):
    NOW = "now"
    SOON = "soon"
    SCHEDULED = "scheduled"


# --- listings (spec §6) -------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A weekly availability window: days is a bit mask (bit 0 = Monday), minutes in the day."""

    days: int
    start: int
    end: int

    def __post_init__(self) -> None:
        uint(self.days, "window days", 1, 127)
        uint(self.start, "window start", 0, 1439)
        uint(self.end, "window end", 1, 1440)
        if self.start >= self.end:
            raise InvalidValue("a window must start before it ends")

    def to_wire(self) -> list[Value]:
        return [self.days, self.start, self.end]

    @classmethod
    def from_wire(cls, value: Value) -> Window:
        days, start, end = array(value, "window", 3)
        return cls(days, start, end)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Listing:
    """The public card of an offer or a request (spec §6.1). Its id is its envelope's id."""

    type_name: ClassVar[str] = "listing"
    max_lifetime: ClassVar[int] = 90 * DAY

    kind: Kind
    topics: tuple[str, ...]
    languages: tuple[str, ...]
    formats: tuple[Format, ...]
    timing: Timing
    summary: str
    vocab: tuple[str, ...] = ()
    tz: str = "UTC"
    availability: tuple[Window, ...] = ()
    capacity: int = 1
    area: str | None = None

    def __post_init__(self) -> None:
        set_field(self, "kind", enum_of(Kind, self.kind, "kind"))
        set_field(self, "topics", tuple(text(t, "topic", 48) for t in seq(self.topics, "topics", 1, 8)))
        vocab = tuple(text(t, "vocabulary term", 48) for t in seq(self.vocab, "vocab", 0, 8))
        if any(not VOCAB.match(t) for t in vocab):
            raise InvalidValue("vocabulary terms are lowercase letters, digits and hyphens")
        set_field(self, "vocab", vocab)
        languages = tuple(text(t, "language", 35) for t in seq(self.languages, "languages", 1, 8))
        if any(not LANG.match(t) for t in languages):
            raise InvalidValue("languages are BCP 47 tags such as 'es' or 'en-GB'")
        set_field(self, "languages", languages)
        formats = tuple(enum_of(Format, f, "format") for f in seq(self.formats, "formats", 1, 5))
        if len(set(formats)) != len(formats):
            raise InvalidValue("formats holds the same item twice")
        set_field(self, "formats", formats)
        if not TZ.match(text(self.tz, "time zone", 64)):
            raise InvalidValue("tz must be an IANA time zone name such as 'Europe/Madrid'")
        windows = seq(self.availability, "availability", 0, 14)
        if not all(isinstance(w, Window) for w in windows):
            raise InvalidValue("availability must hold windows")
        set_field(self, "availability", windows)
        set_field(self, "timing", enum_of(Timing, self.timing, "timing"))
        uint(self.capacity, "capacity", 1, 100)
        opt_text(self.area, "area", 64)
        text(self.summary, "summary", 600, free=True)

    def to_wire(self) -> list[Value]:
        return [
            self.kind.value,
            list(self.topics),
            list(self.vocab),
            list(self.languages),
            [f.value for f in self.formats],
            self.tz,
            [w.to_wire() for w in self.availability],
            self.timing.value,
            self.capacity,
            self.area,
            self.summary,
        ]

    @classmethod
    def from_wire(cls, value: Value) -> Listing:
        kind, topics, vocab, langs, formats, tz, avail, timing, capacity, area, summary = array(
            value, "listing body", 11
        )
        if not isinstance(avail, list):
            raise InvalidValue("availability must be an array")
        return cls(
            kind=kind,  # type: ignore[arg-type]
            topics=topics,  # type: ignore[arg-type]
            vocab=vocab,  # type: ignore[arg-type]
            languages=langs,  # type: ignore[arg-type]
            formats=formats,  # type: ignore[arg-type]
            tz=tz,  # type: ignore[arg-type]
            availability=tuple(Window.from_wire(w) for w in avail),
            timing=timing,  # type: ignore[arg-type]
            capacity=capacity,  # type: ignore[arg-type]
            area=area,  # type: ignore[arg-type]
            summary=summary,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Withdrawal:
    """The author takes a listing down everywhere (spec §6.2)."""

    type_name: ClassVar[str] = "withdrawal"
    max_lifetime: ClassVar[int] = 90 * DAY

    listing: bytes

    def __post_init__(self) -> None:
        binary(self.listing, "listing id", 32)

    def to_wire(self) -> list[Value]:
        return [self.listing]

    @classmethod
    def from_wire(cls, value: Value) -> Withdrawal:
        (listing,) = array(value, "withdrawal body", 1)
        return cls(listing)  # type: ignore[arg-type]


PREKEY_BUNDLE_LIFETIME = 60 * DAY  # a bundle with a signed pre-key, at most (spec §4.3, §14.1)


@dataclass(frozen=True)
class KeyBundle:
    """An identity certifies an encryption key until the envelope's expiry (spec §4.3)."""

    type_name: ClassVar[str] = "key-bundle"
    max_lifetime: ClassVar[int] = 365 * DAY

    encryption_key: EncryptionKey
    home: str | None = None
    pseudonym: str | None = None
    prekey: EncryptionKey | None = None  # the signed pre-key of sealing scheme 2 (spec §14.1)

    def __post_init__(self) -> None:
        if not isinstance(self.encryption_key, EncryptionKey):
            raise InvalidValue("encryption_key must be an EncryptionKey")
        if self.prekey is not None and not isinstance(self.prekey, EncryptionKey):
            raise InvalidValue("prekey must be an EncryptionKey")
        if self.prekey == self.encryption_key:
            raise InvalidValue("the signed pre-key must differ from the encryption key")
        home = opt_text(self.home, "home node", 256)
        if home is not None and not home.startswith(("https://", "http://")):
            raise InvalidValue("the home node hint is an http(s) URL")
        opt_text(self.pseudonym, "pseudonym", 64)

    def to_wire(self) -> list[Value]:
        # Three items without a pre-key, so a scheme-1 bundle's bytes are unchanged (spec §4.3).
        body: list[Value] = [bytes(self.encryption_key), self.home, self.pseudonym]
        return body if self.prekey is None else [*body, bytes(self.prekey)]

    @classmethod
    def from_wire(cls, value: Value) -> KeyBundle:
        items = value if isinstance(value, list) and len(value) == 4 else array(value, "key bundle body", 3)
        key, home, pseudonym = items[:3]
        prekey = EncryptionKey(binary(items[3], "signed pre-key", 32)) if len(items) == 4 else None
        return cls(EncryptionKey(binary(key, "encryption key", 32)), home, pseudonym, prekey)  # type: ignore[arg-type]
