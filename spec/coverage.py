"""Write spec/coverage.md: every numbered rule of peerfed-v1.md and the cases that exercise it.

    python spec/coverage.py            # rewrite coverage.md beside this script
    python spec/coverage.py --check    # exit 1 if coverage.md is stale, or any rule lacks an id or a case

A rule is a sentence of the spec with MUST, MUST NOT, REQUIRED or SHALL in it, and an id written in
place before the keyword, in the same sentence: ``[R-6.2-1]`` (the section, then a number). Its cases
come from three places: the ``rules`` of each test in ``vectors/*.json``, the rules each conformance
case names (``peerfed conformance``, peerfed/conformance/), and, for the few rules only a client
device can show, the Python tests named in ``TESTS`` below. A rule with none of them fails the check,
and every error names the rule, or the spec line whose keyword has no id.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = HERE / "peerfed-v1.md"
OUT = HERE / "coverage.md"
VECTORS = HERE / "vectors"

KEYWORD = re.compile(r"\b(?:MUST NOT|MUST|REQUIRED|SHALL NOT|SHALL)\b")
RULE_ID = re.compile(r"\[R-(\d+(?:\.\d+)?)-(\d+)\]")
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)\.? ")
# A sentence ends at . ! or ? followed by white space and a capital, a quote, a link or a bracket;
# "e.g." and "i.e." do not end one.
SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)[.!?]\)?\*{0,2}\s+(?=[A-Z`(\[*\"])")
LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+\.)\s")

# Rules that only a client device can show (what it displays, keeps or asks): each names the Python
# tests that exercise it, as "path::function". Used sparingly: anything a node or bytes can show has
# a vector or a conformance case instead.
TESTS: dict[str, tuple[str, ...]] = {
    "R-9.4-1": ("tests/client/test_cli_erase.py::test_end_with_erase_leaves_no_plaintext_on_either_device",),
    "R-9.4-2": ("tests/client/test_cli_erase.py::test_end_with_erase_leaves_no_plaintext_on_either_device",),
    "R-9.7-1": (
        "tests/client/test_cli_forget.py::test_agreed_terms_forget_the_messages_on_both_devices_and_keep_the_connection",
    ),
    "R-9.5-1": ("tests/client/test_cli_outbox.py::test_eight_concurrent_sends_on_one_home_arrive_once_each_in_order",),
    "R-9.5-2": (
        "tests/client/test_display.py::test_display_order_is_the_same_whoever_holds_the_messages_and_in_what_order",
        "tests/client/test_cli_order.py::test_same_second_messages_from_both_sides_show_in_the_same_order_on_both",
    ),
    "R-9.5-3": ("tests/client/test_cli_display.py::test_peer_written_fields_are_shown_escaped_one_line_per_message",),
    "R-9.5-4": (
        "tests/client/test_cli_offline.py::test_reading_connections_and_agreements_work_with_the_home_node_down",
    ),
    "R-9.5-5": (
        "tests/client/test_taking_over.py::test_a_device_that_takes_the_identity_back_without_a_backup_keeps_the_conversation",
        "tests/client/test_taking_over.py::test_a_take_over_with_a_backup_keeps_its_sessions_and_numbers_past_the_floor",
    ),
    "R-9.5-6": (
        "tests/client/test_taking_over.py::test_a_device_that_takes_the_identity_back_without_a_backup_keeps_the_conversation",
    ),
    "R-9.5-7": (
        "tests/client/test_taking_over.py::test_a_device_that_takes_the_identity_back_without_a_backup_keeps_the_conversation",
    ),
    "R-9.6-1": ("tests/client/test_cli_passphrase.py::test_new_keys_need_a_passphrase_or_an_explicit_no",),
    "R-9.6-2": (
        "tests/client/test_cli_history_at_rest.py::test_a_locked_device_holds_no_conversation_text",
        "tests/client/test_cli_history_at_rest.py::test_a_history_kept_in_plaintext_is_sealed_on_the_first_unlock",
    ),
    "R-11-1": ("tests/protocol/test_vectors.py::test_the_generator_reproduces_every_file_byte_for_byte",),
    "R-13.4-4": ("tests/client/test_cli_approval.py::test_a_pending_key_is_kept_and_signs_in_once_approved",),
    "R-13.4-6": (
        "tests/client/test_cli_devices.py::test_import_on_a_new_device_moves_the_identity_and_the_old_device_stops_receiving",
    ),
    "R-13.4-7": (
        "tests/client/test_cli_devices.py::test_import_on_a_new_device_moves_the_identity_and_the_old_device_stops_receiving",
    ),
    "R-13.5-16": (
        "tests/client/test_peer.py::test_unanswered_reach_outs_are_capped_per_recipient",
        "tests/hostile/test_stranger_reachout.py::test_twenty_reach_outs_from_one_key_do_not_fill_the_cap",
    ),
    "R-13.5-17": (
        "tests/hostile/test_stranger_reachout.py::test_pending_reach_outs_expire_with_the_reach_out",
        "tests/hostile/test_stranger_reachout.py::test_decline_and_block_work_without_the_senders_bundle",
    ),
    "R-13.6-4": ("tests/client/test_cli_story.py::test_follow_report_resources_move_and_erase",),
    "R-10-1": (
        "tests/protocol/test_errors.py::test_an_unknown_wire_code_becomes_a_foreign_error",
        "tests/protocol/test_errors.py::test_anything_a_node_sends_as_a_code_gives_a_remote_error",
    ),
    "R-12-1": ("tests/protocol/test_randomness.py::test_every_seal_has_its_own_ephemeral_key_and_nonce",),
    "R-13.5-5": (
        "tests/client/test_untrusted_answers.py::test_directory_results_and_key_bundles_are_verified_not_trusted",
    ),
    "R-13.5-11": (
        "tests/client/test_untrusted_answers.py::test_directory_results_and_key_bundles_are_verified_not_trusted",
    ),
    "R-13.5-18": (
        "tests/hostile/test_stranger_reachout.py"
        "::test_three_silent_followers_cannot_brick_a_sync_and_the_node_never_learns_who_wrote",
    ),
    # Node rules a black-box suite cannot show, or only by spoiling the node under test for later
    # runs: an operator's deployment, what the database holds, 500 items from several sources under
    # hourly quotas, follow slots per host the suite would use up, routing a stranger's bundle copy.
    "R-13.1-4": ("tests/node/test_tls_proxy.py::test_two_nodes_behind_nginx_federate_and_two_peers_talk_over_https",),
    "R-13.5-6": (
        "tests/hostile/test_stranger_routing.py::test_a_stranger_serving_the_victims_genuine_bundle_does_not_receive_her_mail",
    ),
    "R-13.5-14": ("tests/hostile/test_limits.py::test_a_full_mailbox_makes_room_from_its_largest_source",),
    "R-13.5-15": ("tests/node/test_sources.py::test_a_source_is_stored_as_a_digest_that_a_restart_cannot_link",),
    "R-13.7-2": ("tests/hostile/test_stranger_limits.py::test_many_urls_on_one_host_count_as_one_host",),
    # What a node does as a puller and a sender shows only over time on the node's own side:
    "R-13.7-8": ("tests/hostile/test_stranger_routing.py::test_tombstones_from_a_node_touch_only_what_came_from_it",),
    "R-13.7-10": ("tests/node/test_sender.py::test_a_retryable_refusal_reschedules_the_batch_by_the_retry_policy",),
    # One-time pre-keys on the home node (§13.5): what the conformance cases (cases_prekeys.py)
    # cannot show from outside: claims at the same instant, moving, the federation route.
    "R-13.5-26": ("tests/node/test_prekeys.py::test_concurrent_claims_never_hand_out_a_key_twice",),
    "R-13.5-29": (
        "tests/node/test_prekeys.py::test_erasure_and_moving_delete_the_stock",
        "tests/node/test_prekeys.py::test_a_take_over_deletes_the_other_devices_stock",
    ),
    "R-13.5-30": ("tests/node/test_prekeys.py::test_a_sender_on_another_node_claims_through_its_own_home",),
    # Sealing scheme 2 (§14): what the initiator takes, keeps and refuses to send, shown by the core's tests.
    "R-4.3-2": ("tests/protocol/test_sealing2.py::test_a_bundle_carries_its_signed_pre_key",),
    "R-14.1-1": ("tests/protocol/test_sealing2.py::test_a_bundle_with_a_signed_pre_key_lives_at_most_60_days",),
    "R-14.1-2": (
        "tests/protocol/test_sealing2.py::test_a_session_starts_only_from_an_unexpired_key_bundle_with_a_signed_pre_key",
    ),
    "R-14.1-3": (
        "tests/client/test_prekeys_client.py::"
        "test_a_signed_pre_key_is_renewed_every_30_days_and_its_secret_deleted_a_week_after_its_last_bundle",
    ),
    "R-14.2-2": (
        "tests/protocol/test_sealing2.py::test_a_session_starts_only_from_an_unexpired_key_bundle_with_a_signed_pre_key",
    ),
    "R-14.2-3": ("tests/protocol/test_sealing2.py::test_the_initiator_keeps_no_trace_of_its_agreement_secret",),
    "R-14.2-4": (
        "tests/protocol/test_sealing2.py::test_a_holder_of_the_responders_secrets_cannot_rewrap_the_initiators_message",
    ),
    "R-14.3-1": ("tests/protocol/test_ratchet.py::test_a_sending_chain_stops_below_two_to_the_32",),
    "R-14.5-1": (
        "tests/protocol/test_sealing2.py::test_a_session_is_kept_only_when_the_connection_rules_take_its_first_message",
    ),
    # The reference client's sessions (peerfed/client/sessions.py), driven between two peers on two nodes.
    "R-9.4-3": (
        "tests/client/test_sessions_client.py::test_a_conversation_runs_on_scheme_2_and_a_read_message_cannot_be_opened_again",
    ),
    "R-14.4-1": (
        "tests/client/test_sessions_client.py::test_an_undelivered_message_keeps_its_sealed_bytes_and_its_retry_sends_them_again",
        "tests/client/test_sessions_client.py::test_a_device_moved_with_a_backup_opens_what_was_sent_before_it_took_over",
    ),
    "R-14.5-2": (
        "tests/client/test_sessions_client.py::test_a_device_that_lost_its_sessions_goes_on_with_scheme_1_and_the_other_side_follows",
    ),
}

# Rules known to have no case yet, each with why: listed in coverage.md, and allowed by --check only
# while they have none (a gap that gets a case must leave this list).
GAPS: dict[str, str] = {}


@dataclass
class Rule:
    id: str
    section: str
    line: int
    sentence: str
    vectors: list[str] = field(default_factory=list)
    conformance: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return bool(self.vectors or self.conformance or self.tests)


@dataclass
class Unit:
    """A paragraph, a list item or a table row: the text a sentence cannot cross."""

    section: str
    line: int
    text: str


def units(text: str) -> Iterable[Unit]:
    """The spec's text units after its preamble, each with its section and first line number."""
    section = ""
    lines: list[str] = []
    start = 0

    def flush() -> Iterable[Unit]:
        if lines and section:
            yield Unit(section, start, "\n".join(lines))
        lines.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        heading = HEADING.match(line)
        if heading:
            yield from flush()
            section = heading.group(1)
            continue
        if not line.strip() or line.lstrip().startswith("|") or LIST_ITEM.match(line):
            yield from flush()
            if not line.strip():
                continue
            if line.lstrip().startswith("|"):
                if section:
                    yield Unit(section, number, line)
                continue
        if not lines:
            start = number
        lines.append(line)
    yield from flush()


def _sentence(text: str) -> str:
    """The rule's sentence from its id on, shortened for the table."""
    end = SENTENCE_END.search(text)
    cut = text[: end.start() + 1] if end else text
    cut = cut.split("|", 1)[0]
    cut = " ".join(cut.replace("**", "").split())
    return cut if len(cut) <= 140 else cut[:137].rstrip() + "…"


def parse_rules(text: str) -> tuple[dict[str, Rule], list[str]]:
    """Every rule of the spec by id, and the errors: a keyword with no id in its sentence, an id twice,
    an id whose section is not the one it stands in."""
    rules: dict[str, Rule] = {}
    errors: list[str] = []
    for unit in units(text):
        ids = list(RULE_ID.finditer(unit.text))
        for found in ids:
            rule_id = f"R-{found.group(1)}-{found.group(2)}"
            line = unit.line + unit.text[: found.start()].count("\n")
            if found.group(1) != unit.section:
                errors.append(f"spec/peerfed-v1.md:{line}: {rule_id} stands in §{unit.section}; use R-{unit.section}-N")
            if rule_id in rules:
                first = rules[rule_id].line
                errors.append(f"spec/peerfed-v1.md:{line}: {rule_id} is used twice (first on line {first})")
                continue
            rules[rule_id] = Rule(rule_id, unit.section, line, _sentence(unit.text[found.end() :]))
        for keyword in KEYWORD.finditer(unit.text):
            before = [i for i in ids if i.end() <= keyword.start()]
            between = unit.text[before[-1].end() : keyword.start()] if before else None
            if between is None or SENTENCE_END.search(between):
                line = unit.line + unit.text[: keyword.start()].count("\n")
                words = " ".join(unit.text[max(0, keyword.start() - 60) : keyword.end() + 40].split())
                errors.append(
                    f"spec/peerfed-v1.md:{line} (§{unit.section}): {keyword.group(0)} without a rule id "
                    f"in its sentence (write [R-{unit.section}-N] before it): …{words}…"
                )
    return rules, errors


def vector_tags(directory: Path = VECTORS) -> dict[str, list[str]]:
    """Rule id -> the vector cases ("file#tcId") that name it in their ``rules``."""
    tags: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.json")):
        for group in json.loads(path.read_text(encoding="utf-8"))["testGroups"]:
            for test in group["tests"]:
                for rule in test.get("rules", []):
                    tags.setdefault(rule, []).append(f"{path.name}#{test['tcId']}")
    return tags


def conformance_tags() -> dict[str, list[str]]:
    """Rule id -> the conformance cases that name it."""
    from peerfed.conformance.suite import load_cases

    tags: dict[str, list[str]] = {}
    for item in load_cases():
        for rule in item.rules:
            if not rule.startswith("§"):  # a SHOULD case names its section: SHOULDs are not numbered rules
                tags.setdefault(rule, []).append(item.name)
    return tags


def test_errors(tests: Mapping[str, Sequence[str]]) -> list[str]:
    """A named test that does not exist is an error: the matrix would claim coverage it does not have."""
    errors = []
    for rule, names in sorted(tests.items()):
        for name in names:
            path, _, function = name.partition("::")
            source = ROOT / path
            if not source.is_file() or f"def {function}(" not in source.read_text(encoding="utf-8"):
                errors.append(f"{rule}: the test {name} named for it does not exist")
    return errors


def attach(
    rules: dict[str, Rule],
    vectors: Mapping[str, list[str]],
    conformance: Mapping[str, list[str]],
    tests: Mapping[str, Sequence[str]],
    gaps: Mapping[str, str],
) -> list[str]:
    """Fill each rule's cases; the errors: a case naming a rule the spec does not have, a rule with none
    (unless it is a listed gap), and a listed gap that has a case or is no rule at all."""
    errors = []
    for rule_id in sorted(gaps):
        if rule_id not in rules:
            errors.append(f"{rule_id}: listed in GAPS, but the spec has no such rule")
    for kind, tags in (("vector", vectors), ("conformance case", conformance), ("test list", tests)):
        for rule_id, names in sorted(tags.items()):
            if rule_id not in rules:
                errors.append(f"{rule_id}: named by {kind} {', '.join(names[:3])}, but the spec has no such rule")
    for rule in rules.values():
        rule.vectors = list(vectors.get(rule.id, []))
        rule.conformance = list(conformance.get(rule.id, []))
        rule.tests = list(tests.get(rule.id, []))
        if not rule.covered and rule.id not in gaps:
            errors.append(
                f"{rule.id} (spec/peerfed-v1.md:{rule.line}) has no vector, conformance case or test: {rule.sentence}"
            )
        if rule.covered and rule.id in gaps:
            errors.append(f"{rule.id} has a case now: remove it from GAPS in spec/coverage.py")
    return errors


def _ranges(cases: Sequence[str]) -> str:
    """``encoding.json#3, #4, #5`` as ``encoding 3-5``: the vector column stays readable."""
    by_file: dict[str, list[int]] = {}
    for item in cases:
        name, _, number = item.partition("#")
        by_file.setdefault(name, []).append(int(number))
    parts = []
    for name, numbers in by_file.items():
        spans: list[str] = []
        run = [numbers[0]]
        for n in [*numbers[1:], -1]:
            if n == run[-1] + 1:
                run.append(n)
                continue
            spans.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
            run = [n]
        parts.append(f"{name.removesuffix('.json')} {', '.join(spans)}")
    return "; ".join(parts)


def _sort_key(rule_id: str) -> tuple[int, ...]:
    section, number = rule_id[2:].rsplit("-", 1)
    return (*(int(p) for p in section.split(".")), 0 if "." in section else -1, int(number))


def render(rules: Mapping[str, Rule], gaps: Mapping[str, str]) -> str:
    ordered = sorted(rules.values(), key=lambda r: _sort_key(r.id))
    total = len(ordered)
    with_vectors = sum(bool(r.vectors) for r in ordered)
    with_cases = sum(bool(r.conformance) for r in ordered)
    with_tests = sum(bool(r.tests) for r in ordered)
    neither = sum(not r.covered for r in ordered)
    rows = [
        "# Rule coverage of peerfed-v1.md",
        "",
        "Generated by `spec/coverage.py` (do not edit; `python spec/coverage.py` rewrites it, `--check` fails",
        "when it is stale or a rule has no case). Vectors are `file tcIds` of `spec/vectors/`; conformance",
        "cases are those of `peerfed conformance URL`; tests are Python tests, named only for rules that",
        "a client device, or a node's own side, alone can show (`TESTS` in coverage.py says why).",
        "",
        f"- Rules: {total}",
        f"- Rules with vectors: {with_vectors}",
        f"- Rules with conformance cases: {with_cases}",
        f"- Rules with Python tests only: {sum(bool(r.tests and not (r.vectors or r.conformance)) for r in ordered)}"
        f" (rules naming tests: {with_tests})",
        f"- Rules with neither vectors nor conformance cases nor tests: {neither}",
        "",
        "| Rule | Sentence | Vectors | Conformance | Tests |",
        "|---|---|---|---|---|",
    ]
    for rule in ordered:
        cells = [
            rule.id,
            rule.sentence.replace("|", "\\|"),
            _ranges(rule.vectors),
            ", ".join(rule.conformance),
            ", ".join(rule.tests),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    if gaps:
        rows += ["", "## Known gaps", "", "Rules with no case yet, and why:", ""]
        rows += [f"- {rule_id}: {why}" for rule_id, why in sorted(gaps.items(), key=lambda g: _sort_key(g[0]))]
    return "\n".join(rows) + "\n"


def build(tests: Mapping[str, Sequence[str]] = TESTS, gaps: Mapping[str, str] = GAPS) -> tuple[str, list[str]]:
    """The text of coverage.md and every error found."""
    rules, errors = parse_rules(SPEC.read_text(encoding="utf-8"))
    errors += test_errors(tests)
    errors += attach(rules, vector_tags(), conformance_tags(), tests, gaps)
    return render(rules, gaps), errors


def main(argv: Sequence[str]) -> int:
    text, errors = build()
    if "--check" in argv:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            errors.append("spec/coverage.md is stale: run python spec/coverage.py")
    else:
        OUT.write_text(text, encoding="utf-8")
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
