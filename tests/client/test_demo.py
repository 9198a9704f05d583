"""`peerfed demo` walks the whole story and cleans up after itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.one_backend("the demo runs its own nodes, on SQLite")


def test_the_demo_tells_the_story_and_leaves_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "demo"], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for step in ("1. Two community nodes", "5. Ben reaches out", "7. They agree", "9. Ben ends", "10. What the nodes"):
        assert step in text
    assert "Ben countersigns. In force" in text
    assert text.count("none of them is there") == 2 and "FOUND" not in text
    assert list(tmp_path.iterdir()) == []  # its temporary folder is gone
