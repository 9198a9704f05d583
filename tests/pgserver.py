"""A throwaway PostgreSQL server for tests (spec §13.9, Storage back-ends): the system's own binaries.

``PgServer`` runs initdb and postgres in a private temporary folder, listening only on a Unix
socket there (no TCP port, nothing reachable from outside), with fsync off: the tests kill
processes, never the machine (``durable=True`` keeps it on, for benchmarks). Each node a test
starts gets a database of its own (``fresh_database``). As root, the server runs as the
system's ``postgres`` user, since PostgreSQL refuses to run as root. A missing PostgreSQL
fails the test with how to install it; it never skips (CI installs it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HOW_TO_GET = "install PostgreSQL's server: on Debian, as root, apt-get install -y postgresql"
START_POLLS = 300  # 0.1 s apart: the bound on waiting for the server to take connections


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise RuntimeError(f"{name} not found: {HOW_TO_GET}")


class PgServer:
    """One PostgreSQL server in a temporary folder. ``start()``, ``url(name)``, ``stop()``."""

    def __init__(self, *, durable: bool = False, settings: Sequence[str] = ()) -> None:
        self.durable = durable  # fsync as a production server does (benchmarks); tests run without
        self.settings = list(settings)  # more "name=value" server settings (the benchmarks' auto_explain)
        self.folder = Path(tempfile.mkdtemp(prefix="peerfed-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"  # the server's own output
        self._process: subprocess.Popen[bytes] | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.folder, "postgres")
        self.folder.chmod(0o700)

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> PgServer:
        if not self.data.exists():
            self._run(_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "peerfed", "-E", "UTF8")
        log = self.log
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                [
                    *self._as,
                    _binary("postgres"),
                    "-D",
                    str(self.data),
                    "-k",
                    str(self.folder),
                    "-c",
                    "listen_addresses=",
                    "-c",
                    f"fsync={'on' if self.durable else 'off'}",
                    "-c",
                    f"full_page_writes={'on' if self.durable else 'off'}",
                    "-c",
                    "max_connections=300",
                    *(arg for setting in self.settings for arg in ("-c", setting)),
                ],
                stdout=out,
                stderr=out,
            )
        for _ in range(START_POLLS):
            if self._ready():
                return self
            if self._process.poll() is not None:
                said = log.read_text(errors="replace").splitlines()[-5:]
                raise RuntimeError(f"postgres exited with {self._process.returncode}: " + " / ".join(said))
            time.sleep(0.1)
        raise RuntimeError("postgres did not start")

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def url(self, database: str) -> str:
        return f"postgresql://peerfed@/{database}?host={self.folder}"

    def fresh_database(self) -> str:
        """A new empty database's address."""
        import psycopg

        name = "n" + secrets.token_hex(8)
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once, as a crash of the machine would, and
        wait (bounded) until all are gone: a backend that outlived its postmaster for a moment
        still held the shared memory, and the next postmaster refused to start."""
        if self._process is not None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                postmaster = self._postmaster_pid()
                doomed = [postmaster, *_children(postmaster)]
                for pid in doomed:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, 9)
                for _ in range(START_POLLS):
                    if not any(_running(pid) for pid in doomed):
                        break
                    time.sleep(0.1)
            self._process.wait(timeout=30)
            self._process = None

    def _postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
                os.kill(self._postmaster_pid(), 2)  # fast shutdown
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None
        shutil.rmtree(self.folder, ignore_errors=True)


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (a postmaster's backends and helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has exited: it holds no memory, only its exit status)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
