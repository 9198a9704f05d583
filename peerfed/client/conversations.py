"""Support connections from this side: reach, respond, agree, talk, end (spec §8, §9).

Every step runs through the protocol's state machine (``peerfed.protocol.connection``) before
anything leaves the device, so this client refuses what the other peer's client would refuse.
Each applied step is stored twice over: the signed message itself (``events``: what a
conversation shows, what an erasure deletes) and the state machine's value after it
(``connection_states``). A command loads that value; only the events stored after it (by
another process, or all of them on a database from before states were kept) are replayed and
verified again, and the result is stored for the next command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nacl.utils

from peerfed.protocol import (
    Agreement,
    Connection,
    ConnectionStateError,
    Context,
    End,
    Envelope,
    KeyBundle,
    Message,
    PeerId,
    ReachOut,
    RemoteError,
    Response,
    Side,
    State,
    Terms,
    open_signed,
    unpack,
)
from peerfed.protocol.messages import SealedBody

from . import pending, reading, sessions
from .account import sign_bundle
from .device import DAY, Device, one_match
from .errors import ClientError, Undelivered
from .listings import Listings
from .outbox import Outbox
from .rows import EventRow
from .taking_over import floor
from .transport import NodeUnreachable
from .views import in_force_json, pending_json
from .wipe import erase_conversation

__all__ = ["REACH_OUT_LIFETIME", "Conversations"]

REACH_OUT_LIFETIME = 7 * DAY


class Conversations:
    """This peer's support connections: their states, steps and messages."""

    def __init__(self, device: Device, listings: Listings) -> None:
        self.device = device
        self.listings = listings
        self.outbox = Outbox(device, self._deliver)

    async def resolve(self, prefix: str) -> bytes:
        """The connection id ``prefix`` names; raises ClientError (``local.not_found``, ``local.ambiguous``)."""
        found = await self.device.state.prefix("connections", prefix)
        return one_match(found, prefix, "connection", "see: peerfed connections")

    # --- the state machine's value, stored and replayed -----------------------------------

    async def state_of(self, connection: bytes) -> Connection:
        """The connection's current state. Raises ClientError (``local.damaged``)."""
        conn, _ = await self.load(connection)
        return conn

    async def replay(self, connection: bytes) -> Connection:
        """The state rebuilt from the connection's whole signed history, each message verified again.

        Stores nothing. Raises ClientError (``local.damaged``) if the history has no reach-out.
        """
        events = await self.device.state.events(connection)
        if not events:
            return await self._erased(connection)
        conn, _ = self._replay(None, 0, events)
        return conn

    async def _erased(self, connection: bytes) -> Connection:
        """The state of a connection whose every message was erased (spec §9.4), from its row alone.

        Only an erasure leaves a connection with no events; its stored state can be missing after
        a restored backup, which carries no states. Raises ClientError (``local.damaged``).
        """
        row = await self.device.state.connection(connection)
        if row is None:
            raise ClientError("this connection has no record", "local.damaged")
        me, other = self.device.id, PeerId(row.peer)
        reacher, author = (me, other) if row.side is Side.REACHER else (other, me)
        return Connection(connection, reacher, author, row.listing, 0, state=State.ENDED, erase_requested=True)

    async def load(self, connection: bytes) -> tuple[Connection, int]:
        """The stored state and the event number it reflects, brought up to date and stored again."""
        state = self.device.state
        stored = await state.connection_state(connection)
        if stored is None:
            events = await state.events(connection)
            if not events:
                return await self._erased(connection), 0
            conn, through = self._replay(None, 0, events)
        else:
            later = await state.events(connection, after=stored.through)
            if not later:
                return stored.state, stored.through
            conn, through = self._replay(stored.state, stored.through, later)
        await state.save_connection_state(conn, through=through, since=through)
        return conn, through

    def _replay(self, conn: Connection | None, through: int, events: list[EventRow]) -> tuple[Connection, int]:
        """``conn`` (as of event ``through``; None: nothing yet) after ``events``, each verified again."""
        if conn is None:
            if not events or events[0].type != "reach-out":
                raise ClientError("this connection has no reach-out on record", "local.damaged")
            conn = Connection.start(open_signed(events[0].raw, context=Context.SEALED, now=events[0].at))
            through, events = events[0].n, events[1:]
        for event in events:
            through = event.n
            env = open_signed(event.raw, context=Context.SEALED, now=event.at)
            try:
                conn = conn.receive(env)
            except ConnectionStateError:
                continue  # erased content can make a later replay refuse a step; the rest holds
        return conn, through

    async def record(self, connection: bytes, inner: Envelope, after: Connection, since: int) -> None:
        """Store an applied message and the state after it (``since``: the event the state before reflected)."""
        device = self.device
        n = await device.state.add_event(connection, inner.id, bytes(inner.author), inner.type, inner.raw, device.now())
        if n is not None:
            await device.state.save_connection_state(after, through=n, since=since)
        if after.state in (State.ENDED, State.DECLINED):
            await sessions.drop(device, connection)  # nothing more is sealed on it (R-9.4-3)

    # --- steps this peer takes --------------------------------------------------------------

    async def reach(self, prefix: str, hello: str, terms: Terms | None = None) -> dict[str, Any]:
        """Reach out about a listing (spec §9.1). Raises ClientError, RemoteError (``time.expired``, ``gone``)."""
        device = self.device
        listing_id = await self.listings.resolve(prefix)
        row = await device.state.listing(listing_id)
        assert row is not None
        author = PeerId(row.author)
        if author == device.id:
            raise ClientError("that is your own listing", "local.not_allowed")
        if row.expires_at <= device.now():
            raise RemoteError("that listing has expired", "time.expired")
        try:
            await device.call(lambda: device.api.call("GET", f"/api/v1/listings/{listing_id.hex()}"))
        except RemoteError as exc:
            if exc.code in ("gone", "not_found"):
                raise RemoteError("that listing was withdrawn or is no longer listed", "gone") from exc
            raise
        connection = nacl.utils.random(16)
        own = await sign_bundle(device)  # carried inside the seal: the author needs no look-up (spec §8.2)
        inner = device.sign(ReachOut(author, connection, listing_id, hello, terms, own.raw), REACH_OUT_LIFETIME)
        started = Connection.start(inner)
        try:
            await self._deliver(author, inner)
        except BaseException:
            # Not sent, so no connection: the session it would have begun goes too.
            await sessions.drop(device, connection)
            await sessions.forget_sealed(device, inner)
            raise
        await device.state.add_connection(connection, listing_id, bytes(author), Side.REACHER, device.now())
        await self.record(connection, inner, started, since=0)
        return {
            "connection": connection.hex(),
            "listing": listing_id.hex(),
            "peer": author.text,
            "state": "reached-out",
        }

    async def _deliver(self, to: PeerId, inner: Envelope) -> None:
        """Seal ``inner`` with the scheme §14.7 names and hand it to the home node.

        Raises RemoteError, NodeUnreachable; a scheme-2 message not taken is kept sealed for the retry.
        """
        device = self.device
        signed = await self.listings.signed_bundle_for(to)
        bundle = signed.body
        assert isinstance(bundle, KeyBundle)
        row = await device.state.connection(inner.body.connection)  # type: ignore[union-attr]
        raw = await sessions.seal_for(device, signed, inner, None if row is None else row.side)
        try:
            await device.call(lambda: device.api.send(raw))
        except RemoteError as exc:
            # The home node holds no bundle for the recipient (one met through a reach-out, on a
            # node it does not federate listings with): name the home the recipient signed
            # (spec §13.5, Routing). The node's own copy is tried first: it is the newer after a move.
            if exc.code != "not_found" or not bundle.home:
                raise
            await device.call(lambda: device.api.send(raw, bundle.home))
        await sessions.forget_sealed(device, inner)

    async def _step(
        self,
        prefix: str,
        make: Callable[[Connection, PeerId, bytes], SealedBody],
        *,
        must_deliver: bool = True,
        draft: bool = False,
    ) -> tuple[bytes, Envelope, Connection, bool]:
        """Sign, check, deliver and record one step; the bool says whether it was delivered.

        A step that need not be delivered (a decline: no answer is owed) is recorded even when the
        other peer's key bundle or the node is out of reach, so declining never depends on them.
        A ``draft`` step (a message) is recorded and kept in the outbox first, then delivered
        after any older drafts; raises Undelivered (``local.undelivered``) if it stays a draft.
        Any other step first tries to deliver the connection's drafts, so it does not overtake them.
        """
        device = self.device
        connection = await self.resolve(prefix)
        row = await device.state.connection(connection)
        assert row is not None
        other = PeerId(row.peer)
        if not draft:
            await self.outbox.flush(connection)
        conn, through = await self.load(connection)
        inner = device.sign(make(conn, other, connection))
        after = conn.send(inner)  # raises IllegalSend before anything leaves the device
        if draft:
            await self.record(connection, inner, after, since=through)
            await self.outbox.queue(connection, inner)
            flushed = await self.outbox.flush(connection)
            if flushed.kept:
                raise Undelivered(
                    f"not delivered ({flushed.error}); the message is kept as a draft and sent on the"
                    " next sync, or now with: peerfed outbox retry"
                )
            return connection, inner, after, True
        delivered = True
        try:
            await self._deliver(other, inner)
        except (RemoteError, NodeUnreachable):
            if must_deliver:
                raise
            delivered = False
        await self.record(connection, inner, after, since=through)
        return connection, inner, after, delivered

    async def respond(self, prefix: str, accept: bool, reply: str | None = None) -> dict[str, Any]:
        """Accept or decline a reach-out; raises IllegalSend if this peer may not.

        A decline is kept even when it cannot be sent (spec §13.5): the reach-out stops waiting here,
        and the reacher's lapses on its own.
        """
        connection, _, after, delivered = await self._step(
            prefix, lambda c, other, cid: Response(other, cid, accept, reply), must_deliver=accept
        )
        return {"connection": connection.hex(), "state": after.state.value, "delivered": delivered}

    async def agree(self, prefix: str, terms: Terms | None) -> dict[str, Any]:
        """Propose ``terms``, or countersign the other peer's pending ones (``terms=None``, or identical terms)."""

        def make(conn: Connection, other: PeerId, cid: bytes) -> Agreement:
            pending = self._their_pending_terms(conn)
            if terms is None:
                if pending is None:
                    raise ClientError("there are no proposed terms to accept", "local.not_allowed")
                return Agreement(other, cid, conn.round, pending)
            if pending is not None and pending == terms:
                return Agreement(other, cid, conn.round, terms)
            return Agreement(other, cid, conn.round + 1, terms)

        connection, inner, after, _ = await self._step(prefix, make)
        body = inner.body
        assert isinstance(body, Agreement)
        return {
            "connection": connection.hex(),
            "version": body.version,
            "state": after.state.value,
            "in_force": in_force_json(after),
        }

    def _side(self, conn: Connection) -> Side:
        side = conn.side_of(self.device.id)
        assert side is not None
        return side

    def _their_pending_terms(self, conn: Connection) -> Terms | None:
        """The other side's terms in the current round, if this peer has not signed it yet."""
        mine = self._side(conn)
        if not conn.round_terms or any(side is mine for side, _ in conn.round_terms):
            return None
        return Terms.from_wire(unpack(conn.round_terms[-1][1]))

    async def agreement(self, prefix: str) -> dict[str, Any]:
        """The terms in force, and the terms one side proposed in the current round (spec §9.3)."""
        connection = await self.resolve(prefix)
        conn = await self.state_of(connection)
        pending = None
        if len(conn.round_terms) == 1:
            signer, terms = conn.round_terms[0]
            pending = pending_json(conn.round, signer is self._side(conn), Terms.from_wire(unpack(terms)))
        return {
            "connection": connection.hex(),
            "state": conn.state.value,
            "in_force": in_force_json(conn),
            "pending": pending,
        }

    async def send(self, prefix: str, text: str, reply_to: bytes | None = None) -> dict[str, Any]:
        """Send a message, numbered after this peer's last; raises IllegalSend if not allowed now."""

        lowest = await floor(self.device)  # past any another device used before a take-over (R-9.5-5)

        def make(conn: Connection, other: PeerId, cid: bytes) -> Message:
            mine = self._side(conn)
            used = [seq for side, seq in conn.seqs if side is mine]
            return Message(other, cid, max(max(used, default=0) + 1, lowest), text, reply_to)

        connection, inner, _, _ = await self._step(prefix, make, draft=True)
        body = inner.body
        assert isinstance(body, Message)
        return {"connection": connection.hex(), "seq": body.seq, "id": inner.id.hex()}

    async def end(self, prefix: str, erase: bool = False) -> dict[str, Any]:
        """End the connection, final for both (spec §9.4); ``erase`` asks the other client to delete it."""
        connection, _, after, _ = await self._step(prefix, lambda c, other, cid: End(other, cid, erase))
        if erase:  # delivered (an end must be): this side keeps no more than it asked the other to keep
            await erase_conversation(self.device.state, after)
        return {"connection": connection.hex(), "state": after.state.value, "erase": erase}

    async def pending_reach_outs(self, sender: bytes | None = None) -> int:
        """Reach-outs to this peer still unanswered and unexpired; from ``sender`` only, if given."""
        return await pending.count(self, sender)

    async def drop_pending(self, sender: bytes | None = None) -> int:
        """Forget unanswered reach-outs that expired, or every one from ``sender`` (spec §13.5)."""
        return await pending.drop(self, sender)

    # --- reading -----------------------------------------------------------------------------

    async def messages(self, prefix: str) -> dict[str, Any]:
        """The conversation in display order (spec §9.5), marked read; verified when stored."""
        return await reading.messages(self, prefix)

    async def connections(self) -> list[dict[str, Any]]:
        """Every connection, the most recently active first."""
        return await reading.connections(self)
