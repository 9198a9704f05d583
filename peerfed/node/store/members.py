"""Members, invites, sign-in challenges and sessions (spec §13.4 "Signing in", §13.9).

Sessions are also remembered in memory, so that authenticating a request costs no read. Only
this process ends sessions (erasure, moving, expiry), and each of those forgets them here too.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from pathlib import Path

import aiosqlite

from .db import Database, GroupWriter
from .rows import Invite, Member, MemberStatus

__all__ = ["MembersMixin"]


class MembersMixin(Database):
    """Who may use this node, and who is signed in. Every call raises StorageError if the database fails."""

    SESSION_CACHE = 10_000  # signed-in tokens remembered, so a request costs no read to authenticate

    def __init__(self, writer: GroupWriter, reader: aiosqlite.Connection, path: Path) -> None:
        super().__init__(writer, reader, path)
        # token hash -> (peer, expires_at)
        self._sessions: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()
        # Bumped whenever sessions end, so a read that raced with the ending is not cached.
        self._session_epoch = 0

    # --- members ---------------------------------------------------------------------------

    async def member(self, peer: bytes) -> Member | None:
        row = await self._one("SELECT peer, status, joined_at, moved_to FROM members WHERE peer=?", (peer,))
        return None if row is None else _member(row)

    async def set_member(self, peer: bytes, status: str, now: int, moved_to: str | None = None) -> None:
        """Record ``peer`` with ``status`` (a MemberStatus). Raises ValueError for any other status."""
        await self._write(
            "INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT(peer) DO UPDATE SET status=excluded.status,"
            " moved_to=excluded.moved_to",
            (peer, MemberStatus(status).value, now, moved_to),
        )

    async def members(self, status: str | None = None) -> list[Member]:
        """Every member, or those with ``status``, oldest first."""
        if status is None:
            rows = await self._all("SELECT peer, status, joined_at, moved_to FROM members ORDER BY joined_at")
        else:
            rows = await self._all(
                "SELECT peer, status, joined_at, moved_to FROM members WHERE status=? ORDER BY joined_at",
                (status,),
            )
        return [_member(r) for r in rows]

    async def join_with_invite(self, peer: bytes, code_hash: bytes, now: int, status: str) -> bool:
        """Spend one use of an invite and make ``peer`` a member, atomically; False if the invite is not good.

        Raises ValueError for a status that is not a MemberStatus.
        """
        joined = MemberStatus(status).value

        def job(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash=? AND revoked=0"
                " AND uses_left > 0 AND expires_at > ?",
                (code_hash, now),
            )
            if cursor.rowcount != 1:
                return False
            db.execute(
                "INSERT INTO members VALUES (?, ?, ?, NULL) ON CONFLICT(peer) DO UPDATE SET status=excluded.status",
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

    async def add_session(self, token_hash: bytes, peer: bytes, expires_at: int) -> None:
        await self._write("INSERT INTO sessions VALUES (?, ?, ?)", (token_hash, peer, expires_at))
        self._remember_session(token_hash, peer, expires_at)

    async def session_peer(self, token_hash: bytes, now: int) -> bytes | None:
        """The peer signed in with this token, or None if it is unknown or expired."""
        known = self._sessions.get(token_hash)
        if known is not None:
            if known[1] > now:
                self._sessions.move_to_end(token_hash)
                return known[0]
            del self._sessions[token_hash]
        epoch = self._session_epoch
        row = await self._one(
            "SELECT peer, expires_at FROM sessions WHERE token_hash=? AND expires_at > ?", (token_hash, now)
        )
        if row is None:
            return None
        if epoch == self._session_epoch:  # no session ended while we read: the row is current
            self._remember_session(token_hash, bytes(row[0]), int(row[1]))
        return bytes(row[0])

    def _remember_session(self, token_hash: bytes, peer: bytes, expires_at: int) -> None:
        self._sessions[token_hash] = (peer, expires_at)
        self._sessions.move_to_end(token_hash)
        while len(self._sessions) > self.SESSION_CACHE:
            self._sessions.popitem(last=False)

    def _forget_sessions(self, peer: bytes) -> None:
        self._session_epoch += 1
        for token_hash in [t for t, (who, _) in self._sessions.items() if who == peer]:
            del self._sessions[token_hash]


def _member(row: sqlite3.Row) -> Member:
    return Member(bytes(row[0]), MemberStatus(row[1]), row[2], row[3])
