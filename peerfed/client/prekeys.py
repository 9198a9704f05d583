"""This device's pre-keys: the signed pre-key in its bundle, one-time pre-keys on its node (spec §14.1, §13.5).

Their secrets are kept in the device state (meta value ``prekeys``), sealed under a key only the
unlocked identity seed gives, as the session token is; a backup file carries them so a moved
device opens the reach-outs in flight to it (spec §9.6):

    msgpack [[[secret, created_at, kept_until], ...],   signed pre-keys, newest last
             [secret, ...]]                              one-time pre-keys, oldest first

A signed pre-key's ``kept_until`` is the latest expiry of a bundle that named it, plus the 7-day
mailbox window; its secret is deleted after that (spec §14.1). One-time secrets stay until a
message that used one opens and is taken (spec §14.5 step 9), at most ``MAX_ONE_TIME``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from peerfed.protocol import EncryptionKey, EncryptionSecret, PreKeys, RemoteError, pack, unpack
from peerfed.protocol.errors import PeerfedError
from peerfed.protocol.node_bodies import MAX_PREKEYS

from . import keyring as kr
from .device import Device

__all__ = [
    "MAX_ONE_TIME",
    "ROTATE_AFTER",
    "PreKeySecrets",
    "forget_one_time",
    "load",
    "replenish",
    "save",
    "signed_prekey",
]

DAY = 86_400
ROTATE_AFTER = 30 * DAY  # a new signed pre-key at least this often (spec §14.1, R-14.1-3)
MAILBOX_WINDOW = 7 * DAY  # kept this long past the last bundle naming it (spec §7.3 step 6)
MAX_ONE_TIME = 500  # one-time secrets kept; the node hands out the oldest first, so they go first
UPLOAD_LIFETIME = 300  # seconds a prekeys upload is signed for (at most 600, spec §13.5)


@dataclass
class PreKeySecrets:
    signed: list[tuple[EncryptionSecret, int, int]] = field(default_factory=list)
    one_time: list[EncryptionSecret] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return pack([[[s.secret, made, until] for s, made, until in self.signed], [s.secret for s in self.one_time]])

    @classmethod
    def from_bytes(cls, data: bytes) -> PreKeySecrets:
        """Raises ValueError for bytes that are not a stored pre-key state."""
        try:
            value: Any = unpack(data)
            signed, one_time = value
            return cls(
                [(EncryptionSecret(s[0]), int(s[1]), int(s[2])) for s in signed],
                [EncryptionSecret(s) for s in one_time],
            )
        except (PeerfedError, TypeError, IndexError) as exc:
            raise ValueError("the stored pre-keys are damaged") from exc


async def load(device: Device) -> PreKeySecrets:
    """The stored pre-key secrets; none when nothing is stored (or it cannot be opened)."""
    data = kr.open_secret(device.keys, await device.state.get("prekeys"))
    if data is None:
        return PreKeySecrets()
    try:
        return PreKeySecrets.from_bytes(data)
    except ValueError:
        return PreKeySecrets()


async def save(device: Device, secrets: PreKeySecrets) -> None:
    await device.state.set("prekeys", kr.seal_secret(device.keys, secrets.to_bytes()))


async def forget_one_time(device: Device, public: EncryptionKey) -> None:
    """Delete the secret of the one-time pre-key ``public``: a message that used it was taken (spec §14.5 step 9)."""
    secrets = await load(device)
    kept = [s for s in secrets.one_time if bytes(s.public) != bytes(public)]
    if len(kept) != len(secrets.one_time):
        secrets.one_time = kept
        await save(device, secrets)


async def signed_prekey(device: Device, bundle_until: int) -> EncryptionKey:
    """The signed pre-key a bundle expiring at ``bundle_until`` names, stored before it is returned.

    A new one is made when there is none or the newest is older than ``ROTATE_AFTER``; secrets no
    bundle can name any more are deleted (spec §14.1).
    """
    now = device.now()
    secrets = await load(device)
    secrets.signed = [item for item in secrets.signed if item[2] > now]
    if not secrets.signed or secrets.signed[-1][1] + ROTATE_AFTER <= now:
        secrets.signed.append((EncryptionSecret(os.urandom(32)), now, 0))
    secret, made, until = secrets.signed[-1]
    secrets.signed[-1] = (secret, made, max(until, bundle_until + MAILBOX_WINDOW))
    await save(device, secrets)
    return secret.public


async def replenish(device: Device) -> int:
    """Top the node's stock of this peer's one-time pre-keys up to its cap when it is below the
    node's low mark (spec §13.5); returns how many were uploaded.

    The secrets are stored before the upload, so a key handed out is always one this device can
    use. A node that refuses (an older node without the endpoints: ``not_found``) is left alone.
    Raises NodeUnreachable.
    """
    try:
        answer = await device.call(lambda: device.api.call("GET", "/api/v1/prekeys"))
        stock, cap, low = int(answer["stock"]), int(answer["cap"]), int(answer["low"])
    except (RemoteError, KeyError, TypeError, ValueError):
        return 0
    wanted = min(cap - stock, MAX_PREKEYS)
    if stock >= low or wanted <= 0:
        return 0
    fresh = [EncryptionSecret(os.urandom(32)) for _ in range(wanted)]
    secrets = await load(device)
    secrets.one_time = (secrets.one_time + fresh)[-MAX_ONE_TIME:]
    await save(device, secrets)
    upload = device.sign(PreKeys(device.api.url, tuple(bytes(s.public) for s in fresh)), UPLOAD_LIFETIME)
    try:
        await device.call(lambda: device.api.call("POST", "/api/v1/prekeys", data=upload.raw))
    except RemoteError:
        return 0  # uploaded again at the next sync below the mark
    return wanted
