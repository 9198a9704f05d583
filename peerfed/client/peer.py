"""The peer's side of peerfed as a library: one facade over its parts (spec §4, §6, §8, §9, §13).

``Peer`` is what a command line, a bot or another front end builds on. It keeps keys and the
whole relationship on this device (``state.LocalState``), speaks to the home node through
``transport.NodeAPI``, and runs every connection through the protocol's state machine, so it
refuses locally what the other peer's client would refuse anyway. The work is done by its parts,
one module each: ``account`` (identity, key bundle, home node), ``listings`` (publish, browse),
``conversations`` (the support connection), ``inbox`` (receiving), ``safety`` (block, report);
``views`` shapes what they return.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.protocol import Connection, Envelope, KeyBundle, Listing, PeerId, RemoteError, Terms

from . import account
from . import keyring as kr
from .account import Account
from .conversations import Conversations
from .device import DAY, Device
from .forgetting import forget_due
from .inbox import Inbox, SyncReport
from .listings import Listings
from .outbox import Draft, Flushed
from .prekeys import replenish
from .safety import Safety
from .state import LocalState
from .taking_over import took_over
from .transport import NodeAPI
from .views import terms_json

__all__ = ["DAY", "Peer", "SyncReport", "terms_json"]


class Peer:
    """One peer on this device. Build with ``create`` (a new identity), ``load`` or ``restore``."""

    def __init__(
        self, state: LocalState, keys: kr.Keyring, http: aiohttp.ClientSession, clock: Callable[[], float] = time.time
    ) -> None:
        self.device = Device(state, keys, http, clock)
        self.account = Account(self.device)
        self.listings = Listings(self.device)
        self.conversations = Conversations(self.device, self.listings)
        self.inbox = Inbox(self.device, self.listings, self.conversations)
        self.safety = Safety(self.device, self.listings, self.conversations)

    # --- what the parts share -------------------------------------------------------------

    @property
    def state(self) -> LocalState:
        return self.device.state

    @property
    def keys(self) -> kr.Keyring:
        return self.device.keys

    @property
    def http(self) -> aiohttp.ClientSession:
        return self.device.http

    @property
    def clock(self) -> Callable[[], float]:
        return self.device.clock

    @property
    def api(self) -> NodeAPI:
        return self.device.api

    @api.setter
    def api(self, api: NodeAPI) -> None:
        self.device.api = api

    @property
    def pending_cap(self) -> int:
        """How many unanswered reach-outs this peer keeps before dropping new ones."""
        return self.inbox.pending_cap

    @pending_cap.setter
    def pending_cap(self, cap: int) -> None:
        self.inbox.pending_cap = cap

    @property
    def id(self) -> PeerId:
        return self.device.id

    def now(self) -> int:
        return self.device.now()

    async def call(self, action: Callable[[], Awaitable[Any]]) -> Any:
        """Run a node call, signing in again once if the session expired."""
        return await self.device.call(action)

    # --- creating, loading and restoring an identity ------------------------------------------

    @classmethod
    async def create(
        cls,
        home: Path,
        http: aiohttp.ClientSession,
        *,
        node: str,
        name: str | None = None,
        invite: str | None = None,
        passphrase: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Peer:
        """A new identity in ``home``, joined to ``node``. Raises ClientError, RemoteError, NodeUnreachable."""
        state = await account.open_new(home)
        peer = cls(state, account.new_keyring(int(clock())), http, clock)
        peer.device.passphrase = passphrase
        try:
            await peer.account.join(node, name=name, invite=invite, passphrase=passphrase)
        except BaseException:
            await state.close()
            raise
        return peer

    @classmethod
    async def load(
        cls,
        home: Path,
        http: aiohttp.ClientSession,
        *,
        passphrase: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Peer:
        """The identity in ``home``. Raises ClientError (``local.no_identity``), WrongPassphrase."""
        state, keys = await account.open_existing(home, passphrase)
        peer = cls(state, keys, http, clock)
        peer.device.passphrase = passphrase
        stored = await state.get("token")
        peer.api = NodeAPI(await state.get("node"), http, kr.open_token(keys, stored), clock=clock)
        if isinstance(stored, str):  # a token an older version kept in plain text: seal it now
            await peer.device.save_token()
        return peer

    @classmethod
    async def restore(
        cls,
        home: Path,
        http: aiohttp.ClientSession,
        blob: bytes,
        passphrase: str | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> Peer:
        """Restore a backup into the empty ``home`` and sign in with the restored key, taking the
        identity over: from now on the home node delivers to this device only, and the device
        the backup came from is refused ``auth.moved`` (spec §13.4, One device at a time).

        Raises WrongPassphrase, ClientError (``local.keyring``), RemoteError, NodeUnreachable.
        """
        await account.restore(home, blob, passphrase)
        peer = await cls.load(home, http, passphrase=passphrase, clock=clock)
        try:
            await peer.device.sign_in(take_over=True)
            # The backup's sessions are kept (spec §9.6); the floor still applies (R-9.5-5), and the
            # node let the one-time pre-keys go with the other device (R-13.5-29).
            await took_over(peer.device, backup=True)
            await peer.account.publish_bundle()  # the other device may have renewed its keys (R-9.5-7)
            await replenish(peer.device)
        except BaseException:
            await peer.close()
            raise
        return peer

    @staticmethod
    async def needs_passphrase(home: Path) -> bool:
        return await account.needs_passphrase(home)

    async def close(self) -> None:
        await self.device.state.close()

    # --- the account ---------------------------------------------------------------------------

    async def show(self) -> dict[str, Any]:
        return await self.account.show()

    async def publish_bundle(self) -> None:
        await self.account.publish_bundle()

    async def renew_keys_if_due(self, passphrase: str | None) -> bool:
        return await self.account.renew_keys_if_due(passphrase)

    async def move(self, node: str, invite: str | None = None) -> dict[str, Any]:
        return await self.account.move(node, invite)

    async def erase_me(self) -> dict[str, Any]:
        return await self.account.erase_me()

    async def resources(self) -> dict[str, Any]:
        return await self.account.resources()

    async def export_backup(self, file: Path, passphrase: str) -> dict[str, Any]:
        return await self.account.export_backup(file, passphrase)

    # --- listings ------------------------------------------------------------------------------

    async def post_listing(self, listing: Listing, expires_in: int) -> dict[str, Any]:
        return await self.listings.post(listing, expires_in)

    async def my_listings(self) -> list[dict[str, Any]]:
        return await self.listings.mine()

    async def withdraw(self, prefix: str) -> dict[str, Any]:
        return await self.listings.withdraw(prefix)

    async def browse(self, **filters: Any) -> list[dict[str, Any]]:
        return await self.listings.browse(**filters)

    async def bundle_for(self, peer: PeerId) -> KeyBundle:
        return await self.listings.bundle_for(peer)

    async def resolve_listing(self, prefix: str, *, mine: bool = False) -> bytes:
        return await self.listings.resolve(prefix, mine=mine)

    async def resolve_peer(self, text: str) -> PeerId:
        return await self.listings.resolve_peer(text)

    # --- the support connection --------------------------------------------------------------

    async def resolve_connection(self, prefix: str) -> bytes:
        return await self.conversations.resolve(prefix)

    async def connection_state(self, connection: bytes) -> Connection:
        return await self.conversations.state_of(connection)

    async def reach(self, prefix: str, hello: str, terms: Terms | None = None) -> dict[str, Any]:
        return await self.conversations.reach(prefix, hello, terms)

    async def respond(self, prefix: str, accept: bool, reply: str | None = None) -> dict[str, Any]:
        return await self.conversations.respond(prefix, accept, reply)

    async def agree(self, prefix: str, terms: Terms | None) -> dict[str, Any]:
        return await self.conversations.agree(prefix, terms)

    async def agreement(self, prefix: str) -> dict[str, Any]:
        return await self.conversations.agreement(prefix)

    async def send(self, prefix: str, text: str, reply_to: bytes | None = None) -> dict[str, Any]:
        return await self.conversations.send(prefix, text, reply_to)

    async def end(self, prefix: str, erase: bool = False) -> dict[str, Any]:
        return await self.conversations.end(prefix, erase)

    async def messages(self, prefix: str) -> dict[str, Any]:
        return await self.conversations.messages(prefix)

    async def connections(self) -> list[dict[str, Any]]:
        return await self.conversations.connections()

    async def drafts(self) -> list[Draft]:
        """Messages kept on this device, not yet delivered, oldest first (spec §9.5)."""
        return await self.conversations.outbox.drafts()

    async def retry_drafts(self) -> Flushed:
        """Deliver the kept drafts in order; what left and what is still kept."""
        return await self.conversations.outbox.flush()

    async def pending_reach_outs(self) -> int:
        return await self.conversations.pending_reach_outs()

    # --- receiving ---------------------------------------------------------------------------

    async def sync(self) -> SyncReport:
        """Fetch and apply the mailbox, deliver drafts, then renew the encryption key if its bundle
        nears expiry (spec §12: short bundle lifetimes), so a peer who syncs stays reachable.
        Raises RemoteError or NodeUnreachable when the home node fails."""
        if await self.account.standing(ask=True) == "pending":
            raise RemoteError("your request to join waits for the operator's approval", "auth.pending")
        report = await self.inbox.sync()
        report.renewed = await self.account.renew_keys_if_due(self.device.passphrase)
        return report

    async def forget_due(self) -> int:
        """Delete the messages whose agreed time to be forgotten has come (spec §9.7); how many went.

        Raises ClientError (``local.damaged``, ``local.storage``)."""
        return await forget_due(self.conversations)

    async def take(self, raw: bytes, report: SyncReport | None = None) -> Envelope | None:
        return await self.inbox.take(raw, report)

    def follow(self, prefix: str | None = None) -> AsyncIterator[Envelope | None]:
        return self.inbox.follow(prefix)

    # --- safety --------------------------------------------------------------------------------

    async def block(self, text: str) -> dict[str, Any]:
        return await self.safety.block(text)

    async def report(self, target: str, reason: str, disclose: str | None = None) -> dict[str, Any]:
        return await self.safety.report(target, reason, disclose)

    async def reports(self) -> dict[str, Any]:
        return await self.safety.reports()
