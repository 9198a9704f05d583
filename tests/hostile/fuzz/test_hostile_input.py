"""Hostile input at every endpoint, group by group, under Hypothesis (see the package docstring)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .generators import GROUPS, generate
from .sources import HypothesisSource
from .world import World

EXAMPLES = int(os.environ.get("PEERFED_FUZZ_EXAMPLES", "500"))  # per group; live (slower) gets 3/5 of it


@pytest.mark.parametrize("group", list(GROUPS))
def test_hostile_input_gets_a_coded_answer_stores_nothing_and_the_node_keeps_serving(
    group: str, tmp_path: Path
) -> None:
    with World(tmp_path) as world:
        examples = EXAMPLES * 3 // 5 if group == "live" else EXAMPLES

        # No shrinking: each failure prints its whole input already, test_known_inputs pins minimal ones,
        # and shrinking several distinct node bugs at a request per step would take minutes.
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        )
        @given(st.data())
        def hostile(data: st.DataObject) -> None:
            verdict = world.run(generate(group, HypothesisSource(data), world))
            verdict.check()
            problems = world.serving()
            assert not problems, f"after {verdict.case.describe()}\n{problems}"

        hostile()
        problems = world.serving(full=True) + world.deliver() + world.serving(full=True)
        assert not problems, problems
