"""Settings: defaults, TOML, environment and flags, in that order of strength."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerfed.node.config import DEFAULT_PORT, ConfigError, load_config
from peerfed.protocol.node_bodies import Emergency, FederationPolicy, Registration


def test_defaults_are_a_private_node_on_loopback() -> None:
    config = load_config(env={})
    assert (config.host, config.port, config.data) == ("127.0.0.1", DEFAULT_PORT, Path("peerfed-data"))
    assert config.url == f"http://127.0.0.1:{DEFAULT_PORT}"
    assert config.registration is Registration.OPEN
    assert config.synchronous == "FULL"


def test_toml_then_environment_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "node.toml"
    file.write_text(
        """
name = "Grief Circle"
port = 9000
registration = "invite"
federation = "allow-list"
federate = ["https://voices.example/"]
vocabulary = ["loss", "parents"]

[[resources]]
name = "Samaritans"
contact = "116 123"
hours = "24/7"
languages = ["en"]
emergency = "on-request"
""",
        encoding="utf-8",
    )
    config = load_config(file=file, env={"PEERFED_PORT": "9100", "PEERFED_NAME": "From env"}, flags={"name": "Flag"})
    assert config.name == "Flag"
    assert config.port == 9100
    assert config.registration is Registration.INVITE
    assert config.federation is FederationPolicy.ALLOW_LIST
    assert config.federate == ("https://voices.example",)
    assert config.vocabulary == ("loss", "parents")
    assert config.resources[0].emergency is Emergency.ON_REQUEST


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PEERFED_PORT": "eighty"}, "port"),
        ({"PEERFED_PORT": "70000"}, "port"),
        ({"PEERFED_REGISTRATION": "everyone"}, "registration"),
        ({"PEERFED_PUBLIC_URL": "ftp://x.example"}, "public_url"),
        ({"PEERFED_SYNCHRONOUS": "OFF"}, "synchronous"),
        ({"PEERFED_READERS": "0"}, "readers"),
    ],
)
def test_bad_settings_are_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"(?i){message}"):
        load_config(env=env)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "node.toml"
    file.write_text('nmae = "typo"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="nmae"):
        load_config(file=file, env={})
