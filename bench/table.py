"""Render a results file from `bench/run.py --out FILE` as the Markdown table in bench/README.md.

    python bench/table.py results.json

Each row gives the median over the runs, the range in brackets, the issue's target, whether it
was met, and where the comparison measured it, nostr-relay's figure and the ratio.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def fig(value: Any, unit: str = "") -> str:
    if isinstance(value, dict) and "median" in value:
        low, high = value["min"], value["max"]
        if value.get("runs", 1) > 1 and low != high:
            return f"{_num(value['median'])}{unit} [{_num(low)}-{_num(high)}]"
        return f"{_num(value['median'])}{unit}"
    return f"{_num(value)}{unit}"


def med(value: Any) -> float:
    return float(value["median"] if isinstance(value, dict) else value)


def _num(x: float) -> str:
    if isinstance(x, int) or abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    out: list[tuple[str, str, str, str, str, str]] = []

    def add(name: str, value: str, target: str, ok: bool | None, peer: str = "", ratio: str = "") -> None:
        out.append((name, value, target, {True: "yes", False: "**no**", None: "-"}[ok], peer, ratio))

    ing = r.get("ingest")
    cmp_ = r.get("compare")
    if ing:
        verify = ing["verify_per_s_one_core"]
        listings = med(ing["listings"]["per_s"])
        if cmp_:
            theirs = med(cmp_["ingest_per_s"]["nostr_relay"])
            ours = med(cmp_["ingest_per_s"]["peerfed"])
            add(
                f"ingest, listings/s (N={cmp_['shape']['n']:,}, K={cmp_['shape']['clients']}, "
                f"window {cmp_['shape']['window']}), side by side",
                fig(cmp_["ingest_per_s"]["peerfed"]),
                "≥ 10 x nostr-relay",
                ours >= 10 * theirs,
                fig(cmp_["ingest_per_s"]["nostr_relay"]),
                f"{ours / theirs:.1f} x",
            )
            add(
                "ingest, acknowledgement p50 / p99 ms",
                f"{fig(cmp_['ack_p50_ms']['peerfed'])} / {fig(cmp_['ack_p99_ms']['peerfed'])}",
                "-",
                None,
                f"{fig(cmp_['ack_p50_ms']['nostr_relay'])} / {fig(cmp_['ack_p99_ms']['nostr_relay'])}",
            )
        add(
            "ingest, listings/s, vs one core's Ed25519 verify rate",
            f"{fig(ing['listings']['per_s'])} = {listings / verify:.0%} of {verify:,}/s",
            "≥ 70 %",
            listings >= 0.7 * verify,
        )
        add(
            "ingest, sealed envelopes/s (to local mailboxes)",
            fig(ing["sealed"]["per_s"]),
            "-",
            None,
        )
        add(
            "ingest ack p50 / p99 ms: listings; sealed",
            f"{fig(ing['listings']['ack_p50_ms'])} / {fig(ing['listings']['ack_p99_ms'])}; "
            f"{fig(ing['sealed']['ack_p50_ms'])} / {fig(ing['sealed']['ack_p99_ms'])}",
            "-",
            None,
        )
    scale = r.get("scale")
    if scale:
        for level in scale["levels"]:
            size = level["listings"]
            if not size:
                add("start-up, empty node, s", fig(level["startup_s"]), "< 1", med(level["startup_s"]) < 1)
                add("idle node resident memory, MiB", fig(level["idle_rss_mib"]), "< 80", level["idle_rss_mib"] < 80)
                continue
            for clients in (1, 8, 2):
                key = f"search_{clients}_clients"
                if key not in level:
                    continue
                s = level[key]
                tl, kf = s["topic+lang"], s["kind+format"]
                target, ok = "-", None
                if size == 100_000 and clients == 8:
                    target = "p50 ≤ 2, p99 ≤ 10"
                    ok = (
                        max(med(tl["p50_ms"]), med(kf["p50_ms"])) <= 2
                        and max(med(tl["p99_ms"]), med(kf["p99_ms"])) <= 10
                    )
                peer, ratio = "", ""
                if cmp_ and size == cmp_["queries"]["listings_or_events"] and clients == 1:
                    q = cmp_["queries"]
                    peer = f"by author {_num(q['nostr_by_author_p50_ms'])}, by kind {_num(q['nostr_by_kind_p50_ms'])}"
                add(
                    f"search p50 / p99 ms at {size:,} listings, {clients} client{'s' if clients > 1 else ''}: "
                    "topic+lang; kind+format",
                    f"{fig(tl['p50_ms'])} / {fig(tl['p99_ms'])}; {fig(kf['p50_ms'])} / {fig(kf['p99_ms'])}",
                    target,
                    ok,
                    peer,
                    ratio,
                )
            add(
                f"at {size:,} listings: node CPU per query ms (8 clients); ingest listings/s; database MiB",
                f"{fig(level['search_8_clients']['node_cpu_per_query_ms']) if 'search_8_clients' in level else '-'}; "
                f"{_num(level['ingest_per_s'])}; {_num(level['db_mib'])}",
                "-",
                None,
            )
            target, ok = "-", None
            if size >= 1_000_000:
                target, ok = "< 3", med(level["startup_s"]) < 3
            add(f"start-up at {size:,} listings, s", fig(level["startup_s"]), target, ok)
    d = r.get("delivery")
    if d:
        add(
            f"delivery A→B at {d['offered_per_s']:,}/s offered, p50 / p99 ms",
            f"{fig(d['steady_p50_ms'])} / {fig(d['steady_p99_ms'])}",
            "p50 ≤ 15, p99 ≤ 50",
            med(d["steady_p50_ms"]) <= 15 and med(d["steady_p99_ms"]) <= 50,
        )
        add(
            f"delivery A→B throughput, {d['burst_items']:,} at once, envelopes/s",
            fig(d["burst_per_s"]),
            "≥ 5,000",
            med(d["burst_per_s"]) >= 5000,
        )
    rep = r.get("replication")
    if rep:
        add(
            f"replication to {rep['other_nodes']} other nodes, p50 / p99 ms",
            f"{fig(rep['p50_ms'])} / {fig(rep['p99_ms'])}",
            "p99 ≤ 250",
            med(rep["p99_ms"]) <= 250,
        )
    con = r.get("connections")
    if con:
        add(
            f"memory per idle authenticated live socket, KiB ({con['sockets']:,} sockets)",
            fig(con["per_socket_kib"]),
            "≤ 50",
            med(con["per_socket_kib"]) <= 50,
        )
    return out


def main() -> None:
    results = json.loads(Path(sys.argv[1]).read_text())
    m = results["machine"]
    print(f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; Python {m['python']}, "
          f"SQLite {m['sqlite']}. Run {m['date']}" + (" (quick mode: figures mean nothing)" if results["quick"] else "")
          + f"; medians of {results['sizes']['runs']} runs, range in brackets.\n")  # fmt: skip
    print("| Benchmark | peerfed | Target | Met | nostr-relay 1.14 | Ratio |")
    print("|---|---|---|---|---|---|")
    for row in rows(results):
        print("| " + " | ".join(row) + " |")
    loads = [
        f"{name} {r['load_1min']['before']}→{r['load_1min']['after']}"
        for name, r in results.items()
        if isinstance(r, dict) and "load_1min" in r
    ]
    if loads:
        print(f"\nMachine load (1-minute average, {m['cores']} cores) before→after each benchmark: " + "; ".join(loads))


if __name__ == "__main__":
    main()
