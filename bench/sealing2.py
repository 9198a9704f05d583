"""What forward secrecy costs per message: sealing scheme 1 against scheme 2, in bytes and microseconds.

    python bench/sealing2.py                 # 5 runs of 500 messages per row, about 1 minute
    python bench/sealing2.py --quick         # 1 run of 20: checks that every row still works
    python bench/sealing2.py --runs 9 --out sealing2.json

Pure protocol calls in this one process, pinned to one core (no node, no I/O): scheme 1's ``seal``
and ``open_sealed`` (spec §7), and scheme 2's (§14) ``initiate_session`` with ``seal2`` for a
first message that carries the agreement and uses a one-time pre-key, ``seal2`` for a message in
a sending chain, for a message after a DH ratchet step (the two peers take turns), and
``open_sealed2`` for each. Two inner objects of typical size: a message of 200 characters, and a
reach-out that carries its author's key bundle (§8.2). Every inner object is signed before any
clock starts, so the figures are sealing and opening alone; every opened message is checked
against what was sealed. Each figure is the median over a run's messages of one call's wall time,
then the median over runs with the range in brackets; the machine's 1-minute load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peerfed.protocol import Identity, KeyBundle, Message, PeerId, open_sealed, sign
from peerfed.protocol.envelope import Envelope
from peerfed.protocol.identity import EncryptionSecret
from peerfed.protocol.messages import ReachOut
from peerfed.protocol.sealing import seal
from peerfed.protocol.sealing2 import Session, initiate_session, open_sealed2, seal2

__all__ = ["Peer", "ROWS", "KINDS", "measure", "main"]

NOW = 1_800_000_000
DAY = 86_400
CONN = bytes(range(16))
KINDS = ("message, 200 characters", "reach-out with bundle")
ROWS = (
    "scheme 1",
    "scheme 2, first message (agreement, one-time pre-key)",
    "scheme 2, next message in a chain",
    "scheme 2, message after a DH step",
)


class Peer:
    """One side's keys, its bundle (with a signed pre-key) and its session, as a client holds them."""

    def __init__(self, n: int) -> None:
        self.identity = Identity(bytes([n]) * 32)
        self.key = EncryptionSecret(bytes([n + 0x40]) * 32)
        self.prekey = EncryptionSecret(bytes([n + 0x80]) * 32)
        self.one_time = EncryptionSecret(bytes([n + 0xC0]) * 32)
        self.bundle = sign(
            self.identity, KeyBundle(self.key.public, prekey=self.prekey.public), created_at=NOW - DAY,
            expires_at=NOW + 30 * DAY,
        )  # fmt: skip
        self.session: Session | None = None

    @property
    def id(self) -> PeerId:
        return self.identity.peer_id

    def inner(self, to: Peer, kind: str) -> Envelope:
        if kind == KINDS[0]:
            body: Any = Message(to.id, CONN, 1, "x" * 200)
        else:
            hello = "Hello, I read your offer and I would like to talk, if you have time this week."
            body = ReachOut(to.id, CONN, bytes(32), hello, bundle=self.bundle.raw)
        return sign(self.identity, body, created_at=NOW, expires_at=NOW + DAY)

    def send(self, inner: Envelope, to: Peer) -> bytes:
        assert self.session is not None
        sealed, self.session = seal2(inner, self.session, to.key.public)
        return sealed.raw

    def open(self, raw: bytes, expect: Envelope) -> None:
        """Open a scheme-2 message and keep the session; raises AssertionError if it is not ``expect``."""
        sessions = {} if self.session is None else {CONN: self.session}
        opened = open_sealed2(
            raw, recipient=self.id, secrets=[self.key], signed_prekeys=[self.prekey],
            one_time_prekeys=[self.one_time], sessions=sessions, now=NOW,
        )  # fmt: skip
        assert opened.inner.raw == expect.raw, "opened something other than what was sealed"
        self.session = opened.pending


def timed(call: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Microseconds of wall time for ``call(*args)``, and what it returned."""
    start = time.perf_counter()
    value = call(*args)
    return (time.perf_counter() - start) * 1e6, value


def measure(kind: str, count: int) -> dict[str, dict[str, float]]:
    """One run: for each row, the median µs to seal and to open one message, and its sealed bytes."""
    out: dict[str, dict[str, float]] = {}
    ana, ben = Peer(1), Peer(2)
    to_ben, to_ana = ana.inner(ben, kind), ben.inner(ana, kind)
    seals: list[float] = []
    opens: list[float] = []
    size = 0
    for _ in range(count):
        t, sealed = timed(seal, to_ben, ben.key.public)
        seals.append(t)
        t, opened = timed(lambda x: open_sealed(x, recipient=ben.id, secrets=[ben.key], now=NOW), sealed.raw)
        assert opened.inner.raw == to_ben.raw
        opens.append(t)
        size = len(sealed.raw)
    out[ROWS[0]] = {"seal_us": statistics.median(seals), "open_us": statistics.median(opens), "bytes": size}

    seals, opens = [], []
    for _ in range(count):  # a new session each time: the agreement, then the responder's side of it
        ana.session, ben.session = None, None

        def first() -> bytes:
            ana.session = initiate_session(ben.bundle, CONN, ben.one_time.public, identity=ana.identity, now=NOW)
            return ana.send(to_ben, ben)

        t, raw = timed(first)
        seals.append(t)
        opens.append(timed(ben.open, raw, to_ben)[0])
        size = len(raw)
    out[ROWS[1]] = {"seal_us": statistics.median(seals), "open_us": statistics.median(opens), "bytes": size}

    ana.open(ben.send(to_ana, ana), to_ana)  # answered: Ana's headers stop carrying the agreement
    raws = [timed(ana.send, to_ben, ben) for _ in range(count)]
    opens = [timed(ben.open, raw, to_ben)[0] for _, raw in raws]
    row = {"seal_us": statistics.median(t for t, _ in raws), "open_us": statistics.median(opens)}
    out[ROWS[2]] = {**row, "bytes": len(raws[-1][1])}

    seals, opens = [], []
    for i in range(count):  # turns: each message follows one from the other side, a DH step on each
        sender, receiver, inner = (ben, ana, to_ana) if i % 2 == 0 else (ana, ben, to_ben)
        t, raw = timed(sender.send, inner, receiver)
        seals.append(t)
        opens.append(timed(receiver.open, raw, inner)[0])
        size = len(raw)
    out[ROWS[3]] = {"seal_us": statistics.median(seals), "open_us": statistics.median(opens), "bytes": size}
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run of 20 messages per row: checks it works")
    parser.add_argument("--runs", type=int, help="runs per row (default 5, quick 1)")
    parser.add_argument("--messages", type=int, help="messages per row and run (default 500, quick 20)")
    parser.add_argument("--out", type=Path, help="write every run and the medians here (JSON)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    count = args.messages or (20 if args.quick else 500)
    # One core, as a phone or a small server gives one conversation: the figures are one core's.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    load_before = os.getloadavg()[0]
    raw = {kind: [measure(kind, count) for _ in range(runs)] for kind in KINDS}
    load_after = os.getloadavg()[0]
    figures = {
        kind: {
            row: {name: spread([run[row][name] for run in raw[kind]]) for name in ("seal_us", "open_us", "bytes")}
            for row in ROWS
        }
        for kind in KINDS
    }
    print(f"{runs} runs of {count} messages per row; 1-minute load {load_before:.2f} before, {load_after:.2f} after")
    print("| Inner object | Sealing | Sealed bytes | Seal µs | Open µs |")
    print("|---|---|---|---|---|")
    for kind in KINDS:
        for row in ROWS:
            f = figures[kind][row]
            cells = [f"{f[n]['median']:.0f} [{f[n]['min']:.0f}-{f[n]['max']:.0f}]" for n in ("seal_us", "open_us")]
            print(f"| {kind} | {row} | {f['bytes']['median']:.0f} | {cells[0]} | {cells[1]} |")
    if args.out:
        report = {"load": [load_before, load_after], "runs": runs, "messages": count, "figures": figures, "raw": raw}
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
