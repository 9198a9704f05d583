"""The protocol core does no I/O and reads no clock (STYLE habit 1; the spec's notation, before §1)."""

import ast
import subprocess
import sys
from pathlib import Path

import peerfed.protocol

FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "aiosqlite",
    "socket",
    "time",
    "random",
    "logging",
    "sqlite3",
    "datetime",
    "subprocess",
    "threading",
    "os",
    "peerfed.node",
    "peerfed.client",
}
PACKAGE = Path(peerfed.protocol.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_module_in_the_protocol_imports_io_clock_or_randomness() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN and name not in FORBIDDEN, f"{path.name} imports {name}"


def test_importing_the_protocol_loads_no_event_loop_or_database() -> None:
    code = (
        "import sys, peerfed.protocol; "
        "bad = [m for m in ('aiohttp', 'aiosqlite', 'asyncio', 'sqlite3') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_node_never_imports_the_client() -> None:
    """Imports go one way: client -> node -> protocol (STYLE, shape of the package)."""
    node_package = PACKAGE.parent / "node"
    files = sorted(node_package.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for name in _imports(path):
            assert not name.startswith("peerfed.client"), f"node/{path.name} imports {name}"
