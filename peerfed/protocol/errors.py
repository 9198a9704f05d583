"""Every error peerfed raises on purpose, split by who is at fault (spec §10).

    PeerfedError
    ├── LocalError                 this side is at fault: our caller, our operator, our own files
    │   ├── InvalidValue           a message built locally with a value the spec forbids
    │   ├── IllegalSend            a step this peer may not take in the connection's state
    │   └── (outside the core)     node.config.ConfigError, node.keys.KeyFileError,
    │                              client.errors.ClientError, client.keyring.KeyringError
    ├── UnavailableError           nobody broke a rule; something needed is out of reach now: retry
    │   └── (outside the core)     node.store.StorageError, node.federation.TransportError,
    │                              client.transport.TransportError
    └── RemoteError                bytes or a message from outside broke the spec
        ├── EncodingError          not canonical msgpack (spec §2)
        ├── SizeError              over a size limit (spec §5.4)
        ├── VersionError           a framing or sealing version we do not implement
        ├── SchemaError            well encoded, but a field is wrong (spec §6-§8)
        ├── SignatureError         the Ed25519 signature does not verify (spec §5.2)
        ├── TimeError              expired, too far in the future, or lifetime too long (spec §5.3)
        ├── SealError              a sealed payload cannot be opened (spec §7)
        ├── RatchetError           a scheme-2 session or message key refuses a message (spec §14)
        ├── ConnectionStateError   a message the connection's state does not allow (spec §9)
        ├── RequestError           a request to a node refused: auth, rate, policy (spec §13.8)
        │   └── MovedError         ``auth.moved``: another device took the identity over (spec §13.4)
        └── ForeignError           a refusal from another party with a code this version does not know

Every RemoteError carries a stable wire ``code`` and the HTTP status a node answers with;
the table lives in spec §10 and in ``ERROR_CODES`` below. The receive path raises only
RemoteError: anything else escaping a decoder is a bug. A code read off the wire goes through
``RemoteError.from_wire``, so a newer or hostile node's unknown code can never crash a caller.
UnavailableError is what a node answers ``node.unavailable`` for: the caller may try again.
"""

from __future__ import annotations

__all__ = [
    "ERROR_CODES",
    "ConnectionStateError",
    "EncodingError",
    "ForeignError",
    "IllegalSend",
    "InvalidValue",
    "LocalError",
    "MovedError",
    "PeerfedError",
    "RatchetError",
    "RemoteError",
    "RequestError",
    "SchemaError",
    "SealError",
    "SignatureError",
    "SizeError",
    "TimeError",
    "UnavailableError",
    "VersionError",
]

# code -> HTTP status. Stable: a code is never renamed or reused (spec §10).
ERROR_CODES: dict[str, int] = {
    "encoding.malformed": 400,
    "encoding.non_canonical": 400,
    "encoding.trailing_bytes": 400,
    "encoding.forbidden_type": 400,
    "encoding.too_deep": 400,
    "size.too_large": 413,
    "version.unsupported": 400,
    "schema.invalid": 400,
    "schema.unknown_type": 400,
    "signature.invalid": 400,
    "time.expired": 400,
    "time.future": 400,
    "time.lifetime": 400,
    "seal.wrong_recipient": 400,
    "seal.decrypt_failed": 400,
    "seal.bad_padding": 400,
    "seal.wrong_sender": 400,
    "connection.not_allowed": 409,
    "connection.duplicate": 409,
    "connection.closed": 409,
    # Sealing scheme 2 (spec §14)
    "ratchet.no_session": 409,
    "ratchet.prekey_used": 409,
    "ratchet.key_used": 409,
    "ratchet.too_far_ahead": 400,
    # The node protocol (spec §13.8)
    "request.invalid": 400,
    "auth.required": 401,
    "auth.invalid": 401,
    "auth.replayed": 401,
    "auth.forbidden": 403,
    "auth.pending": 403,
    "auth.invite": 403,
    "federation.refused": 403,
    "federation.not_home": 403,
    "not_found": 404,
    "gone": 410,
    "rate.limited": 429,
    "request.timeout": 408,
    "auth.work": 403,
    "auth.moved": 403,
    "prekeys.full": 409,
    "node.unavailable": 503,
    "node.internal": 500,
}


class PeerfedError(Exception):
    """Root of every error peerfed raises on purpose."""


class LocalError(PeerfedError):
    """The caller of this library did something the spec forbids."""


class InvalidValue(LocalError, ValueError):
    """A value object or message was built with a value the spec forbids.

    Decoders translate this into SchemaError when the value came from outside.
    """

    code = "schema.invalid"


class IllegalSend(LocalError):
    """This peer tried to send a message its connection state does not allow."""

    def __init__(self, message: str, code: str = "connection.not_allowed") -> None:
        super().__init__(message)
        self.code = code


class UnavailableError(PeerfedError):
    """Nobody broke a rule: a database, a network path or another node is out of reach for now.

    A node answers it with ``code`` and ``http_status``; whoever sent the request may retry.
    """

    def __init__(self, message: str, code: str = "node.unavailable") -> None:
        if code not in ERROR_CODES:
            raise AssertionError(f"unregistered error code {code!r}")
        super().__init__(message)
        self.code = code
        self.http_status = ERROR_CODES[code]


class RemoteError(PeerfedError):
    """Input from outside (a peer, a node, the network) broke the spec."""

    default_code = "schema.invalid"

    def __init__(self, message: str, code: str | None = None) -> None:
        code = code or self.default_code
        if code not in ERROR_CODES:
            raise AssertionError(f"unregistered error code {code!r}")
        super().__init__(message)
        self.code = code
        self.http_status = ERROR_CODES[code]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {str(self)!r})"

    @staticmethod
    def from_wire(code: object, message: object, http_status: int | None = None) -> RemoteError:
        """The error another party reported as ``{"code", "message"}``, whatever it sent.

        A registered code gives a plain RemoteError; anything else (a newer node's code, or
        garbage) gives a ForeignError that keeps a printable, bounded copy of the code.
        """
        text = message if isinstance(message, str) else "refused"
        if isinstance(code, str) and code in ERROR_CODES:
            return RemoteError(text[:2000], code)
        return ForeignError(text[:2000], code, http_status)


class EncodingError(RemoteError):
    default_code = "encoding.malformed"


class SizeError(RemoteError):
    default_code = "size.too_large"


class VersionError(RemoteError):
    default_code = "version.unsupported"


class SchemaError(RemoteError):
    default_code = "schema.invalid"


class SignatureError(RemoteError):
    default_code = "signature.invalid"


class TimeError(RemoteError):
    default_code = "time.expired"


class SealError(RemoteError):
    default_code = "seal.decrypt_failed"


class RatchetError(RemoteError):
    """A scheme-2 message its session cannot take: no session, a used key, too far ahead (spec §14.5, §14.6)."""

    default_code = "ratchet.key_used"


class ConnectionStateError(RemoteError):
    default_code = "connection.not_allowed"


class RequestError(RemoteError):
    default_code = "request.invalid"


class MovedError(RequestError):
    """A session or sign-in from a device another device took this identity over from (spec §13.4).

    ``moved_at`` is when the other device took over, as the node says it (``moved_at`` beside the
    error's code and message), so the person can be told when their mail stopped coming here.
    """

    default_code = "auth.moved"

    def __init__(self, message: str, moved_at: int) -> None:
        super().__init__(message, "auth.moved")
        self.moved_at = moved_at


class ForeignError(RemoteError):
    """A refusal whose code this version does not know (a newer node, or a hostile one).

    ``code`` keeps what was sent, limited to 64 printable ASCII characters; ``http_status`` is
    the status it came with, or 502 when there was none.
    """

    def __init__(self, message: str, code: object, http_status: int | None = None) -> None:
        raw = code if isinstance(code, str) else "unknown"
        printable = "".join(c for c in raw[:64] if " " < c < "\x7f") or "unknown"
        PeerfedError.__init__(self, message)
        self.code = printable
        self.http_status = http_status if isinstance(http_status, int) and 400 <= http_status <= 599 else 502
