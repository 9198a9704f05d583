"""The backup file's contents once its passphrase opened it: keyring, meta values, table rows (spec §9.6).

``LocalState.export_backup`` and ``import_backup`` write and read them; the web client reads and
writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from peerfed.protocol import pack, unpack
from peerfed.protocol.encoding import Value

from .errors import ClientError

__all__ = ["BACKUP_FORMAT", "BACKUP_TABLES", "Backup", "device_only"]

BACKUP_FORMAT = "peerfed-export/1"
# The tables a backup carries, and their columns in the order the file lists them.
BACKUP_TABLES = {
    "peers": "peer, bundle, bundle_expires, home, name, blocked",
    "listings": "id, raw, author, origin, mine, expires_at, withdrawn, seen_at",
    "connections": "id, listing, peer, side, created_at, updated_at, read_seq",
    "events": "connection, inner_id, author, type, raw, at",
}


@dataclass(frozen=True)
class Backup:
    """What a backup file holds once opened: the unlocked keyring, meta values and table rows."""

    keyring: bytes
    meta: tuple[tuple[str, Value], ...]
    tables: tuple[tuple[str, tuple[list[Value], ...]], ...]

    @property
    def connections(self) -> int:
        """How many connections the backup holds."""
        return sum(len(rows) for name, rows in self.tables if name == "connections")

    def to_bytes(self) -> bytes:
        """The backup as the file carries it (sealed under a passphrase by the caller)."""
        meta: list[Value] = [[k, v] for k, v in self.meta]
        tables: list[Value] = [[name, list(rows)] for name, rows in self.tables]
        return pack([BACKUP_FORMAT, self.keyring, meta, tables])

    @classmethod
    def from_bytes(cls, data: bytes) -> Backup:
        """Parse an opened backup.

        Raises ClientError (``local.keyring``) if it is not one, EncodingError if it is not msgpack.
        """
        value = unpack(data)
        if not isinstance(value, list) or len(value) != 4 or value[0] != BACKUP_FORMAT:
            raise ClientError("this is not a peerfed backup", "local.keyring")
        _, keyring, meta, tables = value
        if not isinstance(keyring, bytes) or not isinstance(meta, list) or not isinstance(tables, list):
            raise ClientError("this is not a peerfed backup", "local.keyring")
        pairs: list[tuple[str, Value]] = []
        for pair in meta:
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
                raise ClientError("this is not a peerfed backup", "local.keyring")
            pairs.append((pair[0], pair[1]))
        return cls(keyring, tuple(pairs), tuple(_table(t) for t in tables))


def _table(table: Value) -> tuple[str, tuple[list[Value], ...]]:
    if isinstance(table, list) and len(table) == 2 and isinstance(table[0], str) and table[0] in BACKUP_TABLES:
        width = len(BACKUP_TABLES[table[0]].split(","))
        rows = table[1]
        if isinstance(rows, list) and all(isinstance(r, list) and len(r) == width for r in rows):
            return table[0], tuple(r for r in rows if isinstance(r, list))
    raise ClientError("this is not a peerfed backup", "local.keyring")


def device_only(key: str) -> bool:
    """Meta values a backup never carries: the keyring (it has its own place), the session token
    (the next device signs in for itself) and whether this device's history is sealed (its own).
    Pre-key secrets and scheme-2 sessions do travel, still sealed under the seed's key: a moved
    device must open what is in flight to it (spec §9.6, §14.4)."""
    return key in ("keyring", "token", "history")
