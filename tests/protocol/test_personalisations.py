"""The one table of BLAKE2b personalisations (spec §3.1) is the spec's table, entry for entry."""

from __future__ import annotations

import re
from pathlib import Path

from peerfed.protocol.crypto import Person, personalisation

SPEC = Path(__file__).resolve().parents[2] / "spec" / "peerfed-v1.md"


def spec_table() -> dict[str, str]:
    section = SPEC.read_text(encoding="utf-8").split("### 3.1 ", 1)[1].split("### 3.2 ", 1)[0]
    return dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{32})` \|", section, flags=re.MULTILINE))


def test_the_code_and_the_spec_list_the_same_personalisations() -> None:
    table = spec_table()
    assert {bytes(p) for p in Person} == {bytes.fromhex(h) for h in table.values()}
    for label, value in table.items():
        assert personalisation(label) == bytes.fromhex(value)
    assert len(set(Person)) == len(list(Person)) == len(table)  # no label serves twice
