"""Backing up a node's data folder and restoring it into an empty one (spec §13.9, what a node stores).

A backup is one gzip-compressed tar file with exactly three members:

- ``manifest.json``: the format and its version, the software that wrote it, the database's
  schema version, the node's public key (hex), when it was made, and each file's size and SHA-256;
- ``node.sqlite3``: the database, copied with SQLite's online backup API (store.snapshot), so a
  serving node goes on taking writes meanwhile and the copy is the database as of one commit;
- ``node.key``: the node's secret signing key, as the data folder holds it. **Whoever has the
  backup can sign as the node**: keep it as safe as the key itself.

Restoring checks everything before anything lands in the folder: the manifest, each file's size
and hash, ``PRAGMA integrity_check`` on the database, its schema version (an older one is migrated
when the node next starts; a newer one is refused) and that the key is the one the manifest names.
It writes only into an empty (or missing) folder, holding that folder's serve lock meanwhile.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from peerfed import __version__
from peerfed.protocol import Identity
from peerfed.protocol.errors import LocalError

from .app import DATABASE_FILE
from .keys import KEY_FILE
from .runner import DataInUse, DataLock
from .store import SCHEMA_VERSION, StorageError
from .store.snapshot import check, snapshot

__all__ = ["FORMAT", "MANIFEST", "BackupError", "backup", "restore"]

FORMAT = "peerfed-node-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_LIMIT = 64 * 1024  # a manifest is a few hundred bytes; refuse to read a huge one
CHUNK = 1 << 20


class BackupError(LocalError):
    """A backup cannot be made or restored; ``code`` says why (``local.*``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def backup(data: Path, target: Path, *, force: bool, now: int) -> dict[str, Any]:
    """Write a backup of the data folder ``data`` to ``target``; what was written.

    Works beside a serving node (it takes no lock: SQLite's own locking keeps the copy
    consistent). Raises BackupError (``local.exists`` if ``target`` exists and not ``force``,
    ``local.no_key`` without a usable key file) or StorageError if the database cannot be copied.
    """
    if target.exists() and not force:
        raise BackupError("local.exists", f"{target} already exists (give --force to replace it)")
    key_text = _read_key(data / KEY_FILE)
    identity = _identity(key_text, "local.no_key", f"{data / KEY_FILE} does not hold a node key")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as work:
        copy = Path(work) / DATABASE_FILE
        schema = snapshot(data / DATABASE_FILE, copy)
        files = {DATABASE_FILE: _digest(copy), KEY_FILE: _digest_bytes(key_text)}
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "software": f"peerfed {__version__}",
            "schema": schema,
            "node_key": identity.peer_id.hex,
            "created_at": now,
            "files": files,
        }
        partial = Path(work) / "backup.tar.gz"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds the secret key
        with os.fdopen(fd, "wb") as out:
            with tarfile.open(fileobj=out, mode="w:gz") as tar:
                _add(tar, MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n", now)
                with copy.open("rb") as db:
                    _add(tar, DATABASE_FILE, db, now, size=copy.stat().st_size)
                _add(tar, KEY_FILE, key_text, now)
            out.flush()
            os.fsync(out.fileno())
        if force:
            os.replace(partial, target)
        else:
            try:
                os.link(partial, target)  # fails if the file appeared meanwhile: never overwrite
            except FileExistsError:
                raise BackupError("local.exists", f"{target} already exists (give --force to replace it)") from None
        _sync_dir(target.parent)
    size = target.stat().st_size
    return {
        "message": f"backed up node {identity.peer_id.hex[:16]}… (schema {schema}) to {target}, {size} bytes; "
        "it holds the node's secret key: keep it safe",
        "file": str(target),
        "bytes": size,
        "schema": schema,
        "node_key": identity.peer_id.hex,
        "created_at": now,
    }


def restore(archive: Path, data: Path) -> dict[str, Any]:
    """Restore the backup ``archive`` into the empty (or missing) folder ``data``; what was restored.

    Nothing is left in ``data`` unless every check passes. Raises BackupError:
    ``local.not_empty`` (the folder holds anything), ``local.no_backup`` (no such file),
    ``local.bad_backup`` (not a backup, damaged, or not matching its manifest),
    ``local.backup_too_new`` (a schema newer than this software), ``local.data_in_use``.
    """
    if data.exists() and (not data.is_dir() or any(data.iterdir())):
        raise BackupError(
            "local.not_empty", f"{data} is not an empty folder; restore only into a new or empty one (nothing changed)"
        )
    if not archive.is_file():
        raise BackupError("local.no_backup", f"no backup file at {archive}")
    created = not data.exists()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = DataLock(data)
    try:
        lock.acquire()
    except DataInUse as exc:
        raise BackupError("local.data_in_use", str(exc)) from None
    try:
        manifest = _unpack(archive, data)
    except BaseException:
        # The folder was empty and is locked: everything in it now is this attempt's. Leave it
        # as it was, so the next attempt (another backup file) starts clean.
        for path in data.iterdir():
            if path != lock.path:
                path.unlink()
        lock.release()
        lock.path.unlink()
        if created:
            data.rmdir()
        raise
    lock.release()
    schema = int(manifest["schema"])
    later = f"; the node migrates it to schema {SCHEMA_VERSION} when it starts" if schema < SCHEMA_VERSION else ""
    return {
        "message": f"restored node {str(manifest['node_key'])[:16]}… (schema {schema}) into {data}{later}; "
        f"start it with: peerfed serve --data {data}",
        "data": str(data),
        "schema": schema,
        "node_key": manifest["node_key"],
        "created_at": manifest["created_at"],
    }


def _unpack(archive: Path, data: Path) -> dict[str, Any]:
    """Check the archive and put its files into ``data``; the manifest. Raises BackupError."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            manifest = _manifest(tar)
            files: dict[str, Any] = manifest["files"]
            for name in (DATABASE_FILE, KEY_FILE):
                partial = data / f"{name}.restoring"
                with _member(tar, name) as source:
                    digest = _copy_out(source, partial)
                if digest != files[name]:
                    raise _bad(f"{name} does not match the manifest (damaged or altered)")
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError) as exc:
        raise _bad(f"cannot read it: {exc}") from exc
    try:
        schema = check(data / f"{DATABASE_FILE}.restoring")
    except StorageError as exc:
        raise _bad(str(exc)) from exc
    if schema != manifest["schema"]:
        raise _bad(f"the database is schema {schema}, the manifest says {manifest['schema']}")
    key = _identity((data / f"{KEY_FILE}.restoring").read_bytes(), "local.bad_backup", "its key file is not a node key")
    if key.peer_id.hex != manifest["node_key"]:
        raise _bad("its key is not the node key the manifest names")
    for name in (DATABASE_FILE, KEY_FILE):
        os.replace(data / f"{name}.restoring", data / name)
    _sync_dir(data)
    return manifest


def _manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    with _member(tar, MANIFEST) as source:
        raw = source.read(MANIFEST_LIMIT + 1)
    try:
        manifest = json.loads(raw) if len(raw) <= MANIFEST_LIMIT else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad("it has no peerfed backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _bad(f"backup format {manifest.get('format_version')!r}; this software reads {FORMAT_VERSION}")
    schema, files = manifest.get("schema"), manifest.get("files")
    if not isinstance(schema, int) or not isinstance(files, dict) or set(files) != {DATABASE_FILE, KEY_FILE}:
        raise _bad("its manifest is incomplete")
    if not isinstance(manifest.get("node_key"), str) or not isinstance(manifest.get("created_at"), int):
        raise _bad("its manifest is incomplete")
    if schema > SCHEMA_VERSION:
        raise BackupError(
            "local.backup_too_new",
            f"the backup is schema {schema}, newer than this software's {SCHEMA_VERSION} "
            f"(written by {manifest.get('software')}); restore it with that version or later",
        )
    return manifest


@contextmanager
def _member(tar: tarfile.TarFile, name: str) -> Iterator[IO[bytes]]:
    """One regular file of the archive by its exact name (never a path: nothing escapes the folder)."""
    try:
        info = tar.getmember(name)
    except KeyError:
        raise _bad(f"it has no {name}") from None
    source = tar.extractfile(info) if info.isreg() else None
    if source is None:
        raise _bad(f"its {name} is not a file")
    with source:
        yield source


def _copy_out(source: IO[bytes], path: Path) -> dict[str, Any]:
    """Write ``source`` to ``path`` (mode 0600, synced); its size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return {"bytes": size, "sha256": digest.hexdigest()}


def _add(tar: tarfile.TarFile, name: str, content: bytes | IO[bytes], now: int, *, size: int | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = 0o600, now
    if isinstance(content, bytes):
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    else:
        info.size = size if size is not None else 0
        tar.addfile(info, content)


def _digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _digest_bytes(content: bytes) -> dict[str, Any]:
    return {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BackupError("local.no_key", f"no node key at {path}: nothing to back up without it") from None


def _identity(text: bytes, code: str, message: str) -> Identity:
    try:
        return Identity(bytes.fromhex(text.decode("ascii").strip()))
    except (ValueError, UnicodeDecodeError):
        raise BackupError(code, message) from None


def _bad(reason: str) -> BackupError:
    return BackupError("local.bad_backup", f"not a usable backup: {reason}; nothing was restored")


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
