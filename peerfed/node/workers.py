"""`peerfed serve --workers N`: N node processes on one port and one PostgreSQL database (spec §13.9).

The parent holds the data folder's lock, makes the node key if there is none, binds the port,
and starts N children of `peerfed serve` on that one inherited socket (the kernel hands each
connection to one of them). The children share everything through the database and hear each
other through it (bus.py); one of them at a time runs the background rounds. The parent only
watches: a child that dies after it started is started again; one that cannot start (an
unreachable database, a bad key: its exit code says so) stops them all, with that code. SIGTERM or SIGINT stops
every child, each draining as a single node does. The parent also hands every child, through a
pipe, one secret made at start and never stored: the key under which a node names who put an
item in a mailbox (contact.py), so all the workers name a sender alike and count its per-mailbox
quota together.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .keys import load_or_create_key
from .runner import EXIT_CANNOT_LISTEN, EXIT_CONFIG, EXIT_DATA_IN_USE, EXIT_DATA_UNUSABLE

__all__ = ["child_args", "supervise"]

log = logging.getLogger("peerfed.node")

# A child ending with one of these could not start (a setting, the lock, the port, the database
# or key): starting it again would not help, so every worker stops, with its code.
CANNOT_START = (EXIT_CONFIG, EXIT_DATA_IN_USE, EXIT_CANNOT_LISTEN, EXIT_DATA_UNUSABLE)
RESTART_PAUSE = 1.0
POLL = 0.2


def child_args(argv: Sequence[str]) -> list[str]:
    """``serve``'s own arguments without the ones the parent decides (--workers, --listen-fd)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--workers", "--listen-fd", "--worker-of", "--secret-fd"):
            skip = True
            continue
        if arg.startswith(("--workers=", "--listen-fd=", "--worker-of=", "--secret-fd=")):
            continue
        kept.append(arg)
    return kept


class _Child:
    def __init__(self, number: int, command: list[str], fd: int, secret: bytes) -> None:
        self.number = number
        self.command = command
        self.fd = fd
        self.secret = secret
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        reading, writing = os.pipe()  # 32 bytes fit a pipe's buffer: written before the child runs
        try:
            try:
                os.write(writing, self.secret)
            finally:
                os.close(writing)
            command = [*self.command, "--secret-fd", str(reading)]
            self.process = subprocess.Popen(command, pass_fds=(self.fd, reading), preexec_fn=_die_with_parent)
        finally:
            os.close(reading)


def _die_with_parent() -> None:
    """In the child, before it runs: the kernel SIGKILLs it if the parent dies, however the
    parent dies (Linux's PR_SET_PDEATHSIG), so no orphan goes on serving the port."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def supervise(argv: Sequence[str], data: Path, fd: int, workers: int) -> int:
    """Run ``workers`` children of `peerfed serve` with ``argv`` on socket ``fd``; an exit code."""
    load_or_create_key(data)  # once, here: children starting together must not each make one
    base = [sys.executable, "-m", "peerfed", "serve", *child_args(argv)]
    secret = secrets.token_bytes(32)
    children = [_Child(n, [*base, "--listen-fd", str(fd), "--worker-of", str(n)], fd, secret) for n in range(workers)]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    outcome = 0
    try:
        for child in children:
            child.start()
        print(f"{workers} workers serving one port; Ctrl-C stops them all", file=sys.stderr)
        while not stopping:
            time.sleep(POLL)
            for child in children:
                assert child.process is not None
                code = child.process.poll()
                if code is None or stopping:
                    continue
                if code in CANNOT_START:
                    print(f"error: worker {child.number} could not start (exit {code}); stopping", file=sys.stderr)
                    outcome, stopping = code or 1, True
                    break
                log.warning("worker %d ended with exit %d; starting it again", child.number, code)
                time.sleep(RESTART_PAUSE)
                child.start()
    finally:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in children:
            if child.process is not None:
                try:
                    child.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return outcome
