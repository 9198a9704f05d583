"""The same conversation on both sides (spec §9.5, display order), through the real CLI."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.client.pairs import Cli, connected, eventually, one_node
from tests.processes import NodeProcesses

ROUNDS = 8  # bound on rounds needed for two sides to write within one second


def _send_together(sends: list[tuple[Cli, str, str]]) -> None:
    """Start every send at once and wait for all; each must succeed."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "peerfed", "send", connection[:8], text],
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cli, connection, text in sends
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err


def _all(cli: Cli, connection: str, count: int) -> list[dict[str, Any]] | None:
    messages: list[dict[str, Any]] = cli.json("read", connection[:8])["messages"]
    return messages if len(messages) >= count else None


def test_same_second_messages_from_both_sides_show_in_the_same_order_on_both(
    node_processes: NodeProcesses, tmp_path: Path
) -> None:
    ana, ben, connection = connected(one_node(node_processes, tmp_path), tmp_path)
    same_second = False
    for round_ in range(ROUNDS):
        _send_together([(ana, connection, f"ana {round_}"), (ben, connection, f"ben {round_}")])
        count = 2 * (round_ + 1)
        at_ana = eventually(functools.partial(_all, ana, connection, count), "both messages at Ana")
        at_ben = eventually(functools.partial(_all, ben, connection, count), "both messages at Ben")
        assert [m["id"] for m in at_ana] == [m["id"] for m in at_ben]
        when = {m["text"]: m["at"] for m in at_ana}
        if when[f"ana {round_}"] == when[f"ben {round_}"]:
            same_second = True
            break
    assert same_second, "no round put both sides' messages in one second"
    # Each side is named from the reader's point of view.
    assert {(m["text"][:3], m["from"], m["name"]) for m in at_ana} == {("ana", "me", "Ana"), ("ben", "them", "Ben")}
    assert {(m["text"][:3], m["from"], m["name"]) for m in at_ben} == {("ana", "them", "Ana"), ("ben", "me", "Ben")}

    # The text view: one line a message, local time, side and name, in the same order on both devices.
    line = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d\] (me|them) \((Ana|Ben)\): (ana|ben) \d+$")
    shown = {}
    for who, cli in (("Ana", ana), ("Ben", ben)):
        # How it began comes first: Ben's hello, Ana's acceptance; then the messages.
        began, lines = [], cli.run("read", connection[:8]).stdout.splitlines()
        while lines and (" reached out" in lines[0] or " accepted" in lines[0]):
            began.append(lines.pop(0))
        assert [" reached out" in x for x in began] == [True, False] and "(Ana) accepted" in began[1]
        assert lines[-1] == "-- accepted" and len(lines) - 1 == count
        for text in lines[:-1]:
            found = line.match(text)
            assert found, text
            assert (found[1] == "me") == (found[2] == who) and found[3] == found[2].lower()
        shown[who] = [text.split(": ", 1)[1] for text in lines[:-1]]
    assert shown["Ana"] == shown["Ben"] == [m["text"] for m in at_ana]
