"""psycopg, the optional PostgreSQL driver (store/pgdriver.py): a node without it says how to get it."""

from __future__ import annotations

import sys

import pytest

from peerfed.node.store import StorageError
from peerfed.node.store.pgdriver import INSTALL, load_psycopg


@pytest.mark.one_backend("about a machine without the PostgreSQL driver")
def test_a_node_without_psycopg_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_psycopg() is sys.modules["psycopg"]
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an import finds where it is not installed
    with pytest.raises(StorageError, match="needs psycopg") as refused:
        load_psycopg()
    assert INSTALL in str(refused.value) and INSTALL == "pip install 'peerfed[postgresql]'"
