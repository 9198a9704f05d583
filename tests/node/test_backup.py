"""Backups and restores of a node's data folder (issue 16 item 4; spec §13.9, what a node stores).

Before: there was no backup command; copying ``node.sqlite3`` from under a serving node could catch
it between the database file and its WAL. Now `peerfed admin backup FILE` takes SQLite's online
backup beside the serving node (without its lock), and `peerfed admin restore FILE --data DIR`
brings it back into an empty folder only, after checking the manifest, every file's hash and the
database's integrity. Everything runs as real processes: two nodes, a client writing while the
backup is taken, the restored node serving on a new port.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.client.transport import NodeAPI
from tests.processes import NodeProcesses

from .harness import Peer
from .test_process import Home
from .test_refollow import until_listed

pytestmark = pytest.mark.one_backend("the backup is SQLite's online copy; a PostgreSQL node is backed up with pg_dump")

WRITES_BEFORE = 5  # writes acknowledged before the backup begins: the restored node must hold them
MAX_WRITES = 1000  # the bound on the write loop, however slow the backup is
PAGES = 50  # the bound on paging through a directory
POLLS = 600  # 50 ms apart: the bound on waiting for the follow to be taken


def admin(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def listed_json(data: Path, *args: str) -> Any:
    out = admin(data, *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def refused(out: subprocess.CompletedProcess[str], code: str) -> str:
    """The error's message, once it is checked to be ``code`` on stderr, as JSON, with exit status 2."""
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""
    error = json.loads(out.stderr)["error"]
    assert error["code"] == code, error
    return str(error["message"])


def signer(document: dict[str, Any]) -> bytes:
    """The node key that signed a node document (the signed envelope's signer field)."""
    return base64.b64decode(document["document"])[1:33]


async def everything(peer: Peer) -> set[str]:
    """Every listing id the directory serves, page after page."""
    found: set[str] = set()
    before = None
    for _ in range(PAGES):
        page = await peer.api.directory(limit=100, **({} if before is None else {"before": before}))
        found |= {item["id"] for item in page["listings"]}
        before = page["next"]
        if before is None:
            return found
    raise AssertionError("the directory never ended")


async def followed(data: Path, url: str) -> None:
    for _ in range(POLLS):
        if any(n["url"] == url and n["status"] == "active" for n in listed_json(data, "federation", "list")):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} was never followed")


def test_a_backup_taken_under_writes_restores_into_a_node_with_its_members_listings_follows_and_key(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    async def scenario() -> None:
        b = node_processes(tmp_path / "b", name="b")
        await b.start()
        # The client writes faster than a person would: lift the per-peer listing limit.
        a = node_processes(tmp_path / "a", "--federate", b.url, "--listings-per-hour", "100000", name="a")
        await a.start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer("Ana", Home(a.url), http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("Ben", Home(a.url), http, 2).join()  # type: ignore[arg-type]
            cleo = await Peer("Cleo", Home(b.url), http, 3).join()  # type: ignore[arg-type]
            await followed(tmp_path / "a", b.url)
            from_b = (await cleo.offer("From the other node.")).id.hex()
            await until_listed(ben, from_b)
            document = await NodeAPI(a.url, http).document()

            # A client keeps writing (publishing, then listing) while the backup runs.
            acknowledged: list[str] = []
            backup_started = asyncio.Event()
            backup_done = asyncio.Event()

            async def writes() -> None:
                for n in range(MAX_WRITES):
                    acknowledged.append((await ana.offer(f"Offer {n}, written during the backup.")).id.hex())
                    await ana.api.directory()
                    if n + 1 == WRITES_BEFORE:
                        backup_started.set()
                    if backup_done.is_set():
                        return

            writer = asyncio.create_task(writes())
            await backup_started.wait()
            before = list(acknowledged)
            taken = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "peerfed",
                "admin",
                "--data",
                str(tmp_path / "a"),
                "--json",
                "backup",
                str(tmp_path / "a.backup"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await taken.communicate()
            backup_done.set()
            await writer
            assert taken.returncode == 0, err.decode()
            made = json.loads(out)
            assert made["node_key"] == signer(document).hex()
            # The node was never disturbed: its lock held, it kept answering, and it has every write.
            assert "in use" not in a.output()
            assert set(acknowledged) <= await everything(ana)
            members = listed_json(tmp_path / "a", "members", "list")

            # Restore into a folder that does not exist yet, and serve it on a new port.
            restored_data = tmp_path / "restored"
            restored = admin(restored_data, "restore", str(tmp_path / "a.backup"))
            assert restored.returncode == 0, restored.stderr
            assert (restored_data / "node.key").read_bytes() == (tmp_path / "a" / "node.key").read_bytes()
            assert (restored_data / "node.key").stat().st_mode & 0o777 == 0o600
            again = node_processes(restored_data, name="restored")
            await again.start()
            assert again.url != a.url
            assert signer(await NodeAPI(again.url, http).document()) == signer(document)
            assert listed_json(restored_data, "members", "list") == members
            assert {m["name"] for m in members} == {"Ana", "Ben"}
            follows = {n["url"]: n["status"] for n in listed_json(restored_data, "federation", "list")}
            assert follows == {b.url: "active"}
            # Every write acknowledged before the backup began is served; nothing is there that
            # was never written (a write in flight is in the copy whole, or not at all).
            served = await everything(await Peer("Ana", Home(again.url), http, 1).join())  # type: ignore[arg-type]
            assert set(before) | {from_b} <= served
            assert served <= set(acknowledged) | {from_b}
            assert again.stop() == 0
        assert a.stop() == 0 and b.stop() == 0

    asyncio.run(scenario())


def members_of(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def repack(source: Path, target: Path, change: Callable[[dict[str, bytes], dict[str, Any]], None]) -> Path:
    """A copy of the backup ``source`` with its files changed by ``change``, the manifest's hashes made to match."""
    files = members_of(source)
    manifest = json.loads(files.pop("manifest.json"))
    change(files, manifest)
    manifest["files"] = {
        name: {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()} for name, raw in files.items()
    }
    with tarfile.open(target, "w:gz") as tar:
        for name, raw in [("manifest.json", json.dumps(manifest).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return target


def test_a_damaged_backup_a_used_folder_and_an_existing_file_are_refused(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    async def scenario() -> None:
        node = node_processes(tmp_path / "n")
        await node.start()
        async with aiohttp.ClientSession() as http:
            await Peer("Ana", Home(node.url), http, 1).join()  # type: ignore[arg-type]
        assert node.stop() == 0

    asyncio.run(scenario())
    good = tmp_path / "good.backup"
    assert admin(tmp_path / "n", "backup", str(good)).returncode == 0

    # An existing file is never overwritten without --force, which replaces it.
    first = good.read_bytes()
    assert "--force" in refused(admin(tmp_path / "n", "backup", str(good)), "local.exists")
    assert good.read_bytes() == first
    assert admin(tmp_path / "n", "backup", str(good), "--force").returncode == 0

    # A folder holding anything is refused, and left as it was.
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    assert "not an empty folder" in refused(admin(used, "restore", str(good)), "local.not_empty")
    assert [p.name for p in used.iterdir()] == ["notes.txt"]

    # Damage anywhere: bytes flipped in the file, a database that fails SQLite's integrity check
    # (with hashes that match it), a key that is not the manifest's, a schema from the future.
    flipped = bytearray(good.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flipped.backup").write_bytes(bytes(flipped))

    def scramble(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
        db = bytearray(files["node.sqlite3"])
        db[4096 + 8 : 4096 * 3] = bytes(len(db[4096 + 8 : 4096 * 3]))  # pages 2-3 zeroed past their headers
        files["node.sqlite3"] = bytes(db)

    def other_key(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
        files["node.key"] = b"11" * 32 + b"\n"

    def future(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
        manifest["schema"] = 999

    cases = {
        "flipped.backup": ("local.bad_backup", "nothing was restored"),
        "scrambled.backup": ("local.bad_backup", "integrity"),
        "other-key.backup": ("local.bad_backup", "not the node key"),
        "future.backup": ("local.backup_too_new", "newer than this software"),
        "missing.backup": ("local.no_backup", "no backup file"),
    }
    repack(good, tmp_path / "scrambled.backup", scramble)
    repack(good, tmp_path / "other-key.backup", other_key)
    repack(good, tmp_path / "future.backup", future)
    for name, (code, says) in cases.items():
        target = tmp_path / f"into-{name}"
        message = refused(admin(target, "restore", str(tmp_path / name)), code)
        assert says in message, message
        assert not target.exists(), name  # nothing half-restored is left behind

    # The intact backup still restores, into an empty folder that already exists.
    empty = tmp_path / "empty"
    empty.mkdir()
    restored = admin(empty, "restore", str(good))
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["schema"] == json.loads(members_of(good)["manifest.json"])["schema"]
