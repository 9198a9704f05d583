"""The double ratchet of sealing scheme 2, one state per connection (spec §14.3).

    KDF_RK(root, dh) = BLAKE2b(key=root, 0x01 || dh), BLAKE2b(key=root, 0x02 || dh)   "peerfed/root/v2"
    KDF_CK(chain)    = BLAKE2b(key=chain, 0x01),      BLAKE2b(key=chain, 0x02)        "peerfed/chain/v2"

A state is a frozen dataclass of bytes and integers, so it packs to canonical msgpack and back
(``to_wire``/``from_wire``). ``encrypt`` and ``decrypt`` never change a state: they return a new
one, and a caller keeps it only once the whole message has been accepted (spec §14.5 step 9), so
a refused message changes nothing. Randomness is an argument (``fresh``): sending is the only
step that needs a new ratchet secret, so receiving is deterministic.

Raises on the receive path only RemoteError: RatchetError (``ratchet.key_used``,
``ratchet.too_far_ahead``) and SealError (``seal.decrypt_failed``). Local misuse (sending before
a remote key is known, a counter at its end) raises InvalidValue.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import crypto
from .encoding import Value, pack
from .errors import InvalidValue, RatchetError, SchemaError, SealError
from .prekeys import Agreement

__all__ = [
    "MAX_SKIP",
    "MAX_SKIPPED",
    "MAX_RETIRED",
    "Header",
    "RatchetState",
    "decrypt",
    "encrypt",
    "kdf_chain",
    "kdf_root",
    "start_initiator",
    "start_responder",
]

MAX_SKIP = 100  # keys one message may make skipped in one chain (spec §14.3)
MAX_SKIPPED = 1000  # skipped keys a connection keeps; the oldest go first
MAX_RETIRED = 16  # replaced remote ratchet keys remembered, to name a replay ratchet.key_used
MAX_COUNTER = 2**32 - 1

Skipped = tuple[bytes, int, bytes]  # [ratchet_key, n, message_key]


def kdf_root(root: bytes, dh: bytes) -> tuple[bytes, bytes]:
    """The new root key and a new chain key from a DH output (spec §14.3)."""
    person = crypto.Person.ROOT
    return crypto.blake2b_keyed(b"\x01" + dh, root, person, 32), crypto.blake2b_keyed(b"\x02" + dh, root, person, 32)


def kdf_chain(chain: bytes) -> tuple[bytes, bytes]:
    """The message key and the next chain key (spec §14.3)."""
    person = crypto.Person.CHAIN
    return crypto.blake2b_keyed(b"\x01", chain, person, 32), crypto.blake2b_keyed(b"\x02", chain, person, 32)


@dataclass(frozen=True)
class Header:
    """What travels before the ciphertext: ``[ratchet_key, pn, n, agreement]`` (spec §14.4)."""

    ratchet_key: bytes
    pn: int
    n: int
    agreement: Agreement | None = None  # repeated by the initiator until it hears back

    def __post_init__(self) -> None:
        if not isinstance(self.ratchet_key, bytes) or len(self.ratchet_key) != 32:
            raise InvalidValue("a ratchet key is 32 bytes")
        for value in (self.pn, self.n):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNTER:
                raise InvalidValue("pn and n are integers 0 ... 2^32-1")
        if self.agreement is not None and not isinstance(self.agreement, Agreement):
            raise InvalidValue("the agreement is an Agreement")

    def to_wire(self) -> list[Value]:
        return [self.ratchet_key, self.pn, self.n, None if self.agreement is None else self.agreement.to_wire()]

    @classmethod
    def from_wire(cls, value: Value) -> Header:
        """Raise SchemaError unless ``value`` is ``[bin 32, pn, n, agreement or nil]`` (spec §14.4)."""
        if not isinstance(value, list) or len(value) != 4:
            raise SchemaError("a header is [ratchet_key, pn, n, agreement]")
        key, pn, n, agreement = value
        try:
            return cls(key, pn, n, None if agreement is None else Agreement.from_wire(agreement))  # type: ignore[arg-type]
        except InvalidValue as exc:
            raise SchemaError(str(exc)) from exc


@dataclass(frozen=True)
class RatchetState:
    """One side's state of one connection's ratchet (spec §14.3). Every field is plain data."""

    root: bytes
    own: bytes | None = None
    remote: bytes | None = None
    send: bytes | None = None
    ns: int = 0
    pn: int = 0
    recv: bytes | None = None
    nr: int = 0
    skipped: tuple[Skipped, ...] = ()
    retired: tuple[bytes, ...] = ()
    agreement: Agreement | None = None

    def to_wire(self) -> list[Value]:
        """The state as a msgpack array, for a device's storage (never sent)."""
        return [
            self.root,
            self.own,
            self.remote,
            self.send,
            self.ns,
            self.pn,
            self.recv,
            self.nr,
            [list(s) for s in self.skipped],
            list(self.retired),
            None if self.agreement is None else self.agreement.to_wire(),
        ]

    @classmethod
    def from_wire(cls, value: Value) -> RatchetState:
        """Raise SchemaError unless ``value`` is what ``to_wire`` makes."""
        try:
            if not isinstance(value, list) or len(value) != 11:
                raise TypeError("not an array of 11 items")
            root, own, remote, send, ns, pn, recv, nr, skipped, retired, agreement = value
            if not isinstance(skipped, list) or not isinstance(retired, list):
                raise TypeError("skipped and retired are arrays")
            state = cls(
                root,  # type: ignore[arg-type]
                own,  # type: ignore[arg-type]
                remote,  # type: ignore[arg-type]
                send,  # type: ignore[arg-type]
                ns,  # type: ignore[arg-type]
                pn,  # type: ignore[arg-type]
                recv,  # type: ignore[arg-type]
                nr,  # type: ignore[arg-type]
                tuple((s[0], s[1], s[2]) for s in skipped),  # type: ignore[index, misc]
                tuple(retired),  # type: ignore[arg-type]
                None if agreement is None else Agreement.from_wire(agreement),
            )
            state.check()
        except (TypeError, ValueError, IndexError) as exc:
            raise SchemaError(f"not a ratchet state: {exc}") from exc
        return state

    def check(self) -> None:
        """Raise InvalidValue unless every field has its type and size."""
        keys = [self.root, *(k for k in (self.own, self.remote, self.send, self.recv) if k is not None)]
        keys += [s[0] for s in self.skipped] + [s[2] for s in self.skipped] + list(self.retired)
        if not all(isinstance(k, bytes) and len(k) == 32 for k in keys):
            raise InvalidValue("ratchet keys are 32 bytes")
        counts = [self.ns, self.pn, self.nr, *(s[1] for s in self.skipped)]
        if not all(type(c) is int and 0 <= c <= MAX_COUNTER for c in counts):
            raise InvalidValue("ratchet counters are integers 0 ... 2^32-1")
        if len(self.skipped) > MAX_SKIPPED or len(self.retired) > MAX_RETIRED:
            raise InvalidValue("a ratchet state holds at most 1000 skipped and 16 retired keys")
        if self.agreement is not None and not isinstance(self.agreement, Agreement):
            raise InvalidValue("the agreement is an Agreement")


def start_initiator(secret: bytes, signed_prekey: bytes, agreement: Agreement, *, first: bytes) -> RatchetState:
    """The initiator's state after the agreement (spec §14.3): its first sending chain is already
    taken with ``first``, the ratchet secret whose public key the agreement's signature covers."""
    root, send = kdf_root(secret, crypto.x25519(first, signed_prekey))
    return RatchetState(root=root, own=first, remote=signed_prekey, send=send, agreement=agreement)


def start_responder(secret: bytes, signed_prekey_secret: bytes) -> RatchetState:
    """The responder's state: its signed pre-key's secret is its first ratchet secret (spec §14.3)."""
    return RatchetState(root=secret, own=signed_prekey_secret)


def _aead_aad(context: bytes, header: Header) -> bytes:
    return context + pack(header.to_wire())


def encrypt(
    state: RatchetState, plaintext: bytes, context: bytes, *, fresh: bytes, nonce: bytes
) -> tuple[RatchetState, Header, bytes]:
    """The next message: its header, ``nonce || AEAD(mk, nonce, ...)``, and the state to keep (§14.3, §14.4).

    ``context`` is the associated data before the header (``aad2`` up to ``pack(header)``);
    ``fresh`` is a new X25519 secret, used only if this send starts a new sending chain; ``nonce``
    24 random bytes, so a send repeated from a rolled-back state never reuses a nonce under one key.
    Raises InvalidValue if no remote ratchet key is known yet, the chain is exhausted, or the
    nonce is not 24 bytes.
    """
    if not isinstance(nonce, bytes) or len(nonce) != crypto.AEAD_NONCE_BYTES:
        raise InvalidValue("the message nonce is 24 bytes")
    if state.send is None:
        if state.remote is None:
            raise InvalidValue("the responder cannot send before it has opened a message")
        root, send = kdf_root(state.root, crypto.x25519(fresh, state.remote))
        state = dataclasses.replace(state, own=fresh, root=root, send=send, pn=state.ns, ns=0)
    if state.ns >= MAX_COUNTER or state.own is None or state.send is None:
        raise InvalidValue("this sending chain is exhausted")
    mk, send = kdf_chain(state.send)
    header = Header(crypto.x25519_public(state.own), state.pn, state.ns, state.agreement)
    ciphertext = nonce + crypto.aead_encrypt(mk, nonce, plaintext, _aead_aad(context, header))
    return dataclasses.replace(state, send=send, ns=state.ns + 1), header, ciphertext


def _skip(state: RatchetState, until: int) -> RatchetState:
    """Store the receiving chain's keys ``nr`` ... ``until - 1`` as skipped, within the bounds."""
    if state.recv is None or until <= state.nr:
        return state
    if until - state.nr > MAX_SKIP:
        raise RatchetError(f"more than {MAX_SKIP} keys would be skipped in one chain", "ratchet.too_far_ahead")
    chain, kept = state.recv, list(state.skipped)
    assert state.remote is not None  # a receiving chain always has its remote key
    for n in range(state.nr, until):
        mk, chain = kdf_chain(chain)
        kept.append((state.remote, n, mk))
    return dataclasses.replace(state, recv=chain, nr=until, skipped=tuple(kept[-MAX_SKIPPED:]))


def _message_key(state: RatchetState, header: Header) -> tuple[RatchetState, bytes]:
    """The key ``header`` names, and the state once it is taken (spec §14.3, receiving steps 1-4)."""
    d, n = header.ratchet_key, header.n
    for i, (key, number, mk) in enumerate(state.skipped):
        if number == n and crypto.equal(key, d):
            return dataclasses.replace(state, skipped=state.skipped[:i] + state.skipped[i + 1 :]), mk
    current = state.remote is not None and crypto.equal(state.remote, d)
    if not (current and state.recv is not None):
        if any(crypto.equal(r, d) for r in state.retired):
            raise RatchetError("that chain is closed and the key is not kept", "ratchet.key_used")
        own = state.own
        if own is None:
            raise SealError("no ratchet secret to take a new remote key with", "seal.decrypt_failed")
        state = _skip(state, header.pn)
        if header.n > MAX_SKIP:  # checked before the DH, so a far-off header costs little
            raise RatchetError(f"more than {MAX_SKIP} keys would be skipped", "ratchet.too_far_ahead")
        retired = state.retired if state.remote is None else (*state.retired, state.remote)[-MAX_RETIRED:]
        root, recv = kdf_root(state.root, crypto.x25519(own, d))
        # own is never needed again (the other side moves on only after our next key), so it goes
        # now: for the responder, that is the signed pre-key's secret (spec §14.3 step 4).
        state = dataclasses.replace(state, root=root, recv=recv, nr=0, remote=d, send=None, own=None, retired=retired)
    if n < state.nr:
        raise RatchetError("this message key was already used", "ratchet.key_used")
    state = _skip(state, n)
    assert state.recv is not None
    mk, recv = kdf_chain(state.recv)
    return dataclasses.replace(state, recv=recv, nr=n + 1), mk


def decrypt(state: RatchetState, header: Header, ciphertext: bytes, context: bytes) -> tuple[RatchetState, bytes]:
    """Open one message: the plaintext and the state to keep once the caller accepts it.

    ``ciphertext`` is ``nonce || AEAD``. Raises SchemaError (shorter than a nonce and a tag),
    RatchetError (ratchet.key_used, ratchet.too_far_ahead, ratchet.no_session) or SealError
    (seal.decrypt_failed); ``state`` itself never changes.
    """
    if len(ciphertext) < crypto.AEAD_NONCE_BYTES + crypto.AEAD_TAG_BYTES:
        raise SchemaError("the ciphertext is a nonce and at least a tag")
    new, mk = _message_key(state, header)
    nonce, sealed = ciphertext[: crypto.AEAD_NONCE_BYTES], ciphertext[crypto.AEAD_NONCE_BYTES :]
    plaintext = crypto.aead_decrypt(mk, nonce, sealed, _aead_aad(context, header))
    # The first message opened from the responder ends the initiator's repeating of the agreement.
    return dataclasses.replace(new, agreement=None), plaintext
