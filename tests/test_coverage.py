"""The rule coverage matrix (spec/coverage.md, spec §11): current, and no rule of the spec without a case.

The README's test command runs `spec/coverage.py --check` here, as CI does, so a MUST added without
an id, or without a vector, conformance case or test, fails the suite; the errors name the rule.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "spec" / "coverage.py"


def coverage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peerfed_rule_coverage", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def test_coverage_md_is_current_and_every_rule_has_a_case() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_must_without_an_id_is_named_by_line_and_section() -> None:
    text = "\n".join([
        "# preamble: MUST here is not a rule",
        "## 6. Listings",
        "### 6.2 Listing",
        "[R-6.2-1] A receiver MUST NOT refuse it, e.g. `UTC`. A second sentence",
        "that MUST have its own id.",
        "",
        "| 0 | url | str | [R-6.2-2] MUST equal the URL |",
        "- [R-6.2-3] a list item MUST be one unit; and it MUST count once.",
    ])  # fmt: skip
    rules, errors = coverage().parse_rules(text)
    assert sorted(rules) == ["R-6.2-1", "R-6.2-2", "R-6.2-3"]
    assert rules["R-6.2-1"].sentence == "A receiver MUST NOT refuse it, e.g. `UTC`."
    assert rules["R-6.2-2"].sentence == "MUST equal the URL"
    assert len(errors) == 1, errors
    assert errors[0].startswith("spec/peerfed-v1.md:5 (§6.2): MUST without a rule id in its sentence"), errors


def test_an_id_in_the_wrong_section_or_twice_is_refused() -> None:
    text = "## 7. Sealing\n\n[R-6.2-1] It MUST be.\n\n[R-7-1] It MUST.\n\n[R-7-1] Again MUST.\n"
    _, errors = coverage().parse_rules(text)
    assert any("R-6.2-1 stands in §7" in e for e in errors), errors
    assert any("R-7-1 is used twice" in e for e in errors), errors


def test_a_rule_without_a_case_and_a_stale_gap_are_named() -> None:
    module = coverage()
    rules, errors = module.parse_rules("## 2. Encoding\n\n[R-2-1] A decoder MUST reject.\n\n[R-2-2] It MUST.\n")
    assert errors == []
    errors = module.attach(rules, {"R-2-1": ["encoding.json#1"]}, {"R-9-9": ["x.case"]}, {}, {})
    assert any(e.startswith("R-2-2 (spec/peerfed-v1.md:5) has no vector, conformance case or test") for e in errors)
    assert any(e.startswith("R-9-9: named by conformance case x.case") for e in errors), errors
    rules, _ = module.parse_rules("## 2. Encoding\n\n[R-2-1] A decoder MUST reject.\n")
    errors = module.attach(rules, {"R-2-1": ["encoding.json#1"]}, {}, {}, {"R-2-1": "none yet"})
    assert errors == ["R-2-1 has a case now: remove it from GAPS in spec/coverage.py"]


def test_a_named_test_that_does_not_exist_is_an_error() -> None:
    errors = coverage().test_errors({"R-9.5-2": ["tests/test_coverage.py::test_that_is_not_there"]})
    assert errors == ["R-9.5-2: the test tests/test_coverage.py::test_that_is_not_there named for it does not exist"]
