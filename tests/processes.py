"""`peerfed serve` as a child process, on a port the test holds: no free-port race, no stray process.

A test that picked a port by binding a socket, closing it and handing the number to the node raced
every other process on the machine for that port. Here the test binds 127.0.0.1:0 and keeps that
listening socket for as long as the ``NodeProcess`` lives; each life of the node inherits it
(``peerfed serve --listen-fd``), so the port is the node's from the first life to the last, restarts
included. ``--port`` still names it, so the node's public URL is right.

Each life's output is appended to ``<data>.log`` under a ``=== name life N ===`` line. The
``node_processes`` fixture (tests/conftest.py) starts them and, however the test ends, kills any
process still running and closes the sockets.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from peerfed.client.transport import NodeAPI, NodeUnreachable
from peerfed.protocol import RemoteError
from tests.backends import database_for

__all__ = ["NodeProcess", "NodeProcesses", "children_of"]

START_POLLS = 400  # 50 ms apart: the bound on waiting for one life to answer


def children_of(pid: int) -> list[int]:
    """The pids of process ``pid``'s live children (from /proc: each names its parent), such as
    a `peerfed serve --workers` parent's node processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class NodeProcess:
    """One node's `peerfed serve` process, life after life, with the same data folder and port."""

    def __init__(self, data: Path, *extra: str, name: str = "node", env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.data = data
        self.log = data.with_name(data.name + ".log")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        fd = str(self.sock.fileno())
        self.args = [sys.executable, "-m", "peerfed", "serve", "--data", str(data), "--port", str(self.port)]
        self.args += ["--listen-fd", fd, *extra]
        self.env = {**os.environ, **(env or {})}
        self._chosen_database = "PEERFED_DATABASE" in (env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives = 0

    def spawn(self) -> None:
        """Begin the next life; it serves once ``answering`` returns (until then requests wait for it)."""
        self.lives += 1
        if not self._chosen_database:  # the database of the folder this life serves (a test may swap it)
            self.env["PEERFED_DATABASE"] = database_for(Path(self.args[self.args.index("--data") + 1]))
        with self.log.open("ab") as out:
            out.write(f"=== {self.name} life {self.lives} ===\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env, pass_fds=(self.sock.fileno(),)
            )

    def new_life(self) -> None:
        """Count a new life without a new process (a `--workers` parent whose child was killed)."""
        self.lives += 1
        with self.log.open("ab") as out:
            out.write(f"=== {self.name} life {self.lives} ===\n".encode())

    async def answering(self) -> None:
        """Wait (bounded) until this life answers; raises AssertionError with its output if it never does."""
        assert self.proc is not None
        async with aiohttp.ClientSession() as http:
            for _ in range(START_POLLS):
                if self.proc.poll() is not None:
                    break
                try:
                    await NodeAPI(self.url, http).document()
                    return
                except (NodeUnreachable, aiohttp.ClientError, RemoteError):
                    await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not start (life {self.lives}):\n{self.output()}")

    async def start(self) -> None:
        """Begin the next life and wait until it answers."""
        self.spawn()
        await self.answering()

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        """Send ``how`` and wait for the process to end; its exit status."""
        assert self.proc is not None
        self.proc.send_signal(how)
        return self.proc.wait(timeout=30)

    def output(self, life: int | None = None) -> str:
        """What one life (by default the current one) wrote to stdout and stderr."""
        life = self.lives if life is None else life
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        start = text.find(f"=== {self.name} life {life} ===")
        if start < 0:
            return "(no log)"
        end = text.find(f"=== {self.name} life {life + 1} ===", start)
        return text[start : end if end >= 0 else len(text)]

    def close(self) -> None:
        """Kill the process if it still runs, and give up the port."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.kill()
        finally:
            self.sock.close()


class NodeProcesses:
    """What the ``node_processes`` fixture yields: call it to make a ``NodeProcess`` it will close."""

    def __init__(self) -> None:
        self.made: list[NodeProcess] = []

    def __call__(
        self, data: Path, *extra: str, name: str = "node", env: Mapping[str, str] | None = None
    ) -> NodeProcess:
        node = NodeProcess(data, *extra, name=name, env=env)
        self.made.append(node)
        return node

    def close(self) -> None:
        """Close every node made, the last first; raises the first failure after trying them all."""
        errors: list[BaseException] = []
        while self.made:
            try:
                self.made.pop().close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
