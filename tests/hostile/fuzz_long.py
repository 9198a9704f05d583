"""Long hostile-input runs outside CI: the generators of tests/hostile/fuzz from a seeded random source.

    python tests/hostile/fuzz_long.py --inputs 100000 --seed 1

Runs the same generators and the same checks as the Hypothesis tests (``World.run`` and ``judge``),
without Hypothesis' example limits, against one set of nodes: B (the target), A (federated with B)
and C (not federated with B). Every input is one request or one WebSocket conversation. Every so
often an honest peer and an honest node check that B still serves (``World.serving``), B and A
deliver what they queued, and, with ``--tick``, the clock moves on so that stored objects age.

Prints the inputs per endpoint, the unexpected outcomes per kind (node.internal, a status that does
not match its code, a non-JSON answer, something stored by a refused input, an unexpected
exception in the node's log, a dropped WebSocket, an honest request refused, the node stopping),
and up to ``--examples`` inputs for each distinct kind of problem. Exits 1 if anything unexpected
happened, 0 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.hostile.fuzz.generators import GROUPS, generate
from tests.hostile.fuzz.oracle import CATEGORIES, Problem, Verdict
from tests.hostile.fuzz.sources import RandomSource
from tests.hostile.fuzz.world import World

# How often each group is drawn: by its number of endpoints, so every endpoint gets a fair share.
WEIGHTS = {group: len(endpoints) for group, endpoints in GROUPS.items()}
WEIGHTS["federation-signatures"] = 3
WEIGHTS["live"] = 2
WEIGHTS["prekeys"] = 4  # four routes; uploads and claims drawn twice as often inside the group


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=100_000, help="how many hostile inputs to send")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--groups", default="all", help="comma-separated groups, or all: " + ", ".join(GROUPS))
    parser.add_argument("--max-seconds", type=float, default=0, help="stop early after this long (0: no bound)")
    parser.add_argument("--check-every", type=int, default=25, help="inputs between honest requests")
    parser.add_argument("--full-every", type=int, default=2_000, help="inputs between full honest rounds")
    parser.add_argument("--tick", type=int, default=0, help="seconds the clock moves on at each full round")
    parser.add_argument("--examples", type=int, default=2, help="inputs shown per distinct problem")
    parser.add_argument("--progress", type=int, default=5_000, help="inputs between progress lines")
    args = parser.parse_args(argv)

    groups = list(GROUPS) if args.groups == "all" else args.groups.split(",")
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown groups: {', '.join(unknown)}")
    weights = [WEIGHTS[g] for g in groups]
    rng = random.Random(args.seed)
    src = RandomSource(rng)

    per_endpoint: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()  # status or code per answer, for the record
    unexpected: Counter[str] = Counter()
    unexpected_inputs = 0
    by_kind: dict[str, list[str]] = defaultdict(list)
    kinds: Counter[str] = Counter()
    harness_errors: Counter[str] = Counter()
    honest_failures: list[Problem] = []
    stopped = ""
    sent = 0
    started = time.monotonic()

    def note_problems(problems: list[Problem], where: str) -> None:
        for problem in problems:
            unexpected[problem.category] += 1
            key = f"{problem.category}|{where}|{problem.detail[:80]}"
            kinds[key] += 1
            if len(by_kind[key]) < args.examples:
                by_kind[key].append(problem.detail)

    with tempfile.TemporaryDirectory(prefix="peerfed-fuzz-") as tmp, World(Path(tmp)) as world:
        for n in range(1, args.inputs + 1):
            if args.max_seconds and time.monotonic() - started > args.max_seconds:
                print(f"stopping after {args.max_seconds:.0f} s (--max-seconds)", flush=True)
                break
            group = rng.choices(groups, weights)[0]
            try:
                case = generate(group, src, world)
            except Exception as exc:  # a bug in a generator, not in the node: counted apart
                harness_errors[f"{group}: {type(exc).__name__}: {exc}"[:200]] += 1
                continue
            verdict: Verdict = world.run(case)
            sent += 1
            per_endpoint[case.endpoint] += 1
            answer = verdict.answer
            outcomes[answer.code or (str(answer.status) if answer.status is not None else "live")] += 1
            if verdict.problems:
                unexpected_inputs += 1
                for problem in verdict.problems:
                    unexpected[problem.category] += 1
                signature = verdict.signature()
                kinds[signature] += 1
                if len(by_kind[signature]) < args.examples:
                    by_kind[signature].append(verdict.report())
                if any(p.category == "no answer" for p in verdict.problems) and "cannot connect" in answer.error:
                    stopped = f"the node stopped answering at input {n}: {answer.error}"
                    unexpected["node stopped"] += 1
                    break
            if n % args.check_every == 0 or n % args.full_every == 0:
                full = n % args.full_every == 0
                problems = world.serving(full=full)
                if full:
                    problems += world.deliver()
                    if args.tick:
                        world.advance(args.tick)
                honest_failures += problems
                note_problems(problems, "honest round")
            if args.progress and n % args.progress == 0:
                rate = n / (time.monotonic() - started)
                print(f"{n} inputs, {unexpected_inputs} unexpected, {rate:.0f}/s", flush=True)
        if not stopped:
            final = world.serving(full=True) + world.deliver() + world.serving(full=True)
            honest_failures += final
            note_problems(final, "final honest round")

    elapsed = time.monotonic() - started
    print()
    print(f"peerfed hostile-input run: seed {args.seed}, {sent} inputs in {elapsed:.0f} s")
    print("\ninputs per endpoint:")
    for endpoint, count in sorted(per_endpoint.items()):
        print(f"  {count:8d}  {endpoint}")
    print("\nanswers (error code, HTTP status of a success, or live):")
    for outcome, count in outcomes.most_common():
        print(f"  {count:8d}  {outcome}")
    if harness_errors:
        print("\ngenerator errors (harness bugs, inputs not sent):")
        for error, count in harness_errors.most_common():
            print(f"  {count:8d}  {error}")
    print(f"\nunexpected outcomes: {unexpected_inputs} inputs, {len(honest_failures)} honest-round failures")
    for category in (*CATEGORIES, "node stopped"):
        print(f"  {unexpected[category]:8d}  {category}")
    if kinds:
        print("\ndistinct problems (category | endpoint | exception or code):")
        for kind, count in kinds.most_common():
            print(f"\n=== {count} x {kind}")
            for example in by_kind[kind]:
                print(example[:4000])
                print("---")
    if stopped:
        print("\n" + stopped)
    failed = bool(unexpected) or bool(stopped)
    print("\nRESULT: " + ("FAIL (unexpected outcomes above)" if failed else "OK (no unexpected outcome)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
