"""The web client from a cold start: time to the first screen and to the first sent message.

    python bench/web_cold_start.py               # 5 cold starts against one local node
    python bench/web_cold_start.py --runs 9 --out web.json

One `peerfed serve` on 127.0.0.1 with its defaults for what a person meets (first-contact proof of
work of 16 bits; only the per-address join limit is lifted, so the runs can all join). A CLI peer
publishes one offer. Then, for each run, a new headless Chromium process on an empty profile
(peerfed/web/scripts/bench-cold-start.mjs) opens the node's page, joins with a passphrase, finds
the offer in Browse and sends a hello. Medians over the runs, with the range. Also the first
screen's JavaScript, gzip level 9, as `npm run size` counts it. Needs Node.js, `npm ci --prefix
peerfed/web` and /usr/bin/chromium. A benchmark, never a test: it asserts only that each run got
to the end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import NodeProc, machine, spread

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "peerfed" / "web"
TOPIC = "evening-worries"
MILESTONES = ("browser", "firstScreen", "joined", "firstMessage")
# Defaults a person meets, but for joining: every run joins from 127.0.0.1.
ENV = {"PEERFED_FIRST_CONTACT_WORK_BITS": "16", "PEERFED_JOIN_WORK_BITS": "0", "PEERFED_LOG_LEVEL": "WARNING"}


def cli(home: Path, *args: str) -> Any:
    """One peerfed CLI command as a separate process; its JSON answer. Raises CalledProcessError."""
    env = {"PEERFED_HOME": str(home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "peerfed", *args, "--json"], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def first_screen_js() -> dict[str, int]:
    """Bytes of the JavaScript the first screen loads (app.js), raw and gzip -9; and the worker's."""
    app = (WEB / "dist" / "assets" / "app.js").read_bytes()
    work = (WEB / "dist" / "assets" / "work.js").read_bytes()
    return {
        "app_js_bytes": len(app),
        "app_js_gzip": len(gzip.compress(app, 9, mtime=0)),
        "worker_js_gzip": len(gzip.compress(work, 9, mtime=0)),
    }


def one_start(node_url: str, profile: Path) -> dict[str, Any]:
    runner = shutil.which("node")
    if runner is None:
        raise SystemExit("Node.js is needed")
    done = subprocess.run(
        [runner, str(WEB / "scripts" / "bench-cold-start.mjs"), node_url, TOPIC, str(profile)],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the cold start failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write every run and the medians here (JSON)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="peerfed-web-bench-") as tmp:
        work = Path(tmp)
        with NodeProc(work / "node", env=ENV) as node:
            node.start()
            cli(work / "ana", "id", "new", "--node", node.url, "--name", "Ana", "--no-passphrase")
            cli(work / "ana", "offer", "--topic", TOPIC, "--summary", "Evenings are hard for me too; happy to listen.")
            runs = [one_start(node.url, work / f"profile-{i}") for i in range(args.runs)]
    figures = {name: spread([float(r[name]) for r in runs]) for name in MILESTONES}
    js = first_screen_js()
    # Other work on the machine slows a browser a lot: the load average goes with the figures.
    report = {"machine": machine(), "load": os.getloadavg(), "runs": runs, "milliseconds": figures, "javascript": js}
    print(f"{'milestone (ms from browser start)':36} {'median':>8} {'min':>8} {'max':>8}")
    for name in MILESTONES:
        f = figures[name]
        print(f"{name:36} {f['median']:8.0f} {f['min']:8.0f} {f['max']:8.0f}")
    print(f"first screen JavaScript: {js['app_js_gzip']} bytes gzip ({js['app_js_bytes']} raw)")
    print(f"first-contact worker: {js['worker_js_gzip']} bytes gzip; load average {report['load']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
