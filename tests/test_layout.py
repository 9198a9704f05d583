"""The package keeps the shape the spec gives it: small rooms, each naming its section (STYLE, shape of the package).

Imports go one way (client -> node -> protocol; the conformance suite -> protocol only), no
module grows past about 400 lines, each module's first line cites the spec section it
implements, and HTTP handlers never reach into the store: they call the node's parts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import peerfed

PACKAGE = Path(peerfed.__file__).parent
MAX_LINES = 450  # "about 400": a module past this is split along its seams before it grows
SECTION = re.compile(r"§(\d+(\.\d+)?|Appendix)")
SPEC = PACKAGE.parent / "spec" / "peerfed-v1.md"


def modules() -> list[Path]:
    found = sorted(PACKAGE.rglob("*.py"))
    assert len(found) >= 40
    return found


def imported(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, relative imports resolved."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    package = parts if path.name == "__init__.py" else parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_is_over_about_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_module_names_the_spec_section_it_implements_in_its_first_line() -> None:
    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", SPEC.read_text(encoding="utf-8"), flags=re.MULTILINE))
    for path in modules():
        text = path.read_text(encoding="utf-8")
        if not text.strip() or path.name == "__main__.py":
            continue
        doc = ast.get_docstring(ast.parse(text))
        assert doc, f"{path.relative_to(PACKAGE)} has no docstring"
        first = doc.splitlines()[0]
        cited = [m.group(1) for m in SECTION.finditer(first)]
        assert cited, f"{path.relative_to(PACKAGE)}: the first line cites no spec section: {first!r}"
        for section in cited:
            assert section == "Appendix" or section in headings, f"{path.relative_to(PACKAGE)} cites §{section}"


def test_imports_go_one_way_client_node_protocol() -> None:
    for path in modules():
        layer = path.relative_to(PACKAGE).parts[0]
        names = imported(path)
        if layer == "protocol":
            assert not {n for n in names if n.startswith(("peerfed.node", "peerfed.client"))}, path
        if layer == "node":
            assert not {n for n in names if n.startswith(("peerfed.client", "peerfed.conformance"))}, path
        if layer in ("protocol", "client"):
            assert not {n for n in names if n.startswith("peerfed.conformance")}, path


def test_the_conformance_suite_speaks_the_protocol_only() -> None:
    """It judges any node from outside: built on the protocol core, never on the node it might flatter."""
    suite = sorted((PACKAGE / "conformance").glob("*.py"))
    assert len(suite) >= 5
    for path in suite:
        ours = {n for n in imported(path) if n.startswith("peerfed")}
        assert ours <= {n for n in ours if n.startswith(("peerfed.protocol", "peerfed.conformance"))}, path


def test_http_handlers_call_the_node_parts_never_the_store() -> None:
    handlers = sorted((PACKAGE / "node" / "api").glob("*.py"))
    assert len(handlers) >= 3
    for path in handlers:
        assert not {n for n in imported(path) if n.startswith("peerfed.node.store")}, path
        assert ".store." not in path.read_text(encoding="utf-8"), f"{path.name} reaches into the store"
