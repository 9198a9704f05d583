"""Summarise a py-spy raw profile (from `bench/run.py --profile DIR`): where the node's time goes.

    python bench/hotspots.py DIR/node-*.txt [--top 30]

Prints the share of samples per thread, then the functions with the most samples of their own
(self) and in total (inclusive), so a change can be judged by the lines it moves.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def thread_of(frames: list[str]) -> str:
    """Which thread a sample came from, by the root of its stack.

    Only threads started by `threading` have `Thread._bootstrap` at their root: aiosqlite's
    database thread and the executor's signature threads. Every other sample is the main thread,
    that is the event loop, even when py-spy truncated the stack so `run_forever` is not in it
    (counting those as workers once put the event loop at 35% of GIL time instead of ~67%).
    """
    if not frames[0].startswith("Thread._bootstrap"):
        return "event loop"
    if any("aiosqlite/" in frame for frame in frames):
        return "database thread (aiosqlite)"
    return "executor threads (signatures, sealing)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for file in args.files:
        for line in file.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue  # py-spy occasionally writes a garbled frame name; skip that sample
            frames = stack.split(";")
            n = int(count)
            total += n
            threads[thread_of(frames)] += n
            own[frames[-1]] += n
            for name in set(frames):
                inclusive[name] += n
    print(f"{total} samples")
    for name, n in threads.most_common():
        print(f"{n / total:6.1%}  {name}")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"\n-- {title} --")
        for name, n in counter.most_common(args.top):
            print(f"{n / total:6.1%}  {name[:140]}")


if __name__ == "__main__":
    main()
