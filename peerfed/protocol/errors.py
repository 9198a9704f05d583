"""Every error the protocol core raises, split by who is at fault.

    PeerfedError
    ├── LocalError                 our own caller misused the API (a bug here, not an attack)
    │   ├── InvalidValue           a message built locally with a value the spec forbids
    │   └── IllegalSend            a step this peer may not take in the connection's state
    └── RemoteError                bytes or a message from outside broke the spec
        ├── EncodingError          not canonical msgpack (spec §2)
        ├── SizeError              over a size limit (spec §5.4)
        ├── VersionError           a framing or sealing version we do not implement
        ├── SchemaError            well encoded, but a field is wrong (spec §6-§8)
        ├── SignatureError         the Ed25519 signature does not verify (spec §5.2)
        ├── TimeError              expired, too far in the future, or lifetime too long (spec §5.3)
        ├── SealError              a sealed payload cannot be opened (spec §7)
        ├── ConnectionStateError   a message the connection's state does not allow (spec §9)
        └── RequestError           a request to a node refused: auth, rate, policy (spec §13.8)

Every RemoteError carries a stable wire ``code`` and the HTTP status a node answers with;
the table lives in spec §10 and in ``ERROR_CODES`` below. The receive path raises only
RemoteError: anything else escaping a decoder is a bug.
"""

from __future__ import annotations

__all__ = [
    "ERROR_CODES",
    "ConnectionStateError",
    "EncodingError",
    "IllegalSend",
    "InvalidValue",
    "LocalError",
    "PeerfedError",
    "RemoteError",
    "RequestError",
    "SchemaError",
    "SealError",
    "SignatureError",
    "SizeError",
    "TimeError",
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
    "connection.not_allowed": 409,
    "connection.duplicate": 409,
    "connection.closed": 409,
    # The node protocol (spec §13.8)
    "request.invalid": 400,
    "auth.required": 401,
    "auth.invalid": 401,
    "auth.replayed": 401,
    "auth.forbidden": 403,
    "auth.pending": 403,
    "auth.invite": 403,
    "federation.refused": 403,
    "not_found": 404,
    "gone": 410,
    "rate.limited": 429,
    "request.timeout": 408,
    "auth.work": 403,
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


class ConnectionStateError(RemoteError):
    default_code = "connection.not_allowed"


class RequestError(RemoteError):
    default_code = "request.invalid"
