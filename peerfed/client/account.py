"""The peer's account: identity, key bundle, home node, moving, backup and erasure (spec §4, §13.4-§13.6).

A key pair made on this device is the identity (spec §4.1). Joining a node is signing in to it
(spec §13.4) and publishing a key bundle (spec §4.3) so others can seal messages to this peer;
the bundle's encryption key is renewed before it expires. Moving publishes a bundle naming the
new home and asks the old node to forward (spec §13.5); "erase me" asks the node and its
federation to delete everything they hold for this key (spec §13.6). A backup is everything on
this device, sealed under a passphrase.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nacl.utils

from peerfed.protocol import EncryptionSecret, Envelope, Erasure, Identity, KeyBundle, Move, MovedError, RemoteError

from . import keyring as kr
from .device import DAY, Device
from .errors import ClientError
from .history import history_key
from .prekeys import replenish, signed_prekey
from .sessions import count_stale
from .state import Backup, LocalState
from .taking_over import took_over
from .transport import NodeAPI

__all__ = [
    "BUNDLE_LIFETIME",
    "BUNDLE_RENEW",
    "Account",
    "needs_passphrase",
    "new_keyring",
    "open_existing",
    "open_new",
    "restore",
    "sign_bundle",
]

# Short key bundle lifetimes bound what one stolen X25519 secret opens (spec §12): a bundle lives
# 60 days and is renewed on a sync once fewer than 20 remain; old secrets open late mail for 30
# days more. A peer who does not sync for 60 days is unreachable until they do.
BUNDLE_LIFETIME = 60 * DAY
MEMBER, PENDING = "member", "pending"  # where a peer stands with its home node
BUNDLE_RENEW = 20 * DAY
ERASURE_LIFETIME = 90 * DAY
MOVE_LIFETIME = 300
_NO_IDENTITY = "no identity in {home}; create one with: peerfed id new --node URL"


def new_keyring(now: int) -> kr.Keyring:
    """A fresh identity and a first encryption key, valid for BUNDLE_LIFETIME from ``now``."""
    return kr.Keyring(
        Identity(nacl.utils.random(32)),
        [(EncryptionSecret(nacl.utils.random(32)), now, now + BUNDLE_LIFETIME)],
    )


async def open_new(home: Path) -> LocalState:
    """The database for a new identity in ``home``; raises ClientError (``local.exists``) if it holds one."""
    state = await LocalState.open(home)
    if await state.get("keyring") is not None:
        await state.close()
        raise ClientError(f"{home} already holds an identity; use another PEERFED_HOME", "local.exists")
    return state


async def open_existing(home: Path, passphrase: str | None) -> tuple[LocalState, kr.Keyring]:
    """The database and unlocked keys in ``home``.

    Raises ClientError (``local.no_identity``), or WrongPassphrase/KeyringError from the keyring.
    """
    if not (home / "peer.sqlite3").exists():
        raise ClientError(_NO_IDENTITY.format(home=home), "local.no_identity")
    state = await LocalState.open(home)
    blob = await state.get("keyring")
    if blob is None:
        await state.close()
        raise ClientError(_NO_IDENTITY.format(home=home), "local.no_identity")
    try:
        keys = kr.unlock(bytes(blob), passphrase)
        await state.unlock_history(history_key(keys.identity.seed))
    except BaseException:
        await state.close()
        raise
    return state, keys


async def needs_passphrase(home: Path) -> bool:
    """Whether the keys in ``home`` are locked with a passphrase."""
    if not (home / "peer.sqlite3").exists():
        return False
    state = await LocalState.open(home)
    try:
        blob = await state.get("keyring")
        return blob is not None and kr.is_locked(bytes(blob))
    finally:
        await state.close()


async def restore(home: Path, blob: bytes, passphrase: str | None) -> None:
    """Write the backup ``blob`` into ``home``, its keys locked with the backup's ``passphrase``.

    Raises WrongPassphrase/KeyringError, ClientError (``local.keyring`` if it is not a backup),
    EncodingError if its content is not msgpack. Nothing is written before the backup parses.
    """
    backup = Backup.from_bytes(kr.open_blob(blob, passphrase))
    keys = kr.Keyring.from_bytes(backup.keyring)
    state = await LocalState.open(home)
    try:
        await state.unlock_history(history_key(keys.identity.seed))
        await state.import_backup(backup, kr.lock(keys, passphrase))
        # The backup carries the old device's id among its values; this is another device, which
        # makes its own id when it first signs in (spec §13.4, One device at a time).
        await state.set("device", None)
    finally:
        await state.close()


async def sign_bundle(device: Device) -> Envelope:
    """This peer's key bundle for its current encryption key and home node (spec §4.3).

    What ``publish_bundle`` publishes, and what every reach-out carries (spec §8.2).
    """
    secret, _, end = device.keys.current
    until = min(end, device.now() + BUNDLE_LIFETIME)  # at most 60 days with a signed pre-key (R-14.1-1)
    prekey = await signed_prekey(device, until)
    body = KeyBundle(secret.public, home=device.api.url, pseudonym=await device.state.get("name"), prekey=prekey)
    return device.sign(body, until=until)


class Account:
    """This peer as its home node and other peers know it."""

    def __init__(self, device: Device) -> None:
        self.device = device

    async def join(self, node: str, *, name: str | None, invite: str | None, passphrase: str | None) -> str:
        """Sign in to ``node`` for the first time, keep the keys, publish the key bundle; returns the
        standing: ``member``, or ``pending`` when the node's operator must approve first. A pending
        key is kept, so the approved member signs in with it later (spec §13.4).

        Raises RemoteError (the node's refusal, e.g. ``auth.invite``), NodeUnreachable.
        """
        device = self.device
        await device.state.unlock_history(history_key(device.keys.identity.seed))
        device.api = NodeAPI(node, device.http, clock=device.clock)
        try:
            await device.sign_in(invite=invite)
        except RemoteError as exc:
            if exc.code != "auth.pending":
                raise
            standing = PENDING
        else:
            standing = MEMBER
        await device.state.set("keyring", kr.lock(device.keys, passphrase))
        await device.state.set("node", device.api.url)
        await device.state.set("name", name)
        await device.state.set("standing", standing)
        if standing == MEMBER:
            await self.publish_bundle()
        return standing

    async def standing(self, *, ask: bool) -> str:
        """``member`` or ``pending``. With ``ask``, a pending peer signs in again: once approved it
        keeps the session and publishes its key bundle (``member``); still waiting is ``pending``.
        Raises RemoteError (another refusal), NodeUnreachable."""
        device = self.device
        standing = str(await device.state.get("standing") or MEMBER)
        if standing == MEMBER or not ask:
            return standing
        try:
            await device.sign_in()
        except RemoteError as exc:
            if exc.code == "auth.pending":
                return PENDING
            raise
        await self.publish_bundle()
        await device.state.set("standing", MEMBER)
        return MEMBER

    async def take_over(self) -> int | None:
        """Make this device the one the home node delivers to, from any other (spec §13.4), and
        start from what this device holds: its messages numbered past the other's, its sessions
        let go, its bundle and one-time pre-keys published (spec §9.5, Taking the identity over).

        Returns how many conversations' next message goes with scheme 1 for it (R-9.5-6), or None
        when this device already was the one: then nothing changes, so a take-over asked for by
        mistake costs no conversation its forward secrecy. Raises RemoteError, NodeUnreachable.
        """
        device = self.device
        try:
            await device.sign_in()
            return None
        except MovedError:
            pass  # another device holds the identity: take it back
        await device.sign_in(take_over=True)
        # Without a backup this device's sessions may be behind the other's; what is sealed to the
        # member from now on must be sealed to keys this device holds (spec §9.5, R-9.5-6).
        await took_over(device, backup=False)
        await self.publish_bundle()
        await replenish(device)
        return await count_stale(device)

    async def set_passphrase(self, passphrase: str | None) -> None:
        """Keep the keyring locked under ``passphrase`` (None: unencrypted, as the person asked)
        from now on, leaving no copy of the old form in the device's files (spec §9.6)."""
        device = self.device
        await device.state.set("keyring", kr.lock(device.keys, passphrase))
        await device.state.scrub()

    async def show(self) -> dict[str, Any]:
        meta = await self.device.state.dump_meta()
        secret, _, expires = self.device.keys.current
        return {
            "peer": self.device.id.text,
            "node": meta.get("node"),
            "standing": meta.get("standing") or MEMBER,
            "name": meta.get("name"),
            "encrypted": kr.is_locked(bytes(meta["keyring"])),
            "encryption_key": secret.public.hex,
            "key_expires_at": expires,
        }

    async def publish_bundle(self) -> None:
        """Sign and publish this peer's key bundle, naming the current home node (spec §4.3)."""
        device = self.device
        bundle = await sign_bundle(device)
        await device.call(lambda: device.api.put_keys(bundle.raw))

    async def renew_keys_if_due(self, passphrase: str | None) -> bool:
        """Rotate the encryption key when its bundle nears expiry; old secrets stay to open late mail."""
        device = self.device
        if device.keys.current[2] - device.now() > BUNDLE_RENEW:
            return False
        now = device.now()
        device.keys.encryption.append((EncryptionSecret(nacl.utils.random(32)), now, now + BUNDLE_LIFETIME))
        device.keys.encryption = [k for k in device.keys.encryption if k[2] > now - 30 * DAY]
        await device.state.set("keyring", kr.lock(device.keys, passphrase))
        await self.publish_bundle()
        return True

    async def move(self, node: str, invite: str | None = None) -> dict[str, Any]:
        """Join ``node``, publish a bundle naming it, and ask the old node to forward (spec §13.5).

        The old node gets a freshly signed ``move`` statement naming both nodes, valid for
        MOVE_LIFETIME and taken once. Raises WrongNode if ``node`` hands out another node's
        challenge, RemoteError, NodeUnreachable.
        """
        device = self.device
        old = device.api
        new = NodeAPI(node, device.http, clock=device.clock)
        await new.sign_in(device.keys.identity, now=device.now(), invite=invite, device=await device.device_id())
        device.api = new
        await self.publish_bundle()
        try:
            statement = device.sign(Move(old.url, new.url), MOVE_LIFETIME)
            forwarded = await old.move(new.url, statement.raw)
        except RemoteError:
            device.api = old
            raise
        await device.state.set("node", new.url)
        await device.save_token()
        return {"peer": device.id.text, "node": new.url, "previous": old.url, "forwarded": forwarded["forwarded"]}

    async def erase_me(self) -> dict[str, Any]:
        """Ask the home node and its federation to delete everything they hold for this key (spec §13.6)."""
        device = self.device
        erasure = device.sign(Erasure(), ERASURE_LIFETIME)
        answer = await device.call(lambda: device.api.erase(erasure.raw))
        await device.state.set("token", None)
        return {"status": answer["status"], "listings": answer["listings"], "node": device.api.url}

    async def resources(self) -> dict[str, Any]:
        """The home community's own support resources, from its node document (spec §13.2)."""
        document = await self.device.api.document()
        summary = document.get("summary", {})
        return {"node": summary.get("url"), "name": summary.get("name"), "resources": summary.get("resources", [])}

    async def export_backup(self, file: Path, passphrase: str) -> dict[str, Any]:
        """Everything this device holds, sealed under ``passphrase``, written to ``file`` (mode 0600)."""
        backup = await self.device.state.export_backup(self.device.keys.to_bytes())
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(kr.seal_blob(backup.to_bytes(), passphrase))
        return {"file": str(file), "peer": self.device.id.text, "connections": backup.connections}
