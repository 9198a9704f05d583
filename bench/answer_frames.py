"""What batching the live socket's answers would save the node (issue 17, item 3: batch acknowledgements).

    python bench/answer_frames.py            # 20,000 answers each way, 3 runs, a few seconds

The node answers each publish and send on the live socket with a frame of its own (spec §13.5).
Batching would put the answers finished together in one frame. This measures the node's side of
that choice in isolation: an aiohttp server sends N answers, shaped as the node's `accepted`,
first one frame each, then 16 to a frame (about what one group commit finishes per socket under
the ingest benchmark's window), and counts its own CPU for the sends. A client in the same
process reads them. The figure to weigh is the difference per answer against the node's whole
cost per listing (bench/README.md: 356 µs on SQLite).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from aiohttp import ClientSession, web

__all__ = ["main"]

ANSWERS = 20_000
PER_FRAME = 16
RUNS = 3
CPU = web.AppKey("cpu", dict)


async def _answer(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    answers = [{"type": "accepted", "ref": i, "id": "ab" * 32, "object_type": "listing"} for i in range(ANSWERS)]
    started = time.process_time()
    if request.query["how"] == "one each":
        for answer in answers:
            await ws.send_json(answer)
    else:
        for i in range(0, ANSWERS, PER_FRAME):
            await ws.send_json({"type": "answers", "answers": answers[i : i + PER_FRAME]})
    request.app[CPU][request.query["how"]].append((time.process_time() - started) / ANSWERS * 1e6)
    await ws.close()
    return ws


async def _run() -> dict[str, list[float]]:
    app = web.Application()
    app[CPU] = {"one each": [], f"{PER_FRAME} a frame": []}
    app.router.add_get("/", _answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with ClientSession() as http:
            for _ in range(RUNS):
                for how in app[CPU]:
                    async with http.ws_connect(f"http://127.0.0.1:{port}/", params={"how": how}) as ws:
                        got = 0
                        async for message in ws:
                            data: Any = json.loads(message.data)
                            got += len(data["answers"]) if data["type"] == "answers" else 1
                        assert got == ANSWERS, got
    finally:
        await runner.cleanup()
    return app[CPU]


def main() -> int:
    results = asyncio.run(_run())
    print(f"node CPU per answer sent, µs ({ANSWERS:,} answers, median of {RUNS} runs [range]):")
    for how, runs in results.items():
        print(f"  {how:>12}: {statistics.median(runs):.1f} [{min(runs):.1f}-{max(runs):.1f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
