"""Members, invites, sign-in challenges and sessions (spec §13.4 "Signing in", §13.9).

Sessions are also remembered in memory, so that authenticating a request costs no read. Only
this process ends sessions (erasure, moving, expiry), and each of those forgets them here too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .db import Conn, Database, GroupWriter, Reader
from .rows import Invite, Member, MemberStatus, SignedIn

__all__ = ["MembersMixin"]


class MembersMixin(Database):
    """Who may use this node, and who is signed in. Every call raises StorageError if the database fails."""

    SESSION_CACHE = 10_000  # signed-in tokens remembered, so a request costs no read to authenticate

    def __init__(self, writer: GroupWriter, readers: Sequence[Reader], path: Path | None) -> None:
        super().__init__(writer, readers, path)
        # token hash -> (peer, expires_at, moved_at)
        self._sessions: OrderedDict[bytes, tuple[bytes, int, int | None]] = OrderedDict()
        # Bumped whenever sessions end, so a read that raced with the ending is not cached.
        self._session_epoch = 0
        # Told the peer whose sessions ended, so other processes on the database forget them too.
        self.sessions_ended: Callable[[bytes], None] = lambda peer: None

    # --- members ---------------------------------------------------------------------------

    async def member(self, peer: bytes) -> Member | None:
        row = await self._one(f"SELECT {_MEMBER} FROM members WHERE peer=?", (peer,))
        return None if row is None else _member(row)

    async def set_member(self, peer: bytes, status: str, now: int, moved_to: str | None = None) -> None:
        """Record ``peer`` with ``status`` (a MemberStatus). Raises ValueError for any other status."""
        await self._write(
            "INSERT INTO members (peer, status, joined_at, moved_to) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(peer) DO UPDATE SET status=excluded.status, moved_to=excluded.moved_to",
            (peer, MemberStatus(status).value, now, moved_to),
        )

    async def members(self, status: str | None = None) -> list[Member]:
        """Every member, or those with ``status``, oldest first."""
        if status is None:
            rows = await self._all(f"SELECT {_MEMBER} FROM members ORDER BY joined_at")
        else:
            rows = await self._all(
                f"SELECT {_MEMBER} FROM members WHERE status=? ORDER BY joined_at",
                (status,),
            )
        return [_member(r) for r in rows]

    async def join_with_invite(self, peer: bytes, code_hash: bytes, now: int, status: str) -> bool:
        """Spend one use of an invite and make ``peer`` a member, atomically; False if the invite is not good.

        Raises ValueError for a status that is not a MemberStatus.
        """
        joined = MemberStatus(status).value

        def job(db: Conn) -> bool:
            cursor = db.execute(
                "UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash=? AND revoked=0"
                " AND uses_left > 0 AND expires_at > ?",
                (code_hash, now),
            )
            if cursor.rowcount != 1:
                return False
            db.execute(
                "INSERT INTO members (peer, status, joined_at) VALUES (?, ?, ?)"
                " ON CONFLICT(peer) DO UPDATE SET status=excluded.status",
                (peer, joined, now),
            )
            return True

        return await self._writer.run(job)

    # --- invites ---------------------------------------------------------------------------

    async def create_invite(self, code_hash: bytes, now: int, expires_at: int, uses: int, note: str | None) -> None:
        await self._write("INSERT INTO invites VALUES (?, ?, ?, ?, 0, ?)", (code_hash, now, expires_at, uses, note))

    async def revoke_invite(self, code_hash: bytes) -> bool:
        """True if there was such an invite."""
        return await self._write("UPDATE invites SET revoked=1 WHERE code_hash=?", (code_hash,)) == 1

    async def invites(self) -> list[Invite]:
        rows = await self._all(
            "SELECT code_hash, created_at, expires_at, uses_left, revoked, note FROM invites ORDER BY created_at"
        )
        return [Invite(bytes(r[0]), r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    # --- challenges and sessions -----------------------------------------------------------

    async def add_challenge(self, challenge: bytes, expires_at: int) -> None:
        await self._write("INSERT INTO challenges VALUES (?, ?)", (challenge, expires_at))

    async def take_challenge(self, challenge: bytes, now: int) -> bool:
        """True once for a live challenge: it is deleted as it is used."""
        return await self._write("DELETE FROM challenges WHERE challenge=? AND expires_at > ?", (challenge, now)) == 1

    async def add_session(self, token_hash: bytes, peer: bytes, expires_at: int, device: bytes | None = None) -> None:
        await self._write(
            "INSERT INTO sessions (token_hash, peer, expires_at, device) VALUES (?, ?, ?, ?)",
            (token_hash, peer, expires_at, device),
        )
        self._remember_session(token_hash, peer, expires_at, None)

    async def session_peer(self, token_hash: bytes, now: int) -> SignedIn | None:
        """Whose session this token opens, or None if it is unknown or expired."""
        known = self._sessions.get(token_hash)
        if known is not None:
            if known[1] > now:
                self._sessions.move_to_end(token_hash)
                return SignedIn(known[0], known[2])
            del self._sessions[token_hash]
        epoch = self._session_epoch
        row = await self._one(
            "SELECT peer, expires_at, moved_at FROM sessions WHERE token_hash=? AND expires_at > ?", (token_hash, now)
        )
        if row is None:
            return None
        if epoch == self._session_epoch:  # no session ended while we read: the row is current
            self._remember_session(token_hash, bytes(row[0]), int(row[1]), row[2])
        return SignedIn(bytes(row[0]), row[2])

    def _remember_session(self, token_hash: bytes, peer: bytes, expires_at: int, moved_at: int | None) -> None:
        self._sessions[token_hash] = (peer, expires_at, moved_at)
        self._sessions.move_to_end(token_hash)
        while len(self._sessions) > self.SESSION_CACHE:
            self._sessions.popitem(last=False)

    async def claim_device(self, peer: bytes, device: bytes, now: int, *, take_over: bool) -> bool:
        """Make ``device`` the one ``peer``'s mail goes to (spec §13.4, One device at a time).

        A member with no device yet takes this one. Another device already recorded is replaced
        only with ``take_over``: every session of ``peer`` opened from any other device is then
        marked moved at ``now``, so it is refused ``auth.moved`` from its next request, and the
        member's one-time pre-keys, uploaded by the other device, are deleted. Returns
        False, changing nothing, when another device holds the identity and ``take_over`` is not set.
        """

        def job(db: Conn) -> bool:
            row = db.execute("SELECT device FROM members WHERE peer=?", (peer,)).fetchone()
            if row is None:
                return False
            if row[0] is not None and bytes(row[0]) == device:
                return True
            if row[0] is not None and not take_over:
                return False
            db.execute("UPDATE members SET device=?, device_at=? WHERE peer=?", (device, now, peer))
            if take_over:
                db.execute(
                    "UPDATE sessions SET moved_at=? WHERE peer=? AND moved_at IS NULL"
                    " AND (device IS NULL OR device != ?)",
                    (now, peer, device),
                )
            if row[0] is not None:  # another device's one-time pre-keys: their secrets left with it (R-13.5-29)
                db.execute("DELETE FROM prekeys WHERE owner=?", (peer,))
            return True

        self._forget_sessions(peer)  # before the write, and again once it is committed
        try:
            return await self._writer.run(job)
        finally:
            self._forget_sessions(peer)

    def _forget_sessions(self, peer: bytes) -> None:
        self.forget_cached_sessions(peer)
        self.sessions_ended(peer)

    def forget_cached_sessions(self, peer: bytes) -> None:
        """Drop ``peer``'s sessions from this process's cache (another process ended them)."""
        self._session_epoch += 1
        for token_hash in [t for t, (who, _, _) in self._sessions.items() if who == peer]:
            del self._sessions[token_hash]


_MEMBER = "peer, status, joined_at, moved_to, device, device_at"


def _member(row: Any) -> Member:
    device = None if row[4] is None else bytes(row[4])
    return Member(bytes(row[0]), MemberStatus(row[1]), row[2], row[3], device, row[5])
