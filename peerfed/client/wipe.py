"""Deleting this device's copy: one erased conversation (spec §9.4, §9.5), or everything after an erasure (§13.6)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from peerfed.protocol import Connection

from .errors import ClientError
from .state import LocalState
from .stored import encode_connection

__all__ = ["DEVICE_FILES", "erase_conversation", "wipe_home"]

DEVICE_FILES = ("peer.sqlite3", "peer.sqlite3-wal", "peer.sqlite3-shm")


async def erase_conversation(state: LocalState, ended: Connection) -> None:
    """Delete every plaintext of the ended connection ``ended`` from this device (spec §9.4, §9.5).

    Its signed messages go, all of them (the reach-out's hello and terms, the reply, agreements,
    messages, the end), with any drafts; what stays is the connection's row (its id, listing id,
    peer id, side) and its state with the terms taken out: ended, by whom, and the ids and
    sequence numbers already seen, so nothing sent on it later is taken. The state is stored as
    of the last event number, so no replay needs the deleted messages again.
    Raises ClientError (``local.storage``).
    """
    kept = replace(ended, round_terms=(), in_force=None)
    await state.write("BEGIN IMMEDIATE")
    try:
        rows = await state.select("SELECT COALESCE(MAX(n), 0) FROM events WHERE connection=?", (ended.id,))
        through = int(rows[0][0])
        await state.write("DELETE FROM outbox WHERE connection=?", (ended.id,))
        await state.write("DELETE FROM events WHERE connection=?", (ended.id,))
        # Deleted, then inserted, not updated: secure_delete zeroes a deleted row, while an
        # update that shrinks a row in place may leave the old terms' tail in the page.
        await state.write("DELETE FROM connection_states WHERE connection=?", (ended.id,))
        await state.write(
            "INSERT INTO connection_states (connection, through, state) VALUES (?, ?, ?)",
            (ended.id, through, state.seal(encode_connection(kept))),
        )
        await state.write("COMMIT")
    except BaseException:
        await state.write("ROLLBACK")
        raise
    # secure_delete (set when the database opens) zeroes the deleted rows in the database file,
    # but the write-ahead log still holds every earlier version of those pages, plaintext
    # included, until a checkpoint copies the log back and TRUNCATE empties the file. (If a reader
    # in another process holds the log just then, SQLite checkpoints and deletes it when the last
    # connection to the database closes.)
    await state.write("PRAGMA wal_checkpoint(TRUNCATE)")


def wipe_home(home: Path) -> str:
    """Delete this device's database from ``home`` (its identity, keys and conversations), each file
    overwritten with zeros first; the database must be closed. Returns ``"wiped"``. Overwriting is
    best effort: a copy-on-write file system or an SSD may keep old blocks (spec §12).
    Raises ClientError (``local.storage``)."""
    try:
        for name in DEVICE_FILES:
            path = home / name
            if not path.exists():
                continue
            with open(path, "r+b") as f:
                f.write(bytes(path.stat().st_size))
                f.flush()
                os.fsync(f.fileno())
            path.unlink()
    except OSError as exc:
        raise ClientError(f"cannot delete this device's copy in {home}: {exc}", "local.storage") from exc
    return "wiped"
