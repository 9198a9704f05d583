"""What a peer's parts share on this device: keys, database, clock, home-node session (spec §13.4).

``Device`` is small on purpose: the account, listings, conversations and inbox each hold one
and do their own work; the session belongs to none of them, because every one of them calls
the node and any call may find the session expired.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import nacl.utils

from peerfed.protocol import Envelope, MovedError, PeerId, RemoteError, sign
from peerfed.protocol.envelope import Body

from . import keyring as kr
from .display import local_time
from .errors import ClientError
from .lock import HomeLock
from .state import LocalState
from .transport import NodeAPI

__all__ = ["DAY", "DEVICE_BYTES", "MESSAGE_LIFETIME", "Device", "one_match"]

DAY = 86_400
DEVICE_BYTES = 16
MESSAGE_LIFETIME = 14 * DAY


class Device:
    """This device's keys and database, its clock, and its session with the home node."""

    def __init__(
        self,
        state: LocalState,
        keys: kr.Keyring,
        http: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.keys = keys
        self.http = http
        self.clock = clock
        self.api = NodeAPI("http://unset.invalid", http)
        self.lock = HomeLock.of(state.home)  # one writer per home (spec §9.5)
        # The passphrase the keyring was opened with, to lock it again after a key renewal; held
        # in this process's memory only, as the unlocked keys themselves are.
        self.passphrase: str | None = None

    def now(self) -> int:
        return int(self.clock())

    @property
    def id(self) -> PeerId:
        return self.keys.identity.peer_id

    def sign(self, body: Body, lifetime: int = MESSAGE_LIFETIME, *, until: int | None = None) -> Envelope:
        """``body`` signed by this peer, valid from now for ``lifetime`` seconds (or ``until``).

        Raises InvalidValue if the lifetime breaks spec §5.3.
        """
        now = self.now()
        return sign(self.keys.identity, body, created_at=now, expires_at=now + lifetime if until is None else until)

    async def device_id(self) -> bytes:
        """This device's id (spec §13.4, One device at a time): random, made once, kept in the database."""
        stored = await self.state.get("device")
        if isinstance(stored, bytes) and len(stored) == DEVICE_BYTES:
            return stored
        made = nacl.utils.random(DEVICE_BYTES)
        await self.state.set("device", made)
        return made

    async def sign_in(self, *, invite: str | None = None, take_over: bool = False) -> None:
        """Sign in to the home node from this device and keep the session (spec §13.4).

        Raises MovedError (``auth.moved``, worded for the person) if another device took this
        identity over, RemoteError, NodeUnreachable.
        """
        with _moved_words():
            await self.api.sign_in(
                self.keys.identity, now=self.now(), invite=invite, device=await self.device_id(), take_over=take_over
            )
        await self.save_token()

    async def call(self, action: Callable[[], Awaitable[Any]]) -> Any:
        """Run a node call, signing in again once if the session expired (spec §13.4).

        Raises what the call raises: RemoteError with the node's code, NodeUnreachable; a
        MovedError (``auth.moved``) says when another device took this identity over.
        """
        with _moved_words():
            try:
                return await action()
            except RemoteError as exc:
                if exc.code != "auth.required":
                    raise
            await self.sign_in()
            return await action()

    async def save_token(self) -> None:
        """Keep the current session token, sealed under the keyring (spec §12): never in plain text."""
        await self.state.set("token", kr.seal_token(self.keys, self.api.token))


@contextlib.contextmanager
def _moved_words() -> Iterator[None]:
    """A node's ``auth.moved`` said plainly, in this device's words and local time (spec §13.4)."""
    try:
        yield
    except MovedError as exc:
        raise MovedError(
            f"this identity now lives on another device (moved at {local_time(exc.moved_at)});"
            " this device no longer receives. What it holds stays readable here.",
            exc.moved_at,
        ) from exc


def one_match(found: list[bytes], prefix: str, what: str, hint: str) -> bytes:
    """The one id that ``prefix`` names; raises ClientError (``local.not_found``, ``local.ambiguous``)."""
    if not found:
        raise ClientError(f"no {what} starts with {prefix!r}; {hint}", "local.not_found")
    if len(found) > 1:
        raise ClientError(f"{len(found)} {what}s start with {prefix!r}; type more of the id", "local.ambiguous")
    return found[0]
