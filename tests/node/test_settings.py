"""Operator settings (spec §13.2): durations, one name three ways, the example file, one-line errors, admin errors.

Through real `peerfed serve` and `peerfed admin` processes where the operator would meet them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from peerfed.client.transport import NodeAPI
from peerfed.node.config import DURATIONS, Config, ConfigError, env_name, flag_name, load_config, parse_duration
from peerfed.node.config_text import HELP
from peerfed.node.federation import parse_document
from peerfed.node.store import Store
from tests.processes import NodeProcesses

SETTING = re.compile(r"^# ([a-z_]+) = (.*)$")


def peerfed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peerfed", *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604_800), ("12h", 43_200), ("30m", 1_800), ("45s", 45), ("1h30m", 5_400), ("90", 90), (2.5, 2.5)],
)
def test_a_duration_is_seconds_or_a_number_with_a_unit(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7x", "d", "-5s", "12h ago", "", True, "inf"])
def test_anything_else_is_not_a_duration(text: str | bool) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("name", sorted(DURATIONS))
def test_every_duration_setting_takes_units_in_the_file_a_variable_and_a_flag(tmp_path: Path, name: str) -> None:
    file = tmp_path / "node.toml"
    file.write_text(f'{name} = "12h"\n', encoding="utf-8")
    assert getattr(load_config(file=file, env={}), name) == 43_200
    assert getattr(load_config(env={env_name(name): "30m"}), name) == 1_800
    assert getattr(load_config(env={}, flags={name: "45s"}), name) == 45
    with pytest.raises(ConfigError, match=f"^{env_name(name)}: 'soon' is not a duration"):
        load_config(env={env_name(name): "soon"})


def test_whole_number_settings_refuse_fractions_and_booleans(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^PEERFED_MAILBOX_TTL: '1\.5s' is not a whole number of seconds"):
        load_config(env={"PEERFED_MAILBOX_TTL": "1.5s"})
    file = tmp_path / "node.toml"
    file.write_text("mailbox_cap = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="setting mailbox_cap: True is not a whole number"):
        load_config(file=file, env={})


def test_every_setting_is_documented() -> None:
    assert {f.name for f in dataclasses.fields(Config)} == set(HELP)


def test_print_config_is_a_commented_file_of_every_setting_at_its_default(tmp_path: Path) -> None:
    out = peerfed("serve", "--print-config")
    assert out.returncode == 0 and not out.stderr
    names = [f.name for f in dataclasses.fields(Config) if f.name != "resources"]
    for name in names:
        assert f"\n# ({env_name(name)}, {flag_name(name)})\n# {name} = " in out.stdout
    # Uncommented, every line is a valid setting, and together they are the defaults; the
    # resources example is a table, so it comes last.
    top, table = out.stdout.split("# [[resources]]\n")
    assert [m.group(1) for line in top.splitlines() if (m := SETTING.match(line))] == names
    body = [line[2:] for line in top.splitlines() if SETTING.match(line)]
    body += ["[[resources]]", *(line[2:] for line in table.splitlines() if SETTING.match(line))]
    file = tmp_path / "node.toml"
    file.write_text("\n".join(body) + "\n", encoding="utf-8")
    loaded = load_config(file=file, env={})
    assert dataclasses.replace(loaded, resources=()) == Config()
    assert [r.name for r in loaded.resources] == ["Samaritans"]


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--mailbox-ttl", "7x"], {}, "error: --mailbox-ttl: '7x' is not a duration"),
        (["--port", "eighty"], {}, "error: --port: 'eighty' is not a whole number"),
        ([], {"PEERFED_ALLOW_PLAIN_HTTP": "maybe"}, "error: PEERFED_ALLOW_PLAIN_HTTP: 'maybe' is not true or false"),
        (["--config", "{file}"], {}, "error: {file}: unknown setting 'mailbox_tll'"),
    ],
)
def test_a_bad_setting_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], line: str
) -> None:
    file = tmp_path / "node.toml"
    file.write_text('mailbox_tll = "7d"\n', encoding="utf-8")
    args = [a.replace("{file}", str(file)) for a in args]
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PEERFED_")}
    out = peerfed("serve", "--data", str(tmp_path / "node"), *args, env={**clean, **env})
    assert out.returncode == 2
    assert out.stderr.startswith(line.replace("{file}", str(file))), out.stderr
    assert out.stderr.count("\n") == 1 and not out.stdout
    assert not (tmp_path / "node").exists()  # nothing was started


def test_a_node_takes_durations_and_texts_from_file_variable_and_flags(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    async def scenario() -> None:
        file = tmp_path / "node.toml"
        file.write_text('mailbox_ttl = "7d"\ndescription = "From the file."\n', encoding="utf-8")
        node = node_processes(
            tmp_path / "node",
            "--config",
            str(file),
            "--idle-timeout",
            "45s",
            "--contact",
            "ops@circle.example",
            "--code-of-conduct",
            "Be kind.",
            env={"PEERFED_MAX_LISTING_LIFETIME": "12h"},
        )
        await node.start()
        async with aiohttp.ClientSession() as http:
            doc, _ = parse_document(await NodeAPI(node.url, http).document(), node.url, int(time.time()))
        assert (doc.mailbox_ttl, doc.max_listing_lifetime, dict(doc.limits)["idle-timeout"]) == (604_800, 43_200, 45)
        assert (doc.description, doc.contact, doc.code_of_conduct) == (
            "From the file.",
            "ops@circle.example",
            "Be kind.",
        )
        assert node.stop() == 0

    asyncio.run(scenario())


def test_admin_errors_go_to_stderr_as_json_under_json(tmp_path: Path) -> None:
    data = tmp_path / "node"
    missing = peerfed("admin", "--data", str(data), "--json", "stats")
    assert missing.returncode == 2 and not missing.stdout
    assert json.loads(missing.stderr)["error"]["code"] == "local.no_database"

    async def make() -> None:
        data.mkdir()
        await (await Store.open(data / "node.sqlite3")).close()

    asyncio.run(make())
    bad = peerfed("admin", "--data", str(data), "--json", "listings", "remove", "not-hex")
    assert bad.returncode == 2 and not bad.stdout
    assert json.loads(bad.stderr)["error"]["code"] == "local.invalid"
    unknown = peerfed("admin", "--data", str(data), "--json", "listings", "remove", "ab" * 32)
    assert unknown.returncode == 1 and not unknown.stdout
    assert json.loads(unknown.stderr) == {"error": {"code": "local.not_found", "message": "no such listing"}}
    plain = peerfed("admin", "--data", str(data), "listings", "remove", "ab" * 32)
    assert (plain.returncode, plain.stdout, plain.stderr) == (1, "", "error local.not_found: no such listing\n")
