"""peerfed's protocol core (spec §2-§13), sans I/O: bytes in, values or typed errors out.

It reads no clock and does no I/O; time is always an argument. The modules map onto the
spec's sections: ``encoding`` (§2), ``crypto`` (§3), ``identity`` (§4), ``envelope`` (§5),
``listings`` (§4.3, §6), ``messages`` (§8), ``sealing`` (§7), ``connection`` (§9), ``errors`` (§10), ``node_bodies``
(§13.2-§13.6), ``topics`` (§6.4), ``work`` (§13.4) and ``visible`` (§9.5, showing strings from outside);
``prekeys``, ``ratchet`` and ``sealing2`` are sealing scheme 2 (§14).
"""

from .connection import TRANSITIONS, Connection, Side, State
from .encoding import pack, unpack
from .envelope import CLOCK_SKEW, MAX_ENVELOPE_BYTES, Context, Envelope, open_signed, sign, verify_kept
from .errors import (
    ERROR_CODES,
    ConnectionStateError,
    EncodingError,
    ForeignError,
    IllegalSend,
    InvalidValue,
    LocalError,
    MovedError,
    PeerfedError,
    RemoteError,
    RequestError,
    SchemaError,
    SealError,
    SignatureError,
    SizeError,
    TimeError,
    UnavailableError,
    VersionError,
)
from .identity import EncryptionKey, EncryptionSecret, Identity, PeerId
from .listings import Format, KeyBundle, Kind, Listing, Timing, Window, Withdrawal
from .messages import Agreement, End, Message, ReachOut, Response, Terms
from .node_bodies import ClientAuth, Erasure, Move, NodeDocument, NodeRequest, PreKeys
from .sealing import Opened, Sealed, check_hour, open_sealed, padded_length, parse_sealed, reacher_bundle, seal

__all__ = [
    "CLOCK_SKEW",
    "ERROR_CODES",
    "MAX_ENVELOPE_BYTES",
    "TRANSITIONS",
    "Agreement",
    "ClientAuth",
    "Connection",
    "ConnectionStateError",
    "Context",
    "EncodingError",
    "ForeignError",
    "EncryptionKey",
    "EncryptionSecret",
    "End",
    "Erasure",
    "Move",
    "PreKeys",
    "Envelope",
    "Format",
    "IllegalSend",
    "Identity",
    "InvalidValue",
    "KeyBundle",
    "Kind",
    "Listing",
    "LocalError",
    "Message",
    "NodeDocument",
    "NodeRequest",
    "Opened",
    "PeerId",
    "PeerfedError",
    "ReachOut",
    "RemoteError",
    "MovedError",
    "RequestError",
    "Response",
    "SchemaError",
    "SealError",
    "Sealed",
    "Side",
    "SignatureError",
    "SizeError",
    "State",
    "Terms",
    "TimeError",
    "UnavailableError",
    "Timing",
    "VersionError",
    "Window",
    "Withdrawal",
    "check_hour",
    "open_sealed",
    "open_signed",
    "pack",
    "padded_length",
    "parse_sealed",
    "reacher_bundle",
    "seal",
    "sign",
    "unpack",
    "verify_kept",
]
