"""Side-by-side reference benchmark: the ``nostr-relay`` package (PyPI, v1.14) under the same load as a peerfed node.

What is measured
----------------
* **ingest** - ``k`` client processes each own ``n/k`` pre-signed Nostr events (kind 1, ``payload`` ASCII bytes of
  content, one secp256k1 key per client) and one WebSocket connection to the relay.  Each keeps at most ``window``
  ``EVENT`` messages in flight, i.e. sent but not yet answered by ``["OK", id, accepted, reason]``.  We record the
  per-event ack latency (send -> OK), accepted/rejected counts and the wall time from the first send of any client to
  the last OK of any client.  Afterwards a ``REQ`` by the ``k`` authors (and the relay's ``/stats/`` endpoint) confirms
  how many events are stored.
* **queries** - the relay is loaded with ``events`` events spread over ``k`` authors and a few kinds, then one client
  runs ``queries`` ``REQ`` queries of each type, sequentially and interleaved: by author
  (``{"authors": [pk], "limit": limit}``, rotating over the authors) and by kind (``{"kinds": [1], "limit": limit}``).
  Latency is REQ send -> EOSE; every query must return exactly ``limit`` matching events, newest first.

How
---
``install`` builds a private venv (``workdir/nostr-venv``) with ``nostr-relay==1.14``; nothing is installed into the
caller's environment.  Events are signed *inside that venv* (untimed) by a small generated script using ``coincurve``
- the library that ``aionostr``/``nostr_relay`` verify with - following NIP-01 (id = sha256 of the compact JSON of
``[0, pubkey, created_at, kind, tags, content]``, BIP-340 Schnorr signature over the id); the signer cross-checks its
first event with ``aionostr.event.Event.verify``.  The relay runs as ``nostr-relay -c CONFIG serve`` (gunicorn + one
uvicorn worker) in its own process group on 127.0.0.1 with a free port and SQLite (``sqlite+aiosqlite``) in
``workdir``; it is killed (whole group) at the end, also on errors.  Signature verification and the shipped validators
stay on; NIP-05 verification, authentication and rate limits are off (the latter is the package default anyway);
``max_limit`` is raised so that the stored-count check can fetch all events in one REQ; the relay's logging is reduced
to WARNING so that it does not log a line per event.

The WebSocket clients use ``aiohttp`` and run as subprocesses of the *caller's* interpreter (``sys.executable``
running this file with the hidden ``--_client SPEC`` option), so that the orchestrating process only starts, waits
and aggregates.  Percentiles are nearest-rank over all samples.  POSIX only (process groups, ``/proc`` for counting
the relay's worker processes, ``bin/`` venv layout).

Usable as a module (``install``, ``run_ingest``, ``run_queries``) or as a script::

    python bench/nostr_peer.py --workdir /tmp/x --n 2000 --k 8 --window 16 --payload 400 --events 2000 --queries 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

RELAY_VERSION = "1.14"
VENV_DIR = "nostr-venv"
INGEST_KINDS: tuple[int, ...] = (1,)
# kinds cycled over the events of the query data set: half kind 1, the rest regular (non-replaceable) kinds
QUERY_KINDS: tuple[int, ...] = (1, 7, 1, 1111)
RELAY_START_TIMEOUT = 90.0
RELAY_STOP_TIMEOUT = 15.0
CLIENT_STALL_TIMEOUT = 60.0  # a client aborts when the relay sends nothing for this long

# Written to workdir and run with the nostr venv's python. Argument: path of a JSON spec.
SIGNER_SOURCE = '''\
"""Pre-sign NIP-01 events for nostr_peer.py (runs inside the nostr-relay venv)."""
import hashlib
import json
import sys
import time

from coincurve import PrivateKey, PublicKeyXOnly

spec = json.loads(open(sys.argv[1]).read())
n, k, payload, kinds = spec["n"], spec["k"], spec["payload"], spec["kinds"]
secrets = []
for j in range(k):
    secret = hashlib.sha256(("peerfed-nostr-bench:%s:%d" % (spec["seed"], j)).encode()).digest()
    secrets.append(secret)
keys = [PrivateKey(s) for s in secrets]
pubkeys = [PublicKeyXOnly.from_secret(s).format().hex() for s in secrets]
base = int(time.time()) - n - 60  # distinct, recent timestamps: oldest is n+60 s ago
filler = "abcdefghijklmnopqrstuvwxyz" * (payload // 26 + 1)
outs = [open(path, "w") for path in spec["outputs"]]
first = None
for i in range(n):
    j = i % k
    content = ("%s-%d " % (spec["seed"], i) + filler)[:payload]
    created_at = base + i
    kind = kinds[i % len(kinds)]
    ser = json.dumps([0, pubkeys[j], created_at, kind, [], content], separators=(",", ":"), ensure_ascii=False)
    event_id = hashlib.sha256(ser.encode()).digest()
    sig = keys[j].sign_schnorr(event_id)
    event = {"id": event_id.hex(), "pubkey": pubkeys[j], "created_at": created_at, "kind": kind, "tags": [],
             "content": content, "sig": sig.hex()}
    if first is None:
        first = event
    outs[j].write(json.dumps(event, separators=(",", ":")) + "\\n")
for out in outs:
    out.close()

# cross-check with the relay's own event class (same serialisation and verifier as the relay)
from aionostr.event import Event

ev = Event(**first)
assert Event.compute_id(ev.pubkey, ev.created_at, ev.kind, ev.tags, ev.content) == first["id"], "id mismatch"
assert ev.verify(), "signature does not verify with aionostr"
json.dump({"pubkeys": pubkeys}, open(spec["keys_out"], "w"))
'''


class BenchError(RuntimeError):
    """A phase failed, timed out, or produced results that fail a correctness check."""


# --------------------------------------------------------------------------------------------------- helpers


def _percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (0 < pct <= 100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _has_relay(python: Path) -> bool:
    if not python.exists():
        return False
    probe = "import nostr_relay, coincurve, aionostr; print(nostr_relay.__version__)"
    try:
        out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == RELAY_VERSION


def _session_children(leader: int) -> list[int]:
    """PIDs whose parent is ``leader`` and that belong to its session (gunicorn workers); [] without /proc."""
    children = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        ppid, session = int(fields[1]), int(fields[3])
        if ppid == leader and session == leader:
            children.append(int(entry.name))
    return children


def _remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(db) + suffix).unlink()


# --------------------------------------------------------------------------------------------------- install


def install(workdir: Path) -> Path:
    """Create (or reuse) ``workdir/nostr-venv`` with nostr-relay==1.14 installed; return its python executable."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    venv = workdir / VENV_DIR
    python = venv / "bin" / "python"
    if _has_relay(python):
        return python
    if venv.exists():
        shutil.rmtree(venv)
    log = workdir / "nostr-install.log"
    with log.open("w") as out:
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], stdout=out, stderr=subprocess.STDOUT, timeout=300, check=True
            )
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    f"nostr-relay=={RELAY_VERSION}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=1200,
                check=True,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise BenchError(f"installing nostr-relay failed ({exc}); log {log}:\n{_tail(log)}") from exc
    if not _has_relay(python):
        raise BenchError(f"nostr-relay {RELAY_VERSION} not importable from {python}; see {log}")
    return python


# --------------------------------------------------------------------------------------------------- signing


def _sign_events(
    venv_python: Path, workdir: Path, tag: str, n: int, k: int, payload: int, kinds: Sequence[int]
) -> tuple[list[Path], list[str], float]:
    """Sign ``n`` events into ``k`` JSONL files (event i -> file i % k, key i % k). Returns files, pubkeys, seconds."""
    script = workdir / "nostr_sign.py"
    script.write_text(SIGNER_SOURCE)
    outputs = [workdir / f"{tag}-events-{j}.jsonl" for j in range(k)]
    keys_out = workdir / f"{tag}-keys.json"
    spec_path = workdir / f"{tag}-sign.json"
    spec = {
        "n": n,
        "k": k,
        "payload": payload,
        "kinds": list(kinds),
        "seed": tag,
        "outputs": [str(p) for p in outputs],
        "keys_out": str(keys_out),
    }
    spec_path.write_text(json.dumps(spec))
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(venv_python), str(script), str(spec_path)],
            capture_output=True,
            text=True,
            timeout=120 + n / 200,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"signing {n} events timed out") from exc
    if proc.returncode != 0:
        raise BenchError(f"signer failed:\n{proc.stderr[-3000:]}")
    pubkeys: list[str] = json.loads(keys_out.read_text())["pubkeys"]
    return outputs, pubkeys, time.perf_counter() - started


# --------------------------------------------------------------------------------------------------- relay


class Relay:
    """A nostr-relay server subprocess (own process group) with its config and SQLite DB in ``workdir``."""

    def __init__(
        self,
        venv_python: Path,
        workdir: Path,
        name: str,
        max_limit: int,
        max_event_size: int = 4096,
        log_level: str = "WARNING",
    ):
        self.venv_python = Path(venv_python)
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.db = workdir / f"{name}.sqlite3"
        self.config_path = workdir / f"{name}-config.yaml"
        self.log_path = workdir / f"{name}-relay.log"
        self.max_limit = max_limit
        self.max_event_size = max_event_size
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = ""
        self.workers = 0

    def config(self) -> dict[str, Any]:
        log_cfg = {
            "version": 1,
            "formatters": {"simple": {"format": "%(asctime)s - %(name)s - %(levelname)s - %(message)s"}},
            "handlers": {
                "console": {
                    "class": "logging.StreamHandler",
                    "level": "DEBUG",
                    "formatter": "simple",
                    "stream": "ext://sys.stdout",
                }
            },
            "loggers": {"nostr_relay": {"level": self.log_level, "handlers": ["console"], "propagate": False}},
            "root": {"level": "WARNING", "handlers": ["console"]},
        }
        return {
            "DEBUG": False,
            "relay_name": "nostr_peer bench",
            "storage": {
                "sqlalchemy.url": f"sqlite+aiosqlite:///{self.db}",
                # the values shipped in nostr_relay/config.yaml
                "num_concurrent_reqs": 10,
                "num_concurrent_adds": 2,
                "validators": [
                    "nostr_relay.validators.is_not_too_large",
                    "nostr_relay.validators.is_signed",
                    "nostr_relay.validators.is_recent",
                    "nostr_relay.validators.is_not_hellthread",
                ],
            },
            "verification": {"nip05_verification": "disabled", "expiration": 86400 * 30, "update_frequency": 3600},
            "gunicorn": {
                "bind": f"127.0.0.1:{self.port}",
                "workers": 1,
                "loglevel": "warning",
                "reload": False,
                "graceful_timeout": 5,
            },
            "authentication": {"enabled": False},
            "message_timeout": 1800,
            "subscription_limit": 32,
            "max_limit": self.max_limit,
            "max_event_size": self.max_event_size,
            "hellthread_limit": 100,
            "logging": log_cfg,
        }

    def start(self) -> None:
        _remove_db(self.db)
        # JSON is valid YAML, so the caller needs no YAML library
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        exe = self.venv_python.parent / "nostr-relay"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(exe), "-c", str(self.config_path), "serve"],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + RELAY_START_TIMEOUT
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/", headers={"Accept": "application/nostr+json"})
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"relay exited with {self.proc.returncode}:\n{_tail(self.log_path)}")
            try:
                # NIP-11 info document: proves that a worker (not just the gunicorn master) serves requests
                with urllib.request.urlopen(request, timeout=2) as resp:
                    self.version = str(json.loads(resp.read()).get("version", ""))
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise BenchError(f"relay not ready after {RELAY_START_TIMEOUT}s:\n{_tail(self.log_path)}") from None
                time.sleep(0.1)
        self.workers = len(_session_children(self.proc.pid)) or int(self.config()["gunicorn"]["workers"])

    def stats_total(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats/", timeout=30) as resp:
            return int(json.loads(resp.read()).get("total", -1))

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, RELAY_STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait)
            # the group may outlive the leader (orphaned worker): probe it
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def __enter__(self) -> Relay:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------- clients


@contextlib.contextmanager
def _clients(specs: list[dict[str, Any]], workdir: Path, tag: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start one client subprocess per spec (caller's interpreter); kill any still running on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for idx, spec in enumerate(specs):
            spec_path = workdir / f"{tag}-client-{idx}.json"
            spec_path.write_text(json.dumps(spec))
            with (workdir / f"{tag}-client-{idx}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, str(Path(__file__).resolve()), "--_client", str(spec_path)],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def _wait_clients(
    procs: list[subprocess.Popen[bytes]],
    specs: list[dict[str, Any]],
    workdir: Path,
    tag: str,
    deadline: float,
    what: str,
) -> list[dict[str, Any]]:
    results = []
    for idx, proc in enumerate(procs):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BenchError(f"{what}: client {idx} did not finish in time") from None
        out = Path(specs[idx]["out"])
        if proc.returncode != 0 or not out.exists():
            raise BenchError(
                f"{what}: client {idx} failed (rc={proc.returncode}):\n{_tail(workdir / f'{tag}-client-{idx}.log')}"
            )
        results.append(json.loads(out.read_text()))
    return results


def _run_ingest_clients(
    relay: Relay, files: list[Path], workdir: Path, tag: str, window: int, timeout: float
) -> tuple[list[dict[str, Any]], float]:
    """Run one ingest client per events file, started together. Returns per-client results and wall seconds."""
    go = workdir / f"{tag}-go"
    with contextlib.suppress(FileNotFoundError):
        go.unlink()
    specs: list[dict[str, Any]] = []
    for j, path in enumerate(files):
        ready, out = workdir / f"{tag}-ready-{j}", workdir / f"{tag}-result-{j}.json"
        for stale in (ready, out):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        specs.append(
            {
                "mode": "ingest",
                "url": relay.url,
                "events": str(path),
                "window": window,
                "ready": str(ready),
                "go": str(go),
                "out": str(out),
                "timeout": timeout,
            }
        )
    deadline = time.monotonic() + timeout + 60
    with _clients(specs, workdir, tag) as procs:
        # barrier: every client has loaded its events and opened its connection
        ready_deadline = time.monotonic() + 60
        while not all(Path(s["ready"]).exists() for s in specs):
            for idx, proc in enumerate(procs):
                if proc.poll() is not None:
                    raise BenchError(f"ingest client {idx} exited early:\n{_tail(workdir / f'{tag}-client-{idx}.log')}")
            if time.monotonic() > ready_deadline:
                raise BenchError("ingest clients not ready after 60s")
            time.sleep(0.01)
        go.write_text("go")
        results = _wait_clients(procs, specs, workdir, tag, deadline, "ingest")
    seconds = max(r["last_ok"] for r in results) - min(r["first_send"] for r in results)
    return results, seconds


def _run_single_client(spec: dict[str, Any], workdir: Path, tag: str, timeout: float) -> dict[str, Any]:
    with contextlib.suppress(FileNotFoundError):
        Path(spec["out"]).unlink()
    with _clients([spec], workdir, tag) as procs:
        return _wait_clients(procs, [spec], workdir, tag, time.monotonic() + timeout + 30, spec["mode"])[0]


def _count_stored(relay: Relay, files: list[Path], pubkeys: list[str], workdir: Path, tag: str, expected: int) -> int:
    timeout = 120 + expected / 50
    spec: dict[str, Any] = {
        "mode": "count",
        "url": relay.url,
        "authors": pubkeys,
        "limit": expected + 1,
        "events": [str(p) for p in files],
        "out": str(workdir / f"{tag}-count.json"),
        "timeout": timeout,
    }
    result = _run_single_client(spec, workdir, f"{tag}-count", timeout)
    if result["missing"] or result["unexpected"]:
        raise BenchError(f"stored-count check: {result['missing']} missing, {result['unexpected']} unexpected events")
    return int(result["stored"])


def _ingest_summary(results: list[dict[str, Any]]) -> tuple[int, int, list[float], dict[str, int]]:
    accepted = sum(r["accepted"] for r in results)
    rejected = sum(r["rejected"] for r in results)
    latencies = [x for r in results for x in r["latencies_ms"]]
    reasons: dict[str, int] = {}
    for r in results:
        for reason, count in r["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    return accepted, rejected, latencies, reasons


# --------------------------------------------------------------------------------------------------- phases


def run_ingest(
    venv_python: Path, workdir: Path, n: int = 20000, k: int = 8, window: int = 16, payload: int = 400
) -> dict[str, Any]:
    """Ingest ``n`` pre-signed events over ``k`` connections with ``window`` in flight each; see module docstring."""
    if n < 1 or k < 1 or window < 1 or payload < 1:
        raise ValueError("n, k, window and payload must be positive")
    workdir = Path(workdir).resolve()
    files, pubkeys, sign_seconds = _sign_events(Path(venv_python), workdir, "ingest", n, k, payload, INGEST_KINDS)
    timeout = 120 + n / 20  # >= 20 events/s, far below anything plausible
    with Relay(
        Path(venv_python), workdir, "nostr-ingest", max_limit=max(6000, n + 1), max_event_size=max(4096, payload)
    ) as relay:
        results, seconds = _run_ingest_clients(relay, files, workdir, "ingest", window, timeout)
        accepted, rejected, latencies, reasons = _ingest_summary(results)
        if accepted != n:
            raise BenchError(f"ingest: {accepted}/{n} accepted, {rejected} rejected; reasons {reasons}")
        stored = _count_stored(relay, files, pubkeys, workdir, "ingest", n)
        stats_total = relay.stats_total()
        if stored != n or stats_total != n:
            raise BenchError(f"ingest: REQ returned {stored}, /stats/ says {stats_total}, expected {n}")
        return {
            "accepted": accepted,
            "rejected": rejected,
            "seconds": round(seconds, 4),
            "accepted_per_s": round(accepted / seconds, 1) if seconds > 0 else float("nan"),
            "ack_p50_ms": round(_percentile(latencies, 50), 3),
            "ack_p99_ms": round(_percentile(latencies, 99), 3),
            "ack_max_ms": round(max(latencies), 3),
            "stored": stored,
            "n": n,
            "k": k,
            "window": window,
            "payload": payload,
            "relay_version": relay.version or RELAY_VERSION,
            "workers": relay.workers,
            "sign_seconds": round(sign_seconds, 3),
        }


def run_queries(
    venv_python: Path, workdir: Path, events: int = 10000, queries: int = 200, limit: int = 50, k: int = 8
) -> dict[str, Any]:
    """Load ``events`` events (k authors, several kinds), then time ``queries`` REQs by author and by kind each."""
    kind1 = sum(1 for i in range(events) if QUERY_KINDS[i % len(QUERY_KINDS)] == 1)
    if events // k < limit or kind1 < limit:
        raise ValueError(f"events={events} too few for k={k} authors and limit={limit}")
    if queries < 1:
        raise ValueError("queries must be positive")
    workdir = Path(workdir).resolve()
    files, pubkeys, _ = _sign_events(Path(venv_python), workdir, "query", events, k, 400, QUERY_KINDS)
    with Relay(Path(venv_python), workdir, "nostr-query", max_limit=max(6000, events + 1)) as relay:
        load_results, load_seconds = _run_ingest_clients(relay, files, workdir, "qload", 16, 120 + events / 20)
        accepted, _, _, reasons = _ingest_summary(load_results)
        if accepted != events:
            raise BenchError(f"query data load: {accepted}/{events} accepted; reasons {reasons}")
        timeout = 120 + queries * 2
        spec: dict[str, Any] = {
            "mode": "query",
            "url": relay.url,
            "authors": pubkeys,
            "kind": 1,
            "queries": queries,
            "limit": limit,
            "out": str(workdir / "query-result.json"),
            "timeout": timeout,
        }
        result = _run_single_client(spec, workdir, "query", timeout)
        return {
            "by_author_p50_ms": round(_percentile(result["by_author_ms"], 50), 3),
            "by_author_p99_ms": round(_percentile(result["by_author_ms"], 99), 3),
            "by_kind_p50_ms": round(_percentile(result["by_kind_ms"], 50), 3),
            "by_kind_p99_ms": round(_percentile(result["by_kind_ms"], 99), 3),
            "events": events,
            "returned_per_query": limit,
            "queries_per_type": queries,
            "limit": limit,
            "k": k,
            "load_seconds": round(load_seconds, 3),
            "relay_version": relay.version or RELAY_VERSION,
            "workers": relay.workers,
        }


# --------------------------------------------------------------------------------------------------- client side
# Everything below runs in client subprocesses under the caller's interpreter (needs aiohttp).


async def _client_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    items: list[tuple[str, str]] = []
    with open(spec["events"]) as fh:
        for line in fh:
            line = line.strip()
            if line:
                items.append((json.loads(line)["id"], f'["EVENT",{line}]'))
    window = int(spec["window"])
    inflight: dict[str, float] = {}
    latencies: list[float] = []
    reasons: dict[str, int] = {}
    counts = {"accepted": 0, "rejected": 0}
    slots = asyncio.Semaphore(window)
    times = {"first_send": 0.0, "last_ok": 0.0}

    async with aiohttp.ClientSession() as session, session.ws_connect(spec["url"], max_msg_size=0) as ws:
        Path(spec["ready"]).write_text("ready")
        go = Path(spec["go"])
        while not go.exists():
            await asyncio.sleep(0.0005)

        async def sender() -> None:
            times["first_send"] = time.time()
            for event_id, message in items:
                await slots.acquire()
                inflight[event_id] = time.perf_counter()
                await ws.send_str(message)

        async def receiver() -> None:
            done = 0
            while done < len(items):
                data = json.loads(await _recv_text(ws))
                if data[0] == "NOTICE":
                    reasons[f"NOTICE {data[1]}"] = reasons.get(f"NOTICE {data[1]}", 0) + 1
                    continue
                if data[0] != "OK":
                    continue
                now = time.perf_counter()
                sent = inflight.pop(data[1], None)
                if sent is None:
                    # the relay answers validation errors with an empty id: the oldest in-flight event it is
                    sent = inflight.pop(next(iter(inflight))) if inflight else now
                latencies.append(round((now - sent) * 1000.0, 4))
                if data[2] is True:
                    counts["accepted"] += 1
                else:
                    # nostr-relay sleeps 2, 4, 8, ... s on a connection after each rejected event: abort at once
                    reason = str(data[3]) if len(data) > 3 else ""
                    raise BenchError(f"relay rejected event {data[1]!r}: {reason!r}")
                done += 1
                slots.release()
            times["last_ok"] = time.time()

        send_task = asyncio.create_task(sender())
        try:
            await receiver()
        finally:
            send_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await send_task
    return {**counts, "latencies_ms": latencies, "reasons": reasons, **times}


async def _recv_text(ws: Any) -> str:
    """Next text message, or BenchError when the relay is silent for CLIENT_STALL_TIMEOUT or closes."""
    import aiohttp

    try:
        msg = await asyncio.wait_for(ws.receive(), CLIENT_STALL_TIMEOUT)
    except TimeoutError:
        raise BenchError(f"relay sent nothing for {CLIENT_STALL_TIMEOUT}s") from None
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise BenchError(f"unexpected websocket message {msg.type}: {msg.data!r}")
    return str(msg.data)


async def _collect(ws: Any, sub_id: str) -> list[str]:
    """Receive raw messages for ``sub_id`` until its EOSE; return the raw EVENT messages (parsed later)."""
    eose = f'["EOSE","{sub_id}"]'
    raw: list[str] = []
    while True:
        text = await _recv_text(ws)
        if text.startswith('["EOSE"'):
            if text.replace(" ", "") == eose:
                return raw
            continue
        raw.append(text)


def _events_of(raw: list[str], sub_id: str) -> list[dict[str, Any]]:
    events = []
    for text in raw:
        data = json.loads(text)
        if data[0] == "EVENT" and data[1] == sub_id:
            events.append(data[2])
        elif data[0] == "NOTICE":
            raise BenchError(f"relay NOTICE: {data[1]}")
    return events


async def _client_count(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    expected: set[str] = set()
    for path in spec["events"]:
        with open(path) as fh:
            expected.update(json.loads(line)["id"] for line in fh if line.strip())
    async with aiohttp.ClientSession() as session, session.ws_connect(spec["url"], max_msg_size=0) as ws:
        await ws.send_str(json.dumps(["REQ", "count", {"authors": spec["authors"], "limit": spec["limit"]}]))
        got = {ev["id"] for ev in _events_of(await _collect(ws, "count"), "count")}
        await ws.send_str(json.dumps(["CLOSE", "count"]))
    return {"stored": len(got), "missing": len(expected - got), "unexpected": len(got - expected)}


async def _client_query(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    authors: list[str] = spec["authors"]
    limit, kind = int(spec["limit"]), int(spec["kind"])
    timings: dict[str, list[float]] = {"author": [], "kind": []}
    async with aiohttp.ClientSession() as session, session.ws_connect(spec["url"], max_msg_size=0) as ws:
        for i in range(int(spec["queries"])):
            author = authors[i % len(authors)]
            for qtype, flt in (
                ("author", {"authors": [author], "limit": limit}),
                ("kind", {"kinds": [kind], "limit": limit}),
            ):
                sub_id = f"{qtype[0]}{i}"
                message = json.dumps(["REQ", sub_id, flt])
                started = time.perf_counter()
                await ws.send_str(message)
                raw = await _collect(ws, sub_id)
                timings[qtype].append((time.perf_counter() - started) * 1000.0)
                await ws.send_str(json.dumps(["CLOSE", sub_id]))
                events = _events_of(raw, sub_id)
                if len(events) != limit:
                    raise BenchError(f"query {flt} returned {len(events)} events, expected {limit}")
                field, want = ("pubkey", author) if qtype == "author" else ("kind", kind)
                if any(ev[field] != want for ev in events):
                    raise BenchError(f"query {flt} returned events that do not match the filter")
                stamps = [ev["created_at"] for ev in events]
                if stamps != sorted(stamps, reverse=True):
                    raise BenchError(f"query {flt} did not return newest events first")
    return {"by_author_ms": timings["author"], "by_kind_ms": timings["kind"]}


def _client_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    handlers = {"ingest": _client_ingest, "count": _client_count, "query": _client_query}

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(float(spec["timeout"])):
            return await handlers[spec["mode"]](spec)

    try:
        result = asyncio.run(bounded())
    except TimeoutError:
        print(f"client {spec['mode']} timed out after {spec['timeout']}s", file=sys.stderr)
        return 2
    tmp = Path(spec["out"] + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(spec["out"])
    return 0


# --------------------------------------------------------------------------------------------------- script


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument("--n", type=int, default=20000, help="events to ingest")
    parser.add_argument("--k", type=int, default=8, help="client processes / keys")
    parser.add_argument("--window", type=int, default=16, help="max in-flight events per client")
    parser.add_argument("--payload", type=int, default=400, help="content bytes per event")
    parser.add_argument("--events", type=int, default=10000, help="events stored for the query phase")
    parser.add_argument("--queries", type=int, default=200, help="queries of each type")
    parser.add_argument("--limit", type=int, default=50, help="REQ limit")
    parser.add_argument("--_client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._client:
        return _client_main(args._client)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nostr-peer-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    venv_python = install(workdir)
    install_seconds = time.perf_counter() - started
    out: dict[str, Any] = {"venv_python": str(venv_python), "install_seconds": round(install_seconds, 2)}
    out["ingest"] = run_ingest(venv_python, workdir, n=args.n, k=args.k, window=args.window, payload=args.payload)
    out["queries"] = run_queries(
        venv_python, workdir, events=args.events, queries=args.queries, limit=args.limit, k=args.k
    )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
